using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>
/// A real OpenAI-compatible HTTP server (Kestrel on 127.0.0.1, a free port) for testing upstream adapters.
/// Every request is recorded (path, headers, JSON body) and watched for cancellation. Each request is answered by
/// the next scripted response in the queue (<see cref="Enqueue"/>), else by <see cref="Handler"/>, else by a
/// default: a chat completion (JSON or SSE, per the request's <c>stream</c>) or a model list.
/// </summary>
public sealed class FakeOpenAIUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<UpstreamResponse> _queue = new();
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private readonly Channel<RecordedRequest> _arrivals = Channel.CreateUnbounded<RecordedRequest>();
    private readonly CancellationTokenSource _stopping = new();

    private FakeOpenAIUpstream(WebApplication app) => _app = app;

    /// <summary>Answers one request; the delegate gets the context, the recorded request and a token cancelled when the request is aborted or the server stops.</summary>
    public delegate Task UpstreamResponse(HttpContext context, RecordedRequest request, CancellationToken cancellationToken);

    /// <summary>The port Kestrel bound.</summary>
    public int Port { get; private set; }

    /// <summary>The base URL to configure as the provider's <c>BaseUrl</c> (with <c>/v1</c>).</summary>
    public string BaseUrl => $"http://127.0.0.1:{Port}/v1";

    /// <summary>Answers requests when the queue is empty; null means the default answers.</summary>
    public UpstreamResponse? Handler { get; set; }

    /// <summary>Every request received so far, in arrival order.</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

    /// <summary>Requests to <c>chat/completions</c> received so far.</summary>
    public int ChatCalls => _requests.Count(static r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));

    public static async Task<FakeOpenAIUpstream> StartAsync(UpstreamResponse? handler = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(static k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.Configure<HostOptions>(static o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        var upstream = new FakeOpenAIUpstream(app) { Handler = handler };
        app.Run(upstream.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        upstream.Port = new Uri(address).Port;
        return upstream;
    }

    /// <summary>Queues scripted responses, used in order by the next requests.</summary>
    public FakeOpenAIUpstream Enqueue(params UpstreamResponse[] responses)
    {
        foreach (var response in responses)
        {
            _queue.Enqueue(response);
        }

        return this;
    }

    /// <summary>Waits for the next request to arrive (each request is returned once, in arrival order).</summary>
    public async Task<RecordedRequest> WaitForRequestAsync(TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(10));
        return await _arrivals.Reader.ReadAsync(cts.Token);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, context.RequestAborted);
        var raw = Encoding.UTF8.GetString(buffer.ToArray());
        JsonElement? body = null;
        if (raw.Length > 0)
        {
            try
            {
                body = JsonDocument.Parse(raw).RootElement.Clone();
            }
            catch (JsonException)
            {
                // recorded as raw text only
            }
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in request.Headers)
        {
            headers[name] = value.ToString();
        }

        var recorded = new RecordedRequest(request.Method, request.Path.Value ?? string.Empty, headers, raw, body) { RawBytes = buffer.ToArray() };
        using var abortRegistration = context.RequestAborted.Register(static state => ((RecordedRequest)state!).MarkAborted(), recorded);
        _requests.Enqueue(recorded);
        _arrivals.Writer.TryWrite(recorded);

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var respond = _queue.TryDequeue(out var scripted) ? scripted : Handler ?? DefaultAsync;
        try
        {
            await respond(context, recorded, linked.Token);
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            // the caller went away (or the server stops): nothing to answer
        }
    }

    private static Task DefaultAsync(HttpContext context, RecordedRequest request, CancellationToken cancellationToken)
    {
        if (request.Path.EndsWith("/models", StringComparison.Ordinal))
        {
            return FakeResponses.Json(200, """{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1,"owned_by":"system"}]}""")(context, request, cancellationToken);
        }

        var model = request.Body?.TryGetProperty("model", out var m) == true ? m.GetString() : "unknown";
        if (request.Body?.TryGetProperty("stream", out var s) == true && s.ValueKind == JsonValueKind.True)
        {
            return FakeResponses.Sse(FakeResponses.Chunk(model, role: "assistant", content: "Hello"), FakeResponses.Chunk(model, finishReason: "stop"))(context, request, cancellationToken);
        }

        return FakeResponses.Json(200, FakeResponses.Completion(model, "Hello"))(context, request, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
    }
}

/// <summary>One request the fake upstream received.</summary>
public sealed class RecordedRequest(string method, string path, IReadOnlyDictionary<string, string> headers, string rawBody, JsonElement? body)
{
    private readonly TaskCompletionSource _aborted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Method { get; } = method;

    /// <summary>The path, e.g. <c>/v1/chat/completions</c>.</summary>
    public string Path { get; } = path;

    public IReadOnlyDictionary<string, string> Headers { get; } = headers;

    public string RawBody { get; } = rawBody;

    /// <summary>The body's exact bytes (a multipart upload's binary parts do not survive <see cref="RawBody"/>'s UTF-8 decoding).</summary>
    public byte[] RawBytes { get; init; } = [];

    /// <summary>The body as JSON; null when it was empty or not JSON.</summary>
    public JsonElement? Body { get; } = body;

    /// <summary>Completes when <c>HttpContext.RequestAborted</c> fires for this request (the caller went away).</summary>
    public Task Aborted => _aborted.Task;

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

    internal void MarkAborted() => _aborted.TrySetResult();
}

/// <summary>Scripted answers for <see cref="FakeOpenAIUpstream"/>.</summary>
public static class FakeResponses
{
    /// <summary>A JSON body with a status and optional extra headers.</summary>
    public static FakeOpenAIUpstream.UpstreamResponse Json(int status, string json, params (string Name, string Value)[] headers) =>
        Body(status, "application/json", json, headers);

    /// <summary>A body of any content type.</summary>
    public static FakeOpenAIUpstream.UpstreamResponse Body(int status, string contentType, string text, params (string Name, string Value)[] headers) =>
        async (context, _, cancellationToken) =>
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = contentType;
            foreach (var (name, value) in headers)
            {
                context.Response.Headers[name] = value;
            }

            await context.Response.WriteAsync(text, cancellationToken);
        };

    /// <summary>An OpenAI error body (<c>{"error": {...}}</c>) with a status.</summary>
    public static FakeOpenAIUpstream.UpstreamResponse Error(int status, string message = "upstream failed", string type = "server_error", string? code = null, string? param = null, params (string Name, string Value)[] headers) =>
        Json(status, JsonSerializer.Serialize(new Dictionary<string, object?> { ["error"] = new Dictionary<string, object?> { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code } }), headers);

    /// <summary>An SSE stream: each item is one <c>data:</c> event, then <c>data: [DONE]</c>.</summary>
    public static FakeOpenAIUpstream.UpstreamResponse Sse(params string[] events) =>
        async (context, _, cancellationToken) =>
        {
            await StartSseAsync(context, cancellationToken);
            foreach (var data in events)
            {
                await WriteEventAsync(context, data, cancellationToken);
            }

            await WriteEventAsync(context, "[DONE]", cancellationToken);
        };

    /// <summary>An SSE stream that sends the events, waits for <paramref name="release"/>, then drops the connection (no [DONE]).</summary>
    public static FakeOpenAIUpstream.UpstreamResponse SseThenDrop(Task release, params string[] events) =>
        async (context, _, cancellationToken) =>
        {
            await StartSseAsync(context, cancellationToken);
            foreach (var data in events)
            {
                await WriteEventAsync(context, data, cancellationToken);
            }

            await release.WaitAsync(cancellationToken);
            context.Abort();
        };

    /// <summary>An SSE stream that sends the events and then hangs until the request is aborted.</summary>
    public static FakeOpenAIUpstream.UpstreamResponse SseThenHang(params string[] events) =>
        async (context, _, cancellationToken) =>
        {
            await StartSseAsync(context, cancellationToken);
            foreach (var data in events)
            {
                await WriteEventAsync(context, data, cancellationToken);
            }

            await Task.Delay(Timeout.Infinite, cancellationToken);
        };

    /// <summary>Never answers; ends when the request is aborted.</summary>
    public static FakeOpenAIUpstream.UpstreamResponse Hang() =>
        static (_, _, cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);

    /// <summary>Waits, then answers with <paramref name="then"/>.</summary>
    public static FakeOpenAIUpstream.UpstreamResponse Delay(TimeSpan delay, FakeOpenAIUpstream.UpstreamResponse then) =>
        async (context, request, cancellationToken) =>
        {
            await Task.Delay(delay, cancellationToken);
            await then(context, request, cancellationToken);
        };

    /// <summary>A <c>chat.completion</c> body.</summary>
    public static string Completion(string? model, string content, string id = "chatcmpl-fake") =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["id"] = id,
            ["object"] = "chat.completion",
            ["created"] = 1_700_000_000,
            ["model"] = model,
            ["choices"] = new[] { new Dictionary<string, object?> { ["index"] = 0, ["message"] = new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = content }, ["finish_reason"] = "stop" } },
            ["usage"] = new Dictionary<string, object?> { ["prompt_tokens"] = 5, ["completion_tokens"] = 2, ["total_tokens"] = 7 },
        });

    /// <summary>A <c>chat.completion.chunk</c> body with one choice.</summary>
    public static string Chunk(string? model, string? role = null, string? content = null, string? finishReason = null, string id = "chatcmpl-fake")
    {
        var delta = new Dictionary<string, object?>();
        if (role is not null)
        {
            delta["role"] = role;
        }

        if (content is not null)
        {
            delta["content"] = content;
        }

        return JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["id"] = id,
            ["object"] = "chat.completion.chunk",
            ["created"] = 1_700_000_000,
            ["model"] = model,
            ["choices"] = new[] { new Dictionary<string, object?> { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finishReason } },
        });
    }

    /// <summary>The final usage chunk (<c>choices: []</c>) of <c>stream_options.include_usage</c>.</summary>
    public static string UsageChunk(string? model, int prompt, int completion, string id = "chatcmpl-fake") =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["id"] = id,
            ["object"] = "chat.completion.chunk",
            ["created"] = 1_700_000_000,
            ["model"] = model,
            ["choices"] = Array.Empty<object>(),
            ["usage"] = new Dictionary<string, object?> { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion },
        });

    private static async Task StartSseAsync(HttpContext context, CancellationToken cancellationToken)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream";
        await context.Response.StartAsync(cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken); // Kestrel sends the headers only on a flush or a write
    }

    private static async Task WriteEventAsync(HttpContext context, string data, CancellationToken cancellationToken)
    {
        await context.Response.WriteAsync("data: " + data + "\n\n", cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
    }
}
