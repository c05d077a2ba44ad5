using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Bifrost.Middleware.Gateway;

/// <summary>
/// The gateway core behind <see cref="IBifrostClient"/>: resolves <c>provider/model</c>, tries the primary and
/// then the fallbacks, retries retryable failures with backoff (honouring Retry-After), picks keys, fills
/// <c>extra_fields</c> and records metrics. Knows nothing of HTTP.
/// </summary>
internal sealed class BifrostGateway(ProviderRegistry registry, BifrostMetrics metrics, TimeProvider time, ILogger<BifrostGateway> logger) : IBifrostClient
{
    internal const string ChatRequestType = "chat_completion";
    internal const string ChatStreamRequestType = "chat_completion_stream";
    internal const string ListModelsRequestType = "list_models";

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, ChatRequestType);
        BifrostException? last = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var target = plan[i];
            var attemptRequest = request.ForProvider(target.Model, stream: false);
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    var context = CreateContext(target, attempt);
                    var response = await target.Provider.Adapter.ChatCompletionAsync(context, attemptRequest, cancellationToken).ConfigureAwait(false)
                        ?? throw BifrostException.Provider(502, "api_error", "empty_response", $"Provider '{target.Provider.Name}' returned no response.");
                    var elapsed = time.GetElapsedTime(start);
                    var extra = response.ExtraFields ??= new BifrostExtraFields();
                    extra.RequestType = ChatRequestType;
                    extra.Provider = target.Provider.Name;
                    extra.ModelRequested = target.Model;
                    extra.Latency = (long)elapsed.TotalMilliseconds;
                    metrics.RecordAttempt(target.Provider.Name, "success");
                    metrics.RecordCompletion("chat", target.Provider.Name, target.Model, elapsed.TotalSeconds, null, response.Usage);
                    return response;
                }
                catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
                {
                    var error = Normalize(ex, target.Provider.Name);
                    var delay = await HandleFailureAsync(error, target, attempt, i + 1 < plan.Length ? plan[i + 1] : null, cancellationToken).ConfigureAwait(false);
                    if (delay == Outcome.Fail)
                    {
                        metrics.RecordCompletion("chat", target.Provider.Name, target.Model, time.GetElapsedTime(start).TotalSeconds, error.Error.Error.Code ?? error.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture), null);
                        throw Decorate(error, target, ChatRequestType);
                    }

                    last = error;
                    if (delay == Outcome.NextTarget)
                    {
                        break;
                    }
                }
            }
        }

        throw Decorate(last!, plan[^1], ChatRequestType);
    }

    public async IAsyncEnumerable<ChatCompletionChunk> ChatCompletionStreamAsync(ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, ChatStreamRequestType);
        var (enumerator, first, target) = await StartStreamAsync(request, plan, start, cancellationToken).ConfigureAwait(false);
        if (enumerator is null)
        {
            yield break;
        }

        var index = 0;
        ChatUsage? usage = null;
        string? errorType = null;
        try
        {
            var chunk = first!;
            while (true)
            {
                usage = chunk.Usage ?? usage;
                var extra = chunk.ExtraFields ??= new BifrostExtraFields();
                extra.RequestType = ChatStreamRequestType;
                extra.Provider = target.Provider.Name;
                extra.ModelRequested = target.Model;
                extra.ChunkIndex = index++;
                extra.Latency = (long)time.GetElapsedTime(start).TotalMilliseconds;
                yield return chunk;

                bool more;
                try
                {
                    more = await enumerator.MoveNextAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
                {
                    var error = Normalize(ex, target.Provider.Name);
                    errorType = error.Error.Error.Code ?? "stream_error";
                    Log.StreamFailedAfterStart(logger, target.Provider.Name, ex);
                    throw Decorate(error, target, ChatStreamRequestType);
                }

                if (!more)
                {
                    break;
                }

                chunk = enumerator.Current;
            }
        }
        finally
        {
            await enumerator.DisposeAsync().ConfigureAwait(false);
            metrics.RecordCompletion("chat", target.Provider.Name, target.Model, time.GetElapsedTime(start).TotalSeconds, errorType, usage);
        }
    }

    public async Task<ModelList> ListModelsAsync(CancellationToken cancellationToken = default)
    {
        var start = time.GetTimestamp();
        var providers = registry.Providers.ToArray();
        var tasks = new Task<IReadOnlyList<ModelInfo>>[providers.Length];
        for (var i = 0; i < providers.Length; i++)
        {
            tasks[i] = ListOneAsync(providers[i], cancellationToken);
        }

        var list = new ModelList();
        for (var i = 0; i < providers.Length; i++)
        {
            foreach (var model in await tasks[i].ConfigureAwait(false))
            {
                var prefix = providers[i].Name + "/";
                if (!model.Id.StartsWith(prefix, StringComparison.Ordinal))
                {
                    model.Id = prefix + model.Id;
                }

                model.OwnedBy ??= providers[i].Name;
                list.Data.Add(model);
            }
        }

        list.ExtraFields = new BifrostExtraFields { RequestType = ListModelsRequestType, Latency = (long)time.GetElapsedTime(start).TotalMilliseconds };
        return list;
    }

    private async Task<IReadOnlyList<ModelInfo>> ListOneAsync(ProviderRuntime provider, CancellationToken cancellationToken)
    {
        try
        {
            var context = new ProviderContext(provider.Name, provider.Options, string.Empty, provider.KeyCount == 0 ? null : provider.SelectKey(string.Empty, Random.Shared));
            return await provider.Adapter.ListModelsAsync(context, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
        {
            Log.ListModelsFailed(logger, provider.Name, ex);
            return [];
        }
    }

    /// <summary>Finds the first chunk, retrying and falling back; after it, no retry ever happens.</summary>
    private async Task<(IAsyncEnumerator<ChatCompletionChunk>? Enumerator, ChatCompletionChunk? First, ResolvedModel Target)> StartStreamAsync(
        ChatCompletionRequest request, ResolvedModel[] plan, long start, CancellationToken cancellationToken)
    {
        BifrostException? last = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var target = plan[i];
            var attemptRequest = request.ForProvider(target.Model, stream: true);
            for (var attempt = 0; ; attempt++)
            {
                IAsyncEnumerator<ChatCompletionChunk>? enumerator = null;
                try
                {
                    var context = CreateContext(target, attempt);
                    enumerator = target.Provider.Adapter.StreamChatCompletionAsync(context, attemptRequest, cancellationToken).GetAsyncEnumerator(cancellationToken);
                    if (await enumerator.MoveNextAsync().ConfigureAwait(false))
                    {
                        metrics.RecordAttempt(target.Provider.Name, "success");
                        return (enumerator, enumerator.Current, target);
                    }

                    await enumerator.DisposeAsync().ConfigureAwait(false);
                    return (null, null, target);
                }
                catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
                {
                    if (enumerator is not null)
                    {
                        await enumerator.DisposeAsync().ConfigureAwait(false);
                    }

                    var error = Normalize(ex, target.Provider.Name);
                    var outcome = await HandleFailureAsync(error, target, attempt, i + 1 < plan.Length ? plan[i + 1] : null, cancellationToken).ConfigureAwait(false);
                    if (outcome == Outcome.Fail)
                    {
                        metrics.RecordCompletion("chat", target.Provider.Name, target.Model, time.GetElapsedTime(start).TotalSeconds, error.Error.Error.Code ?? "error", null);
                        throw Decorate(error, target, ChatStreamRequestType);
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

                    throw;
                }
            }
        }

        throw Decorate(last!, plan[^1], ChatStreamRequestType);
    }

    private enum Outcome
    {
        Retry,
        NextTarget,
        Fail,
    }

    /// <summary>Decides what follows a failed attempt, and waits the backoff when it is a retry.</summary>
    private async ValueTask<Outcome> HandleFailureAsync(BifrostException error, ResolvedModel target, int attempt, ResolvedModel? next, CancellationToken cancellationToken)
    {
        var provider = target.Provider;
        if (!error.IsRetryable)
        {
            metrics.RecordAttempt(provider.Name, "error");
            Log.ProviderFailed(logger, provider.Name, error.StatusCode, error.Error.Error.Code, error.Message);
            return Outcome.Fail;
        }

        var delay = NextDelay(error, attempt, provider.Options);
        if (delay is { } wait)
        {
            metrics.RecordAttempt(provider.Name, "retry");
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
            Log.FallingBack(logger, provider.Name, error.StatusCode, error.Error.Error.Code, fallback.Provider.Name + "/" + fallback.Model);
            return Outcome.NextTarget;
        }

        metrics.RecordAttempt(provider.Name, "error");
        Log.ProviderFailed(logger, provider.Name, error.StatusCode, error.Error.Error.Code, error.Message);
        return Outcome.Fail;
    }

    /// <summary>Exponential backoff with jitter; the provider's Retry-After wins when it is not longer than <see cref="ProviderOptions.RetryMaxDelay"/>.</summary>
    internal static TimeSpan? NextDelay(BifrostException error, int attempt, ProviderOptions options)
    {
        if (attempt >= options.MaxRetries)
        {
            return null;
        }

        if (error.RetryAfter is { } retryAfter)
        {
            return retryAfter <= options.RetryMaxDelay ? (retryAfter < TimeSpan.Zero ? TimeSpan.Zero : retryAfter) : null;
        }

        var exponential = options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, attempt);
        var capped = Math.Min(exponential, options.RetryMaxDelay.TotalMilliseconds);
        var jittered = capped * (0.5 + (Random.Shared.NextDouble() * 0.5));
        return TimeSpan.FromMilliseconds(jittered);
    }

    private static ProviderContext CreateContext(ResolvedModel target, int attempt) =>
        new(target.Provider.Name, target.Provider.Options, target.Model, target.Provider.SelectKey(target.Model, Random.Shared)) { Attempt = attempt };

    private static bool IsCallerCancellation(Exception ex, CancellationToken cancellationToken) =>
        ex is OperationCanceledException && cancellationToken.IsCancellationRequested;

    /// <summary>Turns anything an adapter threw into a <see cref="BifrostException"/>: timeouts and connection failures are retryable.</summary>
    private BifrostException Normalize(Exception ex, string provider)
    {
        switch (ex)
        {
            case BifrostException bifrost:
                return bifrost;
            case OperationCanceledException or TimeoutException:
                return BifrostException.Provider(504, "api_error", "provider_timeout", $"Provider '{provider}' did not answer in time.");
            case HttpRequestException or SocketException or IOException:
                return BifrostException.Provider(502, "api_error", "provider_unreachable", $"Provider '{provider}' could not be reached: {ex.Message}");
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

    private static BifrostException Decorate(BifrostException error, ResolvedModel target, string requestType)
    {
        var extra = error.Error.ExtraFields ??= new BifrostExtraFields();
        extra.Provider ??= target.Provider.Name;
        extra.ModelRequested ??= target.Model;
        extra.RequestType ??= requestType;
        return error;
    }
}
