using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Gateway;

/// <summary>
/// One stage of the gateway pipeline (in the manner of Microsoft.Extensions.AI's <c>DelegatingChatClient</c>): every
/// inference operation passes through the same stages, each written once for all operations. The innermost stage is
/// <see cref="RoutingHandler"/> (routing, keys, retries, fallbacks); layers (<see cref="DelegatingGatewayHandler"/>) wrap it.
/// </summary>
internal abstract class GatewayHandler
{
    /// <summary>Runs a request and returns the whole answer.</summary>
    public abstract Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class;

    /// <summary>Runs a request as a stream; retries and fallbacks apply until the first chunk.</summary>
    public abstract IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class;
}

/// <summary>A layer of the pipeline: passes everything to the next stage unless it overrides a method.</summary>
internal abstract class DelegatingGatewayHandler(GatewayHandler inner) : GatewayHandler
{
    /// <summary>The next stage.</summary>
    protected GatewayHandler Inner { get; } = inner;

    public override Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        Inner.SendAsync(operation, request, cancellationToken);

    public override IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        Inner.StreamAsync(operation, request, cancellationToken);
}

/// <summary>
/// A layer registration: <see cref="Order"/> places it (lower runs first, i.e. further out), <see cref="Create"/> wraps the
/// next stage, or returns it unchanged when the layer has nothing to do in this host (e.g. no plugins registered).
/// </summary>
/// <remarks>
/// Orders of the built-in layers: telemetry 100 (outermost: the operation's span and metrics cover everything inside,
/// refusals included), plugins 300, request log 350 (when RequestLog:Enabled; outside governance, so refusals are
/// recorded), governance 400 (when Governance:Mode is not Off), the response cache 450 (when Cache:Enabled; inside
/// governance, so refused keys get no cached answer and hits are recorded in the usage ledger at cost 0, while plugins and
/// the request log still see cached answers).
/// </remarks>
internal sealed record GatewayLayer(int Order, string Name, Func<IServiceProvider, GatewayHandler, GatewayHandler> Create)
{
    public const int PluginsOrder = 300;
    public const int TelemetryOrder = 100;
}

/// <summary>The composed pipeline: the registered layers, in order, around the attempt loop. Built once.</summary>
internal sealed class GatewayPipeline
{
    public GatewayPipeline(IServiceProvider services, RoutingHandler core, IEnumerable<GatewayLayer> layers)
    {
        GatewayHandler handler = core;
        var ordered = layers.OrderByDescending(static l => l.Order).ToArray();
        var names = new List<string>(ordered.Length);
        foreach (var layer in ordered)
        {
            var next = layer.Create(services, handler);
            if (!ReferenceEquals(next, handler))
            {
                names.Add(layer.Name);
            }

            handler = next;
        }

        names.Reverse();
        Layers = names;
        Handler = handler;
    }

    /// <summary>The outermost stage.</summary>
    public GatewayHandler Handler { get; }

    /// <summary>The names of the active layers, outermost first (for diagnostics and tests).</summary>
    public IReadOnlyList<string> Layers { get; }

    public Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class =>
        Handler.SendAsync(operation, request ?? throw new ArgumentNullException(nameof(request)), cancellationToken);

    public IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class =>
        Handler.StreamAsync(operation, request ?? throw new ArgumentNullException(nameof(request)), cancellationToken);
}
