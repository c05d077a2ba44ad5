namespace Bifrost.Middleware;

/// <summary>
/// A plugin in the spirit of Bifrost's: its pre-hook sees every request before routing and may change it, or answer
/// it at once (<see cref="BifrostPluginContext.Respond"/>, <see cref="BifrostPluginContext.Reject"/>) so the provider is
/// never called; its post-hook sees the answer (or the error) and may change or replace it. Plugins run in registration
/// order for pre-hooks and in reverse order for post-hooks; when a pre-hook answers, only the plugins that already ran
/// get their post-hook. Hooks apply alike to synchronous, streamed (post-hook once per chunk), async and batch calls,
/// because all of them go through <see cref="IBifrostClient"/>.
/// </summary>
/// <remarks>Register with <c>AddPlugin&lt;TPlugin&gt;()</c> or <c>AddPlugin(instance)</c> on the builder returned by <c>AddBifrost</c>. Plugins are singletons.</remarks>
public interface IBifrostPlugin
{
    /// <summary>The plugin's name, for logs.</summary>
    string Name => GetType().Name;

    /// <summary>Runs before routing. Change <see cref="BifrostPluginContext.Request"/> in place or replace it (same type), or answer the request.</summary>
    /// <param name="context">The request and its state.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask PreHookAsync(BifrostPluginContext context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>
    /// Runs after the answer. <see cref="BifrostPluginContext.Response"/> holds the response (for streams: the current
    /// chunk) and <see cref="BifrostPluginContext.Error"/> the error, if the call failed; change or replace either
    /// (setting <see cref="BifrostPluginContext.Error"/> to null with a response recovers from the error).
    /// </summary>
    /// <param name="context">The request, its answer and state.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask PostHookAsync(BifrostPluginContext context, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>What a plugin sees of one call.</summary>
public sealed class BifrostPluginContext
{
    internal BifrostPluginContext(string requestType, object request, bool isStream)
    {
        RequestType = requestType;
        Request = request;
        IsStream = isStream;
    }

    /// <summary><c>chat_completion</c>, <c>chat_completion_stream</c>, <c>embedding</c>, <c>text_completion</c>, <c>responses</c>, ...</summary>
    public string RequestType { get; }

    /// <summary>Whether the call is streamed (post-hooks then run once per chunk).</summary>
    public bool IsStream { get; }

    /// <summary>
    /// The request: a <see cref="ChatCompletionRequest"/>, <see cref="EmbeddingRequest"/>, <see cref="TextCompletionRequest"/>
    /// or <see cref="ResponsesRequest"/>. A replacement must be of the same type.
    /// </summary>
    public object Request { get; set; }

    /// <summary>
    /// The response (in post-hooks; for streams the current chunk, e.g. a <see cref="ChatCompletionChunk"/>), or the
    /// answer a pre-hook gave with <see cref="Respond"/>.
    /// </summary>
    public object? Response { get; set; }

    /// <summary>The error, when the call failed or a pre-hook rejected it.</summary>
    public BifrostException? Error { get; set; }

    /// <summary>State shared by the hooks of this call.</summary>
    public IDictionary<string, object?> Items { get; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>Whether a pre-hook answered the request (no provider is called).</summary>
    public bool IsShortCircuited { get; private set; }

    /// <summary>Answers the request from a pre-hook (e.g. a cache hit); the provider is not called.</summary>
    /// <param name="response">The answer, of the call's response type (for streams: a full response or a chunk).</param>
    public void Respond(object response)
    {
        Response = response ?? throw new ArgumentNullException(nameof(response));
        Error = null;
        IsShortCircuited = true;
    }

    /// <summary>Rejects the request from a pre-hook (e.g. a guardrail); the provider is not called.</summary>
    /// <param name="error">The error the caller gets.</param>
    public void Reject(BifrostException error)
    {
        Error = error ?? throw new ArgumentNullException(nameof(error));
        Response = null;
        IsShortCircuited = true;
    }
}
