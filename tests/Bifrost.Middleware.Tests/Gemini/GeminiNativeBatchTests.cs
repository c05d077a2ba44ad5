using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Gemini;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.NativeBatchSteps;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>Batches for a Gemini provider with NativeBatches run on the Gemini Batch API (file input) and come back in OpenAI's batch format.</summary>
public sealed class GeminiNativeBatchTests : GeminiTestBase
{
    private readonly string _files = Path.Combine(Path.GetTempPath(), "bifrost-gemini-" + Guid.NewGuid().ToString("N"));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (Directory.Exists(_files))
        {
            Directory.Delete(_files, recursive: true);
        }
    }

    [Fact]
    public async Task Batch_runs_on_the_Gemini_Batch_API_and_results_come_back_as_OpenAI_batch_output()
    {
        var logs = new LogSink();
        await using var host = await StartBatchHostAsync(services: services => services.AddSingleton<ILoggerProvider>(logs));
        var fileId = await UploadAsync(host, Lines(("c0", "gemini/gemini-2.5-flash", "hello"), ("line 1 / é", null, "world"), ("c-2", "gemini/gemini-2.5-flash", "please fail")));
        var batchId = await CreateBatchAsync(host, fileId, "gemini/gemini-2.5-flash");

        var done = await WaitForStatusAsync(host, batchId, "completed");

        var counts = done.GetProperty("request_counts");
        Assert.Equal(3, counts.GetProperty("total").GetInt32());
        Assert.Equal(2, counts.GetProperty("succeeded").GetInt32());
        Assert.Equal(1, counts.GetProperty("failed").GetInt32());
        Assert.Empty(Upstream.GenerateRequests);

        // The input went up through the Files API's resumable upload: start (with the size and type), then the bytes.
        var start = Assert.Single(Upstream.Requests, r => r.Path == "/upload/v1beta/files" && r.Headers.GetValueOrDefault("x-goog-upload-command") == "start");
        Assert.Equal("resumable", start.Headers["x-goog-upload-protocol"]);
        Assert.Equal("application/jsonl", start.Headers["x-goog-upload-header-content-type"]);
        Assert.Equal(FakeGeminiUpstream.Key, start.Headers["x-goog-api-key"]);
        Assert.Equal("bifrost-batch-input.jsonl", start.Body!["file"]!["display_name"]!.GetValue<string>());
        var uploaded = Assert.Single(Upstream.UploadedFiles);
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(uploaded.Value), long.Parse(start.Headers["x-goog-upload-header-content-length"], System.Globalization.CultureInfo.InvariantCulture));
        var upload = Assert.Single(Upstream.Requests, r => r.Headers.GetValueOrDefault("x-goog-upload-command") == "upload, finalize");
        Assert.Equal("0", upload.Headers["x-goog-upload-offset"]);
        Assert.StartsWith("?upload_id=session-", upload.Query, StringComparison.Ordinal);

        // One keyed JSONL line per request, each body translated by the chat translator.
        var lines = uploaded.Value.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(["c0", "line 1 / é", "c-2"], lines.Select(l => l["key"]!.GetValue<string>()));
        Assert.Equal("hello", lines[0]["request"]!["contents"]![0]!["parts"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("user", lines[0]["request"]!["contents"]![0]!["role"]!.GetValue<string>());

        // The batch: one model in the path, the uploaded file as its input.
        var create = Assert.Single(Upstream.Requests, r => r.Path.EndsWith(":batchGenerateContent", StringComparison.Ordinal));
        Assert.Equal("/v1beta/models/gemini-2.5-flash:batchGenerateContent", create.Path);
        Assert.Equal(uploaded.Key, create.Body!["batch"]!["inputConfig"]!["fileName"]!.GetValue<string>());
        Assert.StartsWith("bifrost-", create.Body!["batch"]!["displayName"]!.GetValue<string>(), StringComparison.Ordinal);
        var upstreamBatch = Assert.Single(Upstream.Batches.Values);
        Assert.Equal("gemini-2.5-flash", upstreamBatch.Model);
        Assert.Equal($"Provider 'gemini' created Gemini batch {upstreamBatch.Id} for model 'gemini-2.5-flash'.", Assert.Single(logs.Messages(1120)));
        Assert.All(logs.Entries, e => Assert.DoesNotContain(FakeGeminiUpstream.Key, e.Message + e.Exception, StringComparison.Ordinal));

        // The key travels in the header only, never in a URL.
        Assert.All(Upstream.Requests, r => Assert.DoesNotContain(FakeGeminiUpstream.Key, r.Query, StringComparison.Ordinal));
        Assert.Contains(Upstream.Requests, r => r.Path == "/download/v1beta/files/out-" + upstreamBatch.Id + ":download" && r.Query == "?alt=media");

        // Our output file: OpenAI batch output lines with chat.completion bodies, original custom ids.
        var output = await ReadLinesAsync(host, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["c0", "line 1 / é"], output.Select(l => l.GetProperty("custom_id").GetString()).Order());
        var first = output.Single(l => l.GetProperty("custom_id").GetString() == "c0");
        Assert.Equal(200, first.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal($"resp_{upstreamBatch.Id}_0", first.GetProperty("response").GetProperty("request_id").GetString());
        Assert.StartsWith("batch_req_", first.GetProperty("id").GetString(), StringComparison.Ordinal);
        var completion = first.GetProperty("response").GetProperty("body");
        Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
        Assert.Equal("batch: hello", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", completion.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(10, completion.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(13, completion.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("error").ValueKind);
        var second = output.Single(l => l.GetProperty("custom_id").GetString() == "line 1 / é");
        Assert.Equal("batch: world", second.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // The failed line is in the error file: gRPC INVALID_ARGUMENT (3) → 400, Google's status name as the code.
        var errors = await ReadLinesAsync(host, done.GetProperty("error_file_id").GetString()!);
        var failed = Assert.Single(errors);
        Assert.Equal("c-2", failed.GetProperty("custom_id").GetString());
        Assert.Equal(400, failed.GetProperty("response").GetProperty("status_code").GetInt32());
        var error = failed.GetProperty("response").GetProperty("body").GetProperty("error");
        Assert.Equal("scripted batch error", error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("INVALID_ARGUMENT", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_batch_without_failures_has_no_error_file()
    {
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", "gemini/gemini-2.5-pro", "one"), ("b", "gemini/gemini-2.5-pro", "two")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var done = await WaitForStatusAsync(host, batchId, "completed");

        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(JsonValueKind.Null, done.GetProperty("error_file_id").ValueKind);
        Assert.Equal("/v1beta/models/gemini-2.5-pro:batchGenerateContent", Assert.Single(Upstream.Requests, r => r.Path.EndsWith(":batchGenerateContent", StringComparison.Ordinal)).Path);
        var output = await ReadLinesAsync(host, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["batch: one", "batch: two"], output.Select(l => l.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()).Order());
    }

    [Fact]
    public async Task The_responses_file_named_only_by_the_finished_operation_is_read()
    {
        Upstream.OutputOnlyInOperationResponse = true;
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", "gemini/gemini-2.5-flash", "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var done = await WaitForStatusAsync(host, batchId, "completed");

        var output = await ReadLinesAsync(host, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal("batch: one", Assert.Single(output).GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task A_line_Gemini_cannot_take_fails_the_batch_with_a_400_naming_the_line_before_anything_is_uploaded()
    {
        await using var host = await StartBatchHostAsync();
        var image = new JsonObject
        {
            ["custom_id"] = "img",
            ["method"] = "POST",
            ["url"] = "/v1/chat/completions",
            ["body"] = new JsonObject
            {
                ["model"] = "gemini/gemini-2.5-flash",
                ["messages"] = new JsonArray(new JsonObject
                {
                    ["role"] = "user",
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = "https://example.com/cat.png" } }),
                }),
            },
        };
        var fileId = await UploadAsync(host, Lines(("a", "gemini/gemini-2.5-flash", "one")) + image.ToJsonString() + "\n");
        var batchId = await CreateBatchAsync(host, fileId, null);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        var message = failed.GetProperty("errors").GetProperty("data")[0].GetProperty("message").GetString();
        Assert.Contains("line 2 (custom_id 'img') cannot run on Gemini", message, StringComparison.Ordinal);
        Assert.Empty(Upstream.UploadedFiles);
        Assert.Empty(Upstream.Batches);
    }

    [Fact]
    public async Task Cancel_is_forwarded_and_the_requests_not_run_are_counted_cancelled()
    {
        Upstream.CompleteAfterPolls = int.MaxValue;
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", "gemini/gemini-2.5-flash", "one"), ("b", "gemini/gemini-2.5-flash", "two")));
        var batchId = await CreateBatchAsync(host, fileId, null);
        await WaitForStatusAsync(host, batchId, "in_progress", until: () => !Upstream.Batches.IsEmpty);

        using var cancel = await host.Client.PostAsync($"/openai/v1/batches/{batchId}/cancel", null, Ct);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var cancelled = await WaitForStatusAsync(host, batchId, "cancelled");

        var upstreamBatch = Assert.Single(Upstream.Batches.Values);
        Assert.True(upstreamBatch.CancelRequested);
        Assert.Contains(Upstream.Requests, r => r.Method == "POST" && r.Path == $"/v1beta/batches/{upstreamBatch.Id}:cancel");
        Assert.Equal(2, cancelled.GetProperty("request_counts").GetProperty("canceled").GetInt32());
        Assert.Equal(0, cancelled.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(JsonValueKind.Null, cancelled.GetProperty("output_file_id").ValueKind);
    }

    [Fact]
    public async Task A_batch_the_provider_fails_is_failed_with_its_error()
    {
        Upstream.FailBatchWith = (13, "internal batch failure");
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", "gemini/gemini-2.5-flash", "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        var error = failed.GetProperty("errors").GetProperty("data")[0];
        Assert.Equal("INTERNAL", error.GetProperty("code").GetString());
        Assert.Equal("internal batch failure", error.GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, failed.GetProperty("output_file_id").ValueKind);
    }

    [Fact]
    public async Task An_upstream_error_at_create_fails_the_batch_with_the_providers_message_and_no_key()
    {
        Upstream.CreateBatchFailure = new FakeGeminiUpstream.Failure(400, "Batch API is not enabled for this model.");
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", "gemini/gemini-2.5-flash", "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        var error = failed.GetProperty("errors").GetProperty("data")[0];
        Assert.Equal("batch_failed", error.GetProperty("code").GetString());
        Assert.Contains("Batch API is not enabled for this model.", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(FakeGeminiUpstream.Key, failed.GetRawText(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Batches);
    }

    [Fact]
    public async Task An_invalid_key_fails_the_batch_at_the_upload_without_echoing_the_key_in_the_batch_logs_or_spans()
    {
        const string wrongKey = "AIza-wrong-key-987654321";
        var logs = new LogSink();
        var spans = new System.Collections.Concurrent.ConcurrentQueue<System.Diagnostics.Activity>();
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == "Bifrost.Middleware",
            Sample = static (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        await using var host = await StartBatchHostAsync(p => p.Keys = [new ProviderKeyOptions { Value = wrongKey }], services => services.AddSingleton<ILoggerProvider>(logs));
        var fileId = await UploadAsync(host, Lines(("a", "gemini/gemini-2.5-flash", "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var failed = await WaitForStatusAsync(host, batchId, "failed");

        Assert.Contains("API key not valid", failed.GetProperty("errors").GetProperty("data")[0].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(wrongKey, failed.GetRawText(), StringComparison.Ordinal);
        Assert.Empty(Upstream.UploadedFiles);
        Assert.Empty(Upstream.Batches);
        Assert.Equal(wrongKey, Assert.Single(Upstream.Requests).Headers["x-goog-api-key"]); // it was sent, in the header only
        Assert.All(logs.Entries, e => Assert.DoesNotContain(wrongKey, e.Message + e.Exception, StringComparison.Ordinal));
        var span = Assert.Single(spans, a => a.DisplayName == "batch " + batchId);
        Assert.NotNull(span.GetTagItem("error.type"));
        Assert.All(spans.SelectMany(a => a.TagObjects), tag => Assert.DoesNotContain(wrongKey, tag.Value?.ToString() ?? string.Empty, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_batch_of_several_Gemini_models_runs_line_by_line_through_the_gateway()
    {
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", "gemini/gemini-2.5-flash", "one"), ("b", "gemini/gemini-2.5-pro", "two")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        var done = await WaitForStatusAsync(host, batchId, "completed");

        Assert.Empty(Upstream.Batches);
        Assert.Empty(Upstream.UploadedFiles);
        Assert.Equal(["/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-pro:generateContent"], Upstream.GenerateRequests.Select(r => r.Path).Order());
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
    }

    [Fact]
    public async Task Without_NativeBatches_the_batch_runs_line_by_line()
    {
        await using var host = await StartBatchHostAsync(p => p.NativeBatches = false);
        var fileId = await UploadAsync(host, Lines(("a", "gemini/gemini-2.5-flash", "one")));
        var batchId = await CreateBatchAsync(host, fileId, null);

        await WaitForStatusAsync(host, batchId, "completed");

        Assert.Empty(Upstream.Batches);
        Assert.Single(Upstream.GenerateRequests);
    }

    [Theory]
    [InlineData(3, null, 400, "INVALID_ARGUMENT")]
    [InlineData(8, null, 429, "RESOURCE_EXHAUSTED")]
    [InlineData(16, null, 401, "UNAUTHENTICATED")]
    [InlineData(5, "NOT_FOUND", 404, "NOT_FOUND")]
    [InlineData(14, null, 503, "UNAVAILABLE")]
    [InlineData(4, null, 504, "DEADLINE_EXCEEDED")]
    [InlineData(13, null, 500, "INTERNAL")]
    [InlineData(429, "RESOURCE_EXHAUSTED", 429, "RESOURCE_EXHAUSTED")]
    public void A_line_error_status_maps_from_its_gRPC_code(int code, string? status, int expectedStatus, string expectedCode)
    {
        var (mapped, name) = GeminiAdapter.StatusOfRpc(new GeminiErrorDetail { Code = code, Status = status, Message = "x" });

        Assert.Equal(expectedStatus, mapped);
        Assert.Equal(expectedCode, name);
    }

    [Theory]
    [InlineData("2026-12-06T10:00:00.123456789Z", 1796551200)]
    [InlineData("2026-12-06T10:00:00Z", 1796551200)]
    [InlineData("2026-12-06T11:00:00.5+01:00", 1796551200)]
    public void Batch_times_with_nanoseconds_are_read(string value, long expected) =>
        Assert.Equal(expected, GeminiAdapter.UnixSeconds(value));

    [Theory]
    [InlineData("https://generativelanguage.googleapis.com/v1beta", "https://generativelanguage.googleapis.com/upload/v1beta/files")]
    [InlineData("https://proxy.example/gemini/v1beta/", "https://proxy.example/gemini/upload/v1beta/files")]
    [InlineData(null, "https://generativelanguage.googleapis.com/upload/v1beta/files")]
    public void The_upload_host_is_BaseUrl_with_upload_before_the_version(string? baseUrl, string expected)
    {
        var context = new ProviderContext("gemini", new ProviderOptions { Type = "gemini", BaseUrl = baseUrl }, string.Empty, "k");

        Assert.Equal(expected, GeminiAdapter.FilesEndpoint(context, "upload", "files").AbsoluteUri);
    }

    private Task<GatewayHost> StartBatchHostAsync(Action<ProviderOptions>? provider = null, Action<IServiceCollection>? services = null) => GatewayHost.StartAsync(
        o =>
    {
        var gemini = new ProviderOptions
        {
            Type = "gemini",
            BaseUrl = Upstream.BaseUrl,
            Keys = [new ProviderKeyOptions { Value = FakeGeminiUpstream.Key }],
            MaxRetries = 0,
            RetryBaseDelay = TimeSpan.Zero,
            NativeBatches = true,
        };
        provider?.Invoke(gemini);
        o.Providers["gemini"] = gemini;
        o.Files.Directory = _files;
        o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
        o.Jobs.MaxAttempts = 1;
        o.Batches.NativePollInterval = TimeSpan.FromMilliseconds(30);
        o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(20);
    },
        services: services);

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
