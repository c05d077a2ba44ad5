namespace Bifrost.Middleware.Gateway;

/// <summary>Validates requests and resolves their primary model and fallbacks; throws a 400 <see cref="BifrostException"/> for bad input.</summary>
internal static class ChatRequestPlanner
{
    public static ResolvedModel[] Plan(ProviderRegistry registry, ChatCompletionRequest request, string requestType)
    {
        try
        {
            if (request.Messages is not { Count: > 0 } messages)
            {
                throw BifrostException.Gateway(400, "invalid_request_error", "missing_required_parameter", "'messages' is required and must contain at least one message.", "messages");
            }

            for (var i = 0; i < messages.Count; i++)
            {
                if (messages[i] is null || string.IsNullOrEmpty(messages[i].Role))
                {
                    throw BifrostException.Gateway(400, "invalid_request_error", "invalid_value", $"'messages[{i}].role' is required.", $"messages[{i}].role");
                }
            }
        }
        catch (BifrostException ex)
        {
            ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = requestType, ModelRequested = request.Model };
            throw;
        }

        return PlanModels(registry, request.Model, request.Fallbacks, requestType);
    }

    public static ResolvedModel[] Plan(ProviderRegistry registry, EmbeddingRequest request, string requestType)
    {
        if (request.Input is null || request.Input.Count == 0)
        {
            throw WithType(BifrostException.Gateway(400, "invalid_request_error", "missing_required_parameter", "'input' is required and must not be empty.", "input"), requestType, request.Model);
        }

        if (request.EncodingFormat is not (null or "float" or "base64"))
        {
            throw WithType(BifrostException.Gateway(400, "invalid_request_error", "invalid_value", "'encoding_format' must be \"float\" or \"base64\".", "encoding_format"), requestType, request.Model);
        }

        if (request.Dimensions is <= 0)
        {
            throw WithType(BifrostException.Gateway(400, "invalid_request_error", "invalid_value", "'dimensions' must be a positive integer.", "dimensions"), requestType, request.Model);
        }

        return PlanModels(registry, request.Model, request.Fallbacks, requestType);
    }

    public static ResolvedModel[] Plan(ProviderRegistry registry, TextCompletionRequest request, string requestType)
    {
        if (request.Prompt is null)
        {
            throw WithType(BifrostException.Gateway(400, "invalid_request_error", "missing_required_parameter", "'prompt' is required.", "prompt"), requestType, request.Model);
        }

        return PlanModels(registry, request.Model, request.Fallbacks, requestType);
    }

    public static ResolvedModel[] Plan(ProviderRegistry registry, ResponsesRequest request, string requestType)
    {
        if (request.Input is null)
        {
            throw WithType(BifrostException.Gateway(400, "invalid_request_error", "missing_required_parameter", "'input' is required.", "input"), requestType, request.Model);
        }

        return PlanModels(registry, request.Model, request.Fallbacks, requestType);
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
            throw WithType(ex, requestType, model);
        }
    }

    private static BifrostException WithType(BifrostException ex, string requestType, string? model)
    {
        ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = requestType, ModelRequested = model };
        return ex;
    }
}
