using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Bifrost.Middleware.Caching;

/// <summary>
/// What the semantic cache embeds of a request and what it must match exactly: the text (the last user message, or every
/// message, of a chat completion or an Anthropic Messages request — text parts are <c>{"type":"text","text":…}</c> in both;
/// the prompt of a text completion; the <c>input</c> of a Responses request — a string, or the last user message item's
/// <c>input_text</c> parts, or every message item) and the partition — SHA-256 over the tenant, cache key,
/// operation, shape, resolved <c>provider/model</c>, embedding model and the canonical request without that text.
/// </summary>
internal static class SemanticCacheRequestText
{
    /// <summary>The text part types of chat and Anthropic messages.</summary>
    private static readonly string[] TextParts = ["text"];

    /// <summary>The text part types of Responses message items (a user's input, an earlier answer).</summary>
    private static readonly string[] ResponsesTextParts = ["input_text", "output_text"];

    /// <summary>The text to embed and the request without it; null when the request has no such text (or a non-text part in it: images are not matched by meaning).</summary>
    public static (string Text, JsonElement Others)? Split(string operation, JsonElement body, SemanticCacheText mode)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var node = System.Text.Json.Nodes.JsonObject.Create(body);
        if (node is null)
        {
            return null;
        }

        string? text;
        switch (operation)
        {
            case "chat_completion" or "anthropic_messages" when node["messages"] is System.Text.Json.Nodes.JsonArray messages && messages.Count > 0:
                if (mode == SemanticCacheText.AllMessages)
                {
                    var all = new StringBuilder();
                    foreach (var message in messages)
                    {
                        if (message?["role"]?.GetValue<string>() is not { } role || TextOf(message["content"]) is not { } content)
                        {
                            return null;
                        }

                        all.Append(role).Append(": ").Append(content).Append('\n');
                    }

                    text = all.ToString();
                    node.Remove("messages");
                }
                else
                {
                    var last = -1;
                    for (var i = messages.Count - 1; i >= 0; i--)
                    {
                        if (messages[i]?["role"]?.GetValueKind() == JsonValueKind.String && messages[i]!["role"]!.GetValue<string>() == "user")
                        {
                            last = i;
                            break;
                        }
                    }

                    if (last < 0 || TextOf(messages[last]!["content"]) is not { } content)
                    {
                        return null;
                    }

                    text = content;
                    messages[last]!.AsObject().Remove("content"); // its other fields (name) and every other message stay exact
                }

                break;
            case "responses" when node["input"] is { } input:
                if (input.GetValueKind() == JsonValueKind.String)
                {
                    text = mode == SemanticCacheText.AllMessages ? "user: " + input.GetValue<string>() + "\n" : input.GetValue<string>();
                    node.Remove("input");
                    break;
                }

                if (input is not System.Text.Json.Nodes.JsonArray items || items.Count == 0 || ResponsesText(items, mode) is not { } found)
                {
                    return null;
                }

                text = found;
                break;
            case "text_completion" when node["prompt"] is { } prompt:
                text = prompt.GetValueKind() switch
                {
                    JsonValueKind.String => prompt.GetValue<string>(),
                    JsonValueKind.Array when prompt.AsArray().Count == 1 && prompt[0]?.GetValueKind() == JsonValueKind.String => prompt[0]!.GetValue<string>(),
                    _ => null,
                };
                node.Remove("prompt");
                break;
            default:
                return null;
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        return (text, JsonSerializer.SerializeToElement(node, BifrostJson.Context.JsonNode));
    }

    /// <summary>The partition of a request (hex SHA-256).</summary>
    public static string Partition(string? tenant, string operation, bool stream, string provider, string model, string cacheKey, string embeddingModel, JsonElement rest)
    {
        var canonical = CacheKeys.Canonical(rest);
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteStringValue("semantic:v1");
            writer.WriteStringValue(tenant ?? string.Empty);
            writer.WriteStringValue(operation);
            writer.WriteStringValue(stream ? "stream" : "whole");
            writer.WriteStringValue(provider.ToLowerInvariant() + "/" + model);
            writer.WriteStringValue(cacheKey);
            writer.WriteStringValue(embeddingModel);
            writer.WriteStringValue(canonical);
            writer.WriteEndArray();
        }

        return Convert.ToHexStringLower(SHA256.HashData(buffer.WrittenSpan));
    }

    /// <summary>
    /// The text of a Responses <c>input</c> item list, taken out of it: the last user message item's content (what is left of
    /// that item and every other item stays exact), or with <see cref="SemanticCacheText.AllMessages"/> every item's as
    /// <c>role: text</c> lines (the list is removed; an item that is not a text message — a function call or its output, an
    /// image — means no semantic lookup). Null when there is no such text.
    /// </summary>
    private static string? ResponsesText(System.Text.Json.Nodes.JsonArray items, SemanticCacheText mode)
    {
        if (mode == SemanticCacheText.AllMessages)
        {
            var all = new StringBuilder();
            foreach (var item in items)
            {
                if (!IsMessageItem(item) || item!["role"]?.GetValueKind() != JsonValueKind.String || TextOf(item["content"], ResponsesTextParts) is not { } content)
                {
                    return null;
                }

                all.Append(item["role"]!.GetValue<string>()).Append(": ").Append(content).Append('\n');
            }

            items.Parent!.AsObject().Remove("input");
            return all.ToString();
        }

        for (var i = items.Count - 1; i >= 0; i--)
        {
            var item = items[i];
            if (IsMessageItem(item) && item!["role"]?.GetValueKind() == JsonValueKind.String && item["role"]!.GetValue<string>() == "user")
            {
                if (TextOf(item["content"], ResponsesTextParts) is not { } content)
                {
                    return null;
                }

                item.AsObject().Remove("content");
                return content;
            }
        }

        return null;
    }

    /// <summary>A Responses input item that is a message: <c>type</c> <c>message</c>, or no type (the easy input message form).</summary>
    private static bool IsMessageItem(System.Text.Json.Nodes.JsonNode? item) =>
        item is System.Text.Json.Nodes.JsonObject message
        && (message["type"] is null || (message["type"]!.GetValueKind() == JsonValueKind.String && message["type"]!.GetValue<string>() == "message"));

    /// <summary>A message content's text: a string, or text parts joined by newlines; null when it has another kind of part.</summary>
    private static string? TextOf(System.Text.Json.Nodes.JsonNode? content) => TextOf(content, TextParts);

    /// <summary>A message content's text: a string, or parts of the <paramref name="textTypes"/> joined by newlines; null when it has another kind of part.</summary>
    private static string? TextOf(System.Text.Json.Nodes.JsonNode? content, string[] textTypes)
    {
        switch (content?.GetValueKind())
        {
            case JsonValueKind.String:
                return content.GetValue<string>();
            case JsonValueKind.Array:
                var parts = new List<string>();
                foreach (var part in content.AsArray())
                {
                    if (part?["type"]?.GetValueKind() != JsonValueKind.String || Array.IndexOf(textTypes, part["type"]!.GetValue<string>()) < 0 || part["text"]?.GetValueKind() != JsonValueKind.String)
                    {
                        return null;
                    }

                    parts.Add(part["text"]!.GetValue<string>());
                }

                return string.Join('\n', parts);
            default:
                return null;
        }
    }
}
