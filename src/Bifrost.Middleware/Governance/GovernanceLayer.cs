using System.Runtime.CompilerServices;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Governance;

/// <summary>
/// Applies the current caller's virtual key (<see cref="GovernanceCaller.Current"/>) to every operation before anything
/// reaches a provider: the key must still exist, be active and not expired (401), and of the primary model and its
/// fallbacks those the key may not use are skipped (403 when none is left). Calls without a key pass (Optional mode; the host's own in-process calls). Absent from
/// the pipeline when <c>Governance:Mode</c> is Off. A key's rate limits are taken last (429, nothing
/// sent): the call holds one of its concurrent slots until it (or its stream) ends, and the tokens the provider reported
/// are settled into the key's window. Budgets will be checked here too (issue 14).
/// </summary>
internal sealed class GovernanceLayer(GatewayHandler inner, VirtualKeyStore store, ProviderRegistry registry, GovernanceRateLimiter limiter) : DelegatingGatewayHandler(inner)
{
    public const int Order = 400;

    public static GatewayLayer Registration { get; } = new(
        Order,
        "governance",
        static (services, next) => services.GetRequiredService<VirtualKeyStore>() is { Mode: not GovernanceMode.Off } store
            ? new GovernanceLayer(next, store, services.GetRequiredService<ProviderRegistry>(), services.GetRequiredService<GovernanceRateLimiter>())
            : next);

    public override Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
    {
        if (GovernanceCaller.Current is { } caller)
        {
            Check(caller, operation, request, operation.Name);
            if (Acquire(caller, operation, request, operation.Name) is { } lease)
            {
                return LimitedSendAsync(lease, operation, request, cancellationToken);
            }
        }

        return Inner.SendAsync(operation, request, cancellationToken);
    }

    private async Task<TResponse> LimitedSendAsync<TRequest, TResponse, TChunk>(GovernanceRateLimiter.Lease lease, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        using (lease)
        {
            var response = await Inner.SendAsync(operation, request, cancellationToken).ConfigureAwait(false);
            lease.Record(operation.UsageOf?.Invoke(response));
            return response;
        }
    }

    /// <summary>Takes a call of the caller's key against its rate limits (null when it has none), else throws the 429.</summary>
    private GovernanceRateLimiter.Lease? Acquire<TRequest, TResponse, TChunk>(GovernanceCaller caller, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, string requestType)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        if (caller.Key is not { RateLimits: { } limits } key)
        {
            return null;
        }

        try
        {
            return limiter.Acquire(key, limits);
        }
        catch (BifrostException ex)
        {
            throw Decorate(ex, requestType, registry.BareModel(operation.Model(request)));
        }
    }

    public override IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        GovernanceCaller.Current is { } caller ? CheckedStreamAsync(caller, operation, request, cancellationToken) : Inner.StreamAsync(operation, request, cancellationToken);

    private async IAsyncEnumerable<TChunk> CheckedStreamAsync<TRequest, TResponse, TChunk>(GovernanceCaller caller, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var requestType = operation.StreamName ?? operation.Name;
        Check(caller, operation, request, requestType);
        using var lease = Acquire(caller, operation, request, requestType);
        await foreach (var chunk in Inner.StreamAsync(operation, request, cancellationToken).ConfigureAwait(false))
        {
            if (lease is not null && operation.ChunkUsageOf?.Invoke(chunk) is { } usage)
            {
                lease.Record(usage);
            }

            yield return chunk;
        }
    }

    private void Check<TRequest, TResponse, TChunk>(GovernanceCaller caller, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, string requestType)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var model = operation.Model(request);
        try
        {
            var key = caller.Key ?? throw GovernanceErrors.Unauthorized("virtual_key_not_found", "virtual_key_invalid", $"Virtual key '{caller.KeyId}' no longer exists.");
            store.CheckUsable(key);
        }
        catch (BifrostException ex)
        {
            throw Decorate(ex, requestType, registry.BareModel(model));
        }

        // Bad input is the core's 400 as without governance; the plan is resolved here only to check it.
        RequestPlanner.Validate(registry, operation, request, requestType);
        var fallbacks = operation.Fallbacks(request);
        var plan = RequestPlanner.PlanModels(registry, model, fallbacks, requestType);
        var vk = caller.Key!;
        BifrostException? first = null;
        List<int>? refused = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var target = plan[i];
            var param = i == 0 ? "model" : $"fallbacks[{i - 1}]";
            var refusal = !vk.AllowsProvider(target.Provider.Name)
                ? GovernanceErrors.Forbidden("provider_blocked", "provider_not_allowed", $"Virtual key '{caller.KeyId}' may not use provider '{target.Provider.Name}'.", param)
                : !vk.AllowsModel(target.Provider.Name, target.Model)
                    ? GovernanceErrors.Forbidden("model_blocked", "model_not_allowed", $"Virtual key '{caller.KeyId}' may not use model '{target.Provider.Name}/{target.Model}'.", param)
                    : null;
            if (refusal is not null)
            {
                Decorate(refusal, requestType, target.Model).Error.ExtraFields!.Provider = target.Provider.Name;
                first ??= refusal;
                (refused ??= []).Add(i);
            }
        }

        if (refused is null)
        {
            return;
        }

        // As Bifrost (governance runs before each attempt): a target the key may not use is skipped, the next one is
        // tried; when none is left, the first refusal is the answer. Nothing is ever sent to a refused target.
        if (refused.Count == plan.Length || fallbacks is null || fallbacks.IsReadOnly)
        {
            throw first!;
        }

        var allowed = new List<string>(plan.Length);
        for (var i = 0; i < plan.Length; i++)
        {
            if (!refused.Contains(i))
            {
                allowed.Add(i == 0 ? model! : fallbacks[i - 1]);
            }
        }

        operation.SetModel(request, allowed[0]);
        fallbacks.Clear();
        for (var i = 1; i < allowed.Count; i++)
        {
            fallbacks.Add(allowed[i]);
        }
    }

    private static BifrostException Decorate(BifrostException ex, string requestType, string? model)
    {
        ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = requestType, ModelRequested = model };
        return ex;
    }
}
