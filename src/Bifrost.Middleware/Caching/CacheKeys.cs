using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Bifrost.Middleware.Caching;

/// <summary>
/// The exact cache's keys: SHA-256 over the tenant, the operation, the call's shape (whole answer or stream), the resolved
/// <c>provider/model</c>, the cache key and the request's canonical JSON — object keys sorted (ordinal), no whitespace,
/// strings re-encoded — without the top-level fields that do not change the answer (<see cref="ExcludedFields"/>).
/// </summary>
internal static class CacheKeys
{
    /// <summary>
    /// Top-level request fields left out of the hash: who asks (<c>user</c>, <c>safety_identifier</c>), how the answer is
    /// delivered (<c>stream</c>, <c>stream_options</c>; the shape is a separate part of the key), bookkeeping that the
    /// model never sees (<c>metadata</c>, <c>store</c>, <c>prompt_cache_key</c>, <c>service_tier</c>), and <c>model</c>
    /// (the resolved <c>provider/model</c> is in the key instead, so <c>gpt-4o</c> and <c>openai/gpt-4o</c> share entries).
    /// </summary>
    public static readonly string[] ExcludedFields = ["user", "safety_identifier", "stream", "stream_options", "metadata", "store", "prompt_cache_key", "service_tier", "model"];

    /// <summary>The entry's key (<c>bifrost:cache:v1:</c> + hex SHA-256) and its short id (<c>cache_id</c>).</summary>
    public static (string Key, string Id) Of(string? tenant, string operation, bool stream, string provider, string model, string cacheKey, JsonElement request)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false, SkipValidation = false }))
        {
            writer.WriteStartArray();
            writer.WriteStringValue(tenant ?? string.Empty);
            writer.WriteStringValue(operation);
            writer.WriteStringValue(stream ? "stream" : "whole");
            writer.WriteStringValue(provider.ToLowerInvariant() + "/" + model);
            writer.WriteStringValue(cacheKey);
            WriteCanonical(writer, request, topLevel: true);
            writer.WriteEndArray();
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(buffer.WrittenSpan));
        return ("bifrost:cache:v1:" + hash, hash[..32]);
    }

    /// <summary>The request's canonical JSON (for tests and diagnostics).</summary>
    public static string Canonical(JsonElement request)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteCanonical(writer, request, topLevel: true);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteCanonical(Utf8JsonWriter writer, JsonElement element, bool topLevel)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var properties = new List<JsonProperty>();
                foreach (var property in element.EnumerateObject())
                {
                    if (!topLevel || Array.IndexOf(ExcludedFields, property.Name) < 0)
                    {
                        properties.Add(property);
                    }
                }

                properties.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
                writer.WriteStartObject();
                foreach (var property in properties)
                {
                    writer.WritePropertyName(property.Name);
                    WriteCanonical(writer, property.Value, topLevel: false);
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                {
                    WriteCanonical(writer, item, topLevel: false);
                }

                writer.WriteEndArray();
                break;
            case JsonValueKind.String:
                writer.WriteStringValue(element.GetString());
                break;
            default:
                element.WriteTo(writer); // numbers keep their text (the typed request re-serializes them uniformly), true/false/null
                break;
        }
    }
}
