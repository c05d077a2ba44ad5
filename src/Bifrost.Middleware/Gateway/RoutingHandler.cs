using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Diagnostics;
using Bifrost.Middleware.Governance.Pricing;
using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Gateway;

/// <summary>
/// The innermost stage of the pipeline, one attempt loop for every operation: validates and resolves <c>provider/model</c>
/// (<see cref="RequestPlanner"/>), tries the primary and then the fallbacks, retries retryable failures with backoff
/// (honouring Retry-After), picks keys, fills <c>extra_fields</c> (with the cost, <see cref="PricingCatalog"/>) and counts attempts. Knows nothing of HTTP.
/// </summary>
internal sealed class RoutingHandler(ProviderRegistry registry, PricingCatalog pricing, BifrostMetrics metrics, TimeProvider time, ILogger<RoutingHandler> logger) : GatewayHandler
{
    public override async Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
    {
        var start = time.GetTimestamp();
        var plan = RequestPlanner.Plan(registry, operation, request, operation.Name);
        BifrostException? last = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var target = plan[i];
            for (var attempt = 0; ; attempt++)
            {
                TResponse response;
                var outer = Activity.Current;
                Activity? span = null;
                try
                {
                    var context = CreateContext(target, attempt, out var keyId);
                    span = GatewayTracing.StartAttempt(operation.Metric, target, i, attempt, keyId);
                    response = await operation.Call(new ProviderCall(context, target, time), request, cancellationToken).ConfigureAwait(false)
                        ?? throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "empty_response", $"Provider '{target.Provider.Name}' returned no response.");
                    metrics.RecordAttempt(target.Provider.Name, "success");
                    GatewayTracing.EndAttempt(span, "success", null);
                }
                catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
                {
                    var error = Normalize(ex, target.Provider.Name);
                    var outcome = await HandleFailureAsync(error, target, attempt, i + 1 < plan.Length ? plan[i + 1] : null, span, cancellationToken).ConfigureAwait(false);
                    if (outcome == Outcome.Fail)
                    {
                        throw Decorate(error, target, operation.Name);
                    }

                    last = error;
                    if (outcome == Outcome.NextTarget)
                    {
                        break;
                    }

                    continue;
                }
                finally
                {
                    if (span is not null)
                    {
                        span.Dispose(); // a caller's cancellation ends it here; otherwise it already ended with its outcome
                        Activity.Current = outer; // ended in another flow (the failure handling): the next attempt is a sibling, not a child
                    }
                }

                if (operation.Complete is { } complete)
                {
                    try
                    {
                        response = complete(request, response, target);
                    }
                    catch (BifrostException ex)
                    {
                        throw Decorate(ex, target, operation.Name);
                    }
                }

                var extra = Extra(operation.ExtraFieldsOf(response), operation.Name, target, time.GetElapsedTime(start));
                extra.Cost = pricing.Find(target) is { } price && operation.CostUsageOf?.Invoke(response) is { } tokens ? price.Cost(tokens) : null;
                operation.SetExtraFields(response, extra);
                return response;
            }
        }

        throw Decorate(last!, plan[^1], operation.Name);
    }

    public override async IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var requestType = operation.StreamName ?? operation.Name;
        var open = operation.CallStream ?? throw new InvalidOperationException($"Operation '{operation.Name}' does not stream.");
        var decorate = operation.WithChunkExtraFields;
        var start = time.GetTimestamp();
        var plan = RequestPlanner.Plan(registry, operation, request, requestType);
        var (enumerator, target, span) = await StartAsync(plan, operation.Metric, requestType, request, open, cancellationToken).ConfigureAwait(false);
        if (enumerator is null)
        {
            GatewayTracing.EndAttempt(span, "success", null);
            yield break;
        }

        var index = 0;
        var price = operation.ChunkUsageOf is null ? null : pricing.Find(target);
        try
        {
            do
            {
                var chunk = enumerator.Current;
                if (decorate is not null)
                {
                    var extra = Extra(null, requestType, target, time.GetElapsedTime(start));
                    extra.ChunkIndex = index++;
                    if (price is not null && operation.ChunkUsageOf!(chunk) is { } tokens)
                    {
                        extra.Cost = price.Cost(tokens); // the chunk that carries the usage (the last one)
                    }

                    chunk = decorate(chunk, extra);
                }

                yield return chunk;
            }
            while (await NextAsync(enumerator, target, requestType, span, cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            await enumerator.DisposeAsync().ConfigureAwait(false);
            GatewayTracing.EndAttempt(span, "success", null); // the attempt that streamed ends with its stream
        }
    }

    /// <summary>Opens a stream and reads its first item, retrying and falling back; after it, no retry ever happens.</summary>
    private async Task<(IAsyncEnumerator<TChunk>? Enumerator, ResolvedModel Target, Activity? Span)> StartAsync<TRequest, TChunk>(
        ResolvedModel[] plan,
        string operationName,
        string requestType,
        TRequest request,
        Func<ProviderCall, TRequest, CancellationToken, IAsyncEnumerable<TChunk>> open,
        CancellationToken cancellationToken)
    {
        BifrostException? last = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var target = plan[i];
            for (var attempt = 0; ; attempt++)
            {
                IAsyncEnumerator<TChunk>? enumerator = null;
                var outer = Activity.Current;
                Activity? span = null;
                try
                {
                    var context = CreateContext(target, attempt, out var keyId);
                    span = GatewayTracing.StartAttempt(operationName, target, i, attempt, keyId);
                    enumerator = open(new ProviderCall(context, target, time), request, cancellationToken).GetAsyncEnumerator(cancellationToken);
                    if (await enumerator.MoveNextAsync().ConfigureAwait(false))
                    {
                        metrics.RecordAttempt(target.Provider.Name, "success");
                        return (enumerator, target, span);
                    }

                    await enumerator.DisposeAsync().ConfigureAwait(false);
                    return (null, target, span);
                }
                catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
                {
                    if (enumerator is not null)
                    {
                        await enumerator.DisposeAsync().ConfigureAwait(false);
                    }

                    var error = Normalize(ex, target.Provider.Name);
                    var outcome = await HandleFailureAsync(error, target, attempt, i + 1 < plan.Length ? plan[i + 1] : null, span, cancellationToken).ConfigureAwait(false);
                    if (span is not null)
                    {
                        Activity.Current = outer; // the next attempt is a sibling of this one
                    }

                    if (outcome == Outcome.Fail)
                    {
                        throw Decorate(error, target, requestType);
                    }

                    last = error;
                    if (outcome == Outcome.NextTarget)
                    {
                        break;
                    }
                }
                catch
                {
                    if (enumerator is not null)
                    {
                        await enumerator.DisposeAsync().ConfigureAwait(false);
                    }

                    span?.Dispose();
                    throw;
                }
            }
        }

        throw Decorate(last!, plan[^1], requestType);
    }

    /// <summary>The next item of a started stream; a failure now is final (it reaches the client as an SSE error event).</summary>
    private async ValueTask<bool> NextAsync<TChunk>(IAsyncEnumerator<TChunk> enumerator, ResolvedModel target, string requestType, Activity? span, CancellationToken cancellationToken)
    {
        try
        {
            return await enumerator.MoveNextAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
        {
            var error = Normalize(ex, target.Provider.Name);
            GatewayTracing.EndAttempt(span, "error", error);
            Log.StreamFailedAfterStart(logger, target.Provider.Name, ex);
            throw Decorate(error, target, requestType);
        }
    }

    private enum Outcome
    {
        Retry,
        NextTarget,
        Fail,
    }

    /// <summary>Decides what follows a failed attempt, and waits the backoff when it is a retry.</summary>
    private async ValueTask<Outcome> HandleFailureAsync(BifrostException error, ResolvedModel target, int attempt, ResolvedModel? next, Activity? span, CancellationToken cancellationToken)
    {
        var provider = target.Provider;
        if (!error.IsRetryable)
        {
            metrics.RecordAttempt(provider.Name, "error");
            GatewayTracing.EndAttempt(span, "error", error);
            Log.ProviderFailed(logger, provider.Name, error.StatusCode, error.Error.Error.Code, error.Message);
            return Outcome.Fail;
        }

        var delay = NextDelay(error, attempt, provider.Options);
        if (delay is { } wait)
        {
            metrics.RecordAttempt(provider.Name, "retry");
            GatewayTracing.EndAttempt(span, "retry", error); // before the backoff: the wait is not the attempt's
            Log.Retrying(logger, provider.Name, attempt + 1, error.StatusCode, error.Error.Error.Code, (long)wait.TotalMilliseconds);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
            }

            return Outcome.Retry;
        }

        if (next is { } fallback)
        {
            metrics.RecordAttempt(provider.Name, "fallback");
            GatewayTracing.EndAttempt(span, "fallback", error);
            if (logger.IsEnabled(LogLevel.Warning))
            {
                Log.FallingBack(logger, provider.Name, error.StatusCode, error.Error.Error.Code, fallback.Provider.Name + "/" + fallback.Model); // the name is built only for a log that is on
            }
            return Outcome.NextTarget;
        }

        metrics.RecordAttempt(provider.Name, "error");
        GatewayTracing.EndAttempt(span, "error", error);
        Log.ProviderFailed(logger, provider.Name, error.StatusCode, error.Error.Error.Code, error.Message);
        return Outcome.Fail;
    }

    /// <summary>The provider's backoff (<see cref="Resilience.Backoff"/>): exponential, capped, jittered; the provider's Retry-After wins when it is not longer than <see cref="ProviderOptions.RetryMaxDelay"/>.</summary>
    internal static TimeSpan? NextDelay(BifrostException error, int attempt, ProviderOptions options) =>
        new Resilience.Backoff(options.RetryBaseDelay, options.RetryMaxDelay, options.MaxRetries).NextDelay(attempt, error.RetryAfter);

    internal static BifrostExtraFields Extra(BifrostExtraFields? existing, string requestType, ResolvedModel target, TimeSpan elapsed)
    {
        var extra = existing ?? new BifrostExtraFields();
        extra.RequestType = requestType;
        extra.Provider = target.Provider.Name;
        extra.ModelRequested = target.Model;
        extra.Latency = (long)elapsed.TotalMilliseconds;
        return extra;
    }

    internal static ProviderContext CreateContext(ResolvedModel target, int attempt) => CreateContext(target, attempt, out _);

    /// <summary>The attempt's context with the key chosen for it; <paramref name="keyId"/> is that key's id (never its value), if it has one.</summary>
    internal static ProviderContext CreateContext(ResolvedModel target, int attempt, out string? keyId)
    {
        var key = target.Provider.SelectKey(target.Model, Random.Shared, Governance.GovernanceCaller.Current?.Key?.ProviderKeysFor(target.Provider.Name));
        keyId = key?.Id;
        return new(target.Provider.Name, target.Provider.Options, target.Model, key?.Value) { Attempt = attempt, Authenticator = target.Provider.Authenticator };
    }

    internal static bool IsCallerCancellation(Exception ex, CancellationToken cancellationToken) =>
        ex is OperationCanceledException && cancellationToken.IsCancellationRequested;

    /// <summary>Turns anything an adapter threw into a <see cref="BifrostException"/>: timeouts and connection failures are retryable.</summary>
    private BifrostException Normalize(Exception ex, string provider)
    {
        switch (ex)
        {
            case BifrostException bifrost:
                return bifrost;
            case OperationCanceledException or TimeoutException:
                return BifrostErrors.ProviderError(504, BifrostErrors.ApiErrorType, "provider_timeout", $"Provider '{provider}' did not answer in time.");
            case HttpRequestException or SocketException or IOException:
                return BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "provider_unreachable", $"Provider '{provider}' could not be reached: {ex.Message}");
            default:
                Log.AdapterCrashed(logger, provider, ex);
                return new BifrostException(
                    new BifrostError
                    {
                        IsBifrostError = true,
                        StatusCode = 500,
                        Error = new BifrostErrorDetail { Type = "api_error", Code = "provider_adapter_error", Message = $"Provider '{provider}' failed unexpectedly: {ex.Message}" },
                    },
                    ex);
        }
    }

    internal static BifrostException Decorate(BifrostException error, ResolvedModel target, string requestType)
    {
        var extra = error.Error.ExtraFields ??= new BifrostExtraFields();
        extra.Provider ??= target.Provider.Name;
        extra.ModelRequested ??= target.Model;
        extra.RequestType ??= requestType;
        return error;
    }
}
