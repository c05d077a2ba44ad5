namespace Bifrost.Middleware.Gateway;

/// <summary>Validates a chat request and resolves its primary model and fallbacks; throws a 400 <see cref="BifrostException"/> for bad input.</summary>
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

            var primary = registry.Resolve(request.Model, "model");
            if (request.Fallbacks is not { Count: > 0 } fallbacks)
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
            ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = requestType, ModelRequested = request.Model };
            throw;
        }
    }
}
