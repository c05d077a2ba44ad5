namespace Bifrost.Middleware.Plugins;

/// <summary>
/// A plugin in the spirit of Bifrost's: its pre-hook sees every request before routing and may change it, or answer
/// it at once (<c>Respond</c> on the typed <see cref="BifrostPluginContext{TRequest, TResponse, TChunk}"/>,
/// <see cref="BifrostPluginContext.Reject"/>) so the provider is never called; its post-hook sees the answer (or the
/// error) and may change or replace it. Plugins run in registration order for pre-hooks and in reverse order for
/// post-hooks; when a pre-hook answers, only the plugins that already ran get their post-hook. Hooks apply alike to
/// synchronous, streamed (post-hook once per chunk), async and batch calls: the plugins are a layer of the gateway
/// pipeline every operation passes through.
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

/// <summary>
/// What a plugin sees of one call, untyped: the request type, the request and answer as objects (read-only views), the
/// error, and shared state. A call's context is always a <see cref="BifrostPluginContext{TRequest, TResponse, TChunk}"/>;
/// match it to read and replace the request or answer with their own types, e.g.
/// <c>context is BifrostPluginContext&lt;ChatCompletionRequest, ChatCompletionResponse, ChatCompletionChunk&gt; chat</c>.
/// </summary>
public abstract class BifrostPluginContext
{
    private protected BifrostPluginContext(string requestType, bool isStream)
    {
        RequestType = requestType;
        IsStream = isStream;
    }

    /// <summary><c>chat_completion</c>, <c>chat_completion_stream</c>, <c>embedding</c>, <c>text_completion</c>, <c>responses</c>, ...</summary>
    public string RequestType { get; }

    /// <summary>Whether the call is streamed (post-hooks then run once per chunk).</summary>
    public bool IsStream { get; }

    /// <summary>
    /// The request: a <see cref="ChatCompletionRequest"/>, <see cref="EmbeddingRequest"/>, <see cref="TextCompletionRequest"/>
    /// or <see cref="ResponsesRequest"/> (it may be changed in place; replace it through the typed context).
    /// </summary>
    public object Request => RequestObject;

    /// <summary>
    /// The answer (in post-hooks; for streams the current chunk, e.g. a <see cref="ChatCompletionChunk"/>), or the answer a
    /// pre-hook gave; null when there is none. Replace it through the typed context.
    /// </summary>
    public object? Response => ResponseObject;

    /// <summary>The error, when the call failed or a pre-hook rejected it; set it to null with an answer to recover.</summary>
    public BifrostException? Error { get; set; }

    /// <summary>State shared by the hooks of this call.</summary>
    public IDictionary<string, object?> Items { get; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>Whether a pre-hook answered or rejected the request (no provider is called).</summary>
    public bool IsShortCircuited { get; private protected set; }

    private protected abstract object RequestObject { get; }

    private protected abstract object? ResponseObject { get; }

    /// <summary>Rejects the request from a pre-hook (e.g. a guardrail); the provider is not called.</summary>
    /// <param name="error">The error the caller gets.</param>
    public void Reject(BifrostException error)
    {
        Error = error ?? throw new ArgumentNullException(nameof(error));
        ClearAnswer();
        IsShortCircuited = true;
    }

    private protected abstract void ClearAnswer();
}

/// <summary>
/// What a plugin sees of one call, typed by the operation: chat completions are
/// <c>&lt;ChatCompletionRequest, ChatCompletionResponse, ChatCompletionChunk&gt;</c>, text completions
/// <c>&lt;TextCompletionRequest, TextCompletionResponse, TextCompletionResponse&gt;</c>, embeddings
/// <c>&lt;EmbeddingRequest, EmbeddingResponse, EmbeddingResponse&gt;</c>, the Responses API
/// <c>&lt;ResponsesRequest, ResponsesResponse, ResponsesStreamEvent&gt;</c>.
/// </summary>
/// <typeparam name="TRequest">The request type.</typeparam>
/// <typeparam name="TResponse">The whole answer's type.</typeparam>
/// <typeparam name="TChunk">The stream item's type.</typeparam>
public sealed class BifrostPluginContext<TRequest, TResponse, TChunk> : BifrostPluginContext
    where TRequest : class
    where TResponse : class
    where TChunk : class
{
    private TRequest _request;

    internal BifrostPluginContext(string requestType, TRequest request, bool isStream)
        : base(requestType, isStream) => _request = request;

    /// <summary>The request; change it in place or replace it.</summary>
    public new TRequest Request
    {
        get => _request;
        set => _request = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>The whole answer: of a call that is not streamed (in post-hooks), or the one a pre-hook gave with <see cref="Respond(TResponse)"/>.</summary>
    public new TResponse? Response { get; set; }

    /// <summary>The current chunk of a streamed call (in post-hooks, once per chunk); set it to null to drop the chunk.</summary>
    public TChunk? Chunk { get; set; }

    /// <summary>The chunks a pre-hook answered a streamed call with (<see cref="Respond(IReadOnlyList{TChunk})"/>).</summary>
    internal IReadOnlyList<TChunk>? RespondedChunks { get; private set; }

    private protected override object RequestObject => _request;

    private protected override object? ResponseObject => IsStream ? Chunk ?? (object?)Response : Response;

    /// <summary>Answers the request from a pre-hook (e.g. a cache hit); the provider is not called. A streamed call gets it as chunks.</summary>
    /// <param name="response">The answer.</param>
    public void Respond(TResponse response)
    {
        Response = response ?? throw new ArgumentNullException(nameof(response));
        Error = null;
        IsShortCircuited = true;
    }

    /// <summary>Answers a streamed request from a pre-hook with these chunks; the provider is not called.</summary>
    /// <param name="chunks">The chunks, in order.</param>
    public void Respond(IReadOnlyList<TChunk> chunks)
    {
        RespondedChunks = chunks ?? throw new ArgumentNullException(nameof(chunks));
        Error = null;
        IsShortCircuited = true;
    }

    private protected override void ClearAnswer()
    {
        Response = null;
        Chunk = null;
        RespondedChunks = null;
    }
}
