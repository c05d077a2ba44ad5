namespace Bifrost.Middleware.Providers;

/// <summary>Tool-call arguments for providers that take them as a JSON object rather than OpenAI's JSON text.</summary>
internal static class ToolCallArguments
{
    /// <summary>
    /// The arguments' JSON object (<c>{}</c> when empty); anything else is the caller's error: 400
    /// <c>unsupported_parameter</c> naming <paramref name="param"/>.
    /// </summary>
    public static JsonElement ParseObject(string? arguments, string param, string provider)
    {
        if (string.IsNullOrWhiteSpace(arguments))
        {
            arguments = "{}";
        }

        try
        {
            using var document = JsonDocument.Parse(arguments);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                return document.RootElement.Clone();
            }
        }
        catch (JsonException)
        {
            // reported below
        }

        throw BifrostErrors.UnsupportedParameter($"Tool call arguments must be a JSON object for {provider}.", param);
    }
}
