using System.Net;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>Bifrost's own request shapes on the routes we have: inline batch requests, batch results, count_tokens, empty ids, OpenAI routes we do not serve.</summary>
public sealed class BifrostBatchRouteTests
{
    [Fact]
    public async Task Inline_requests_create_a_batch_like_an_uploaded_file_and_results_come_in_Bifrost_shape()
    {
        await using var host = await StartAsync();
        using var created = await host.CreateBatchRawAsync("""
            {"model":"local/echo","endpoint":"/v1/chat/completions","completion_window":"24h",
             "requests":[{"custom_id":"test-request-1","body":{"model":"local/echo","messages":[{"role":"user","content":"Say hello"}]}},
                         {"custom_id":"test-request-2","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"again"}],"metadata":{"local_status":"400"}}}],
             "metadata":{"batch_type":"testing"}}
            """);
        var batch = await ExpectAsync(created, HttpStatusCode.OK);
        var id = batch.GetProperty("id").GetString()!;
        Assert.StartsWith("file-", batch.GetProperty("input_file_id").GetString(), StringComparison.Ordinal);

        var done = await host.WaitForEndAsync(id);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("total").GetInt32());

        using var results = await host.GetAsync($"{BatchesPath}/{id}/results");
        var body = await ExpectAsync(results, HttpStatusCode.OK);
        Assert.Equal(id, body.GetProperty("batch_id").GetString());
        Assert.False(body.GetProperty("has_more").GetBoolean());
        Assert.Equal("batch_results", body.GetProperty("extra_fields").GetProperty("request_type").GetString());
        var items = body.GetProperty("results").EnumerateArray().ToDictionary(r => r.GetProperty("custom_id").GetString()!);
        Assert.Equal(200, items["test-request-1"].GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal(400, items["test-request-2"].GetProperty("response").GetProperty("status_code").GetInt32());

        using var unknown = await host.GetAsync($"{BatchesPath}/batch_nope/results");
        await ExpectErrorAsync(unknown, HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("""{"endpoint":"/v1/chat/completions","completion_window":"24h"}""", "input_file_id")]
    [InlineData("""{"endpoint":"/v1/chat/completions","requests":[]}""", "requests")]
    [InlineData("""{"input_file_id":"file-x","requests":[{"custom_id":"a","body":{}}]}""", "requests")]
    [InlineData("""{"endpoint":"/v1/chat/completions","requests":[{"body":{"model":"local/echo","messages":[]}}]}""", "requests")]
    [InlineData("""{"endpoint":"/v1/chat/completions","requests":[{"custom_id":"a","body":{"model":"local/echo"}},{"custom_id":"a","body":{"model":"local/echo"}}]}""", "requests")]
    [InlineData("""{"endpoint":"/v1/chat/completions","requests":[42]}""", "requests")]
    public async Task Bad_inline_requests_are_a_400_naming_the_parameter(string json, string param)
    {
        await using var host = await StartAsync();
        using var response = await host.CreateBatchRawAsync(json);
        var error = await ExpectErrorAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(param, error.GetProperty("param").GetString());

        // Nothing was stored for a refused batch.
        using var list = await host.GetAsync(FilesPath);
        Assert.Equal(0, (await ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data").GetArrayLength());
    }

    [Theory]
    [InlineData("/openai/v1/count_tokens", """{"model":"local/echo","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"How many tokens is this message?"}]},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}""")]
    [InlineData("/openai/v1/responses/input_tokens", """{"model":"local/echo","messages":[{"role":"user","content":"How many tokens is this message?"}]}""")]
    [InlineData("/openai/count_tokens", """{"model":"local/echo","input":[{"role":"user","content":"How many tokens is this message?"}]}""")]
    public async Task Count_tokens_accepts_Bifrost_routes_and_chat_shaped_bodies(string path, string json)
    {
        await using var host = await StartAsync();
        using var response = await host.PostJsonAsync(path, json);
        var body = await ExpectAsync(response, HttpStatusCode.OK);
        Assert.True(body.GetProperty("input_tokens").GetInt32() > 0);
    }

    [Theory]
    [InlineData("/openai/v1/batches/", "batch_id")]
    [InlineData("/openai/batches/", "batch_id")]
    [InlineData("/openai/v1/files/", "file_id")]
    public async Task A_collection_route_with_an_empty_id_is_a_400_naming_the_id(string path, string param)
    {
        await using var host = await StartAsync();
        using var response = await host.GetAsync(path);
        Assert.Equal(param, (await ExpectErrorAsync(response, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("POST", "/openai/v1/containers")]
    [InlineData("GET", "/openai/v1/vector_stores/vs_1")]
    [InlineData("POST", "/openai/v1/assistants")]
    [InlineData("POST", "/openai/v1/threads/t/runs")]
    [InlineData("POST", "/openai/v1/fine_tuning/jobs")]
    [InlineData("POST", "/openai/uploads")]
    [InlineData("GET", "/openai/v1/evals")]
    public async Task OpenAI_routes_we_do_not_serve_answer_unsupported_operation(string method, string path)
    {
        await using var host = await StartAsync();
        using var response = await host.SendAsync(new HttpMethod(method), path, new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal("unsupported_operation", (await ExpectErrorAsync(response, HttpStatusCode.BadRequest)).GetProperty("code").GetString());

        using var unknown = await host.SendAsync(HttpMethod.Get, "/openai/v1/no-such-thing");
        Assert.Equal("unknown_url", (await ExpectErrorAsync(unknown, HttpStatusCode.NotFound)).GetProperty("code").GetString());
    }
}
