using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;

namespace Bifrost.Middleware.PostgreSql.Tests.Infrastructure;

/// <summary>
/// A fake OpenAI-compatible upstream on 127.0.0.1 (Kestrel): <c>POST /v1/chat/completions</c> answers with the last
/// message's content echoed, after <see cref="Delay"/>, and counts the calls it <em>answered</em> per content. A gate
/// can hold every new call before it is answered: a caller killed while its calls are held never got an answer, so
/// those calls are not counted (they did not run); the gate lets a test kill a gateway without a call in the middle
/// of being answered.
/// </summary>
internal sealed class FakeUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _answered = new(StringComparer.Ordinal);
    private readonly Lock _gateLock = new();
    private TaskCompletionSource _gate = NewOpenGate();
    private int _held;
    private int _aborted;
    private long _lastAnsweredTicks;

    private FakeUpstream(WebApplication app) => _app = app;

    /// <summary>The base URL to configure as the provider's <c>BaseUrl</c> (with <c>/v1</c>).</summary>
    public string BaseUrl { get; private set; } = string.Empty;

    /// <summary>How long each call takes before its answer.</summary>
    public TimeSpan Delay { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Calls waiting at the closed gate now.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>Calls whose caller went away before they were answered (not counted).</summary>
    public int Aborted => Volatile.Read(ref _aborted);

    /// <summary>When the last answer was sent.</summary>
    public DateTime LastAnswered => new(Interlocked.Read(ref _lastAnsweredTicks), DateTimeKind.Utc);

    /// <summary>Answered calls per message content.</summary>
    public IReadOnlyDictionary<string, int> Answered => _answered;

    public int TotalAnswered => _answered.Values.Sum();

    public static async Task<FakeUpstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var upstream = new FakeUpstream(app);
        app.MapPost("/v1/chat/completions", upstream.ChatAsync);
        await app.StartAsync();
        var address = app.Urls.Single();
        upstream.BaseUrl = address.TrimEnd('/') + "/v1";
        return upstream;
    }

    /// <summary>Holds every call not yet answered until <see cref="OpenGate"/>.</summary>
    public void CloseGate()
    {
        lock (_gateLock)
        {
            if (_gate.Task.IsCompleted)
            {
                _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public void OpenGate()
    {
        lock (_gateLock)
        {
            _gate.TrySetResult();
        }
    }

    public int Count(string content) => _answered.TryGetValue(content, out var n) ? n : 0;

    public async ValueTask DisposeAsync()
    {
        OpenGate();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static TaskCompletionSource NewOpenGate()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gate.SetResult();
        return gate;
    }

    private async Task ChatAsync(HttpContext context)
    {
        var aborted = context.RequestAborted;
        using var body = await JsonDocument.ParseAsync(context.Request.Body, default, aborted);
        var messages = body.RootElement.GetProperty("messages");
        var content = messages[messages.GetArrayLength() - 1].GetProperty("content").GetString() ?? string.Empty;
        var model = body.RootElement.GetProperty("model").GetString();
        try
        {
            await Task.Delay(Delay, aborted);
            Task gate;
            lock (_gateLock)
            {
                gate = _gate.Task;
            }

            if (!gate.IsCompleted)
            {
                Interlocked.Increment(ref _held);
                try
                {
                    await gate.WaitAsync(aborted);
                }
                finally
                {
                    Interlocked.Decrement(ref _held);
                }
            }

            aborted.ThrowIfCancellationRequested();
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref _aborted);
            return;
        }

        _answered.AddOrUpdate(content, 1, static (_, n) => n + 1);
        Interlocked.Exchange(ref _lastAnsweredTicks, DateTime.UtcNow.Ticks);
        context.Response.StatusCode = (int)HttpStatusCode.OK;
        await context.Response.WriteAsJsonAsync(new
        {
            id = "chatcmpl-" + Guid.NewGuid().ToString("N")[..12],
            @object = "chat.completion",
            created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            model,
            choices = new[] { new { index = 0, message = new { role = "assistant", content = "echo: " + content }, finish_reason = "stop" } },
            usage = new { prompt_tokens = 3, completion_tokens = 3, total_tokens = 6 },
        }, CancellationToken.None);
    }
}
