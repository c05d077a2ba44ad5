using System.Runtime.CompilerServices;

namespace Bifrost.Middleware.Gateway;

/// <summary>Runs the registered plugins around a gateway operation: pre-hooks in order, post-hooks in reverse, only for the plugins that ran.</summary>
internal sealed class PluginPipeline(IBifrostPlugin[] plugins)
{
    public bool IsEmpty => plugins.Length == 0;

    public async Task<TResponse> RunAsync<TRequest, TResponse>(string requestType, TRequest request, Func<TRequest, CancellationToken, Task<TResponse>> core, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
    {
        ArgumentNullException.ThrowIfNull(request);
        RequestValidator.Validate(request, requestType); // plugins see only valid requests (the core checks again what they hand on)
        var context = new BifrostPluginContext(requestType, request, isStream: false);
        var ran = await PreAsync(context, cancellationToken).ConfigureAwait(false);
        if (!context.IsShortCircuited)
        {
            try
            {
                context.Response = await core(RequestOf<TRequest>(context), cancellationToken).ConfigureAwait(false);
            }
            catch (BifrostException ex)
            {
                context.Error = ex;
            }
        }

        await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
        return ResponseOf<TResponse>(context);
    }

    public async IAsyncEnumerable<TChunk> StreamAsync<TRequest, TChunk>(
        string requestType,
        TRequest request,
        Func<TRequest, CancellationToken, IAsyncEnumerable<TChunk>> core,
        Func<object, IEnumerable<TChunk>?>? fromResponse,
        [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : class
        where TChunk : class
    {
        ArgumentNullException.ThrowIfNull(request);
        RequestValidator.Validate(request, requestType);
        var context = new BifrostPluginContext(requestType, request, isStream: true);
        var ran = await PreAsync(context, cancellationToken).ConfigureAwait(false);
        if (context.IsShortCircuited)
        {
            if (context.Error is not null)
            {
                await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
                _ = ResponseOf<TChunk>(context); // throws the (possibly changed) error, or returns a recovery
            }

            var answer = context.Response!;
            var chunks = answer as IEnumerable<TChunk> ?? (answer is TChunk single ? [single] : fromResponse?.Invoke(answer))
                ?? throw new InvalidOperationException($"A plugin answered a {requestType} stream with a {answer.GetType().Name}, which cannot be streamed.");
            foreach (var chunk in chunks)
            {
                context.Response = chunk;
                await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
                if (context.Response is TChunk changed)
                {
                    yield return changed;
                }
            }

            yield break;
        }

        await using var enumerator = core(RequestOf<TRequest>(context), cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            var (more, error) = await MoveAsync(enumerator).ConfigureAwait(false);
            if (error is not null)
            {
                context.Response = null;
                context.Error = error;
                await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
                if (ResponseOf<TChunk>(context) is { } recovered)
                {
                    yield return recovered;
                }

                yield break;
            }

            if (!more)
            {
                yield break;
            }

            context.Response = enumerator.Current;
            context.Error = null;
            await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
            if (context.Error is not null)
            {
                throw context.Error;
            }

            if (context.Response is TChunk chunk)
            {
                yield return chunk; // a post-hook may also drop a chunk by setting Response to null
            }
        }
    }

    private static async ValueTask<(bool More, BifrostException? Error)> MoveAsync<TChunk>(IAsyncEnumerator<TChunk> enumerator)
    {
        try
        {
            return (await enumerator.MoveNextAsync().ConfigureAwait(false), null);
        }
        catch (BifrostException ex)
        {
            return (false, ex);
        }
    }

    private async ValueTask<int> PreAsync(BifrostPluginContext context, CancellationToken cancellationToken)
    {
        var ran = 0;
        while (ran < plugins.Length)
        {
            await plugins[ran++].PreHookAsync(context, cancellationToken).ConfigureAwait(false);
            if (context.IsShortCircuited)
            {
                break;
            }
        }

        return ran;
    }

    private async ValueTask PostAsync(BifrostPluginContext context, int ran, CancellationToken cancellationToken)
    {
        for (var i = ran - 1; i >= 0; i--)
        {
            await plugins[i].PostHookAsync(context, cancellationToken).ConfigureAwait(false);
        }
    }

    private static TRequest RequestOf<TRequest>(BifrostPluginContext context)
        where TRequest : class =>
        context.Request as TRequest ?? throw new InvalidOperationException($"A plugin replaced the {context.RequestType} request with a {context.Request?.GetType().Name ?? "null"}; it must stay a {typeof(TRequest).Name}.");

    private static TResponse ResponseOf<TResponse>(BifrostPluginContext context)
        where TResponse : class
    {
        if (context.Error is { } error)
        {
            throw error;
        }

        return context.Response as TResponse
            ?? throw new InvalidOperationException($"A plugin answered the {context.RequestType} call with a {context.Response?.GetType().Name ?? "null"}; it must be a {typeof(TResponse).Name}.");
    }
}
