using System.Net;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>Batches of every batchable OpenAI endpoint run through the gateway and come back in the batch output format.</summary>
public sealed class BatchEndpointsTests
{
    public static TheoryData<string, string, string> Endpoints => new()
    {
        { "/v1/embeddings", """{"model":"local/echo","input":"embed me","dimensions":8}""", "list" },
        { "/v1/completions", """{"model":"local/echo","prompt":"complete me"}""", "text_completion" },
        { "/v1/responses", """{"model":"local/echo","input":"respond to me"}""", "response" },
    };

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task A_batch_of_each_endpoint_completes_with_one_result_per_line(string endpoint, string body, string objectType)
    {
        await using var host = await FileBatchHost.StartAsync();
        var lines = Enumerable.Range(1, 5).Select(i => new JsonObject
        {
            ["custom_id"] = $"r{i}",
            ["method"] = "POST",
            ["url"] = endpoint,
            ["body"] = JsonNode.Parse(body),
        }.ToJsonString());
        var file = await host.UploadOkAsync(BatchLines.Jsonl(lines));
        using var created = await host.CreateBatchRawAsync(new JsonObject
        {
            ["input_file_id"] = file.GetProperty("id").GetString(),
            ["endpoint"] = endpoint,
            ["completion_window"] = "24h",
        }.ToJsonString());
        var batch = await ExpectAsync(created, HttpStatusCode.OK);
        Assert.Equal(endpoint, batch.GetProperty("endpoint").GetString());

        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal(5, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        var (output, errors) = await host.ResultsAsync(done);
        Assert.Empty(errors);
        Assert.Equal(["r1", "r2", "r3", "r4", "r5"], output.Select(l => l.GetProperty("custom_id").GetString()).Order());
        Assert.All(output, line =>
        {
            var response = line.GetProperty("response");
            Assert.Equal(200, response.GetProperty("status_code").GetInt32());
            Assert.Equal(objectType, response.GetProperty("body").GetProperty("object").GetString());
        });
    }
}
