using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Providers.OpenAI.Presets;

/// <summary>
/// A named preset of the OpenAI-compatible type (<c>Type: groq</c>, ...): where the provider is, whether it needs a key, and
/// the known quirks of its chat-completions API, applied to the outgoing request JSON. One row of <see cref="OpenAIPresets.All"/>.
/// </summary>
/// <param name="Name">The type name configuration uses.</param>
/// <param name="BaseUrl">The base URL used when the provider's configuration has none (a configured BaseUrl always wins).</param>
/// <param name="KeyRequired">Whether a provider of this type must have a key (cloud services) or not (local servers).</param>
/// <param name="KeyVariable">The environment variable the sample host and the README use for the key.</param>
/// <param name="Source">The documentation page the base URL and the quirks come from.</param>
internal sealed record OpenAIPreset(string Name, string BaseUrl, bool KeyRequired, string KeyVariable, string Source)
{
    /// <summary>OpenAI-only request fields other providers reject or ignore: dropped unless the preset lists its own.</summary>
    public static readonly string[] DefaultOpenAIOnlyFields = ["prediction", "prompt_cache_key", "prompt_cache_retention", "verbosity", "store", "web_search_options"];

    /// <summary>The preset's own adjustments of the request (after the shared ones); may throw a 400 for a request the provider cannot serve.</summary>
    public Action<PresetRequest>? Quirks { get; init; }

    /// <summary>The OpenAI-only fields dropped before the quirks run.</summary>
    public IReadOnlyList<string> OpenAIOnlyFields { get; init; } = DefaultOpenAIOnlyFields;

    /// <summary>Whether answers carry reasoning as <c>reasoning_content</c>, copied to the gateway's <c>reasoning</c> field.</summary>
    public bool ReasoningContent { get; init; }

    /// <summary>Whether the provider has <c>GET {BaseUrl}/models</c>; without it the configured Models are listed.</summary>
    public bool HasModelsEndpoint { get; init; } = true;

    /// <summary>
    /// The request as JSON after the shared adjustments (<c>max_completion_tokens</c> → <c>max_tokens</c>, the OpenAI-only
    /// fields dropped) and the preset's quirks; <paramref name="changes"/> names what was changed (names only, never values).
    /// </summary>
    public byte[] Rewrite(ChatCompletionRequest request, out IReadOnlyList<string> changes)
    {
        var body = JsonSerializer.SerializeToNode(request, BifrostJson.Context.ChatCompletionRequest) as JsonObject ?? [];
        var rewrite = new PresetRequest(Name, request.Model ?? string.Empty, body);
        if (body.ContainsKey("max_tokens"))
        {
            rewrite.Drop("max_completion_tokens");
        }
        else
        {
            rewrite.Rename("max_completion_tokens", "max_tokens");
        }

        foreach (var field in OpenAIOnlyFields)
        {
            rewrite.Drop(field);
        }

        Quirks?.Invoke(rewrite);
        changes = rewrite.Changes;
        return JsonSerializer.SerializeToUtf8Bytes<JsonNode>(body, BifrostJson.Context.JsonNode);
    }

    /// <summary>Copies <c>reasoning_content</c> of an answer's messages to the gateway's <c>reasoning</c> field.</summary>
    public void Normalize(ChatCompletionResponse response)
    {
        if (ReasoningContent)
        {
            foreach (var choice in response.Choices)
            {
                CopyReasoning(choice.Message);
            }
        }
    }

    /// <summary>Copies <c>reasoning_content</c> of a chunk's deltas to the gateway's <c>reasoning</c> field.</summary>
    public void Normalize(ChatCompletionChunk chunk)
    {
        if (ReasoningContent)
        {
            foreach (var choice in chunk.Choices)
            {
                CopyReasoning(choice.Delta);
            }
        }
    }

    private static void CopyReasoning(ChatAssistantMessageBase? message)
    {
        if (message?.AdditionalProperties is { } extra
            && extra.TryGetValue("reasoning_content", out var reasoning)
            && reasoning.ValueKind == JsonValueKind.String
            && !extra.ContainsKey("reasoning"))
        {
            extra["reasoning"] = reasoning;
        }
    }
}

/// <summary>The outgoing request JSON a preset's quirks adjust, and a record of what they changed.</summary>
internal sealed class PresetRequest(string preset, string model, JsonObject body)
{
    /// <summary>The provider's bare model name.</summary>
    public string Model { get; } = model;

    /// <summary>The request JSON.</summary>
    public JsonObject Body { get; } = body;

    /// <summary>What was changed: <c>-name</c> (dropped), <c>from→to</c> (renamed), <c>name=</c> (value mapped).</summary>
    public List<string> Changes { get; } = [];

    /// <summary>The request's messages that are JSON objects.</summary>
    public IEnumerable<JsonObject> Messages => Body["messages"] is JsonArray messages ? messages.OfType<JsonObject>() : [];

    /// <summary>Drops top-level fields.</summary>
    public void Drop(params ReadOnlySpan<string> names)
    {
        foreach (var name in names)
        {
            if (Body.Remove(name))
            {
                Changes.Add("-" + name);
            }
        }
    }

    /// <summary>Drops fields of every message (with role <paramref name="role"/> when given).</summary>
    public void DropFromMessages(string? role, params ReadOnlySpan<string> names)
    {
        foreach (var message in Messages)
        {
            if (role is not null && !string.Equals(message["role"]?.GetValueKind() == JsonValueKind.String ? message["role"]!.GetValue<string>() : null, role, StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var name in names)
            {
                if (message.Remove(name))
                {
                    Changes.Add("-messages[]." + name);
                }
            }
        }
    }

    /// <summary>Renames a top-level field (a field already named <paramref name="to"/> wins).</summary>
    public void Rename(string from, string to)
    {
        if (!Body.TryGetPropertyValue(from, out var value))
        {
            return;
        }

        Body.Remove(from);
        if (!Body.ContainsKey(to))
        {
            Body[to] = value;
        }

        Changes.Add(from + "→" + to);
    }

    /// <summary>Replaces a top-level field's value.</summary>
    public void Set(string name, JsonNode? value)
    {
        Body[name] = value;
        Changes.Add(name + "=");
    }

    /// <summary>A top-level string field, or null.</summary>
    public string? String(string name) => Body[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>A top-level integer field, or null.</summary>
    public long? Integer(string name) => Body[name] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var n) ? n : null;

    /// <summary>A 400 <c>unsupported_parameter</c> for a request the provider cannot serve (not retried, no fallback tried).</summary>
    public BifrostException Refuse(string param, string reason) =>
        BifrostErrors.UnsupportedParameter($"Provider type '{preset}' {reason}", param);
}
