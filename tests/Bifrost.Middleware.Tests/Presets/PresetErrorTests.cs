using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Providers.Http;
using Bifrost.Middleware.Providers.OpenAI.Presets;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Presets;

/// <summary>
/// The presets' own error shapes through the gateway, against the fake: FastAPI's <c>detail</c> list (Mistral's 422 for an
/// unknown field, https://fastapi.tiangolo.com/tutorial/handling-errors/), Mistral's and vLLM's flat
/// <c>{"object":"error",...}</c> (https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html), and OpenRouter's
/// mid-stream error chunk (https://openrouter.ai/docs/api/reference/streaming, https://openrouter.ai/docs/api/reference/errors-and-debugging).
/// </summary>
public sealed class PresetErrorTests : PresetTestBase
{
    [Fact]
    public async Task Mistrals_422_detail_list_is_a_400_invalid_request_error_naming_the_field()
    {
        Upstream.Enqueue(FakeResponses.Json(422, """{"detail":[{"type":"extra_forbidden","loc":["body","frobnicate"],"msg":"Extra inputs are not permitted","input":true}]}"""));
        await using var host = await StartAsync("mistral", configure: p => p.MaxRetries = 2);

        var json = await ChatAsync(host, Chat("mistral/mistral-large-latest"), HttpStatusCode.BadRequest);

        var error = json.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("extra_forbidden", error.GetProperty("code").GetString());
        Assert.Equal("frobnicate", error.GetProperty("param").GetString());
        Assert.Equal("body.frobnicate: Extra inputs are not permitted", error.GetProperty("message").GetString());
        Assert.Equal(400, json.GetProperty("status_code").GetInt32());
        Assert.False(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(1, Upstream.ChatCalls); // a refused request is not retried
    }

    [Fact]
    public async Task Mistrals_error_object_with_a_nested_detail_list_lists_every_entry()
    {
        Upstream.Enqueue(FakeResponses.Json(422, """{"object":"error","message":{"detail":[{"type":"missing","loc":["body","messages",0,"content"],"msg":"Field required"},{"type":"literal_error","loc":["body","messages",0,"role"],"msg":"Input should be 'user'"}]},"type":"invalid_request_error","param":null,"code":null}"""));
        await using var host = await StartAsync("mistral");

        var json = await ChatAsync(host, Chat("mistral/mistral-small-latest"), HttpStatusCode.BadRequest);

        var error = json.GetProperty("error");
        Assert.Equal("body.messages.0.content: Field required; body.messages.0.role: Input should be 'user'", error.GetProperty("message").GetString());
        Assert.Equal("missing", error.GetProperty("code").GetString());
        Assert.Equal("messages.0.content", error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Vllms_flat_error_keeps_its_message_and_its_class_name_as_the_code()
    {
        Upstream.Enqueue(FakeResponses.Json(400, """{"object":"error","message":"This model's maximum context length is 2048 tokens. However, you requested 4000 tokens.","type":"BadRequestError","param":null,"code":400}"""));
        await using var host = await StartAsync("vllm", key: null);

        var json = await ChatAsync(host, Chat("vllm/meta-llama/Llama-3.1-8B-Instruct"), HttpStatusCode.BadRequest);

        var error = json.GetProperty("error");
        Assert.Equal("This model's maximum context length is 2048 tokens. However, you requested 4000 tokens.", error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("BadRequestError", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_detail_string_is_the_message_with_the_status_kept()
    {
        Upstream.Enqueue(FakeResponses.Json(404, """{"detail":"Not Found"}"""));
        await using var host = await StartAsync("vllm", key: null);

        var json = await ChatAsync(host, Chat("vllm/m"), HttpStatusCode.NotFound);

        Assert.Equal("Not Found", json.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("not_found_error", json.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Groqs_openai_style_error_is_read_as_before()
    {
        Upstream.Enqueue(FakeResponses.Error(404, "The model `nope` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"));
        await using var host = await StartAsync("groq");

        var json = await ChatAsync(host, Chat("groq/nope"), HttpStatusCode.NotFound);

        Assert.Equal("model_not_found", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", json.GetProperty("error").GetProperty("type").GetString());
        Assert.StartsWith("The model `nope` does not exist", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"code":502,"message":"Provider disconnected unexpectedly"}""", 502, null)]
    [InlineData("""{"code":"server_error","message":"Provider disconnected unexpectedly"}""", 500, "server_error")]
    public async Task OpenRouters_mid_stream_error_chunk_ends_the_stream_with_the_gateways_error_event(string errorObject, int status, string? code)
    {
        Upstream.Enqueue(FakeResponses.Sse(
            FakeResponses.Chunk("openai/gpt-4o", role: "assistant", content: "Hel"),
            $$"""{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"openai/gpt-4o","provider":"OpenAI","error":{{errorObject}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}""",
            FakeResponses.Chunk("openai/gpt-4o", content: "never seen")));
        await using var host = await StartAsync("openrouter");

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", Chat("openrouter/openai/gpt-4o", ("stream", true)).ToJsonString(), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // the stream had started
        var events = Sse.ParseData(text);
        Assert.Equal("Hel", Sse.Json(events[0]).GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        var failure = events.Select(e => e == "[DONE]" ? default : Sse.Json(e)).Single(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("error", out _));
        Assert.Equal(status, failure.GetProperty("status_code").GetInt32());
        Assert.Equal("Provider disconnected unexpectedly", failure.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(code, failure.GetProperty("error").TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null);
        Assert.DoesNotContain("never seen", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_body_that_is_not_json_is_the_message_and_a_422_is_a_400()
    {
        var error = PresetErrors.Parse(new UpstreamError(422, "Unprocessable Entity", "bad things", null));

        Assert.Equal(400, error.StatusCode);
        Assert.Equal("bad things", error.Error.Error.Message);
        Assert.Equal("invalid_request_error", error.Error.Error.Type);
    }
}
