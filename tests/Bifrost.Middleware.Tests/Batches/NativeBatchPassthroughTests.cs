using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>Batches for a provider with NativeBatches run on its own files + batches API (a fake OpenAI upstream on 127.0.0.1).</summary>
public sealed class NativeBatchPassthroughTests : IAsyncLifetime
{
    private readonly string _files = Path.Combine(Path.GetTempPath(), "bifrost-native-" + Guid.NewGuid().ToString("N"));
    private FakeBatchUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await FakeBatchUpstream.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _upstream.DisposeAsync();
        if (Directory.Exists(_files))
        {
            Directory.Delete(_files, recursive: true);
        }
    }

    [Fact]
    public async Task Batch_for_a_native_provider_runs_upstream_and_results_come_back_through_our_files()
    {
        await using var host = await StartHostAsync();
        var fileId = await UploadAsync(host, Lines("openai/gpt-4o-mini", "openai/gpt-4o-mini", null));
        var batch = await CreateBatchAsync(host, fileId, model: "openai/gpt-4o-mini");
        var done = await WaitForStatusAsync(host, batch, "completed");

        Assert.Equal(3, done.GetProperty("request_counts").GetProperty("total").GetInt32());
        Assert.Equal(3, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(0, done.GetProperty("request_counts").GetProperty("pending").GetInt32());
        Assert.Equal(JsonValueKind.Null, done.GetProperty("error_file_id").ValueKind);

        // The provider ran it: its batch API got every line with the bare model, and no line went through chat/completions.
        Assert.Equal(0, _upstream.ChatCalls);
        Assert.Single(_upstream.Batches);
        var upstreamLines = _upstream.Batches.Values.Single().Lines;
        Assert.Equal(3, upstreamLines.Count);
        Assert.All(upstreamLines, l => Assert.Equal("gpt-4o-mini", l["body"]!["model"]!.GetValue<string>()));

        // The output file is in our store, owned by the caller, in OpenAI's batch output format.
        var outputId = done.GetProperty("output_file_id").GetString()!;
        var content = await host.Client.GetStringAsync($"/openai/v1/files/{outputId}/content", TestContext.Current.CancellationToken);
        var lines = content.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["c0", "c1", "c2"], lines.Select(l => l.GetProperty("custom_id").GetString()).Order());
        Assert.All(lines, l => Assert.StartsWith("native:", l.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), StringComparison.Ordinal));

        // Each line is priced at the batch price: gpt-4o-mini's 1M input + 1M output tokens with Bifrost:Pricing's 50% off.
        Assert.All(lines, l => Assert.Equal(2.5, l.GetProperty("response").GetProperty("body").GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9));
    }

    [Fact]
    public async Task With_governance_on_each_native_line_is_in_the_usage_ledger_at_the_batch_price()
    {
        await using var host = await StartHostAsync(o => o.Governance.Mode = GovernanceMode.Optional);
        var fileId = await UploadAsync(host, Lines("openai/gpt-4o-mini", "openai/gpt-4o-mini"));
        var batch = await CreateBatchAsync(host, fileId, model: null);
        await WaitForStatusAsync(host, batch, "completed");
        Assert.Single(_upstream.Batches);

        var ledger = host.Services.GetRequiredService<Bifrost.Middleware.Governance.UsageLedger>();
        await ledger.FlushAsync(TestContext.Current.CancellationToken);
        var records = await host.Services.GetRequiredService<Bifrost.Middleware.Governance.IGovernanceStore>()
            .ListUsageAsync(new Bifrost.Middleware.Governance.UsageQuery { Provider = "openai" }, TestContext.Current.CancellationToken);
        Assert.Equal(2, records.Count);
        Assert.All(records, r =>
        {
            Assert.Equal("batch", r.Source);
            Assert.Equal(batch, r.RequestId);
            Assert.Equal("gpt-4o-mini", r.Model);
            Assert.Equal(1_000_000, r.InputTokens);
            Assert.Equal(250_000, r.CachedInputTokens); // no cached price configured: cached tokens cost the input price
            Assert.Equal(2.5m, r.CostUsd);
        });
    }

    [Fact]
    public async Task A_native_batch_has_a_span_and_its_answered_lines_are_in_the_request_log_and_the_lines_metric()
    {
        var spans = new ConcurrentQueue<System.Diagnostics.Activity>();
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == "Bifrost.Middleware",
            Sample = static (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        await using var host = await StartHostAsync(o => o.RequestLog.CaptureContent = true);
        using var metric = new Microsoft.Extensions.Diagnostics.Metrics.Testing.MetricCollector<long>(host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), "Bifrost.Middleware", "bifrost.batch.lines");
        var jsonl = string.Join('\n', new[] { "hello", "please fail", "again" }.Select((text, i) => new JsonObject
        {
            ["custom_id"] = $"c{i}",
            ["method"] = "POST",
            ["url"] = "/v1/chat/completions",
            ["body"] = new JsonObject { ["model"] = "openai/gpt-4o-mini", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) },
        }.ToJsonString())) + "\n";
        var fileId = await UploadAsync(host, jsonl);
        var batch = await CreateBatchAsync(host, fileId, model: null);
        var done = await WaitForStatusAsync(host, batch, "completed");
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(1, done.GetProperty("request_counts").GetProperty("failed").GetInt32());
        Assert.NotEqual(JsonValueKind.Null, done.GetProperty("error_file_id").ValueKind);
        var upstream = _upstream.Batches.Values.Single();

        // The request log: one entry per answered line, as the line-by-line path records lines.
        var log = host.Services.GetRequiredService<Bifrost.Middleware.RequestLog.IBifrostRequestLog>();
        await log.FlushAsync(TestContext.Current.CancellationToken);
        var entries = (await log.QueryAsync(new Bifrost.Middleware.RequestLog.RequestLogQuery { BatchId = batch }, TestContext.Current.CancellationToken)).Entries.OrderBy(e => e.CustomId, StringComparer.Ordinal).ToList();
        Assert.Equal(["c0", "c1", "c2"], entries.Select(e => e.CustomId));
        Assert.All(entries, e =>
        {
            Assert.Equal("batch", e.Source);
            Assert.Equal("chat_completion", e.Operation);
            Assert.Equal("openai", e.Provider);
            Assert.Equal(batch, e.BatchId);
            Assert.Equal("anonymous", e.Owner);
            Assert.Matches("^req_[0-9a-f]{32}$", e.Id);
        });
        foreach (var ok in new[] { entries[0], entries[2] })
        {
            Assert.Equal(200, ok.Status);
            Assert.Null(ok.ErrorCode);
            Assert.Equal("gpt-4o-mini", ok.Model);
            Assert.Equal(1_000_000, ok.InputTokens);
            Assert.Equal(1_000_000, ok.OutputTokens);
            Assert.Equal(2.5m, ok.CostUsd); // the batch price
            Assert.Equal("chatcmpl-native", ok.ResponseId);
            using var body = JsonDocument.Parse(ok.ResponseContent!);
            Assert.StartsWith("native:", body.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(400, entries[1].Status);
        Assert.Equal("invalid_value", entries[1].ErrorCode);
        Assert.Null(entries[1].InputTokens);
        Assert.Null(entries[1].CostUsd);

        // The lines metric counts the native lines by outcome.
        var byOutcome = metric.GetMeasurementSnapshot().GroupBy(m => m.Tags["bifrost.outcome"]?.ToString()!).ToDictionary(g => g.Key, g => g.Sum(m => m.Value));
        Assert.Equal(2, byOutcome["succeeded"]);
        Assert.Equal(1, byOutcome["failed"]);

        // The span: native, the provider and its batch id, each poll counted, status changes as events, the counts.
        var span = Assert.Single(spans, a => a.DisplayName == "batch " + batch);
        Assert.Equal(true, span.GetTagItem("bifrost.batch.native"));
        Assert.Equal("openai", span.GetTagItem("gen_ai.provider.name"));
        Assert.Equal(upstream.Id, span.GetTagItem("bifrost.batch.provider_batch_id"));
        Assert.Equal(3, span.GetTagItem("bifrost.batch.lines"));
        Assert.Equal(2, span.GetTagItem("bifrost.batch.lines.succeeded"));
        Assert.Equal(1, span.GetTagItem("bifrost.batch.lines.failed"));
        Assert.Equal(upstream.Polls, span.GetTagItem("bifrost.batch.polls"));
        var statuses = span.Events.Where(e => e.Name == "bifrost.batch.status").Select(e => e.Tags.Single(t => t.Key == "bifrost.batch.status").Value).ToList();
        Assert.Equal(["in_progress", "completed"], statuses);
        Assert.Null(span.GetTagItem("error.type"));
        Assert.Equal(System.Diagnostics.ActivityStatusCode.Unset, span.Status);
    }

    [Fact]
    public async Task A_native_batch_that_cannot_be_created_upstream_has_error_type_on_its_span()
    {
        var spans = new ConcurrentQueue<System.Diagnostics.Activity>();
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == "Bifrost.Middleware",
            Sample = static (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        _upstream.RefuseBatches = true;
        await using var host = await StartHostAsync();
        var fileId = await UploadAsync(host, Lines("openai/gpt-4o-mini"));
        var batch = await CreateBatchAsync(host, fileId, model: null);
        await WaitForStatusAsync(host, batch, "failed");

        var span = Assert.Single(spans, a => a.DisplayName == "batch " + batch);
        Assert.Equal(true, span.GetTagItem("bifrost.batch.native"));
        Assert.NotNull(span.GetTagItem("error.type"));
        Assert.Equal(System.Diagnostics.ActivityStatusCode.Error, span.Status);
    }

    [Fact]
    public async Task Cancel_is_forwarded_to_the_provider()
    {
        _upstream.CompleteAfterPolls = int.MaxValue;
        await using var host = await StartHostAsync();
        var fileId = await UploadAsync(host, Lines("openai/gpt-4o-mini", "openai/gpt-4o-mini"));
        var batch = await CreateBatchAsync(host, fileId, model: null);
        await WaitForStatusAsync(host, batch, "in_progress", requireUpstream: true);

        using var cancel = await host.Client.PostAsync($"/openai/v1/batches/{batch}/cancel", null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var cancelled = await WaitForStatusAsync(host, batch, "cancelled");

        Assert.True(_upstream.Batches.Values.Single().CancelRequested);
        Assert.NotEqual(JsonValueKind.Null, cancelled.GetProperty("cancelled_at").ValueKind);
    }

    [Fact]
    public async Task Mixed_providers_run_through_the_gateway_line_by_line()
    {
        await using var host = await StartHostAsync();
        var fileId = await UploadAsync(host, Lines("openai/gpt-4o-mini", "local/echo"));
        var batch = await CreateBatchAsync(host, fileId, model: null);
        var done = await WaitForStatusAsync(host, batch, "completed");

        Assert.Empty(_upstream.Batches);
        Assert.Equal(1, _upstream.ChatCalls);
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
    }

    private Task<GatewayHost> StartHostAsync(Action<BifrostOptions>? configure = null) => GatewayHost.StartAsync(options =>
    {
        configure?.Invoke(options);
        options.Files.Directory = _files;
        options.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
        options.Batches.NativePollInterval = TimeSpan.FromMilliseconds(30);
        options.Batches.ProgressInterval = TimeSpan.FromMilliseconds(20);
        options.Providers["openai"] = new ProviderOptions
        {
            BaseUrl = _upstream.BaseUrl,
            NativeBatches = true,
            MaxRetries = 0,
            Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
        };
        options.Pricing["openai/gpt-4o-mini"] = new ModelPriceOptions { InputPerMillion = 1.0, OutputPerMillion = 4.0, BatchDiscount = 0.5 };
    });

    private static string Lines(params string?[] models) => string.Join('\n', models.Select((model, i) =>
    {
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"line {i}" }) };
        if (model is not null)
        {
            body["model"] = model;
        }

        return new JsonObject { ["custom_id"] = $"c{i}", ["method"] = "POST", ["url"] = "/v1/chat/completions", ["body"] = body }.ToJsonString();
    })) + "\n";

    private static async Task<string> UploadAsync(GatewayHost host, string jsonl)
    {
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new StringContent(jsonl), "file", "in.jsonl" } };
        using var response = await host.Client.PostAsync("/openai/v1/files", form, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await GatewayHost.ReadJsonAsync(response)).GetProperty("id").GetString()!;
    }

    private static async Task<string> CreateBatchAsync(GatewayHost host, string fileId, string? model)
    {
        var body = new JsonObject { ["input_file_id"] = fileId, ["endpoint"] = "/v1/chat/completions", ["completion_window"] = "24h" };
        if (model is not null)
        {
            body["model"] = model;
        }

        using var response = await host.PostJsonAsync("/openai/v1/batches", body.ToJsonString(), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await GatewayHost.ReadJsonAsync(response)).GetProperty("id").GetString()!;
    }

    private async Task<JsonElement> WaitForStatusAsync(GatewayHost host, string batchId, string status, bool requireUpstream = false)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        JsonElement last = default;
        while (DateTime.UtcNow < deadline)
        {
            using var response = await host.Client.GetAsync($"/openai/v1/batches/{batchId}", TestContext.Current.CancellationToken);
            last = await GatewayHost.ReadJsonAsync(response);
            if (last.GetProperty("status").GetString() == status && (!requireUpstream || !_upstream.Batches.IsEmpty))
            {
                return last;
            }

            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        Assert.Fail($"Batch {batchId} did not reach '{status}'; last: {last}");
        return last;
    }

    /// <summary>A fake OpenAI upstream with files and batches (a batch completes after N polls, echoing each line).</summary>
    private sealed class FakeBatchUpstream : IAsyncDisposable
    {
        private readonly ConcurrentDictionary<string, byte[]> _fileContents = new();
        private WebApplication _app = null!;
        private int _chatCalls;

        public string BaseUrl { get; private set; } = string.Empty;

        public ConcurrentDictionary<string, UpstreamBatch> Batches { get; } = new();

        public int ChatCalls => Volatile.Read(ref _chatCalls);

        public int CompleteAfterPolls { get; set; } = 2;

        public bool RefuseBatches { get; set; }

        public static async Task<FakeBatchUpstream> StartAsync()
        {
            var upstream = new FakeBatchUpstream();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            app.MapPost("/v1/chat/completions", async (HttpContext context) =>
            {
                Interlocked.Increment(ref upstream._chatCalls);
                var request = await JsonNode.ParseAsync(context.Request.Body);
                return Results.Json(new JsonObject
                {
                    ["id"] = "chatcmpl-up",
                    ["object"] = "chat.completion",
                    ["created"] = 1,
                    ["model"] = request!["model"]!.GetValue<string>(),
                    ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = "direct" }, ["finish_reason"] = "stop" }),
                });
            });
            app.MapPost("/v1/files", async (HttpContext context) =>
            {
                Assert.Equal("Bearer sk-upstream", context.Request.Headers.Authorization.ToString());
                var form = await context.Request.ReadFormAsync();
                Assert.Equal("batch", form["purpose"].ToString());
                using var buffer = new MemoryStream();
                await form.Files["file"]!.CopyToAsync(buffer);
                var id = "file-up-" + upstream._fileContents.Count;
                upstream._fileContents[id] = buffer.ToArray();
                return Results.Json(new JsonObject { ["id"] = id, ["object"] = "file", ["bytes"] = buffer.Length, ["purpose"] = "batch", ["filename"] = "batch.jsonl", ["created_at"] = 1 });
            });
            app.MapPost("/v1/batches", async (HttpContext context) =>
            {
                if (upstream.RefuseBatches)
                {
                    return Results.Json(new JsonObject { ["error"] = new JsonObject { ["message"] = "Batches are off.", ["type"] = "invalid_request_error", ["code"] = "batches_disabled" } }, statusCode: 400);
                }

                var body = (await JsonNode.ParseAsync(context.Request.Body))!;
                var input = Encoding.UTF8.GetString(upstream._fileContents[body["input_file_id"]!.GetValue<string>()]);
                var batch = new UpstreamBatch("batch-up-" + upstream.Batches.Count, input.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList());
                upstream.Batches[batch.Id] = batch;
                return Results.Json(upstream.Describe(batch));
            });
            app.MapGet("/v1/batches/{id}", (string id) =>
            {
                var batch = upstream.Batches[id];
                batch.Polls++;
                return Results.Json(upstream.Describe(batch));
            });
            app.MapPost("/v1/batches/{id}/cancel", (string id) =>
            {
                var batch = upstream.Batches[id];
                batch.CancelRequested = true;
                return Results.Json(upstream.Describe(batch));
            });
            app.MapGet("/v1/files/{id}/content", (string id) => Results.Bytes(upstream._fileContents[id], "application/octet-stream"));
            await app.StartAsync();
            upstream._app = app;
            upstream.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/v1";
            return upstream;
        }

        private JsonObject Describe(UpstreamBatch batch)
        {
            var status = batch.CancelRequested ? "cancelled" : batch.Polls >= CompleteAfterPolls ? "completed" : "in_progress";
            string? outputId = null;
            string? errorId = null;
            static bool Fails(JsonNode line) => line["body"]!["messages"]![0]!["content"]!.GetValue<string>().Contains("fail", StringComparison.Ordinal);
            var failing = batch.Lines.Count(Fails);
            if (status == "completed" && failing > 0)
            {
                // A line the provider refused: in the error file, with its status and error body.
                errorId = "file-up-err-" + batch.Id;
                _fileContents.TryAdd(errorId, Encoding.UTF8.GetBytes(string.Concat(batch.Lines.Where(Fails).Select(line => new JsonObject
                {
                    ["id"] = "batch_req_err",
                    ["custom_id"] = line["custom_id"]!.GetValue<string>(),
                    ["response"] = new JsonObject
                    {
                        ["status_code"] = 400,
                        ["request_id"] = "req-up-err",
                        ["body"] = new JsonObject { ["error"] = new JsonObject { ["message"] = "Bad line.", ["type"] = "invalid_request_error", ["code"] = "invalid_value" } },
                    },
                    ["error"] = null,
                }.ToJsonString() + "\n"))));
            }

            if (status == "completed")
            {
                outputId = "file-up-out-" + batch.Id;
                _fileContents.TryAdd(outputId, Encoding.UTF8.GetBytes(string.Concat(batch.Lines.Where(line => !Fails(line)).Select(line =>
                {
                    var body = line["body"]!;
                    var text = body["messages"]![0]!["content"]!.GetValue<string>();
                    var response = new JsonObject
                    {
                        ["id"] = "batch_req_up",
                        ["custom_id"] = line["custom_id"]!.GetValue<string>(),
                        ["response"] = new JsonObject
                        {
                            ["status_code"] = 200,
                            ["request_id"] = "req-up",
                            ["body"] = new JsonObject
                            {
                                ["id"] = "chatcmpl-native",
                                ["object"] = "chat.completion",
                                ["model"] = body["model"]!.GetValue<string>(),
                                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = "native:" + text }, ["finish_reason"] = "stop" }),
                                ["usage"] = new JsonObject { ["prompt_tokens"] = 1_000_000, ["completion_tokens"] = 1_000_000, ["total_tokens"] = 2_000_000, ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = 250_000 } },
                            },
                        },
                        ["error"] = null,
                    };
                    return response.ToJsonString() + "\n";
                }))));
            }

            var done = status == "completed" ? batch.Lines.Count : 0;
            return new JsonObject
            {
                ["id"] = batch.Id,
                ["object"] = "batch",
                ["endpoint"] = "/v1/chat/completions",
                ["input_file_id"] = "file-up-0",
                ["completion_window"] = "24h",
                ["status"] = status,
                ["output_file_id"] = outputId,
                ["error_file_id"] = errorId,
                ["created_at"] = 1,
                ["request_counts"] = new JsonObject { ["total"] = batch.Lines.Count, ["completed"] = done == 0 ? 0 : done - failing, ["failed"] = done == 0 ? 0 : failing },
            };
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    private sealed class UpstreamBatch(string id, List<JsonNode> lines)
    {
        public string Id { get; } = id;

        public List<JsonNode> Lines { get; } = lines;

        public int Polls { get; set; }

        public bool CancelRequested { get; set; }
    }
}
