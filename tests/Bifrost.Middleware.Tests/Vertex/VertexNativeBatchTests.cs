using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Vertex;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;
using static Bifrost.Middleware.Tests.Infrastructure.NativeBatchSteps;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>
/// Batches for a Vertex provider with NativeBatches and BatchGcsUri run as Vertex AI batch prediction jobs (input and
/// output in Cloud Storage) and come back in OpenAI's batch format, for Gemini and Claude models; providers without
/// BatchGcsUri, and Claude batches with a line the Anthropic translator refuses, run line by line through the gateway.
/// </summary>
public sealed class VertexNativeBatchTests : VertexTestBase
{
    private const string Flash = "vertex/gemini-2.5-flash";

    private readonly string _files = Path.Combine(Path.GetTempPath(), "bifrost-vertex-" + Guid.NewGuid().ToString("N"));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (Directory.Exists(_files))
        {
            Directory.Delete(_files, recursive: true);
        }
    }

    [Fact]
    public async Task Batch_runs_as_a_batch_prediction_job_through_Cloud_Storage_and_results_come_back_as_OpenAI_batch_output()
    {
        var logs = new LogSink();
        await using var host = await StartBatchHostAsync(services: services => services.AddSingleton<ILoggerProvider>(logs));
        var fileId = await UploadAsync(host, Lines(("c0", Flash, "hello"), ("Line 1 / é", null, "world"), ("c-2", Flash, "please fail")));
        var batchId = await CreateBatchAsync(host, fileId, Flash);

        var done = await WaitForStatusAsync(host, batchId, "completed");

        var counts = done.GetProperty("request_counts");
        Assert.Equal(3, counts.GetProperty("total").GetInt32());
        Assert.Equal(2, counts.GetProperty("succeeded").GetInt32());
        Assert.Equal(1, counts.GetProperty("failed").GetInt32());
        Assert.Empty(Upstream.ChatRequests);

        // Two objects went up with a simple media upload, under the configured prefix, with the access token.
        var uploads = Upstream.Requests.Where(r => r.Path == "/upload/storage/v1/b/batch-bucket/o").ToList();
        Assert.Equal(2, uploads.Count);
        Assert.All(uploads, u => Assert.Equal($"Bearer {FakeVertexUpstream.Token}", u.Headers["authorization"]));
        Assert.All(uploads, u => Assert.Equal("application/jsonl", u.Headers["content-type"]));
        Assert.All(uploads, u => Assert.StartsWith("?uploadType=media&name=vertex%2Fbatches%2Fbifrost-batch-", u.Query, StringComparison.Ordinal));
        var input = Assert.Single(Upstream.Objects, o => o.Key.EndsWith("/input.jsonl", StringComparison.Ordinal));
        var folder = input.Key[..^"input.jsonl".Length];
        Assert.StartsWith("batch-bucket/vertex/batches/bifrost-batch-", folder, StringComparison.Ordinal);

        // One {"request"} line per input line, translated by the Gemini translator and labelled with its index; the custom ids beside it.
        var lines = input.Value.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(3, lines.Count);
        Assert.All(lines, l => Assert.Equal(["request"], l.Select(p => p.Key)));
        Assert.Equal(["0", "1", "2"], lines.Select(l => l["request"]!["labels"]!["bifrost_line"]!.GetValue<string>()));
        Assert.Equal("""{"contents":[{"role":"user","parts":[{"text":"hello"}]}],"generationConfig":{},"labels":{"bifrost_line":"0"}}""", lines[0]["request"]!.ToJsonString());
        Assert.Equal(["c0", "Line 1 / é", "c-2"], Upstream.Objects[folder + "custom_ids.jsonl"].Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<string>(l)));

        // The job: the publisher model, the uploaded input, the output under the same folder, the line count as a label.
        var create = Assert.Single(Upstream.Requests, r => r.Method == "POST" && r.Path.EndsWith("/batchPredictionJobs", StringComparison.Ordinal));
        Assert.Equal("/v1/projects/my-project/locations/us-east5/batchPredictionJobs", create.Path);
        Assert.Equal($"Bearer {FakeVertexUpstream.Token}", create.Headers["authorization"]);
        var job = create.Body!;
        Assert.Equal("publishers/google/models/gemini-2.5-flash", job["model"]!.GetValue<string>());
        Assert.StartsWith("bifrost-", job["displayName"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal($$$"""{"instancesFormat":"jsonl","gcsSource":{"uris":["gs://{{{folder}}}input.jsonl"]}}""", job["inputConfig"]!.ToJsonString());
        Assert.Equal($$$"""{"predictionsFormat":"jsonl","gcsDestination":{"outputUriPrefix":"gs://{{{folder}}}output"}}""", job["outputConfig"]!.ToJsonString());
        Assert.Equal("""{"bifrost_lines":"3"}""", job["labels"]!.ToJsonString());
        var upstreamJob = Assert.Single(Upstream.Jobs.Values);
        Assert.Equal($"Provider 'vertex' created Vertex AI batch prediction job {upstreamJob.Id} for model 'gemini-2.5-flash'.", Assert.Single(logs.Messages(1320)));
        Assert.Contains(Upstream.Requests, r => r.Method == "GET" && r.Path == $"/v1/projects/my-project/locations/us-east5/batchPredictionJobs/{upstreamJob.Id}");

        // The results were listed (paged) under the job's output directory and read with alt=media, names escaped as one segment
        // (the server's Path keeps only %2F escaped).
        Assert.True(Upstream.Requests.Count(r => r.Path == "/storage/v1/b/batch-bucket/o") >= 2);
        Assert.Contains(Upstream.Requests, r => r.Path == "/storage/v1/b/batch-bucket/o/" + (folder["batch-bucket/".Length..] + "output/prediction-model-2026-12-06T10:00:00.123456Z/predictions.jsonl").Replace("/", "%2F", StringComparison.Ordinal) && r.Query == "?alt=media");
        Assert.DoesNotContain(Upstream.Requests, r => r.Path.EndsWith("errors_stats.json", StringComparison.Ordinal));

        // Our output file: OpenAI batch output lines with chat.completion bodies and the original custom ids.
        var output = await ReadLinesAsync(host, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["Line 1 / é", "c0"], output.Select(l => l.GetProperty("custom_id").GetString()).Order(StringComparer.Ordinal));
        var first = output.Single(l => l.GetProperty("custom_id").GetString() == "c0");
        Assert.Equal(200, first.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal($"resp_{upstreamJob.Id}_0", first.GetProperty("response").GetProperty("request_id").GetString());
        var completion = first.GetProperty("response").GetProperty("body");
        Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
        Assert.Equal("batch: hello", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", completion.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(10, completion.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(13, completion.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal("batch: world", output.Single(l => l.GetProperty("custom_id").GetString() == "Line 1 / é").GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // The failed line is in the error file: the envelope inside the status text gives 400 INVALID_ARGUMENT.
        var errors = await ReadLinesAsync(host, done.GetProperty("error_file_id").GetString()!);
        var failed = Assert.Single(errors);
        Assert.Equal("c-2", failed.GetProperty("custom_id").GetString());
        Assert.Equal(400, failed.GetProperty("response").GetProperty("status_code").GetInt32());
        var error = failed.GetProperty("response").GetProperty("body").GetProperty("error");
        Assert.Equal("scripted batch error", error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("INVALID_ARGUMENT", error.GetProperty("code").GetString());
        Assert.All(logs.Entries, e => Assert.DoesNotContain(FakeVertexUpstream.Token, e.Message + e.Exception, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_batch_without_failures_has_no_error_file()
    {
        await using var host = await StartBatchHostAsync(p => p.BatchGcsUri = "gs://batch-bucket");
        var fileId = await UploadAsync(host, Lines(("a", "vertex/gemini-2.5-pro", "one"), ("b", "vertex/gemini-2.5-pro", "two")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var done = await WaitForStatusAsync(host, batchId, "completed");

        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(JsonValueKind.Null, done.GetProperty("error_file_id").ValueKind);
        Assert.Equal("publishers/google/models/gemini-2.5-pro", Assert.Single(Upstream.Jobs.Values).Resource["model"]!.GetValue<string>());
        Assert.Single(Upstream.Objects, o => o.Key.StartsWith("batch-bucket/bifrost-batch-", StringComparison.Ordinal) && o.Key.EndsWith("/input.jsonl", StringComparison.Ordinal));
        var output = await ReadLinesAsync(host, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["batch: one", "batch: two"], output.Select(l => l.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Cancel_is_forwarded_and_the_requests_not_run_are_counted_cancelled()
    {
        Upstream.CompleteAfterPolls = int.MaxValue;
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", Flash, "one"), ("b", Flash, "two")));
        var batchId = await CreateBatchAsync(host, fileId, null);
        await WaitForStatusAsync(host, batchId, "in_progress", until: () => !Upstream.Jobs.IsEmpty);

        using var cancel = await host.Client.PostAsync($"/openai/v1/batches/{batchId}/cancel", null, Ct);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var cancelled = await WaitForStatusAsync(host, batchId, "cancelled");

        var upstreamJob = Assert.Single(Upstream.Jobs.Values);
        Assert.True(upstreamJob.CancelRequested);
        var cancelCall = Assert.Single(Upstream.Requests, r => r.Method == "POST" && r.Path.EndsWith(":cancel", StringComparison.Ordinal));
        Assert.Equal($"/v1/projects/my-project/locations/us-east5/batchPredictionJobs/{upstreamJob.Id}:cancel", cancelCall.Path);
        Assert.Equal(2, cancelled.GetProperty("request_counts").GetProperty("canceled").GetInt32());
        Assert.Equal(0, cancelled.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(JsonValueKind.Null, cancelled.GetProperty("output_file_id").ValueKind);
    }

    [Fact]
    public async Task A_job_the_provider_fails_fails_the_batch_with_its_error()
    {
        Upstream.FailJobWith = (13, "internal batch failure");
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", Flash, "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        var error = failed.GetProperty("errors").GetProperty("data")[0];
        Assert.Equal("INTERNAL", error.GetProperty("code").GetString());
        Assert.Equal("internal batch failure", error.GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, failed.GetProperty("output_file_id").ValueKind);
    }

    [Fact]
    public async Task An_upstream_error_at_create_fails_the_batch_with_the_providers_message()
    {
        Upstream.CreateJobFailure = new FakeVertexUpstream.Failure(403, "Permission 'aiplatform.batchPredictionJobs.create' denied.");
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", Flash, "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        var error = failed.GetProperty("errors").GetProperty("data")[0];
        Assert.Contains("Permission 'aiplatform.batchPredictionJobs.create' denied.", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(FakeVertexUpstream.Token, failed.GetRawText(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Jobs);
    }

    [Fact]
    public async Task An_invalid_token_fails_the_batch_at_the_upload()
    {
        Upstream.ValidTokens.Clear();
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", Flash, "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        Assert.Contains("invalid authentication credentials", failed.GetProperty("errors").GetProperty("data")[0].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Objects);
        Assert.Empty(Upstream.Jobs);
        Assert.Equal("/upload/storage/v1/b/batch-bucket/o", Assert.Single(Upstream.Requests).Path);
    }

    [Fact]
    public async Task A_line_Vertex_cannot_take_fails_the_batch_with_a_400_naming_the_line_before_anything_is_uploaded()
    {
        await using var host = await StartBatchHostAsync();
        var image = new JsonObject
        {
            ["custom_id"] = "img",
            ["method"] = "POST",
            ["url"] = "/v1/chat/completions",
            ["body"] = new JsonObject
            {
                ["model"] = Flash,
                ["messages"] = new JsonArray(new JsonObject
                {
                    ["role"] = "user",
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = "https://example.com/cat.png" } }),
                }),
            },
        };
        var fileId = await UploadAsync(host, Lines(("a", Flash, "one")) + image.ToJsonString() + "\n");
        var batchId = await CreateBatchAsync(host, fileId, null);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        Assert.Contains("line 2 (custom_id 'img') cannot run on Vertex AI", failed.GetProperty("errors").GetProperty("data")[0].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Objects);
        Assert.Empty(Upstream.Jobs);
    }

    [Fact]
    public async Task A_batch_of_a_Claude_model_runs_as_a_Claude_batch_prediction_job_and_comes_back_through_the_Anthropic_translator()
    {
        var logs = new LogSink();
        await using var host = await StartBatchHostAsync(services: services => services.AddSingleton<ILoggerProvider>(logs));
        const string sonnet = "vertex/claude-sonnet-4-5@20250929";
        var fileId = await UploadAsync(host, Lines(("a", sonnet, "one"), ("b / é", sonnet, "too long"), ("c", sonnet, "please fail")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var done = await WaitForStatusAsync(host, batchId, "completed");

        var counts = done.GetProperty("request_counts");
        Assert.Equal((3, 2, 1), (counts.GetProperty("total").GetInt32(), counts.GetProperty("succeeded").GetInt32(), counts.GetProperty("failed").GetInt32()));
        Assert.Empty(Upstream.ChatRequests);

        // One object went up: {"custom_id", "request"} rows with the Messages body Vertex takes; no custom ids object, no labels.
        var input = Assert.Single(Upstream.Objects, o => o.Key.EndsWith("/input.jsonl", StringComparison.Ordinal));
        Assert.Single(Upstream.Requests, r => r.Path == "/upload/storage/v1/b/batch-bucket/o");
        Assert.DoesNotContain(Upstream.Objects.Keys, k => k.EndsWith("custom_ids.jsonl", StringComparison.Ordinal));
        var rows = input.Value.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(["a", "b / é", "c"], rows.Select(r => r["custom_id"]!.GetValue<string>()));
        Assert.All(rows, r => Assert.Equal(["custom_id", "request"], r.Select(p => p.Key)));
        Assert.True(JsonNode.DeepEquals(
            JsonNode.Parse("""{"max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"one"}]}],"anthropic_version":"vertex-2023-10-16"}"""),
            rows[0]["request"]), rows[0]["request"]!.ToJsonString());

        // The job names the Anthropic publisher's model.
        var create = Assert.Single(Upstream.Requests, r => r.Method == "POST" && r.Path.EndsWith("/batchPredictionJobs", StringComparison.Ordinal));
        Assert.Equal("publishers/anthropic/models/claude-sonnet-4-5@20250929", create.Body!["model"]!.GetValue<string>());
        Assert.Equal("""{"bifrost_lines":"3"}""", create.Body["labels"]!.ToJsonString());
        var job = Assert.Single(Upstream.Jobs.Values);
        Assert.Equal($"Provider 'vertex' created Vertex AI batch prediction job {job.Id} for model 'claude-sonnet-4-5@20250929'.", Assert.Single(logs.Messages(1320)));

        // The rows came back by their custom ids, translated by the Anthropic response translator.
        var output = await ReadLinesAsync(host, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["a", "b / é"], output.Select(l => l.GetProperty("custom_id").GetString()).Order(StringComparer.Ordinal));
        var first = output.Single(l => l.GetProperty("custom_id").GetString() == "a").GetProperty("response");
        Assert.Equal(200, first.GetProperty("status_code").GetInt32());
        Assert.Equal($"msg_vrtx_{job.Id}_0", first.GetProperty("request_id").GetString());
        var completion = first.GetProperty("body");
        Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
        Assert.Equal("claude-sonnet-4-5@20250929", completion.GetProperty("model").GetString());
        Assert.Equal("batch: one", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", completion.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(12, completion.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(7, completion.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(19, completion.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal("length", output.Single(l => l.GetProperty("custom_id").GetString() == "b / é").GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("finish_reason").GetString());

        var failed = Assert.Single(await ReadLinesAsync(host, done.GetProperty("error_file_id").GetString()!));
        Assert.Equal("c", failed.GetProperty("custom_id").GetString());
        Assert.Equal(400, failed.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("scripted batch error", failed.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_Claude_batch_with_a_line_the_Anthropic_translator_refuses_runs_line_by_line_through_the_gateway()
    {
        var logs = new LogSink();
        await using var host = await StartBatchHostAsync(services: services => services.AddSingleton<ILoggerProvider>(logs));
        const string sonnet = "vertex/claude-sonnet-4-5@20250929";
        var refused = new JsonObject
        {
            ["custom_id"] = "n2",
            ["method"] = "POST",
            ["url"] = "/v1/chat/completions",
            ["body"] = new JsonObject { ["model"] = sonnet, ["n"] = 2, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "two" }) },
        };
        var fileId = await UploadAsync(host, Lines(("a", sonnet, "one")) + refused.ToJsonString() + "\n");
        var batchId = await CreateBatchAsync(host, fileId, null);

        var done = await WaitForStatusAsync(host, batchId, "completed");

        Assert.Empty(Upstream.Jobs);
        Assert.Empty(Upstream.Objects);
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("total").GetInt32());
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict", Assert.Single(Upstream.ChatRequests).Path);
        var reason = Assert.Single(logs.Messages(1520));
        Assert.StartsWith("A batch for provider 'vertex' runs line by line through the gateway, not on Vertex AI batch prediction: line 2 (custom_id 'n2') cannot be a Claude batch row: ", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_BatchGcsUri_the_batch_runs_line_by_line()
    {
        await using var host = await StartBatchHostAsync(p => p.BatchGcsUri = null);
        var fileId = await UploadAsync(host, Lines(("a", Flash, "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        await WaitForStatusAsync(host, batchId, "completed");

        Assert.Empty(Upstream.Jobs);
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent", Assert.Single(Upstream.ChatRequests).Path);
    }

    [Fact]
    public async Task Without_NativeBatches_the_batch_runs_line_by_line()
    {
        await using var host = await StartBatchHostAsync(p => p.NativeBatches = false);
        var fileId = await UploadAsync(host, Lines(("a", Flash, "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        await WaitForStatusAsync(host, batchId, "completed");

        Assert.Empty(Upstream.Jobs);
        Assert.Single(Upstream.ChatRequests);
    }

    [Theory]
    [InlineData("s3://bucket/prefix", "BatchGcsUri 's3://bucket/prefix' is not a Cloud Storage location")]
    [InlineData("gs://", "BatchGcsUri 'gs://' is not a Cloud Storage location")]
    [InlineData("gs://Upper/x", "BatchGcsUri 'gs://Upper/x' is not a Cloud Storage location")]
    public async Task A_malformed_BatchGcsUri_is_refused_at_start(string uri, string expected)
    {
        var error = await StartFailsAsync(o => o.BatchGcsUri = uri);

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BatchGcsUri_in_express_mode_is_refused_at_start()
    {
        var error = await StartFailsAsync(o =>
        {
            o.ProjectId = null;
            o.AuthHeader = "x-goog-api-key";
            o.BatchGcsUri = "gs://bucket";
        });

        Assert.Contains("BatchGcsUri needs a ProjectId: Vertex AI express mode has no batch prediction.", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("gs://bucket", "bucket", "")]
    [InlineData("gs://my_bucket.example/a/b/", "my_bucket.example", "a/b/")]
    [InlineData("gs://bkt/prefix", "bkt", "prefix/")]
    public void Cloud_Storage_locations_are_parsed(string uri, string bucket, string prefix) =>
        Assert.Equal((bucket, prefix), VertexAdapter.ParseGcsUri(uri));

    [Theory]
    [InlineData("""{"code": 8, "message": "quota"}""", 429, "RESOURCE_EXHAUSTED", "quota")]
    [InlineData("""  "Not Found: {\"error\": {\"code\": 404, \"message\": \"gone\", \"status\": \"NOT_FOUND\"}}"  """, 404, "NOT_FOUND", "gone")]
    [InlineData("\"Internal error occurred.\"", 500, null, "Internal error occurred.")]
    public void A_failed_lines_status_gives_its_HTTP_status_and_code(string status, int expectedStatus, string? expectedCode, string expectedMessage)
    {
        using var document = JsonDocument.Parse(status);

        var (mapped, code, message) = VertexAdapter.LineStatus(document.RootElement);

        Assert.Equal(expectedStatus, mapped);
        Assert.Equal(expectedCode, code);
        Assert.Equal(expectedMessage, message);
    }

    private static async Task<OptionsValidationException> StartFailsAsync(Action<ProviderOptions> configure)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(o =>
        {
            var vertex = new ProviderOptions { Type = "vertex", ProjectId = Project, Keys = [new ProviderKeyOptions { Value = "ya29.secret" }], NativeBatches = true };
            configure(vertex);
            o.Providers["vertex"] = vertex;
        });
        await using var app = builder.Build();
        return await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(Ct));
    }

    private Task<GatewayHost> StartBatchHostAsync(Action<ProviderOptions>? provider = null, Action<IServiceCollection>? services = null) => StartHostAsync(
        p =>
        {
            p.NativeBatches = true;
            p.BatchGcsUri = "gs://batch-bucket/vertex/batches/";
            p.StorageBaseUrl = Upstream.StorageBaseUrl;
            provider?.Invoke(p);
        },
        services: services + (Action<IServiceCollection>)(s => s.Configure<BifrostOptions>(o =>
        {
            o.Files.Directory = _files;
            o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
            o.Jobs.MaxAttempts = 1;
            o.Batches.NativePollInterval = TimeSpan.FromMilliseconds(30);
            o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(20);
        })));

    private static string Lines(params (string CustomId, string? Model, string Text)[] lines) => string.Join('\n', lines.Select(line =>
    {
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = line.Text }) };
        if (line.Model is not null)
        {
            body["model"] = line.Model;
        }

        return new JsonObject { ["custom_id"] = line.CustomId, ["method"] = "POST", ["url"] = "/v1/chat/completions", ["body"] = body }.ToJsonString();
    })) + "\n";
}
