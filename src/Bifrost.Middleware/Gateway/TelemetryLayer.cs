using System.Diagnostics;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Diagnostics;
using Bifrost.Middleware.Operations;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Gateway;

/// <summary>
/// The outermost layer: one span per gateway operation (<see cref="GatewayTracing"/>, GenAI semantic conventions) and
/// the operation's metrics — duration, outcome and token usage (<c>gen_ai.client.operation.duration</c>,
/// <c>gen_ai.client.token.usage</c>), time to the first chunk of a stream, and cost — for whole answers and streams
/// alike, including a stream that fails before its first chunk, one that fails after it, and one the caller stops
/// reading, and calls the layers inside refuse (governance's 401/402/403/429). The provider and model come from the
/// <c>extra_fields</c> the attempt loop fills (of the answer, the first chunk, or the error). With content capture on,
/// a stream's output is assembled while it is relayed (<see cref="StreamCapture{TChunk}"/>, bounded) and put on the span
/// when it ends. With neither a meter listener nor a span listener, the call passes straight through.
/// </summary>
internal sealed class TelemetryLayer(GatewayHandler inner, BifrostMetrics metrics, TelemetryOptions options, TimeProvider time) : DelegatingGatewayHandler(inner)
{
    public static GatewayLayer Registration { get; } = new(
        GatewayLayer.TelemetryOrder,
        "telemetry",
        static (services, next) => new TelemetryLayer(
            next,
            services.GetRequiredService<BifrostMetrics>(),
            services.GetRequiredService<IOptions<BifrostOptions>>().Value.Telemetry,
            services.GetRequiredService<TimeProvider>()));

    private readonly bool _captureContent = GatewayTracing.CaptureContent(options);

    public override Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        metrics.IsEnabled || GatewayTracing.IsEnabled ? RecordAsync(operation, request, cancellationToken) : Inner.SendAsync(operation, request, cancellationToken);

    public override IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        metrics.IsEnabled || GatewayTracing.IsEnabled ? RecordStreamAsync(operation, request, cancellationToken) : Inner.StreamAsync(operation, request, cancellationToken);

    private async Task<TResponse> RecordAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var start = time.GetTimestamp();
        using var activity = GatewayTracing.StartOperation(operation.Metric, operation.Model(request), stream: false);
        if (activity is { IsAllDataRequested: true })
        {
            GatewayTracing.TagRequest(activity, request);
        }

        TResponse response;
        try
        {
            response = await Inner.SendAsync(operation, request, cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex)
        {
            Record(operation, ex.Error.ExtraFields, start, ErrorType(ex), null);
            if (activity is { IsAllDataRequested: true })
            {
                GatewayTracing.TagAnswer(activity, null, ex.Error.ExtraFields, null, null);
                GatewayTracing.SetError(activity, ex);
                AddContent(activity, request, null);
            }

            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            activity?.SetTag(GatewayTracing.ErrorType, "cancelled");
            throw;
        }

        var served = operation.ExtraFieldsOf(response);
        var usage = operation.UsageOf?.Invoke(response);
        Record(operation, served, start, null, usage);
        if (activity is { IsAllDataRequested: true })
        {
            GatewayTracing.TagAnswer(activity, response, served, usage, operation.ResponseIdOf?.Invoke(response));
            AddContent(activity, request, response);
        }

        return response;
    }

    private async IAsyncEnumerable<TChunk> RecordStreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var start = time.GetTimestamp();
        var operationName = operation.Metric;
        var activity = GatewayTracing.StartOperation(operationName, operation.Model(request), stream: true);
        if (activity is { IsAllDataRequested: true })
        {
            GatewayTracing.TagRequest(activity, request);
        }

        // With content capture, the answer is assembled while it is relayed and goes on the span when the stream ends.
        var capture = _captureContent && activity is { IsAllDataRequested: true } && GatewayTracing.HasContent(request)
            ? operation.NewStreamCapture?.Invoke(options.MaxStreamContentLength)
            : null;
        BifrostExtraFields? served = null;
        TokenCounts? usage = null;
        BifrostException? failure = null;
        double? cost = null;
        var first = true;
        var completed = false;
        try
        {
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
                            completed = true;
                            break;
                        }

                        chunk = enumerator.Current;
                    }
                    catch (BifrostException ex)
                    {
                        failure = ex;
                        served ??= ex.Error.ExtraFields;
                        throw;
                    }

                    var chunkExtra = operation.ChunkExtraFieldsOf?.Invoke(chunk);
                    served ??= chunkExtra;
                    if (first)
                    {
                        first = false;
                        var ttfc = time.GetElapsedTime(start).TotalSeconds;
                        metrics.RecordTimeToFirstChunk(operationName, served?.Provider, served?.ModelRequested, ttfc);
                        activity?.SetTag(GatewayTracing.TimeToFirstChunk, ttfc);
                    }

                    usage = operation.ChunkUsageOf?.Invoke(chunk) ?? usage;
                    if (chunkExtra is { Cost: { } chunkCost })
                    {
                        cost = chunkCost; // the chunk that carries the usage carries the cost
                    }

                    capture?.Add(chunk);
                    yield return chunk;
                }
            }
            finally
            {
                await enumerator.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            // However the stream ended: completed, failed, or left by the caller (a cut stream records what it had).
            var errorType = failure is not null ? ErrorType(failure) : completed ? null : "cancelled";
            Record(operation, served, start, errorType, usage, cost);
            if (activity is not null)
            {
                if (activity.IsAllDataRequested)
                {
                    GatewayTracing.TagAnswer(activity, null, served, usage, null);
                    if (cost is { } usd)
                    {
                        activity.SetTag(GatewayTracing.Cost, usd);
                    }

                    if (failure is not null)
                    {
                        GatewayTracing.SetError(activity, failure);
                    }
                    else if (!completed)
                    {
                        activity.SetTag(GatewayTracing.ErrorType, "cancelled");
                    }

                    if (_captureContent)
                    {
                        GatewayTracing.AddContent(activity, request, capture?.Answer, capture?.Truncated); // what was relayed, however it ended
                    }
                }

                activity.Dispose();
            }
        }
    }

    private void AddContent(Activity activity, object request, object? answer)
    {
        if (_captureContent)
        {
            GatewayTracing.AddContent(activity, request, answer);
        }
    }

    private void Record<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, BifrostExtraFields? served, long start, string? errorType, TokenCounts? usage, double? cost = null)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        if (!metrics.IsEnabled)
        {
            return;
        }

        metrics.RecordOperation(new OperationRecord(operation.Metric, served?.Provider, served?.ModelRequested, time.GetElapsedTime(start).TotalSeconds, errorType, usage, errorType is null ? cost ?? served?.Cost : null));
    }

    private static string ErrorType(BifrostException error) =>
        error.Error.Error.Code ?? error.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
