namespace Bifrost.Middleware.Gateway;

/// <summary>
/// Validates requests (<see cref="RequestValidator"/>) and resolves their primary model and fallbacks; throws a 400
/// <see cref="BifrostException"/> for bad input. Every path of every inference route passes here before anything is
/// stored or sent (the synchronous call, SSE, both async submits, batch lines, direct <see cref="IBifrostClient"/> calls),
/// and so does the primary provider's own preflight (<see cref="IRequestPreflight"/>).
/// </summary>
internal static class ChatRequestPlanner
{
    public static ResolvedModel[] Plan(ProviderRegistry registry, ChatCompletionRequest request, string requestType) =>
        Plan(registry, request, request.Model, request.Fallbacks, requestType, RequestValidator.Validate);

    public static ResolvedModel[] Plan(ProviderRegistry registry, EmbeddingRequest request, string requestType) =>
        Plan(registry, request, request.Model, request.Fallbacks, requestType, RequestValidator.Validate);

    public static ResolvedModel[] Plan(ProviderRegistry registry, TextCompletionRequest request, string requestType) =>
        Plan(registry, request, request.Model, request.Fallbacks, requestType, RequestValidator.Validate);

    public static ResolvedModel[] Plan(ProviderRegistry registry, ResponsesRequest request, string requestType) =>
        Plan(registry, request, request.Model, request.Fallbacks, requestType, RequestValidator.Validate);

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
            throw WithType(ex, requestType, model);
        }
    }

    private static ResolvedModel[] Plan<TRequest>(ProviderRegistry registry, TRequest request, string? model, IList<string>? fallbacks, string requestType, Action<TRequest> validate)
        where TRequest : class
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            validate(request);
        }
        catch (BifrostException ex)
        {
            throw WithType(ex, requestType, model);
        }

        var plan = PlanModels(registry, model, fallbacks, requestType);
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

    private static BifrostException WithType(BifrostException ex, string requestType, string? model)
    {
        ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = requestType, ModelRequested = model };
        return ex;
    }
}

/// <summary>
/// Implemented by a built-in adapter that refuses some requests before they are queued or sent (the local provider
/// bounds the output it generates). Called by <see cref="ChatRequestPlanner"/> for the primary target only; the adapter
/// checks again when it runs (a fallback, a direct adapter call).
/// </summary>
internal interface IRequestPreflight
{
    /// <summary>Throws a 400 <see cref="BifrostException"/> for a request this adapter would refuse.</summary>
    void Preflight(object request, string requestType);
}
