using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Jobs;
using ScriptedAdapter = Bifrost.Middleware.Tests.Infrastructure.ScriptedAdapter;

namespace Bifrost.Middleware.Tests.Operations;

/// <summary>
/// The gateway's spans (ActivitySource "Bifrost.Middleware", GenAI semantic conventions): one per operation with the
/// request parameters and what the answer said, one Client span per provider attempt beneath it (retries, fallbacks, the
/// provider key's id), streams ended with their stream, content only when opted in, and a batch's lines summarised.
/// Each test runs its calls under a root span of its own and looks only at spans of that trace (or of its batch).
/// </summary>
public sealed class TracingTests : IDisposable
{
    private static readonly ActivitySource TestSource = new("Bifrost.Middleware.Tests.Tracing");

    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly ActivityListener _listener;

    public TracingTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Bifrost.Middleware" or "Bifrost.Middleware.Tests.Tracing" or "Microsoft.AspNetCore",
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _listener.Dispose();

    private List<Activity> SpansOf(ActivityTraceId trace) => [.. _stopped.Where(a => a.TraceId == trace && a.Source.Name == "Bifrost.Middleware")];

    private static object? Tag(Activity activity, string name) => activity.GetTagItem(name);

    [Fact]
    public async Task A_chat_call_has_an_operation_span_with_the_genai_attributes_and_an_attempt_span_beneath_it()
    {
        await using var host = await GatewayHost.StartAsync(o => o.Providers["local"] = new ProviderOptions { Type = "local", Keys = [new ProviderKeyOptions { Id = "primary", Value = "sk-local-secret" }] });
        var client = host.Services.GetRequiredService<IBifrostClient>();
        using var root = TestSource.StartActivity("test")!;

        var response = await client.ChatCompletionAsync(
            new ChatCompletionRequest { Model = "local/echo", Temperature = 0.25, MaxTokens = 50, Seed = 7, Stop = ["END"], Messages = [ChatCompletionMessage.FromText("user", "one two three")] },
            Ct);
        root.Stop();

        var spans = SpansOf(root.TraceId);
        var operation = Assert.Single(spans, s => s.Kind == ActivityKind.Internal);
        Assert.Equal("chat local/echo", operation.DisplayName);
        Assert.Equal(root.SpanId, operation.ParentSpanId);
        Assert.Equal("chat", Tag(operation, "gen_ai.operation.name"));
        Assert.Equal("local/echo", Tag(operation, "gen_ai.request.model"));
        Assert.Equal("local", Tag(operation, "gen_ai.provider.name"));
        Assert.Equal(response.Id, Tag(operation, "gen_ai.response.id"));
        Assert.Equal(response.Model, Tag(operation, "gen_ai.response.model"));
        Assert.Equal(["stop"], Assert.IsType<string[]>(Tag(operation, "gen_ai.response.finish_reasons")));
        Assert.Equal((long)response.Usage!.PromptTokens, Tag(operation, "gen_ai.usage.input_tokens"));
        Assert.Equal((long)response.Usage.CompletionTokens, Tag(operation, "gen_ai.usage.output_tokens"));
        Assert.Equal(0.25, Tag(operation, "gen_ai.request.temperature"));
        Assert.Equal(50, Tag(operation, "gen_ai.request.max_tokens"));
        Assert.Equal(7L, Tag(operation, "gen_ai.request.seed"));
        Assert.Equal(["END"], Assert.IsType<string[]>(Tag(operation, "gen_ai.request.stop_sequences")));
        Assert.Equal(ActivityStatusCode.Unset, operation.Status);
        Assert.Empty(operation.Events); // no content unless opted in

        var attempt = Assert.Single(spans, s => s.Kind == ActivityKind.Client);
        Assert.Equal(operation.SpanId, attempt.ParentSpanId);
        Assert.Equal("chat local/echo", attempt.DisplayName);
        Assert.Equal("local", Tag(attempt, "gen_ai.provider.name"));
        Assert.Equal("echo", Tag(attempt, "gen_ai.request.model"));
        Assert.Equal(0, Tag(attempt, "bifrost.attempt"));
        Assert.Equal(0, Tag(attempt, "bifrost.fallback_index"));
        Assert.Equal("primary", Tag(attempt, "bifrost.provider.key_id"));
        Assert.Equal("success", Tag(attempt, "bifrost.outcome"));
        Assert.DoesNotContain(attempt.TagObjects, t => t.Value is string s && s.Contains("sk-local-secret", StringComparison.Ordinal));
        Assert.DoesNotContain(operation.TagObjects, t => t.Value is string s && s.Contains("sk-local-secret", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Retries_and_fallbacks_are_one_attempt_span_each_with_its_outcome_and_error()
    {
        var calls = 0;
        var flaky = new ScriptedAdapter
        {
            OnChat = (_, _, _) => throw BifrostErrors.ProviderError(503, BifrostErrors.ApiErrorType, "overloaded", $"busy {Interlocked.Increment(ref calls)}"),
        };
        var other = new ScriptedAdapter();
        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Providers["flaky"] = new ProviderOptions { MaxRetries = 1, RetryBaseDelay = TimeSpan.Zero, RetryMaxDelay = TimeSpan.Zero };
                o.Providers["other"] = new ProviderOptions();
            },
            b => b.AddProvider("flaky", _ => flaky).AddProvider("other", _ => other));
        var client = host.Services.GetRequiredService<IBifrostClient>();
        using var root = TestSource.StartActivity("test")!;

        await client.ChatCompletionAsync(new ChatCompletionRequest { Model = "flaky/m1", Fallbacks = ["other/m2"], Messages = [ChatCompletionMessage.FromText("user", "hi")] }, Ct);
        root.Stop();

        var spans = SpansOf(root.TraceId);
        var operation = Assert.Single(spans, s => s.Kind == ActivityKind.Internal);
        Assert.Equal("other", Tag(operation, "gen_ai.provider.name"));
        var attempts = spans.Where(s => s.Kind == ActivityKind.Client).OrderBy(s => s.StartTimeUtc).ToList();
        Assert.Equal(
            [("flaky", 0, 0, "retry"), ("flaky", 0, 1, "fallback"), ("other", 1, 0, "success")],
            attempts.Select(a => ((string)Tag(a, "gen_ai.provider.name")!, (int)Tag(a, "bifrost.fallback_index")!, (int)Tag(a, "bifrost.attempt")!, (string)Tag(a, "bifrost.outcome")!)).ToList());
        Assert.All(attempts, a => Assert.Equal(operation.SpanId, a.ParentSpanId));
        Assert.All(attempts.Take(2), a =>
        {
            Assert.Equal("overloaded", Tag(a, "error.type"));
            Assert.Equal(503, Tag(a, "bifrost.status_code"));
            Assert.Equal(ActivityStatusCode.Error, a.Status);
        });
        Assert.Equal(ActivityStatusCode.Unset, attempts[2].Status);
    }

    [Fact]
    public async Task A_failed_call_marks_its_operation_span_with_the_error_type()
    {
        await using var host = await GatewayHost.StartAsync();
        var client = host.Services.GetRequiredService<IBifrostClient>();
        using var root = TestSource.StartActivity("test")!;

        var request = new ChatCompletionRequest { Model = "local/echo", Messages = [ChatCompletionMessage.FromText("user", "x")], Metadata = new Dictionary<string, string> { ["local_status"] = "400" } };
        var error = await Assert.ThrowsAsync<BifrostException>(() => client.ChatCompletionAsync(request, Ct));
        root.Stop();

        var operation = Assert.Single(SpansOf(root.TraceId), s => s.Kind == ActivityKind.Internal);
        Assert.Equal(ActivityStatusCode.Error, operation.Status);
        Assert.Equal(error.Error.Error.Code, Tag(operation, "error.type"));
        Assert.Equal(400, Tag(operation, "bifrost.status_code"));
        Assert.Equal("local", Tag(operation, "gen_ai.provider.name"));
        var attempt = Assert.Single(SpansOf(root.TraceId), s => s.Kind == ActivityKind.Client);
        Assert.Equal("error", Tag(attempt, "bifrost.outcome"));
    }

    [Fact]
    public async Task A_stream_span_ends_with_its_stream_and_carries_its_time_to_first_chunk_and_usage()
    {
        await using var host = await GatewayHost.StartAsync();
        var client = host.Services.GetRequiredService<IBifrostClient>();
        using var root = TestSource.StartActivity("test")!;

        var chunks = 0;
        var lastChunkAt = DateTime.MinValue;
        await foreach (var chunk in client.ChatCompletionStreamAsync(new ChatCompletionRequest { Model = "local/echo", StreamOptions = new() { IncludeUsage = true }, Messages = [ChatCompletionMessage.FromText("user", "one two three four")] }, Ct))
        {
            chunks++;
            lastChunkAt = DateTime.UtcNow;
            Assert.DoesNotContain(SpansOf(root.TraceId), s => s.Kind == ActivityKind.Internal); // still open while chunks flow
        }

        root.Stop();
        Assert.True(chunks > 1);
        var spans = SpansOf(root.TraceId);
        var operation = Assert.Single(spans, s => s.Kind == ActivityKind.Internal);
        Assert.Equal(true, Tag(operation, "bifrost.stream"));
        Assert.True((double)Tag(operation, "bifrost.time_to_first_chunk")! > 0);
        Assert.True((long)Tag(operation, "gen_ai.usage.output_tokens")! > 0);
        var attempt = Assert.Single(spans, s => s.Kind == ActivityKind.Client);
        Assert.Equal(operation.SpanId, attempt.ParentSpanId);
        // The attempt that streamed ends with its stream: after the caller had its last chunk (not when the stream was opened).
        Assert.True(attempt.StartTimeUtc + attempt.Duration >= lastChunkAt, $"the attempt ended {(lastChunkAt - (attempt.StartTimeUtc + attempt.Duration)).TotalMilliseconds} ms before the last chunk reached the caller");
    }

    [Fact]
    public async Task Message_content_is_on_the_span_only_when_opted_in()
    {
        await using var host = await GatewayHost.StartAsync(o => o.Telemetry.CaptureMessageContent = true);
        var client = host.Services.GetRequiredService<IBifrostClient>();
        using var root = TestSource.StartActivity("test")!;

        await client.ChatCompletionAsync(new ChatCompletionRequest { Model = "local/echo", Messages = [ChatCompletionMessage.FromText("user", "the secret recipe")], Metadata = new Dictionary<string, string> { ["local_reply"] = "flour and water" } }, Ct);
        root.Stop();

        var operation = Assert.Single(SpansOf(root.TraceId), s => s.Kind == ActivityKind.Internal);
        var details = Assert.Single(operation.Events);
        Assert.Equal("gen_ai.client.inference.operation.details", details.Name);
        var tags = details.Tags.ToDictionary(t => t.Key, t => t.Value);
        using var input = JsonDocument.Parse((string)tags["gen_ai.input.messages"]!);
        Assert.Equal("the secret recipe", input.RootElement[0].GetProperty("content").GetString());
        using var output = JsonDocument.Parse((string)tags["gen_ai.output.messages"]!);
        Assert.Equal("flour and water", output.RootElement[0].GetProperty("message").GetProperty("content").GetString());
    }

    private async Task<Dictionary<string, object?>?> StreamedContentAsync(GatewayHost host, string model, string? reply = null)
    {
        var client = host.Services.GetRequiredService<IBifrostClient>();
        using var root = TestSource.StartActivity("test")!;
        var request = new ChatCompletionRequest { Model = model, StreamOptions = new() { IncludeUsage = true }, Messages = [ChatCompletionMessage.FromText("user", "the secret recipe")] };
        if (reply is not null)
        {
            request.Metadata = new Dictionary<string, string> { ["local_reply"] = reply };
        }

        var chunks = 0;
        await foreach (var chunk in client.ChatCompletionStreamAsync(request, Ct))
        {
            chunks++;
        }

        root.Stop();
        Assert.True(chunks > 3, $"{chunks} chunks");
        var operation = Assert.Single(SpansOf(root.TraceId), s => s.Kind == ActivityKind.Internal);
        var details = operation.Events.Where(e => e.Name == "gen_ai.client.inference.operation.details").ToList();
        return details.Count == 0 ? null : Assert.Single(details).Tags.ToDictionary(t => t.Key, t => t.Value);
    }

    [Fact]
    public async Task A_streams_output_is_on_the_span_when_it_ends_assembled_with_its_tool_calls_cut_at_the_limit_and_only_when_opted_in()
    {
        const string Reply = "flour and water and a pinch of salt";
        await using (var off = await GatewayHost.StartAsync())
        {
            Assert.Null(await StreamedContentAsync(off, "local/echo", Reply));
        }

        await using (var on = await GatewayHost.StartAsync(o => o.Telemetry.CaptureMessageContent = true, b => b.AddProvider("acme", _ => RequestLog.RequestLogTests.ToolAcme())))
        {
            var text = (await StreamedContentAsync(on, "local/echo", Reply))!;
            using (var input = JsonDocument.Parse((string)text["gen_ai.input.messages"]!))
            {
                Assert.Equal("the secret recipe", input.RootElement[0].GetProperty("content").GetString());
            }

            using (var output = JsonDocument.Parse((string)text["gen_ai.output.messages"]!))
            {
                var choice = Assert.Single(output.RootElement.EnumerateArray());
                Assert.Equal(Reply, choice.GetProperty("message").GetProperty("content").GetString()); // the pieces joined
                Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
            }

            Assert.Equal(false, text["bifrost.output.truncated"]);

            var tools = (await StreamedContentAsync(on, "acme/m1"))!;
            using var toolOutput = JsonDocument.Parse((string)tools["gen_ai.output.messages"]!);
            var message = toolOutput.RootElement[0].GetProperty("message");
            Assert.Equal("Let me check pin-4711.", message.GetProperty("content").GetString());
            Assert.Equal("tool_calls", toolOutput.RootElement[0].GetProperty("finish_reason").GetString());
            var calls = message.GetProperty("tool_calls");
            Assert.Equal(2, calls.GetArrayLength());
            Assert.Equal("lookup", calls[0].GetProperty("function").GetProperty("name").GetString());
            Assert.Equal("""{"city":"Oslo"}""", calls[0].GetProperty("function").GetProperty("arguments").GetString());
            Assert.Equal("call_2", calls[1].GetProperty("id").GetString());
        }

        await using var capped = await GatewayHost.StartAsync(o =>
        {
            o.Telemetry.CaptureMessageContent = true;
            o.Telemetry.MaxStreamContentLength = 5;
        });
        var cut = (await StreamedContentAsync(capped, "local/echo", Reply))!;
        using var cutOutput = JsonDocument.Parse((string)cut["gen_ai.output.messages"]!);
        Assert.Equal("flour", cutOutput.RootElement[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(true, cut["bifrost.output.truncated"]);
    }

    [Fact]
    public async Task An_async_jobs_run_span_links_to_the_span_that_submitted_it_and_holds_the_gateway_span()
    {
        await using var host = await GatewayHost.StartAsync();
        const string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";

        // The caller's trace context reaches the server span (ASP.NET Core), whose id the job keeps.
        var id = await host.SubmitAsync("""{"model":"local/echo","messages":[{"role":"user","content":"later"}]}""", ("traceparent", $"00-{traceId}-00f067aa0ba902b7-01"));
        var (status, _) = await host.PollUntilFinishedAsync(id);
        Assert.Equal(System.Net.HttpStatusCode.OK, status);

        var server = Assert.Single(_stopped, a => a.Source.Name == "Microsoft.AspNetCore" && a.TraceId.ToHexString() == traceId && a.GetTagItem("url.path") is null or "/openai/v1/chat/completions" && a.OperationName.Contains("HttpRequestIn", StringComparison.Ordinal) && a.StartTimeUtc == _stopped.Where(b => b.TraceId.ToHexString() == traceId && b.Source.Name == "Microsoft.AspNetCore").Min(b => b.StartTimeUtc));
        Activity? job = null;
        for (var i = 0; i < 100 && job is null; i++)
        {
            job = _stopped.FirstOrDefault(a => a.Source.Name == "Bifrost.Middleware" && Equals(a.GetTagItem("bifrost.job.id"), id) && a.Kind == ActivityKind.Consumer);
            if (job is null)
            {
                await Task.Delay(50, Ct);
            }
        }

        Assert.NotNull(job);
        Assert.Equal("job chat_completion", job.DisplayName);
        var link = Assert.Single(job.Links);
        Assert.Equal(server.TraceId, link.Context.TraceId);
        Assert.Equal(server.SpanId, link.Context.SpanId);
        Assert.NotEqual(server.TraceId, job.TraceId); // a trace of its own, led to by the link
        var operation = Assert.Single(SpansOf(job.TraceId), s => s.Kind == ActivityKind.Internal);
        Assert.Equal(job.SpanId, operation.ParentSpanId);
        Assert.Equal(id, Tag(operation, "bifrost.job.id"));
    }

    [Fact]
    public async Task A_batch_has_one_span_with_its_counts_and_failures_and_only_its_first_lines_traced()
    {
        await using var host = await FileBatchHost.StartAsync(o =>
        {
            o.Batches.Concurrency = 1;
            o.Telemetry.BatchLineSpans = 3;
            o.Telemetry.BatchFailureEvents = 1;
        });
        var lines = Enumerable.Range(1, 12).Select(i => BatchLines.Chat($"line-{i:D2}", metadata: i is 5 or 9 ? [("local_status", "400")] : null));
        var file = await host.UploadOkAsync(BatchLines.Jsonl(lines));
        var created = await host.CreateBatchAsync(file.GetProperty("id").GetString()!);
        var id = created.GetProperty("id").GetString()!;
        var done = await host.WaitForEndAsync(id);
        Assert.Equal("completed", done.GetProperty("status").GetString());

        Activity? batch = null;
        for (var i = 0; i < 100 && batch is null; i++)
        {
            batch = _stopped.FirstOrDefault(a => Equals(a.GetTagItem("bifrost.batch.id"), id));
            if (batch is null)
            {
                await Task.Delay(50, Ct);
            }
        }

        Assert.NotNull(batch);
        Assert.Equal($"batch {id}", batch.DisplayName);
        Assert.Equal(12, Tag(batch, "bifrost.batch.lines"));
        Assert.Equal(10, Tag(batch, "bifrost.batch.lines.succeeded"));
        Assert.Equal(2, Tag(batch, "bifrost.batch.lines.failed"));
        Assert.Equal(3, Tag(batch, "bifrost.batch.lines.traced"));
        var failure = Assert.Single(batch.Events); // BatchFailureEvents = 1
        Assert.Equal("bifrost.batch.line.failed", failure.Name);
        Assert.Equal("line-05", failure.Tags.First(t => t.Key == "bifrost.batch.custom_id").Value);

        var lineSpans = SpansOf(batch.TraceId).Where(s => s.Kind == ActivityKind.Internal && s.ParentSpanId == batch.SpanId).ToList();
        Assert.Equal(3, lineSpans.Count);
        Assert.All(lineSpans, s => Assert.Equal("chat", Tag(s, "gen_ai.operation.name")));
        Assert.Equal(3, SpansOf(batch.TraceId).Count(s => s.Kind == ActivityKind.Client));
    }
}
