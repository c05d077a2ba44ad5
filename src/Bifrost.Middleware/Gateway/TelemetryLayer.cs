using System.Runtime.CompilerServices;
using Bifrost.Middleware.Diagnostics;
using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Gateway;

/// <summary>
/// Records every operation's duration, outcome and token usage (<c>gen_ai.client.operation.duration</c>,
/// <c>gen_ai.client.token.usage</c>), for whole answers and streams alike — including a stream that fails before its
/// first chunk, one that fails after it, and one the caller stops reading. The provider and model tags come from the
/// <c>extra_fields</c> the attempt loop fills (of the answer, the first chunk, or the error).
/// </summary>
internal sealed class TelemetryLayer(GatewayHandler inner, BifrostMetrics metrics, TimeProvider time) : DelegatingGatewayHandler(inner)
{
    public static GatewayLayer Registration { get; } = new(
        GatewayLayer.TelemetryOrder,
        "telemetry",
        static (services, next) => new TelemetryLayer(next, services.GetRequiredService<BifrostMetrics>(), services.GetRequiredService<TimeProvider>()));

    public override Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        metrics.IsEnabled ? RecordAsync(operation, request, cancellationToken) : Inner.SendAsync(operation, request, cancellationToken);

    public override IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        metrics.IsEnabled ? RecordStreamAsync(operation, request, cancellationToken) : Inner.StreamAsync(operation, request, cancellationToken);

    private async Task<TResponse> RecordAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var start = time.GetTimestamp();
        TResponse response;
        try
        {
            response = await Inner.SendAsync(operation, request, cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex)
        {
            Record(operation, ex.Error.ExtraFields, start, ErrorType(ex), null);
            throw;
        }

        Record(operation, operation.ExtraFieldsOf(response), start, null, operation.UsageOf?.Invoke(response));
        return response;
    }

    private async IAsyncEnumerable<TChunk> RecordStreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var start = time.GetTimestamp();
        BifrostExtraFields? served = null;
        TokenCounts? usage = null;
        string? errorType = null;
        var enumerator = Inner.StreamAsync(operation, request, cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                TChunk chunk;
                try
                {
                    if (!await enumerator.MoveNextAsync().ConfigureAwait(false))
                    {
                        break;
                    }

                    chunk = enumerator.Current;
                }
                catch (BifrostException ex)
                {
                    errorType = ErrorType(ex);
                    served ??= ex.Error.ExtraFields;
                    throw;
                }

                served ??= operation.ChunkExtraFieldsOf?.Invoke(chunk);
                usage = operation.ChunkUsageOf?.Invoke(chunk) ?? usage;
                yield return chunk;
            }
        }
        finally
        {
            await enumerator.DisposeAsync().ConfigureAwait(false);
            Record(operation, served, start, errorType, usage);
        }
    }

    private void Record<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, BifrostExtraFields? served, long start, string? errorType, TokenCounts? usage)
        where TRequest : class
        where TResponse : class
        where TChunk : class =>
        metrics.RecordCompletion(operation.Metric, served?.Provider, served?.ModelRequested, time.GetElapsedTime(start).TotalSeconds, errorType, usage);

    private static string ErrorType(BifrostException error) =>
        error.Error.Error.Code ?? error.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
