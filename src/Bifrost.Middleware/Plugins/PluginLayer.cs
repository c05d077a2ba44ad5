using System.Runtime.CompilerServices;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Plugins;

/// <summary>
/// Runs the registered <see cref="IBifrostPlugin"/>s around every operation: pre-hooks in order, post-hooks in reverse,
/// only for the plugins that ran. Absent from the pipeline when no plugin is registered.
/// </summary>
internal sealed class PluginLayer(GatewayHandler inner, IBifrostPlugin[] plugins, ProviderRegistry registry) : DelegatingGatewayHandler(inner)
{
    public static GatewayLayer Registration { get; } = new(
        GatewayLayer.PluginsOrder,
        "plugins",
        static (services, next) => services.GetServices<IBifrostPlugin>().ToArray() is { Length: > 0 } plugins ? new PluginLayer(next, plugins, services.GetRequiredService<ProviderRegistry>()) : next);

    public override async Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
    {
        RequestPlanner.Validate(registry, operation, request, operation.Name); // plugins see only valid requests (the core checks again what they hand on)
        var context = new BifrostPluginContext<TRequest, TResponse, TChunk>(operation.Name, request, isStream: false);
        var ran = await PreAsync(context, cancellationToken).ConfigureAwait(false);
        if (!context.IsShortCircuited)
        {
            try
            {
                context.Response = await Inner.SendAsync(operation, context.Request, cancellationToken).ConfigureAwait(false);
            }
            catch (BifrostException ex)
            {
                context.Error = ex;
            }
        }

        await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
        if (context.Error is { } error)
        {
            throw error;
        }

        return context.Response ?? throw new InvalidOperationException($"The plugins left the {operation.Name} call without an answer or an error.");
    }

    public override async IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var requestType = operation.StreamName ?? operation.Name;
        RequestPlanner.Validate(registry, operation, request, requestType);
        var context = new BifrostPluginContext<TRequest, TResponse, TChunk>(requestType, request, isStream: true);
        var ran = await PreAsync(context, cancellationToken).ConfigureAwait(false);
        if (context.IsShortCircuited)
        {
            if (context.Error is not null)
            {
                await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
                if (context.Error is { } rejected)
                {
                    throw rejected;
                }
            }

            var chunks = context.RespondedChunks
                ?? (context.Response is { } whole
                    ? operation.ChunksOf?.Invoke(whole) ?? (whole as TChunk is { } single ? [single] : null)
                    : context.Chunk is { } one ? [one] : null)
                ?? throw new InvalidOperationException($"A plugin answered a {requestType} stream with nothing that can be streamed.");
            foreach (var chunk in chunks)
            {
                context.Chunk = chunk;
                context.Error = null;
                await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
                if (context.Chunk is { } changed)
                {
                    yield return changed;
                }
            }

            yield break;
        }

        await using var enumerator = Inner.StreamAsync(operation, context.Request, cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            var (more, error) = await MoveAsync(enumerator).ConfigureAwait(false);
            if (error is not null)
            {
                context.Chunk = null;
                context.Error = error;
                await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
                if (context.Error is { } failed)
                {
                    throw failed;
                }

                if (context.Chunk is { } recovered)
                {
                    yield return recovered;
                }

                yield break;
            }

            if (!more)
            {
                yield break;
            }

            context.Chunk = enumerator.Current;
            context.Error = null;
            await PostAsync(context, ran, cancellationToken).ConfigureAwait(false);
            if (context.Error is { } changedError)
            {
                throw changedError;
            }

            if (context.Chunk is { } chunk)
            {
                yield return chunk; // a post-hook may also drop a chunk by setting Chunk to null
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
}
