using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.RequestLog;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Options;
using static Bifrost.Middleware.Tests.Governance.BudgetTests;

namespace Bifrost.Middleware.Tests.RequestLog;

/// <summary>
/// The request log end to end: every HTTP and <see cref="IBifrostClient"/> call (sync, stream, async job, batch line,
/// failures, cut streams) recorded once with its fields; content only when opted in and after the redactor; the admin
/// endpoints; completeness under load and the ring's bound.
/// </summary>
public sealed class RequestLogTests
{
    private const string Chat = "/openai/v1/chat/completions";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ScriptedAdapter Acme() => new() { OnChat = (c, _, _) => Task.FromResult(Priced(c)), OnStream = (c, _, ct) => PricedStream(c, ct) };

    private static Task<FileBatchHost> StartAsync(ScriptedAdapter acme, Action<BifrostOptions>? configure = null, Action<IServiceCollection>? services = null) =>
        FileBatchHost.StartAsync(
            options =>
            {
                Price(options);
                configure?.Invoke(options);
            },
            b => b.AddProvider("acme", _ => acme),
            services);

    private static async Task<IReadOnlyList<RequestLogEntry>> AllAsync(IServiceProvider services, RequestLogQuery? query = null)
    {
        var log = services.GetRequiredService<IBifrostRequestLog>();
        await log.FlushAsync(Ct);
        var all = new List<RequestLogEntry>();
        for (RequestLogQuery? next = query ?? new RequestLogQuery { Limit = RequestLogQuery.MaxLimit }; next is not null;)
        {
            var page = await log.QueryAsync(next, Ct);
            all.AddRange(page.Entries);
            next = page.Next;
        }

        return all;
    }

    private static async Task<HttpResponseMessage> PostAsync(HttpClient client, string body, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await client.SendAsync(request, Ct);
    }

    [Fact]
    public async Task A_sync_http_call_is_recorded_with_its_caller_provider_tokens_cost_and_request_id()
    {
        await using var host = await StartAsync(Acme());

        using var response = await PostAsync(host.Client, Body(), ("Authorization", "Bearer sk-caller-secret-1"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var entry = Assert.Single(await AllAsync(host.Services));
        Assert.Matches("^req_[0-9a-f]{32}$", entry.Id);
        Assert.Equal("chat_completion", entry.Operation);
        Assert.Equal("sync", entry.Source);
        Assert.Equal("acme", entry.Provider);
        Assert.Equal("m1", entry.Model);
        Assert.Equal(200, entry.Status);
        Assert.Null(entry.ErrorCode);
        Assert.Equal(4, entry.InputTokens);
        Assert.Equal(6, entry.OutputTokens);
        Assert.Equal(10m, entry.CostUsd);
        Assert.Equal("chatcmpl-test", entry.ResponseId);
        Assert.Equal(response.Headers.GetValues("x-request-id").Single(), entry.RequestId);
        Assert.StartsWith("key:", entry.Owner, StringComparison.Ordinal); // a hash of the credential...
        Assert.DoesNotContain("sk-caller-secret-1", entry.Owner, StringComparison.Ordinal); // ...never the credential
        Assert.Null(entry.VirtualKeyId);
        Assert.Null(entry.TimeToFirstChunkMs);
        Assert.Null(entry.RequestContent); // content is off by default
        Assert.Null(entry.ResponseContent);
        Assert.Null(entry.JobId);
        Assert.Null(entry.BatchId);
        Assert.True(entry.LatencyMs >= 0);
    }

    [Fact]
    public async Task A_stream_is_recorded_with_its_time_to_first_chunk_and_usage()
    {
        var acme = Acme();
        acme.OnStream = (c, _, ct) => SlowStream(c, ct);
        await using var host = await StartAsync(acme);

        using var response = await PostAsync(host.Client, Body(stream: true));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("[DONE]", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        var entry = Assert.Single(await AllAsync(host.Services));
        Assert.Equal("chat_completion_stream", entry.Operation);
        Assert.Equal("stream", entry.Source);
        Assert.Equal(200, entry.Status);
        Assert.Equal("anonymous", entry.Owner);
        Assert.Equal(4, entry.InputTokens);
        Assert.Equal(6, entry.OutputTokens);
        Assert.Equal(10m, entry.CostUsd);
        Assert.NotNull(entry.TimeToFirstChunkMs);
        Assert.True(entry.LatencyMs - entry.TimeToFirstChunkMs >= 150, $"latency {entry.LatencyMs} ms, first chunk {entry.TimeToFirstChunkMs} ms"); // the 200 ms after the first chunk
    }

    private static async IAsyncEnumerable<ChatCompletionChunk> SlowStream(ProviderContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var first = true;
        await foreach (var chunk in PricedStream(context, cancellationToken))
        {
            yield return chunk;
            if (first)
            {
                first = false;
                await Task.Delay(200, cancellationToken);
            }
        }
    }

    [Fact]
    public async Task Failing_calls_are_recorded_with_their_status_and_error_code_before_and_after_a_stream_starts()
    {
        var acme = Acme();
        acme.OnChat = (_, _, _) => throw BifrostErrors.ProviderError(400, "invalid_request_error", "context_length_exceeded", "Too long.");
        acme.OnStream = (_, _, _) => Replies.Failing(BifrostErrors.ProviderError(400, "invalid_request_error", "context_length_exceeded", "Too long."));
        await using var host = await StartAsync(acme);

        using (var sync = await PostAsync(host.Client, Body()))
        {
            Assert.Equal(HttpStatusCode.BadRequest, sync.StatusCode);
        }

        using (var stream = await PostAsync(host.Client, Body(stream: true)))
        {
            Assert.Equal(HttpStatusCode.BadRequest, stream.StatusCode);
        }

        using (var invalid = await PostAsync(host.Client, """{"model":"acme/m1","temperature":5,"messages":[{"role":"user","content":"hello"}]}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode); // refused by the gateway itself: recorded too
        }

        var entries = await AllAsync(host.Services);
        Assert.Equal(3, entries.Count);
        var failedSync = Assert.Single(entries, e => e.Source == "sync" && e.ErrorCode == "context_length_exceeded");
        Assert.Equal(400, failedSync.Status);
        Assert.Equal("context_length_exceeded", failedSync.ErrorCode);
        Assert.Null(failedSync.InputTokens);
        Assert.Null(failedSync.CostUsd);
        var failedStream = Assert.Single(entries, e => e.Source == "stream");
        Assert.Equal(400, failedStream.Status);
        Assert.Equal("context_length_exceeded", failedStream.ErrorCode);
        Assert.Equal("acme", failedStream.Provider);
        Assert.Null(failedStream.TimeToFirstChunkMs); // it failed before its first chunk
        var refused = Assert.Single(entries, e => e.Source == "sync" && e.ErrorCode != "context_length_exceeded");
        Assert.Equal(400, refused.Status);
        Assert.Equal("invalid_value", refused.ErrorCode);
        Assert.Equal("m1", refused.Model);
    }

    [Fact]
    public async Task Client_calls_are_recorded_and_a_stream_the_caller_stops_reading_is_499()
    {
        await using var host = await StartAsync(Acme());
        var client = host.Services.GetRequiredService<IBifrostClient>();

        var answer = await client.ChatCompletionAsync(Request(), Ct);
        Assert.Equal("chatcmpl-test", answer.Id);
        await foreach (var chunk in client.ChatCompletionStreamAsync(Request(), Ct))
        {
            break; // the caller stops after the first chunk
        }

        var entries = await AllAsync(host.Services);
        Assert.Equal(2, entries.Count);
        var sync = Assert.Single(entries, e => e.Source == "sync");
        Assert.Equal(200, sync.Status);
        Assert.Null(sync.Owner); // an in-process call without a virtual key has no owner
        Assert.Null(sync.RequestId);
        var cut = Assert.Single(entries, e => e.Source == "stream");
        Assert.Equal(499, cut.Status);
        Assert.Equal("client_closed_request", cut.ErrorCode);
        Assert.NotNull(cut.TimeToFirstChunkMs);
        Assert.Null(cut.InputTokens); // the usage chunk was never read
    }

    private static ChatCompletionRequest Request() => new()
    {
        Model = "acme/m1",
        Messages = [new ChatCompletionMessage { Role = "user", Content = new ChatCompletionContent("hello") }],
    };

    [Fact]
    public async Task Async_jobs_and_batch_lines_are_recorded_with_their_job_batch_and_custom_ids()
    {
        await using var host = await StartAsync(Acme(), o => o.Batches.Concurrency = 2);

        using var submit = await PostAsync(host.Client, Body(), ("x-bf-async", "true"));
        Assert.Equal(HttpStatusCode.OK, submit.StatusCode);
        var jobId = (await GatewayHost.ReadJsonAsync(submit)).GetProperty("id").GetString()!;
        for (var i = 0; i < 400; i++)
        {
            using var poll = await PostAsync(host.Client, Body(), ("x-bf-async-id", jobId));
            if (poll.StatusCode == HttpStatusCode.OK && (await GatewayHost.ReadJsonAsync(poll)).TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0)
            {
                break;
            }

            await Task.Delay(25, Ct);
        }

        var batch = await host.StartBatchAsync([BatchLines.Chat("line-1", model: "acme/m1"), BatchLines.Chat("line-2", model: "acme/m1"), BatchLines.Chat("line-3", model: "acme/m1")]);
        var batchId = batch.GetProperty("id").GetString()!;
        var done = await host.WaitForEndAsync(batchId);
        Assert.Equal("completed", done.GetProperty("status").GetString());

        var entries = await AllAsync(host.Services);
        var job = Assert.Single(entries, e => e.Source == "async");
        Assert.Equal(jobId, job.JobId);
        Assert.Equal("anonymous", job.Owner); // the job's owner
        Assert.Equal(200, job.Status);
        Assert.Equal(10m, job.CostUsd);

        var lines = entries.Where(e => e.Source == "batch").OrderBy(e => e.CustomId, StringComparer.Ordinal).ToArray();
        Assert.Equal(["line-1", "line-2", "line-3"], lines.Select(e => e.CustomId));
        Assert.All(lines, e =>
        {
            Assert.Equal(batchId, e.BatchId);
            Assert.Equal(200, e.Status);
            Assert.Equal("acme", e.Provider);
            Assert.Equal(4, e.InputTokens);
            Assert.Equal("anonymous", e.Owner);
        });
        Assert.Equal(3, (await AllAsync(host.Services, new RequestLogQuery { BatchId = batchId })).Count);
        Assert.Equal(4, entries.Count); // nothing else: the submit and the polls are not gateway calls
    }

    private sealed class MaskingRedactor : IRequestLogRedactor
    {
        public RequestLogEntry? Redact(RequestLogEntry entry) => entry with
        {
            RequestContent = entry.RequestContent?.Replace("pin-4711", "[redacted]", StringComparison.Ordinal),
        };
    }

    [Fact]
    public async Task Content_is_stored_only_when_opted_in_and_after_the_redactor()
    {
        const string Secret = """{"model":"acme/m1","messages":[{"role":"user","content":"my pin-4711"}]}""";
        await using (var off = await StartAsync(Acme(), services: s => s.AddSingleton<IRequestLogRedactor, MaskingRedactor>()))
        {
            using var response = await PostAsync(off.Client, Secret);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var entry = Assert.Single(await AllAsync(off.Services));
            Assert.Null(entry.RequestContent);
            Assert.Null(entry.ResponseContent);
        }

        await using var on = await StartAsync(Acme(), o => o.RequestLog.CaptureContent = true, s => s.AddSingleton<IRequestLogRedactor, MaskingRedactor>());
        using (var response = await PostAsync(on.Client, Secret))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var captured = Assert.Single(await AllAsync(on.Services));
        Assert.NotNull(captured.RequestContent);
        Assert.Contains("my [redacted]", captured.RequestContent, StringComparison.Ordinal);
        Assert.DoesNotContain("pin-4711", captured.RequestContent, StringComparison.Ordinal);
        using var request = JsonDocument.Parse(captured.RequestContent);
        Assert.Equal("acme/m1", request.RootElement.GetProperty("model").GetString());
        using var answer = JsonDocument.Parse(captured.ResponseContent!);
        Assert.Equal("chatcmpl-test", answer.RootElement.GetProperty("id").GetString());
        Assert.Equal("ok", answer.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    /// <summary>Masks the secret in the request and in the answer.</summary>
    private sealed class BothWaysRedactor : IRequestLogRedactor
    {
        public RequestLogEntry? Redact(RequestLogEntry entry) => entry with
        {
            RequestContent = entry.RequestContent?.Replace("pin-4711", "[redacted]", StringComparison.Ordinal),
            ResponseContent = entry.ResponseContent?.Replace("pin-4711", "[redacted]", StringComparison.Ordinal),
        };
    }

    /// <summary>Text in two pieces, two tool calls (the first's arguments split over two deltas), the finish reason, the usage; optionally failing before the finish.</summary>
    internal static async IAsyncEnumerable<ChatCompletionChunk> ToolStream(ProviderContext context, bool fail, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        yield return Replies.Chunk(context, new ChatDelta { Role = "assistant", Content = string.Empty }, null);
        yield return Replies.Chunk(context, new ChatDelta { Content = "Let me " }, null);
        yield return Replies.Chunk(context, new ChatDelta { Content = "check pin-4711." }, null);
        yield return Replies.Chunk(context, new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Id = "call_1", Type = "function", Function = new ChatCompletionFunctionCall { Name = "lookup", Arguments = "{\"ci" } }] }, null);
        yield return Replies.Chunk(context, new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 0, Function = new ChatCompletionFunctionCall { Arguments = "ty\":\"Oslo\"}" } }] }, null);
        yield return Replies.Chunk(context, new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = 1, Id = "call_2", Type = "function", Function = new ChatCompletionFunctionCall { Name = "time", Arguments = "{}" } }] }, null);
        cancellationToken.ThrowIfCancellationRequested();
        if (fail)
        {
            throw BifrostErrors.ProviderError(502, "server_error", "upstream_broke", "The upstream broke mid-stream.");
        }

        yield return Replies.Chunk(context, new ChatDelta(), "tool_calls");
        var usage = Replies.Chunk(context, new ChatDelta(), null);
        usage.Choices.Clear();
        usage.Usage = new ChatUsage { PromptTokens = 4, CompletionTokens = 6, TotalTokens = 10 };
        yield return usage;
    }

    internal static ScriptedAdapter ToolAcme(bool fail = false) => new() { OnChat = (c, _, _) => Task.FromResult(Priced(c)), OnStream = (c, _, ct) => ToolStream(c, fail, ct) };

    private static JsonElement Capture(JsonElement answer) => answer.GetProperty("bifrost_capture");

    [Fact]
    public async Task A_streams_answer_is_stored_assembled_with_its_text_tool_calls_and_usage_only_when_opted_in_and_after_the_redactor()
    {
        const string Secret = """{"model":"acme/m1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"my pin-4711"}]}""";
        await using (var off = await StartAsync(ToolAcme(), services: s => s.AddSingleton<IRequestLogRedactor, BothWaysRedactor>()))
        {
            using var response = await PostAsync(off.Client, Secret);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("[DONE]", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            var entry = Assert.Single(await AllAsync(off.Services));
            Assert.Equal("stream", entry.Source);
            Assert.Null(entry.RequestContent);
            Assert.Null(entry.ResponseContent);
        }

        await using var on = await StartAsync(ToolAcme(), o => o.RequestLog.CaptureContent = true, s => s.AddSingleton<IRequestLogRedactor, BothWaysRedactor>());
        using (var response = await PostAsync(on.Client, Secret))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var sse = await response.Content.ReadAsStringAsync(Ct);
            Assert.Contains("pin-4711", sse, StringComparison.Ordinal); // the caller got the answer as it was; only the log is redacted
        }

        var captured = Assert.Single(await AllAsync(on.Services));
        Assert.Equal(200, captured.Status);
        Assert.Equal("stream", captured.Source);
        Assert.Contains("my [redacted]", captured.RequestContent, StringComparison.Ordinal);
        Assert.DoesNotContain("pin-4711", captured.ResponseContent, StringComparison.Ordinal);
        using var answer = JsonDocument.Parse(captured.ResponseContent!);
        var root = answer.RootElement;
        Assert.Equal("chat.completion", root.GetProperty("object").GetString());
        Assert.Equal("chatcmpl-test", root.GetProperty("id").GetString());
        var choice = Assert.Single(root.GetProperty("choices").EnumerateArray());
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal("Let me check [redacted].", message.GetProperty("content").GetString());
        var calls = message.GetProperty("tool_calls");
        Assert.Equal(2, calls.GetArrayLength());
        Assert.Equal("call_1", calls[0].GetProperty("id").GetString());
        Assert.Equal("lookup", calls[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("""{"city":"Oslo"}""", calls[0].GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("call_2", calls[1].GetProperty("id").GetString());
        Assert.Equal("time", calls[1].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal(4, root.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(6, root.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.True(Capture(root).GetProperty("stream").GetBoolean());
        Assert.True(Capture(root).GetProperty("complete").GetBoolean());
        Assert.False(Capture(root).GetProperty("truncated").GetBoolean());
        Assert.Equal(8, Capture(root).GetProperty("chunks").GetInt32());
    }

    [Fact]
    public async Task A_streams_captured_answer_is_cut_at_the_limit_and_a_failed_or_left_stream_keeps_what_was_relayed_marked()
    {
        await using (var capped = await StartAsync(ToolAcme(), o =>
        {
            o.RequestLog.CaptureContent = true;
            o.RequestLog.MaxStreamContentLength = 10;
        }))
        {
            using var response = await PostAsync(capped.Client, Body(stream: true));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("[DONE]", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            var entry = Assert.Single(await AllAsync(capped.Services));
            using var answer = JsonDocument.Parse(entry.ResponseContent!);
            var message = answer.RootElement.GetProperty("choices")[0].GetProperty("message");
            Assert.Equal("Let me che", message.GetProperty("content").GetString()); // 10 characters, the rest dropped
            Assert.DoesNotContain("Oslo", entry.ResponseContent, StringComparison.Ordinal);
            Assert.True(Capture(answer.RootElement).GetProperty("truncated").GetBoolean());
            Assert.True(Capture(answer.RootElement).GetProperty("complete").GetBoolean());
            Assert.Equal(4, answer.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32()); // usage is not content: kept
        }

        await using (var failing = await StartAsync(ToolAcme(fail: true), o => o.RequestLog.CaptureContent = true))
        {
            var client = failing.Services.GetRequiredService<IBifrostClient>();
            var relayed = 0;
            var error = await Assert.ThrowsAsync<BifrostException>(async () =>
            {
                await foreach (var chunk in client.ChatCompletionStreamAsync(Request(), Ct))
                {
                    relayed++;
                }
            });
            Assert.Equal(502, error.StatusCode);
            Assert.Equal(6, relayed);
            var entry = Assert.Single(await AllAsync(failing.Services));
            Assert.Equal(502, entry.Status);
            Assert.Equal("upstream_broke", entry.ErrorCode);
            using var answer = JsonDocument.Parse(entry.ResponseContent!);
            var choice = answer.RootElement.GetProperty("choices")[0];
            Assert.Equal("Let me check pin-4711.", choice.GetProperty("message").GetProperty("content").GetString());
            Assert.Equal("""{"city":"Oslo"}""", choice.GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function").GetProperty("arguments").GetString());
            Assert.Equal(JsonValueKind.Null, choice.GetProperty("finish_reason").ValueKind); // it never finished
            Assert.False(Capture(answer.RootElement).GetProperty("complete").GetBoolean());
            Assert.Equal(6, Capture(answer.RootElement).GetProperty("chunks").GetInt32());
        }

        await using var left = await StartAsync(ToolAcme(), o => o.RequestLog.CaptureContent = true);
        var leftClient = left.Services.GetRequiredService<IBifrostClient>();
        var read = 0;
        await foreach (var chunk in leftClient.ChatCompletionStreamAsync(Request(), Ct))
        {
            if (++read == 2)
            {
                break; // the caller leaves after "Let me "
            }
        }

        var cut = Assert.Single(await AllAsync(left.Services));
        Assert.Equal(499, cut.Status);
        using var partial = JsonDocument.Parse(cut.ResponseContent!);
        Assert.Equal("Let me ", partial.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.False(Capture(partial.RootElement).GetProperty("complete").GetBoolean());
        Assert.Equal(2, Capture(partial.RootElement).GetProperty("chunks").GetInt32());
    }

    private sealed class DroppingRedactor : IRequestLogRedactor
    {
        public RequestLogEntry? Redact(RequestLogEntry entry) =>
            entry.RequestContent!.Contains("throw", StringComparison.Ordinal) ? throw new InvalidOperationException("redactor bug")
            : entry.RequestContent.Contains("drop", StringComparison.Ordinal) ? null
            : entry;
    }

    [Fact]
    public async Task An_entry_the_redactor_drops_or_fails_on_is_never_stored()
    {
        await using var host = await StartAsync(Acme(), o => o.RequestLog.CaptureContent = true, s => s.AddSingleton<IRequestLogRedactor, DroppingRedactor>());
        foreach (var text in new[] { "keep", "drop", "throw" })
        {
            using var response = await PostAsync(host.Client, $$"""{"model":"acme/m1","messages":[{"role":"user","content":"{{text}}"}]}""");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode); // the caller never sees the log's troubles
        }

        var kept = Assert.Single(await AllAsync(host.Services));
        Assert.Contains("keep", kept.RequestContent, StringComparison.Ordinal);
        Assert.Equal(1, host.Services.GetRequiredService<RequestLogWriter>().Dropped); // the failure is counted (a deliberate drop is not)
    }

    [Fact]
    public async Task Five_thousand_parallel_client_calls_leave_exactly_five_thousand_entries()
    {
        await using var host = await StartAsync(Acme());
        var client = host.Services.GetRequiredService<IBifrostClient>();

        await Parallel.ForAsync(0, 5000, new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = Ct }, async (i, ct) =>
            await client.ChatCompletionAsync(Request(), ct));

        var entries = await AllAsync(host.Services);
        Assert.Equal(5000, entries.Count);
        Assert.Equal(5000, entries.Select(e => e.Id).Distinct(StringComparer.Ordinal).Count());
        Assert.All(entries, e => Assert.Equal(200, e.Status));
        var writer = host.Services.GetRequiredService<RequestLogWriter>();
        Assert.Equal(0, writer.Dropped);
        Assert.Equal(5000, writer.Written);
    }

    [Fact]
    public async Task The_in_memory_log_is_bounded_by_max_entries()
    {
        await using var host = await StartAsync(Acme(), o => o.RequestLog.MaxEntries = 100);
        var client = host.Services.GetRequiredService<IBifrostClient>();

        await Parallel.ForAsync(0, 1000, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = Ct }, async (i, ct) =>
            await client.ChatCompletionAsync(Request(), ct));

        Assert.Equal(100, (await AllAsync(host.Services)).Count);
        var store = Assert.IsType<InMemoryRequestLogStore>(host.Services.GetRequiredService<IRequestLogStore>());
        Assert.Equal(100, store.Count);
        Assert.Equal(100, store.Capacity);
        Assert.Equal(1000, host.Services.GetRequiredService<RequestLogWriter>().Written);
    }

    [Fact]
    public async Task Without_a_host_the_queue_stays_bounded_and_drops_what_exceeds_it()
    {
        var services = new ServiceCollection();
        services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            options.RequestLog.MaxEntries = 10; // the queue holds at least 1,000
        });
        await using var provider = services.BuildServiceProvider(); // no host: the writer never runs
        var client = provider.GetRequiredService<IBifrostClient>();
        var request = new ChatCompletionRequest { Model = "local/echo", Messages = [new ChatCompletionMessage { Role = "user", Content = new ChatCompletionContent("hi") }] };
        for (var i = 0; i < 1500; i++)
        {
            await client.ChatCompletionAsync(request, Ct);
        }

        var writer = provider.GetRequiredService<RequestLogWriter>();
        Assert.Equal(500, writer.Dropped);
        Assert.Equal(0, writer.Written);

        // Operators see it: bifrost.records.dropped{bifrost.record.kind=request_log} (and the ledger's, 0 here). In a host
        // the job workers create the operational instruments at start; without one, resolving them does.
        _ = provider.GetRequiredService<Bifrost.Middleware.Diagnostics.OperationalMetrics>();
        using var dropped = new Microsoft.Extensions.Diagnostics.Metrics.Testing.MetricCollector<long>(
            provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), "Bifrost.Middleware", "bifrost.records.dropped");
        dropped.RecordObservableInstruments();
        var byKind = dropped.GetMeasurementSnapshot().ToDictionary(m => (string)m.Tags["bifrost.record.kind"]!, m => m.Value);
        Assert.Equal(500, byKind["request_log"]);
        Assert.Equal(0, byKind["usage"]);
    }

    [Fact]
    public async Task Disabled_the_layer_is_absent_and_nothing_is_recorded()
    {
        await using var host = await StartAsync(Acme(), o => o.RequestLog.Enabled = false);
        using var response = await PostAsync(host.Client, Body());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        Assert.DoesNotContain("request_log", host.Services.GetRequiredService<Bifrost.Middleware.Gateway.GatewayPipeline>().Layers);
        Assert.Empty(await AllAsync(host.Services));
        Assert.Equal(0, host.Services.GetRequiredService<RequestLogWriter>().Written);
    }

    [Theory]
    [InlineData(0, "00:10:00")]
    [InlineData(100, "00:00:01")]
    public async Task Invalid_options_stop_the_start(int maxEntries, string retention)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(o =>
        {
            o.RequestLog.MaxEntries = maxEntries;
            o.RequestLog.Retention = TimeSpan.Parse(retention, System.Globalization.CultureInfo.InvariantCulture);
        }));
        Assert.Contains(maxEntries == 0 ? "MaxEntries" : "Retention", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_content_length_below_one_stops_the_start_for_the_log_and_for_spans()
    {
        var log = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(o => o.RequestLog.MaxStreamContentLength = 0));
        Assert.Contains("MaxStreamContentLength", log.Message, StringComparison.Ordinal);
        var spans = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(o => o.Telemetry.MaxStreamContentLength = -1));
        Assert.Contains("MaxStreamContentLength", spans.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_retention_sweep_prunes_by_age_on_the_gateway_clock()
    {
        var t0 = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(t0);
        await using var host = await StartAsync(Acme(), o => o.RequestLog.Retention = TimeSpan.FromHours(1), s => s.AddSingleton<TimeProvider>(time));
        var client = host.Services.GetRequiredService<IBifrostClient>();
        await client.ChatCompletionAsync(Request(), Ct);
        Assert.Equal(t0, Assert.Single(await AllAsync(host.Services)).Time);

        time.Advance(TimeSpan.FromMinutes(90)); // the sweep (every minute) runs: the first entry is older than the hour kept
        await client.ChatCompletionAsync(Request(), Ct);
        IReadOnlyList<RequestLogEntry> left = [];
        for (var i = 0; i < 200; i++)
        {
            left = await AllAsync(host.Services);
            if (left.Count == 1)
            {
                break;
            }

            await Task.Delay(10, Ct);
        }

        Assert.Equal(t0.AddMinutes(90), Assert.Single(left).Time);
        Assert.Equal(0, await host.Services.GetRequiredService<RequestLogWriter>().PruneAsync(Ct)); // nothing more to prune
    }
}
