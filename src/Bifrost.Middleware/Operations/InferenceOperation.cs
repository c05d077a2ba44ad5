using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Gateway;

namespace Bifrost.Middleware.Operations;

/// <summary>How an inference operation streams over HTTP.</summary>
internal enum StreamShape
{
    /// <summary>No streaming.</summary>
    None,

    /// <summary><c>data: {json}</c> per chunk, then <c>data: [DONE]</c> (chat and text completions).</summary>
    DataLines,

    /// <summary><c>event: {type}</c> + <c>data: {json}</c> per event (the Responses API).</summary>
    Events,

    /// <summary><c>event: {type}</c> + <c>data: {json}</c> per chunk, the type from <c>EventTypeOf</c> (image generation streams).</summary>
    TypedEvents,
}

/// <summary>One attempt's target: the provider's context (key, options, model), its adapter and the resolved model.</summary>
internal readonly record struct ProviderCall(ProviderContext Context, ResolvedModel Target, TimeProvider Time)
{
    public IProviderAdapter Adapter => Target.Provider.Adapter;
}

/// <summary>
/// Tokens of one answer, for metrics and cost: <paramref name="Input"/> includes the cached and cache-written tokens,
/// <paramref name="Output"/> the reasoning tokens (as OpenAI's <c>prompt_tokens</c> and <c>completion_tokens</c> do).
/// </summary>
internal readonly record struct TokenCounts(long Input, long Output, long CachedInput = 0, long CacheWrite = 0, long Reasoning = 0)
{
    /// <summary>Reads the details objects (<c>prompt_tokens_details</c>/<c>input_tokens_details</c>, <c>completion_tokens_details</c>/<c>output_tokens_details</c>).</summary>
    public static TokenCounts Of(long input, long output, JsonElement? inputDetails, JsonElement? outputDetails) =>
        new(input, output, Number(inputDetails, "cached_tokens"u8), Number(inputDetails, "cache_creation_tokens"u8), Number(outputDetails, "reasoning_tokens"u8));

    private static long Number(JsonElement? details, ReadOnlySpan<byte> name) =>
        details is { ValueKind: JsonValueKind.Object } element && element.TryGetProperty(name, out var value) && value.TryGetInt64(out var number) ? number : 0;
}

/// <summary>
/// An inference operation: what the gateway pipeline, the HTTP routes (sync, SSE, <c>x-bf-async</c>, the <c>v1/async</c>
/// envelope), the job engine and batch lines need to know to run it. Adding an operation is one of these (registered as a
/// <see cref="BifrostOperation"/> singleton), the adapter method(s) it calls, and tests.
/// </summary>
/// <typeparam name="TRequest">The request type.</typeparam>
/// <typeparam name="TResponse">The (non-streamed) response type.</typeparam>
/// <typeparam name="TChunk">The stream item type (<typeparamref name="TResponse"/> when the operation does not stream).</typeparam>
internal sealed class InferenceOperation<TRequest, TResponse, TChunk> : BifrostOperation
    where TRequest : class
    where TResponse : class
    where TChunk : class
{
    private IReadOnlyList<OperationRoute>? _routes;
    private Func<TRequest, string?>? _model;
    private Action<TRequest, string?>? _setModel;
    private Func<TRequest, IList<string>?>? _fallbacks;
    private Func<TResponse, BifrostExtraFields?>? _extraFieldsOf;
    private Action<TResponse, BifrostExtraFields>? _setExtraFields;
    private Func<TChunk, BifrostExtraFields, TChunk>? _withChunkExtraFields;
    private Func<TChunk, BifrostExtraFields?>? _chunkExtraFieldsOf;
    private Func<TRequest, bool>? _isStreamRequested;
    private Action<TRequest>? _clearStream;
    private Func<TResponse, TokenCounts?>? _usageOf;
    private Func<TChunk, TokenCounts?>? _chunkUsageOf;
    private Func<TResponse, TokenCounts?>? _costUsageOf;
    private Func<TResponse, string?>? _responseIdOf;
    private Func<int, StreamCapture<TChunk>>? _newStreamCapture;
    private ChunkCodec<TChunk>? _cacheCodec;

    /// <summary>The paths of its routes relative to the prefix and version (e.g. <c>chat/completions</c>).</summary>
    public required IReadOnlyList<string> Paths { get; init; }

    /// <summary>The request type of its streamed form (<c>chat_completion_stream</c>); null when it does not stream.</summary>
    public string? StreamName { get; init; }

    /// <summary>Whether it runs as an async job (<c>x-bf-async</c>, <c>v1/async/...</c>).</summary>
    public bool Async { get; init; } = true;

    /// <summary>The batch line <c>url</c> it serves, or null.</summary>
    public string? BatchLineUrl { get; init; }

    public required JsonTypeInfo<TRequest> RequestInfo { get; init; }

    public required JsonTypeInfo<TResponse> ResponseInfo { get; init; }

    /// <summary>How chunks are written over HTTP (<see cref="StreamShape.None"/>: the operation does not stream).</summary>
    public StreamShape StreamShape { get; init; }

    /// <summary>The chunk type info, for <see cref="StreamShape.DataLines"/>.</summary>
    public JsonTypeInfo<TChunk>? ChunkInfo { get; init; }

    /// <summary>A chunk's SSE event type, for <see cref="StreamShape.TypedEvents"/>.</summary>
    public Func<TChunk, string?>? EventTypeOf { get; init; }

    /// <summary>The request's <c>model</c> (default: <see cref="InferenceRequest.Model"/>).</summary>
    public Func<TRequest, string?> Model
    {
        get => _model ??= Default<Func<TRequest, string?>>(static r => ((InferenceRequest)(object)r).Model);
        init => _model = value;
    }

    /// <summary>Sets the request's <c>model</c> (a batch's default model fills lines without one).</summary>
    public Action<TRequest, string?> SetModel
    {
        get => _setModel ??= Default<Action<TRequest, string?>>(static (r, model) => ((InferenceRequest)(object)r).Model = model);
        init => _setModel = value;
    }

    /// <summary>The request's <c>fallbacks</c> (default: <see cref="InferenceRequest.Fallbacks"/>).</summary>
    public Func<TRequest, IList<string>?> Fallbacks
    {
        get => _fallbacks ??= Default<Func<TRequest, IList<string>?>>(static r => ((InferenceRequest)(object)r).Fallbacks);
        init => _fallbacks = value;
    }

    /// <summary>Checks the request's values (throws 400s), before anything is stored or sent.</summary>
    public required Action<TRequest> Validate { get; init; }

    /// <summary>Whether the request asks for a stream (default: <see cref="IStreamableRequest.Stream"/>).</summary>
    public Func<TRequest, bool>? IsStreamRequested
    {
        get => _isStreamRequested ??= Is<TRequest, IStreamableRequest>() ? static r => ((IStreamableRequest)r).Stream == true : null;
        init => _isStreamRequested = value;
    }

    /// <summary>Clears the request's stream settings (batch lines never stream; default: <see cref="IStreamableRequest.ClearStream"/>).</summary>
    public Action<TRequest>? ClearStream
    {
        get => _clearStream ??= Is<TRequest, IStreamableRequest>() ? static r => ((IStreamableRequest)r).ClearStream() : null;
        init => _clearStream = value;
    }

    /// <summary>Extra checks before a job is stored, with the primary target known (throws 400s).</summary>
    public Action<TRequest, ResolvedModel>? CheckBeforeQueue { get; init; }

    /// <summary>The adapter call of one attempt (the request is the caller's: copy it for the provider).</summary>
    public required Func<ProviderCall, TRequest, CancellationToken, Task<TResponse>> Call { get; init; }

    /// <summary>The adapter's stream of one attempt.</summary>
    public Func<ProviderCall, TRequest, CancellationToken, IAsyncEnumerable<TChunk>>? CallStream { get; init; }

    /// <summary>Finishes a provider's answer for the caller (e.g. the embedding encoding it asked for); throws decorated errors.</summary>
    public Func<TRequest, TResponse, ResolvedModel, TResponse>? Complete { get; init; }

    /// <summary>The response's <c>extra_fields</c> (default: <see cref="IHasExtraFields"/>).</summary>
    public Func<TResponse, BifrostExtraFields?> ExtraFieldsOf
    {
        get => _extraFieldsOf ??= Extra<TResponse, Func<TResponse, BifrostExtraFields?>>(static r => ((IHasExtraFields)r).ExtraFields);
        init => _extraFieldsOf = value;
    }

    /// <summary>Sets the response's <c>extra_fields</c>.</summary>
    public Action<TResponse, BifrostExtraFields> SetExtraFields
    {
        get => _setExtraFields ??= Extra<TResponse, Action<TResponse, BifrostExtraFields>>(static (r, extra) => ((IHasExtraFields)r).ExtraFields = extra);
        init => _setExtraFields = value;
    }

    /// <summary>Returns the chunk with its <c>extra_fields</c> (possibly a new instance; default: set through <see cref="IHasExtraFields"/>).</summary>
    public Func<TChunk, BifrostExtraFields, TChunk>? WithChunkExtraFields
    {
        get => _withChunkExtraFields ??= Is<TChunk, IHasExtraFields>() ? static (chunk, extra) =>
        {
            ((IHasExtraFields)chunk).ExtraFields = extra;
            return chunk;
        }
        : null;
        init => _withChunkExtraFields = value;
    }

    /// <summary>The chunk's <c>extra_fields</c> (the provider and model that served a stream; default: <see cref="IHasExtraFields"/>).</summary>
    public Func<TChunk, BifrostExtraFields?>? ChunkExtraFieldsOf
    {
        get => _chunkExtraFieldsOf ??= Is<TChunk, IHasExtraFields>() ? static chunk => ((IHasExtraFields)chunk).ExtraFields : null;
        init => _chunkExtraFieldsOf = value;
    }

    /// <summary>A quick estimate of the request's input tokens for a (bare) model (<c>TokenEstimate</c>), reserved by budgets and token limits before the call and settled after it; null: nothing reserved.</summary>
    public Func<TRequest, string, long>? EstimateInputTokens { get; init; }

    /// <summary>The tokens an answer used, for metrics (default: <see cref="IOperationAnswer.Tokens"/>).</summary>
    public Func<TResponse, TokenCounts?>? UsageOf
    {
        get => _usageOf ??= Is<TResponse, IOperationAnswer>() ? static r => ((IOperationAnswer)r).Tokens : null;
        init => _usageOf = value;
    }

    /// <summary>The tokens an answer is charged for (default: <see cref="UsageOf"/>; embeddings: their input tokens).</summary>
    public Func<TResponse, TokenCounts?>? CostUsageOf
    {
        get => _costUsageOf ?? UsageOf;
        init => _costUsageOf = value;
    }

    /// <summary>The tokens a chunk reports (the usage chunk, <c>response.completed</c>), for metrics (default: <see cref="IOperationAnswer.Tokens"/>).</summary>
    public Func<TChunk, TokenCounts?>? ChunkUsageOf
    {
        get => _chunkUsageOf ??= Is<TChunk, IOperationAnswer>() ? static chunk => ((IOperationAnswer)chunk).Tokens : null;
        init => _chunkUsageOf = value;
    }

    /// <summary>
    /// The operation's shape with an empty result, for a job still pending or running: the job, its request (null when
    /// unreadable) and the model as the provider is asked for it (bare, as every answer's <c>model</c> and
    /// <c>extra_fields.model_requested</c> report it).
    /// </summary>
    public required Func<JobRecord, TRequest?, string?, TResponse> Pending { get; init; }

    /// <summary>The response's id (a batch line's <c>request_id</c>; default: <see cref="IOperationAnswer.Id"/>).</summary>
    public Func<TResponse, string?>? ResponseIdOf
    {
        get => _responseIdOf ??= Is<TResponse, IOperationAnswer>() ? static r => ((IOperationAnswer)r).Id : null;
        init => _responseIdOf = value;
    }

    /// <summary>
    /// A capture of what a stream says, bounded to the given number of characters, for content capture (request log,
    /// spans): the operation's assembled shape where it has one (chat, Responses), else the chunks as a JSON array
    /// (default, with <see cref="ChunkInfo"/>); null when neither.
    /// </summary>
    public Func<int, StreamCapture<TChunk>>? NewStreamCapture
    {
        get => _newStreamCapture ??= ChunkInfo is { } info ? limit => new ChunkArrayCapture<TChunk>(limit, chunk => JsonSerializer.Serialize(chunk, info)) : null;
        init => _newStreamCapture = value;
    }

    /// <summary>
    /// How the response cache writes and reads its stream chunks (default, with <see cref="ChunkInfo"/>: the chunk's JSON);
    /// null: its streams are not cached.
    /// </summary>
    public ChunkCodec<TChunk>? CacheCodec
    {
        get => _cacheCodec ??= ChunkInfo is { } info ? ChunkCodecs.Json(info) : null;
        init => _cacheCodec = value;
    }

    /// <summary>A whole answer as stream chunks (a plugin's pre-hook answer to a streamed call).</summary>
    public Func<TResponse, IEnumerable<TChunk>>? ChunksOf { get; init; }

    /// <summary>The <see cref="IBifrostClient"/> method that runs it (built-in operations; a host's own client then serves the routes too).</summary>
    public Func<IBifrostClient, TRequest, CancellationToken, Task<TResponse>>? ClientCall { get; init; }

    /// <summary>The <see cref="IBifrostClient"/> method that streams it.</summary>
    public Func<IBifrostClient, TRequest, CancellationToken, IAsyncEnumerable<TChunk>>? ClientStream { get; init; }

    /// <summary>What its POST routes read: a JSON body (default), or a multipart upload read by <see cref="ReadRequest"/>.</summary>
    public RouteBody RequestBody { get; init; } = RouteBody.Json;

    /// <summary>The multipart form's shape for OpenAPI (with <see cref="RouteBody.Upload"/>).</summary>
    public Type? UploadForm { get; init; }

    /// <summary>Reads the request from HTTP instead of JSON (a multipart upload); what it holds is released with the response.</summary>
    public Func<HttpContext, Task<TRequest>>? ReadRequest { get; init; }

    /// <summary>
    /// A binary answer's body and media type: the synchronous route relays the body as it is read, with that content type,
    /// instead of writing the answer as JSON (the JSON form remains the async job result and the request log's record).
    /// </summary>
    public Func<TResponse, (Stream Body, string ContentType)>? BodyOf { get; init; }

    /// <summary>Prepares the request to be kept as an async job's payload (an upload keeps its bytes in the JSON form, bounded; throws 413s).</summary>
    public Func<TRequest, CancellationToken, Task>? BeforeSubmit { get; init; }

    /// <summary>Prepares an answer to be kept as an async job's JSON result (a binary answer buffers its body).</summary>
    public Func<TResponse, CancellationToken, Task>? BeforeStore { get; init; }

    /// <summary>The media types of its answers, for OpenAPI (default: JSON, plus <c>text/event-stream</c> when it streams).</summary>
    public string[]? ContentTypes { get; init; }

    public bool Streams => StreamShape != StreamShape.None && CallStream is not null;

    public override string? JobKind => Async ? Name : null;

    public override string? BatchUrl => BatchLineUrl;

    public override IReadOnlyList<OperationRoute> Routes => _routes ??= InferenceEndpoint<TRequest, TResponse, TChunk>.Routes(this);

    // Azure OpenAI-compatible inbound: the routes of the path as InferenceEndpoint maps them (JSON bodies and multipart
    // uploads such as audio/transcriptions), with the model from the route.
    public override IReadOnlyList<OperationRoute> RoutesWithModelFrom(string path, Func<HttpContext, string> model) =>
        Routes.Any(r => r.Method == "POST" && string.Equals(r.Path, path, StringComparison.Ordinal) && r.Body is RouteBody.Json or RouteBody.Upload && r.Handler.Target is InferenceEndpoint<TRequest, TResponse, TChunk>)
            ? InferenceEndpoint<TRequest, TResponse, TChunk>.RoutesWithModelFrom(this, path, model)
            : [];

    /// <summary>Runs the request through the gateway (via <see cref="IBifrostClient"/> for built-in operations).</summary>
    public Task<TResponse> RunAsync(IServiceProvider services, TRequest request, CancellationToken cancellationToken) =>
        ClientCall is { } call
            ? call(services.GetRequiredService<IBifrostClient>(), request, cancellationToken)
            : services.GetRequiredService<GatewayPipeline>().SendAsync(this, request, cancellationToken);

    /// <summary>Streams the request through the gateway.</summary>
    public IAsyncEnumerable<TChunk> StreamAsync(IServiceProvider services, TRequest request, CancellationToken cancellationToken) =>
        ClientStream is { } stream
            ? stream(services.GetRequiredService<IBifrostClient>(), request, cancellationToken)
            : services.GetRequiredService<GatewayPipeline>().StreamAsync(this, request, cancellationToken);

    public override IJobHandler? CreateJobHandler() => Async ? new OperationJobHandler<TRequest, TResponse, TChunk>(this) : null;

    public override async Task<BatchLineAnswer> RunBatchLineAsync(IServiceProvider services, JsonElement body, string? defaultModel, BatchLineId line, CancellationToken cancellationToken)
    {
        var request = body.Deserialize(RequestInfo) ?? throw new JsonException("empty body");
        if (string.IsNullOrEmpty(Model(request)))
        {
            SetModel(request, defaultModel);
        }

        ClearStream?.Invoke(request);
        Governance.UsageSource.Current = new Governance.UsageSource(Governance.UsageSource.Batch, null) { BatchId = line.BatchId, CustomId = line.CustomId }; // ends with this method
        var response = await RunAsync(services, request, cancellationToken).ConfigureAwait(false);
        // The line reached the provider as an ordinary call, so its cost (set by the attempt loop) is the ordinary price: a
        // batch discount is the provider's, for batches run on its own batch API.
        return new BatchLineAnswer(ResponseIdOf?.Invoke(response), writer => JsonSerializer.Serialize(writer, response, ResponseInfo));
    }

    /// <summary>Validates and plans the request like the call would (throws 400s): for async submits, before a job is stored.</summary>
    public void CheckSubmit(ProviderRegistry registry, TRequest request)
    {
        var plan = RequestPlanner.Plan(registry, this, request, Name);
        CheckBeforeQueue?.Invoke(request, plan[0]);
    }

    private static T Default<T>(T accessor)
        where T : Delegate =>
        typeof(InferenceRequest).IsAssignableFrom(typeof(TRequest))
            ? accessor
            : throw new InvalidOperationException($"Operation request type {typeof(TRequest).Name} does not derive from InferenceRequest: give the operation its Model, SetModel and Fallbacks accessors.");

    private static TDelegate Extra<T, TDelegate>(TDelegate accessor)
        where TDelegate : Delegate =>
        typeof(IHasExtraFields).IsAssignableFrom(typeof(T))
            ? accessor
            : throw new InvalidOperationException($"Operation type {typeof(T).Name} does not carry extra_fields through IHasExtraFields: give the operation its ExtraFieldsOf and SetExtraFields accessors.");

    private static bool Is<T, TInterface>() => typeof(TInterface).IsAssignableFrom(typeof(T));
}
