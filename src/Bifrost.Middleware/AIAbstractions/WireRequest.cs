using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Providers.ChatClient;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.AIAbstractions;

/// <summary>
/// The wire request an options object starts from: the one its <c>RawRepresentationFactory</c> returned (copied, never
/// changed), with each of its <c>AdditionalProperties</c> as a wire field of that name where the raw request has none. Known
/// names land in their typed properties (<c>fallbacks</c>, <c>user</c>, <c>reasoning_effort</c>, ...), others are sent as they are.
/// </summary>
internal static class WireRequest
{
    /// <summary>Serializes the .NET values of additional properties (and function results) the way the abstraction does.</summary>
    internal static readonly JsonTypeInfo ObjectTypeInfo = AI.AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(object));

    public static T Create<T>(T? raw, AI.AdditionalPropertiesDictionary? additionalProperties, JsonTypeInfo<T> typeInfo, string source)
        where T : InferenceRequest, new()
    {
        if (raw is null && additionalProperties is not { Count: > 0 })
        {
            return new T();
        }

        var json = raw is null ? [] : JsonSerializer.SerializeToNode(raw, typeInfo)!.AsObject();
        foreach (var (key, value) in additionalProperties ?? [])
        {
            // "strict" is the abstraction's flag for the response format and tools, not a field of the request.
            if (key != ChatClientRequestMapper.StrictKey && !json.ContainsKey(key))
            {
                json[key] = value switch
                {
                    null => null,
                    JsonNode node => node.DeepClone(),
                    _ => JsonSerializer.SerializeToNode(value, ObjectTypeInfo),
                };
            }
        }

        try
        {
            return json.Deserialize(typeInfo) ?? new T();
        }
        catch (JsonException ex)
        {
            throw BifrostErrors.InvalidValue($"{source}.AdditionalProperties: {ex.Message}", ex.Path);
        }
    }

    /// <summary>A .NET value as a JSON element, through the abstraction's serializer options.</summary>
    public static JsonElement ToElement(object? value) => value switch
    {
        JsonElement element => element,
        JsonNode node => JsonSerializer.SerializeToElement(node, BifrostJsonContext.Default.JsonNode),
        _ => JsonSerializer.SerializeToElement(value, ObjectTypeInfo),
    };
}
