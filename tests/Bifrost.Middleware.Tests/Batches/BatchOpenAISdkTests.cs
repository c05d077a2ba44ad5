#pragma warning disable OPENAI001 // the SDK's batch client is experimental
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using OpenAI;
using OpenAI.Batch;
using OpenAI.Chat;
using OpenAI.Files;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>Files and batches through the official OpenAI .NET SDK over TestHost: if the real client cannot use them, they are broken.</summary>
public sealed class BatchOpenAISdkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static OpenAIClient CreateClient(FileBatchHost host) =>
        new(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(host.Host.Server.CreateClient()),
            RetryPolicy = new ClientRetryPolicy(0),
        });

    private static RequestOptions Options() => new() { CancellationToken = Ct };

    private static JsonElement Json(ClientResult result) => JsonDocument.Parse(result.GetRawResponse().Content).RootElement.Clone();

    [Fact]
    public async Task Upload_create_poll_and_download_with_the_official_sdk()
    {
        await using var host = await FileBatchHost.StartAsync(o => o.Batches.Concurrency = 2);
        var client = CreateClient(host);
        var files = client.GetOpenAIFileClient();
        var batches = client.GetBatchClient();
        var ids = Enumerable.Range(1, 8).Select(i => $"sdk-{i}").ToList();
        var input = BatchLines.Jsonl(ids.Select(id => BatchLines.Chat(
            id,
            metadata: id == "sdk-5" ? [("local_status", "422")] : [("local_reply", "answer " + id), ("local_delay_ms", "30")])));

        using var stream = new MemoryStream(input);
        OpenAIFile uploaded = await files.UploadFileAsync(stream, "sdk-input.jsonl", FileUploadPurpose.Batch, Ct);
        Assert.StartsWith("file-", uploaded.Id);
        Assert.Equal(input.Length, uploaded.SizeInBytes);
        Assert.Equal("sdk-input.jsonl", uploaded.Filename);
        Assert.Equal(FilePurpose.Batch, uploaded.Purpose);

        OpenAIFile fetched = await files.GetFileAsync(uploaded.Id, Ct);
        Assert.Equal(uploaded.Id, fetched.Id);
        OpenAIFileCollection listed = await files.GetFilesAsync(FilePurpose.Batch, Ct);
        Assert.Contains(listed, f => f.Id == uploaded.Id);

        var body = BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            input_file_id = uploaded.Id,
            endpoint = "/v1/chat/completions",
            completion_window = "24h",
            metadata = new Dictionary<string, string> { ["via"] = "sdk" },
        }));
        CreateBatchOperation operation = await batches.CreateBatchAsync(body, waitUntilCompleted: false, Options());
        Assert.StartsWith("batch_", operation.BatchId);
        Assert.False(operation.HasCompleted);

        var deadline = DateTime.UtcNow + FileBatchHost.Deadline;
        while (!operation.HasCompleted)
        {
            Assert.True(DateTime.UtcNow < deadline, "the batch did not complete in time");
            await Task.Delay(20, Ct);
            await operation.UpdateStatusAsync(Options());
        }

        var batch = Json(await operation.GetBatchAsync(Options()));
        Assert.Equal("completed", batch.GetProperty("status").GetString());
        Assert.Equal("sdk", batch.GetProperty("metadata").GetProperty("via").GetString());
        BatchLines.AssertCountsAddUp(batch, ids.Count);
        var retrieved = Json(await batches.GetBatchAsync(operation.BatchId, Options()));
        Assert.Equal(batch.GetProperty("output_file_id").GetString(), retrieved.GetProperty("output_file_id").GetString());

        var listedBatches = new List<JsonElement>();
        await foreach (var page in batches.GetBatchesAsync(after: null, limit: 10, Options()).GetRawPagesAsync())
        {
            listedBatches.AddRange(Json(page).GetProperty("data").EnumerateArray());
        }

        Assert.Equal(operation.BatchId, Assert.Single(listedBatches).GetProperty("id").GetString());

        BinaryData outputData = await files.DownloadFileAsync(batch.GetProperty("output_file_id").GetString()!, Ct);
        BinaryData errorData = await files.DownloadFileAsync(batch.GetProperty("error_file_id").GetString()!, Ct);
        var output = BatchLines.Parse(outputData.ToArray());
        var errors = BatchLines.Parse(errorData.ToArray());
        BatchLines.AssertExactlyOnce(ids, output, errors);
        Assert.Equal("sdk-5", BatchLines.CustomId(Assert.Single(errors)));
        Assert.Equal(422, errors[0].GetProperty("response").GetProperty("status_code").GetInt32());

        // Each output body is a chat completion the SDK itself can read.
        foreach (var line in output)
        {
            var completion = ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(line.GetProperty("response").GetProperty("body").GetRawText()));
            Assert.NotNull(completion);
            Assert.Equal("answer " + BatchLines.CustomId(line), completion.Content[0].Text);
            Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        }

        FileDeletionResult deleted = await files.DeleteFileAsync(uploaded.Id, Ct);
        Assert.True(deleted.Deleted);
        var missing = await Assert.ThrowsAsync<ClientResultException>(() => files.GetFileAsync(uploaded.Id, Ct));
        Assert.Equal(404, missing.Status);
    }

    [Fact]
    public async Task Cancel_with_the_official_sdk()
    {
        await using var host = await FileBatchHost.StartAsync(o => o.Batches.Concurrency = 1);
        var client = CreateClient(host);
        var ids = Enumerable.Range(1, 15).Select(i => $"slow-{i:D2}").ToList();
        using var stream = new MemoryStream(BatchLines.Jsonl(ids.Select(id => BatchLines.Chat(id, metadata: [("local_delay_ms", "150")]))));
        OpenAIFile uploaded = await client.GetOpenAIFileClient().UploadFileAsync(stream, "slow.jsonl", FileUploadPurpose.Batch, Ct);
        var body = BinaryContent.Create(BinaryData.FromObjectAsJson(new { input_file_id = uploaded.Id, endpoint = "/v1/chat/completions", completion_window = "24h" }));
        CreateBatchOperation operation = await client.GetBatchClient().CreateBatchAsync(body, waitUntilCompleted: false, Options());
        await host.WaitForBatchAsync(operation.BatchId, b => b.GetProperty("request_counts").GetProperty("completed").GetInt32() >= 1, auth: "sk-test");

        var cancelling = Json(await operation.CancelAsync(Options()));
        Assert.Equal("cancelling", cancelling.GetProperty("status").GetString());

        var deadline = DateTime.UtcNow + FileBatchHost.Deadline;
        while (!operation.HasCompleted)
        {
            Assert.True(DateTime.UtcNow < deadline, "the batch did not end in time");
            await Task.Delay(20, Ct);
            await operation.UpdateStatusAsync(Options());
        }

        var batch = Json(await operation.GetBatchAsync(Options()));
        Assert.Equal("cancelled", batch.GetProperty("status").GetString());
        BatchLines.AssertCountsAddUp(batch, ids.Count);
        var files = client.GetOpenAIFileClient();
        var output = BatchLines.Parse((await files.DownloadFileAsync(batch.GetProperty("output_file_id").GetString()!, Ct)).Value.ToArray());
        var errors = BatchLines.Parse((await files.DownloadFileAsync(batch.GetProperty("error_file_id").GetString()!, Ct)).Value.ToArray());
        BatchLines.AssertExactlyOnce(ids, output, errors);
        Assert.All(errors, e => Assert.Equal("batch_cancelled", e.GetProperty("error").GetProperty("code").GetString()));
    }
}
