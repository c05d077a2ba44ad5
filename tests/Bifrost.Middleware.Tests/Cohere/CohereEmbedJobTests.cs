using System.Buffers.Binary;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Cohere;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.NativeBatchSteps;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>Embeddings batches for a Cohere provider with NativeBatches run as Cohere embed jobs and come back in OpenAI's batch format.</summary>
public sealed class CohereEmbedJobTests : CohereTestBase
{
    private const string Model = "embed-english-v3.0";
    private readonly string _files = Path.Combine(Path.GetTempPath(), "bifrost-cohere-" + Guid.NewGuid().ToString("N"));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (Directory.Exists(_files))
        {
            Directory.Delete(_files, recursive: true);
        }
    }

    [Fact]
    public async Task An_embeddings_batch_runs_as_an_embed_job_and_each_line_gets_its_embeddings_back()
    {
        Upstream.ValidationSteps.Enqueue("processing");
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(
            ("c1", new JsonObject { ["input"] = "hello world", ["input_type"] = "search_query" }),
            ("c/2 é", new JsonObject { ["input"] = new JsonArray("a b c", "d"), ["encoding_format"] = "base64", ["input_type"] = "search_query" }),
            ("c3", new JsonObject { ["input"] = new JsonArray("x"), ["input_type"] = "search_query" })));
        var batchId = await CreateEmbeddingsBatchAsync(host, fileId);

        var done = await WaitForStatusAsync(host, batchId, "completed");

        Assert.Equal(3, done.GetProperty("request_counts").GetProperty("total").GetInt32());
        Assert.Equal(3, done.GetProperty("request_counts").GetProperty("completed").GetInt32());
        Assert.DoesNotContain(Upstream.Requests, r => r.Path == "/v2/embed");

        // The dataset: one row per text with the kept mapping fields, uploaded as embed-input.
        var upload = Assert.Single(Upstream.Requests, r => r.Method == "POST" && r.Path == "/v1/datasets");
        Assert.Equal("?name=bifrost-batch-input&type=embed-input&keep_fields=custom_id&keep_fields=bifrost_index&keep_fields=bifrost_format", upload.Query);
        Assert.Equal("Bearer " + Key, upload.Headers["authorization"]);
        Assert.StartsWith("multipart/form-data", upload.Headers["content-type"], StringComparison.Ordinal);
        var dataset = Assert.Single(Upstream.Datasets.Values, d => !d.Output);
        Assert.Equal("bifrost-batch-input.jsonl", dataset.Name);
        AssertJson(
            """
            [{"text":"hello world","custom_id":"c1","bifrost_index":"0","bifrost_format":"float"},
             {"text":"a b c","custom_id":"c/2 é","bifrost_index":"0","bifrost_format":"base64"},
             {"text":"d","custom_id":"c/2 é","bifrost_index":"1","bifrost_format":"base64"},
             {"text":"x","custom_id":"c3","bifrost_index":"0","bifrost_format":"float"}]
            """,
            new JsonArray([.. dataset.Uploaded.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l))]));

        // Validation was awaited (processing, then validated) before the job was created.
        Assert.Equal(2, Upstream.Requests.Count(r => r.Method == "GET" && r.Path == "/v1/datasets/" + dataset.Id));
        var create = Assert.Single(Upstream.Requests, r => r.Path == "/v1/embed-jobs");
        AssertJson($$"""{"model":"{{Model}}","dataset_id":"{{dataset.Id}}","input_type":"search_query","embedding_types":["float"],"name":"bifrost-3"}""", create.Body);

        // The output parts were downloaded without the API key (the storage's URL).
        var downloads = Upstream.Requests.Where(r => r.Path.StartsWith("/storage/", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, downloads.Count);
        Assert.All(downloads, d => Assert.False(d.Headers.ContainsKey("authorization")));

        // One OpenAI batch output line per custom_id, embeddings at their indexes, base64 where the line asked.
        var output = await ReadLinesAsync(host, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["c1", "c/2 é", "c3"], output.Select(l => l.GetProperty("custom_id").GetString()));
        Assert.All(output, l => Assert.Equal(200, l.GetProperty("response").GetProperty("status_code").GetInt32()));
        var first = output[0].GetProperty("response").GetProperty("body");
        Assert.Equal("list", first.GetProperty("object").GetString());
        Assert.Equal(Model, first.GetProperty("model").GetString());
        Assert.Equal([11f, 2f, 0.25f], first.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()));
        var second = output[1].GetProperty("response").GetProperty("body").GetProperty("data");
        Assert.Equal([0, 1], second.EnumerateArray().Select(d => d.GetProperty("index").GetInt32()));
        Assert.Equal([5f, 3f, 0.25f], Floats(second[0].GetProperty("embedding").GetString()!));
        Assert.Equal([1f, 1f, 0.25f], Floats(second[1].GetProperty("embedding").GetString()!));
        Assert.Equal([1f, 1f, 0.25f], output[2].GetProperty("response").GetProperty("body").GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()));
    }

    [Fact]
    public async Task A_dataset_cohere_refuses_fails_the_batch_with_its_validation_error()
    {
        Upstream.ValidationError = "row 2: text is too long";
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", new JsonObject { ["input"] = "one" })));
        var batchId = await CreateEmbeddingsBatchAsync(host, fileId);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        Assert.Contains("row 2: text is too long", failed.GetProperty("errors").ToString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.EmbedJobs);
    }

    [Fact]
    public async Task A_failed_embed_job_fails_the_batch()
    {
        Upstream.FailJobs = true;
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", new JsonObject { ["input"] = "one" }), ("b", new JsonObject { ["input"] = "two" })));
        var batchId = await CreateEmbeddingsBatchAsync(host, fileId);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        Assert.Equal("embed_job_failed", failed.GetProperty("errors").GetProperty("data")[0].GetProperty("code").GetString());
        Assert.Equal(2, failed.GetProperty("request_counts").GetProperty("failed").GetInt32());
        Assert.Equal(JsonValueKind.Null, failed.GetProperty("output_file_id").ValueKind);
    }

    [Fact]
    public async Task Cancelling_the_batch_cancels_the_embed_job()
    {
        Upstream.CompleteAfterPolls = 1_000_000;
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", new JsonObject { ["input"] = "one" })));
        var batchId = await CreateEmbeddingsBatchAsync(host, fileId);
        await WaitForStatusAsync(host, batchId, "in_progress", () => !Upstream.EmbedJobs.IsEmpty);

        using var cancel = await host.PostJsonAsync($"/openai/v1/batches/{batchId}/cancel", "{}", Ct);
        var cancelled = await WaitForStatusAsync(host, batchId, "cancelled");

        var job = Assert.Single(Upstream.EmbedJobs.Values);
        Assert.Equal("cancelled", job.Status);
        Assert.Contains(Upstream.Requests, r => r.Method == "POST" && r.Path == $"/v1/embed-jobs/{job.Id}/cancel");
        Assert.Equal(1, cancelled.GetProperty("request_counts").GetProperty("canceled").GetInt32());
    }

    [Fact]
    public async Task Chat_batches_of_a_cohere_provider_still_run_line_by_line()
    {
        await using var host = await StartBatchHostAsync();
        var line = new JsonObject { ["custom_id"] = "q", ["method"] = "POST", ["url"] = "/v1/chat/completions", ["body"] = new JsonObject { ["model"] = "cohere/command-a-03-2025", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) } };
        var fileId = await UploadAsync(host, line.ToJsonString());
        var batchId = await CreateBatchAsync(host, fileId);

        var done = await WaitForStatusAsync(host, batchId, "completed");

        Assert.Equal(1, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.Single(Upstream.ChatRequests);
        Assert.DoesNotContain(Upstream.Requests, r => r.Path.StartsWith("/v1/datasets", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{"input":"a","dimensions":256}""", "dimensions")]
    [InlineData("""{"input":[[1,2,3]]}""", "embeds text only")]
    [InlineData("""{"input":["a",""]}""", "input 1 is empty")]
    [InlineData("""{"input":"a","input_type":"image"}""", "input_type")]
    public async Task Lines_an_embed_job_cannot_run_fail_the_batch_before_anything_is_uploaded(string body, string expected)
    {
        await using var host = await StartBatchHostAsync();
        var request = JsonNode.Parse(body)!.AsObject();
        var fileId = await UploadAsync(host, Lines(("ok", new JsonObject { ["input"] = "fine" }), ("bad", request)));
        var batchId = await CreateEmbeddingsBatchAsync(host, fileId);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        var error = failed.GetProperty("errors").GetProperty("data")[0];
        Assert.Contains(expected, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("line 2 (custom_id 'bad')", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Datasets);
    }

    [Fact]
    public async Task The_avro_reader_reads_both_codecs_and_refuses_what_is_not_an_avro_file()
    {
        var rows = new List<JsonObject>
        {
            new() { ["text"] = "é", ["embeddings"] = new JsonObject { ["float"] = new JsonArray(1.5f, -2f) }, ["custom_id"] = "x" },
        };
        foreach (var deflate in new[] { false, true })
        {
            var records = new List<JsonNode?>();
            await foreach (var record in AvroContainerReader.ReadAsync(new MemoryStream(FakeCohereUpstream.AvroFile(rows, ["custom_id"], deflate)), Ct))
            {
                records.Add(record);
            }

            AssertJson("""[{"text":"é","embeddings":{"float":[1.5,-2],"int8":null},"custom_id":"x"}]""", new JsonArray([.. records]));
        }

        var truncated = FakeCohereUpstream.AvroFile(rows, ["custom_id"], deflate: false)[..^20];
        await Assert.ThrowsAsync<InvalidDataException>(async () =>
        {
            await foreach (var _ in AvroContainerReader.ReadAsync(new MemoryStream(truncated), Ct))
            {
            }
        });
        await Assert.ThrowsAsync<InvalidDataException>(async () =>
        {
            await foreach (var _ in AvroContainerReader.ReadAsync(new MemoryStream("{\"not\":\"avro\"}"u8.ToArray()), Ct))
            {
            }
        });
    }

    [Fact]
    public async Task The_avro_reader_reads_a_file_written_by_apache_avro()
    {
        // Written by Apache.Avro 1.12.2 (DataFileWriter, deflate codec, sync interval 64 bytes: several blocks), outside this
        // repository, with an output schema like Cohere's: a namespaced record, a nested record, unions with null.
        const string Written = "T2JqAQQUYXZyby5jb2RlYw5kZWZsYXRlFmF2cm8uc2NoZW1hugd7InR5cGUiOiJyZWNvcmQiLCJuYW1lIjoiRW1iZWRPdXRwdXQiLCJuYW1lc3BhY2UiOiJjb2hlcmUuZGF0YXNldHMiLCJmaWVsZHMiOlt7Im5hbWUiOiJ0ZXh0IiwidHlwZSI6InN0cmluZyJ9LHsibmFtZSI6ImVtYmVkZGluZ3MiLCJ0eXBlIjp7InR5cGUiOiJyZWNvcmQiLCJuYW1lIjoiRW1iZWRkaW5ncyIsIm5hbWVzcGFjZSI6ImNvaGVyZS5kYXRhc2V0cyIsImZpZWxkcyI6W3sibmFtZSI6ImZsb2F0IiwidHlwZSI6WyJudWxsIix7InR5cGUiOiJhcnJheSIsIml0ZW1zIjoiZmxvYXQifV19LHsibmFtZSI6ImludDgiLCJ0eXBlIjpbIm51bGwiLHsidHlwZSI6ImFycmF5IiwiaXRlbXMiOiJpbnQifV19XX19LHsibmFtZSI6ImN1c3RvbV9pZCIsInR5cGUiOlsibnVsbCIsInN0cmluZyJdfSx7Im5hbWUiOiJiaWZyb3N0X2luZGV4IiwidHlwZSI6InN0cmluZyJ9LHsibmFtZSI6ImJpZnJvc3RfZm9ybWF0IiwidHlwZSI6InN0cmluZyJ9XX0A/6tEZ5cgMQAEYR+9rQkpXARs48k4vDInJ5+JjYGBwZ6BYcF+BgYHBwYGJpZkQyYDrrSc/MQStkSFJJB8gz0DA4MDXN4IJg8A/6tEZ5cgMQAEYR+9rQkpXAI4Y0pmYmNgYNjHAAYfHBgYmFiSjZgMudJy8hNLAP+rRGeXIDEABGEfva0JKVw=";
        var records = new List<JsonNode?>();
        await foreach (var record in AvroContainerReader.ReadAsync(new MemoryStream(Convert.FromBase64String(Written)), Ct))
        {
            records.Add(record);
        }

        AssertJson(
            """
            [{"text":"héllo","embeddings":{"float":[0.5,-1.25,3],"int8":null},"custom_id":"c1","bifrost_index":"0","bifrost_format":"float"},
             {"text":"a b","embeddings":{"float":[1,2,3],"int8":null},"custom_id":"c2","bifrost_index":"0","bifrost_format":"float"},
             {"text":"c","embeddings":{"float":[-0.125,0,7.5],"int8":null},"custom_id":"c2","bifrost_index":"1","bifrost_format":"float"}]
            """,
            new JsonArray([.. records]));
    }

    private static float[] Floats(string base64)
    {
        var bytes = Convert.FromBase64String(base64);
        return [.. Enumerable.Range(0, bytes.Length / 4).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4)))];
    }

    private static string Lines(params (string CustomId, JsonObject Body)[] lines) => string.Join('\n', lines.Select(line =>
    {
        line.Body["model"] = "cohere/" + Model;
        return new JsonObject { ["custom_id"] = line.CustomId, ["method"] = "POST", ["url"] = "/v1/embeddings", ["body"] = line.Body }.ToJsonString();
    }));

    private static async Task<string> CreateEmbeddingsBatchAsync(GatewayHost host, string fileId)
    {
        var body = new JsonObject { ["input_file_id"] = fileId, ["endpoint"] = "/v1/embeddings", ["completion_window"] = "24h" };
        using var response = await host.PostJsonAsync("/openai/v1/batches", body.ToJsonString(), Ct);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return json.GetProperty("id").GetString()!;
    }

    private Task<GatewayHost> StartBatchHostAsync() => StartHostAsync(
        provider => provider.NativeBatches = true,
        o =>
        {
            o.Files.Directory = _files;
            o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
            o.Jobs.MaxAttempts = 1;
            o.Batches.NativePollInterval = TimeSpan.FromMilliseconds(30);
            o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(20);
        });
}
