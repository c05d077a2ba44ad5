using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>A client's steps through <c>/v1/files</c> and <c>/v1/batches</c>, shared by the native batch tests of each provider.</summary>
internal static class NativeBatchSteps
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Uploads <paramref name="jsonl"/> with purpose <c>batch</c>; returns the file id.</summary>
    public static async Task<string> UploadAsync(GatewayHost host, string jsonl)
    {
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new StringContent(jsonl), "file", "in.jsonl" } };
        using var response = await host.Client.PostAsync("/openai/v1/files", form, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await GatewayHost.ReadJsonAsync(response)).GetProperty("id").GetString()!;
    }

    /// <summary>Creates a chat completions batch of <paramref name="fileId"/> (with Bifrost's <c>model</c> when given); returns its id.</summary>
    public static async Task<string> CreateBatchAsync(GatewayHost host, string fileId, string? model = null)
    {
        var body = new JsonObject { ["input_file_id"] = fileId, ["endpoint"] = "/v1/chat/completions", ["completion_window"] = "24h" };
        if (model is not null)
        {
            body["model"] = model;
        }

        using var response = await host.PostJsonAsync("/openai/v1/batches", body.ToJsonString(), Ct);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return json.GetProperty("id").GetString()!;
    }

    /// <summary>Polls the batch until it has <paramref name="status"/> (and <paramref name="until"/> holds, when given); fails after 30 s.</summary>
    public static async Task<JsonElement> WaitForStatusAsync(GatewayHost host, string batchId, string status, Func<bool>? until = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonElement last = default;
        while (DateTime.UtcNow < deadline)
        {
            using var response = await host.Client.GetAsync($"/openai/v1/batches/{batchId}", Ct);
            last = await GatewayHost.ReadJsonAsync(response);
            if (last.GetProperty("status").GetString() == status && (until is null || until()))
            {
                return last;
            }

            await Task.Delay(20, Ct);
        }

        Assert.Fail($"Batch {batchId} did not reach '{status}'; last: {last}");
        return last;
    }

    /// <summary>The JSON lines of a gateway file.</summary>
    public static async Task<List<JsonElement>> ReadLinesAsync(GatewayHost host, string fileId)
    {
        var content = await host.Client.GetStringAsync($"/openai/v1/files/{fileId}/content", Ct);
        return [.. content.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)];
    }
}
