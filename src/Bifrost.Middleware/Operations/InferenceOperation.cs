using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Endpoints;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Jobs;

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
}

/// <summary>One attempt's target: the provider's context (key, options, model), its adapter and the resolved model.</summary>
internal readonly record struct ProviderCall(ProviderContext Context, ResolvedModel Target, TimeProvider Time)
{
    public IProviderAdapter Adapter => Target.Provider.Adapter;
}

/// <summary>Input and output tokens of one answer, for metrics.</summary>
internal readonly record struct TokenCounts(long Input, long Output);

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

    /// <summary>The request's <c>model</c>.</summary>
    public required Func<TRequest, string?> Model { get; init; }

    /// <summary>Sets the request's <c>model</c> (a batch's default model fills lines without one).</summary>
    public required Action<TRequest, string?> SetModel { get; init; }

    /// <summary>The request's <c>fallbacks</c>.</summary>
    public required Func<TRequest, IList<string>?> Fallbacks { get; init; }

    /// <summary>Checks the request's values (throws 400s), before anything is stored or sent.</summary>
    public required Action<TRequest> Validate { get; init; }

    /// <summary>Whether the request asks for a stream.</summary>
    public Func<TRequest, bool>? IsStreamRequested { get; init; }

    /// <summary>Clears the request's stream settings (batch lines never stream).</summary>
    public Action<TRequest>? ClearStream { get; init; }

    /// <summary>Extra checks before a job is stored, with the primary target known (throws 400s).</summary>
    public Action<TRequest, ResolvedModel>? CheckBeforeQueue { get; init; }

    /// <summary>The adapter call of one attempt (the request is the caller's: copy it for the provider).</summary>
    public required Func<ProviderCall, TRequest, CancellationToken, Task<TResponse>> Call { get; init; }

    /// <summary>The adapter's stream of one attempt.</summary>
    public Func<ProviderCall, TRequest, CancellationToken, IAsyncEnumerable<TChunk>>? CallStream { get; init; }

    /// <summary>Finishes a provider's answer for the caller (e.g. the embedding encoding it asked for); throws decorated errors.</summary>
    public Func<TRequest, TResponse, ResolvedModel, TResponse>? Complete { get; init; }

    /// <summary>The response's <c>extra_fields</c>.</summary>
    public required Func<TResponse, BifrostExtraFields?> ExtraFieldsOf { get; init; }

    /// <summary>Sets the response's <c>extra_fields</c>.</summary>
    public required Action<TResponse, BifrostExtraFields> SetExtraFields { get; init; }

    /// <summary>Returns the chunk with its <c>extra_fields</c> (possibly a new instance).</summary>
    public Func<TChunk, BifrostExtraFields, TChunk>? WithChunkExtraFields { get; init; }

    /// <summary>The chunk's <c>extra_fields</c> (the provider and model that served a stream).</summary>
    public Func<TChunk, BifrostExtraFields?>? ChunkExtraFieldsOf { get; init; }

    /// <summary>The tokens an answer used, for metrics.</summary>
    public Func<TResponse, TokenCounts?>? UsageOf { get; init; }

    /// <summary>The tokens a chunk reports (the usage chunk, <c>response.completed</c>), for metrics.</summary>
    public Func<TChunk, TokenCounts?>? ChunkUsageOf { get; init; }

    /// <summary>The operation's shape with an empty result, for a job still pending or running.</summary>
    public required Func<JobRecord, TRequest?, TResponse> Pending { get; init; }

    /// <summary>The response's id (a batch line's <c>request_id</c>).</summary>
    public Func<TResponse, string?>? ResponseIdOf { get; init; }

    /// <summary>A whole answer as stream chunks (a plugin's pre-hook answer to a streamed call).</summary>
    public Func<TResponse, IEnumerable<TChunk>>? ChunksOf { get; init; }

    /// <summary>The <see cref="IBifrostClient"/> method that runs it (built-in operations; a host's own client then serves the routes too).</summary>
    public Func<IBifrostClient, TRequest, CancellationToken, Task<TResponse>>? ClientCall { get; init; }

    /// <summary>The <see cref="IBifrostClient"/> method that streams it.</summary>
    public Func<IBifrostClient, TRequest, CancellationToken, IAsyncEnumerable<TChunk>>? ClientStream { get; init; }

    public bool Streams => StreamShape != StreamShape.None && CallStream is not null;

    public override string? JobKind => Async ? Name : null;

    public override string? BatchUrl => BatchLineUrl;

    public override IReadOnlyList<OperationRoute> Routes => _routes ??= InferenceEndpoint<TRequest, TResponse, TChunk>.Routes(this);

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

    public override async Task<BatchLineAnswer> RunBatchLineAsync(IServiceProvider services, JsonElement body, string? defaultModel, CancellationToken cancellationToken)
    {
        var request = body.Deserialize(RequestInfo) ?? throw new JsonException("empty body");
        if (string.IsNullOrEmpty(Model(request)))
        {
            SetModel(request, defaultModel);
        }

        ClearStream?.Invoke(request);
        var response = await RunAsync(services, request, cancellationToken).ConfigureAwait(false);
        return new BatchLineAnswer(ResponseIdOf?.Invoke(response), writer => JsonSerializer.Serialize(writer, response, ResponseInfo));
    }

    /// <summary>Validates and plans the request like the call would (throws 400s): for async submits, before a job is stored.</summary>
    public void CheckSubmit(ProviderRegistry registry, TRequest request)
    {
        var plan = RequestPlanner.Plan(registry, this, request, Name);
        CheckBeforeQueue?.Invoke(request, plan[0]);
    }
}
