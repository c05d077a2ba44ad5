using System.Runtime.CompilerServices;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Governance;

/// <summary>
/// Applies the current caller's virtual key (<see cref="GovernanceCaller.Current"/>) to every operation before anything
/// reaches a provider: the key must still exist, be active and not expired (401), and the primary model and every
/// fallback must be allowed (403). Calls without a key pass (Optional mode; the host's own in-process calls). Absent from
/// the pipeline when <c>Governance:Mode</c> is Off. Budgets and rate limits will be checked here too (issue 14).
/// </summary>
internal sealed class GovernanceLayer(GatewayHandler inner, VirtualKeyStore store, ProviderRegistry registry) : DelegatingGatewayHandler(inner)
{
    public const int Order = 400;

    public static GatewayLayer Registration { get; } = new(
        Order,
        "governance",
        static (services, next) => services.GetRequiredService<VirtualKeyStore>() is { Mode: not GovernanceMode.Off } store
            ? new GovernanceLayer(next, store, services.GetRequiredService<ProviderRegistry>())
            : next);

    public override Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
    {
        if (GovernanceCaller.Current is { } caller)
        {
            Check(caller, operation, request, operation.Name);
        }

        return Inner.SendAsync(operation, request, cancellationToken);
    }

    public override IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        GovernanceCaller.Current is { } caller ? CheckedStreamAsync(caller, operation, request, cancellationToken) : Inner.StreamAsync(operation, request, cancellationToken);

    private async IAsyncEnumerable<TChunk> CheckedStreamAsync<TRequest, TResponse, TChunk>(GovernanceCaller caller, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        Check(caller, operation, request, operation.StreamName ?? operation.Name);
        await foreach (var chunk in Inner.StreamAsync(operation, request, cancellationToken).ConfigureAwait(false))
        {
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
        var plan = RequestPlanner.PlanModels(registry, model, operation.Fallbacks(request), requestType);
        for (var i = 0; i < plan.Length; i++)
        {
            var target = plan[i];
            var param = i == 0 ? "model" : $"fallbacks[{i - 1}]";
            BifrostException? refusal = null;
            if (!caller.Key!.AllowsProvider(target.Provider.Name))
            {
                refusal = GovernanceErrors.Forbidden("provider_blocked", "provider_not_allowed", $"Virtual key '{caller.KeyId}' may not use provider '{target.Provider.Name}'.", param);
            }
            else if (!caller.Key.AllowsModel(target.Provider.Name, target.Model))
            {
                refusal = GovernanceErrors.Forbidden("model_blocked", "model_not_allowed", $"Virtual key '{caller.KeyId}' may not use model '{target.Provider.Name}/{target.Model}'.", param);
            }

            if (refusal is not null)
            {
                var extra = Decorate(refusal, requestType, target.Model).Error.ExtraFields!;
                extra.Provider = target.Provider.Name;
                throw refusal;
            }
        }
    }

    private static BifrostException Decorate(BifrostException ex, string requestType, string? model)
    {
        ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = requestType, ModelRequested = model };
        return ex;
    }
}
