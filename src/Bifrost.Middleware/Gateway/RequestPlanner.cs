using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Gateway;

/// <summary>
/// Validates requests (<see cref="RequestValidator"/>) and resolves their primary model and fallbacks; throws a 400
/// <see cref="BifrostException"/> for bad input. Every path of every inference route passes here before anything is
/// stored or sent (the synchronous call, SSE, both async submits, batch lines, direct <see cref="IBifrostClient"/> calls),
/// and so does the primary provider's own preflight (<see cref="IRequestPreflight"/>).
/// </summary>
internal static class RequestPlanner
{
    /// <summary>Validates the request and resolves its plan: the primary target first, then the fallbacks.</summary>
    public static ResolvedModel[] Plan<TRequest, TResponse, TChunk>(ProviderRegistry registry, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, string requestType)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        Validate(registry, operation, request, requestType);
        var plan = PlanModels(registry, operation.Model(request), operation.Fallbacks(request), requestType);
        var primary = plan[0];
        if (primary.Provider.Adapter is IRequestPreflight preflight)
        {
            try
            {
                preflight.Preflight(request, requestType);
            }
            catch (BifrostException ex)
            {
                var extra = WithType(ex, requestType, primary.Model).Error.ExtraFields!;
                extra.Provider ??= primary.Provider.Name;
                throw;
            }
        }

        return plan;
    }

    /// <summary>Checks the request's values (throws 400s with the request type and model in <c>extra_fields</c>).</summary>
    public static void Validate<TRequest, TResponse, TChunk>(ProviderRegistry registry, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, string requestType)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            operation.Validate(request);
        }
        catch (BifrostException ex)
        {
            throw WithType(ex, requestType, registry.BareModel(operation.Model(request)));
        }
    }

    public static ResolvedModel[] PlanModels(ProviderRegistry registry, string? model, IList<string>? fallbacks, string requestType)
    {
        try
        {
            var primary = registry.Resolve(model, "model");
            if (fallbacks is not { Count: > 0 })
            {
                return [primary];
            }

            var plan = new ResolvedModel[fallbacks.Count + 1];
            plan[0] = primary;
            for (var i = 0; i < fallbacks.Count; i++)
            {
                plan[i + 1] = registry.Resolve(fallbacks[i], $"fallbacks[{i}]");
            }

            return plan;
        }
        catch (BifrostException ex)
        {
            throw WithType(ex, requestType, registry.BareModel(model));
        }
    }

    /// <summary>Fills <c>extra_fields</c> of a refusal: the request type and <c>model_requested</c>, which is always the model as the provider is asked for it (<see cref="ProviderRegistry.BareModel"/>), as on every answer.</summary>
    private static BifrostException WithType(BifrostException ex, string requestType, string? model)
    {
        ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = requestType, ModelRequested = model };
        return ex;
    }
}

/// <summary>
/// Implemented by a built-in adapter that refuses some requests before they are queued or sent (the local provider
/// bounds the output it generates). Called by <see cref="RequestPlanner"/> for the primary target only; the adapter
/// checks again when it runs (a fallback, a direct adapter call).
/// </summary>
internal interface IRequestPreflight
{
    /// <summary>Throws a 400 <see cref="BifrostException"/> for a request this adapter would refuse.</summary>
    void Preflight(object request, string requestType);
}
