using System.Collections.Concurrent;

namespace Bifrost.Middleware.Testing;

/// <summary>
/// The scripts of a test: one <see cref="ScriptedProvider"/> per provider name, and every request they received.
/// Name the providers (<c>scripts["openai"]</c>) before the host is built — each named one replaces the app's provider
/// of that name (or adds it) — then queue answers at any time and assert on <see cref="Requests"/>.
/// Safe to use from several threads.
/// </summary>
public sealed class BifrostScripts
{
    private readonly ConcurrentDictionary<string, ScriptedProvider> _providers = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private volatile bool _registered;

    /// <summary>The script of provider <paramref name="provider"/>, created on first use.</summary>
    /// <param name="provider">The provider name (the prefix of <c>provider/model</c>).</param>
    /// <exception cref="InvalidOperationException">A provider named for the first time after a host registered these scripts (it would not be routed to).</exception>
    public ScriptedProvider this[string provider]
    {
        get
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(provider);
            if (_providers.TryGetValue(provider, out var existing))
            {
                return existing;
            }

            if (provider.Contains('/', StringComparison.Ordinal))
            {
                throw new ArgumentException($"Provider name '{provider}' must not contain '/'.", nameof(provider));
            }

            if (_registered)
            {
                throw new InvalidOperationException(
                    $"Provider '{provider}' was scripted after a host registered these scripts (scripted: {string.Join(", ", Providers)}); name every provider, e.g. scripts[\"{provider}\"], before the host is built (before the first CreateClient).");
            }

            return _providers.GetOrAdd(provider, static name => new ScriptedProvider(name));
        }
    }

    /// <summary>The scripted provider names.</summary>
    public IReadOnlyCollection<string> Providers => [.. _providers.Keys.Order(StringComparer.OrdinalIgnoreCase)];

    /// <summary>Every attempt on every scripted provider, in the order they arrived.</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

    /// <summary>The names registered with a host; from now on no new name can be added.</summary>
    internal IReadOnlyCollection<string> Register()
    {
        _registered = true;
        return Providers;
    }

    internal ScriptedProvider? Find(string provider) => _providers.GetValueOrDefault(provider);

    internal void Record(ScriptedProvider provider, RecordedRequest request)
    {
        _requests.Enqueue(request);
        provider.Record(request);
    }
}

/// <summary>
/// The script of one provider: a queue of answers taken one per attempt (retries and fallbacks each take one), what to
/// answer when the queue is empty (by default the last user message, echoed), and the requests it received.
/// </summary>
public sealed class ScriptedProvider
{
    private readonly ConcurrentQueue<ScriptedResponse> _queue = new();
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private volatile ScriptedResponse? _whenEmpty;
    private volatile bool _failWhenEmpty;

    internal ScriptedProvider(string name) => Name = name;

    /// <summary>The provider name.</summary>
    public string Name { get; }

    /// <summary>Answers queued and not yet taken.</summary>
    public int Pending => _queue.Count;

    /// <summary>The attempts this provider received, in order.</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

    /// <summary>Queues an answer for the next attempt.</summary>
    /// <param name="response">The answer.</param>
    /// <returns>This script, to chain.</returns>
    public ScriptedProvider Enqueue(ScriptedResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        _queue.Enqueue(response);
        return this;
    }

    /// <summary>Queues answers for the next attempts, in order.</summary>
    /// <param name="responses">The answers.</param>
    /// <returns>This script, to chain.</returns>
    public ScriptedProvider Enqueue(params IEnumerable<ScriptedResponse> responses)
    {
        ArgumentNullException.ThrowIfNull(responses);
        foreach (var response in responses)
        {
            Enqueue(response);
        }

        return this;
    }

    /// <summary>Queues a text answer (<see cref="ScriptedResponse.Text"/>).</summary>
    /// <param name="content">The assistant's answer.</param>
    /// <returns>This script, to chain.</returns>
    public ScriptedProvider Reply(string content) => Enqueue(ScriptedResponse.Text(content));

    /// <summary>Queues an answer calling one tool (<see cref="ScriptedResponse.ToolCall"/>).</summary>
    /// <param name="name">The function name.</param>
    /// <param name="argumentsJson">The arguments as JSON text.</param>
    /// <returns>This script, to chain.</returns>
    public ScriptedProvider ReplyWithToolCall(string name, string argumentsJson) => Enqueue(ScriptedResponse.ToolCall(name, argumentsJson));

    /// <summary>Queues a failure (<see cref="ScriptedResponse.Error"/>).</summary>
    /// <param name="statusCode">The HTTP status (429 and 5xx are retried, then fall back).</param>
    /// <param name="message">The provider's message.</param>
    /// <param name="retryAfter">The provider's Retry-After.</param>
    /// <returns>This script, to chain.</returns>
    public ScriptedProvider Fail(int statusCode, string? message = null, TimeSpan? retryAfter = null) =>
        Enqueue(ScriptedResponse.Error(statusCode, message, retryAfter));

    /// <summary>Sets the answer given whenever the queue is empty (instead of echoing the last user message).</summary>
    /// <param name="response">The answer (it is never used up).</param>
    /// <returns>This script, to chain.</returns>
    public ScriptedProvider WhenEmpty(ScriptedResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        _whenEmpty = response;
        _failWhenEmpty = false;
        return this;
    }

    /// <summary>
    /// Makes an attempt that finds the queue empty fail with a 500 <c>scripted_queue_empty</c> (not retried) naming the
    /// provider, instead of echoing: for tests that must account for every call.
    /// </summary>
    /// <returns>This script, to chain.</returns>
    public ScriptedProvider FailWhenEmpty()
    {
        _failWhenEmpty = true;
        _whenEmpty = null;
        return this;
    }

    /// <summary>The next answer: the queue's head, else the empty-queue answer (null: echo).</summary>
    internal ScriptedResponse? Next()
    {
        if (_queue.TryDequeue(out var response))
        {
            return response;
        }

        if (_failWhenEmpty)
        {
            throw new BifrostException(new BifrostError
            {
                IsBifrostError = false,
                StatusCode = 500,
                Error = new BifrostErrorDetail
                {
                    Type = "api_error",
                    Code = "scripted_queue_empty",
                    Message = $"Scripted provider '{Name}' has no answer queued for request {_requests.Count} (FailWhenEmpty); queue one with scripts[\"{Name}\"].Reply(...).",
                },
            });
        }

        return _whenEmpty;
    }

    internal void Record(RecordedRequest request) => _requests.Enqueue(request);
}
