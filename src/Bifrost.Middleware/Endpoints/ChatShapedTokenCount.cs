using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// Bifrost's count-tokens requests may be chat-shaped (<c>messages</c>, chat <c>tools</c>) rather than Responses-shaped
/// (<c>input</c>): the chat shape is turned into the equivalent Responses input so both count the same way.
/// </summary>
internal static class ChatShapedTokenCount
{
    /// <summary>Moves a chat <c>messages</c> array (when there is no <c>input</c>) into <see cref="ResponsesRequest.Input"/>, and chat tools into Responses tools.</summary>
    public static void Normalize(ResponsesRequest request)
    {
        if (request.Input is null && request.AdditionalProperties is { } extra && extra.TryGetValue("messages", out var messages))
        {
            if (messages.ValueKind != JsonValueKind.Array)
            {
                throw BifrostErrors.InvalidRequest("invalid_request", "'messages' must be an array of chat messages.", "messages");
            }

            var items = new JsonArray();
            var index = 0;
            foreach (var message in messages.EnumerateArray())
            {
                if (message.ValueKind != JsonValueKind.Object || !message.TryGetProperty("role", out var roleElement) || roleElement.ValueKind != JsonValueKind.String)
                {
                    throw BifrostErrors.InvalidRequest("invalid_request", $"'messages[{index}]' must be an object with a 'role'.", $"messages[{index}]");
                }

                AddItems(items, message, roleElement.GetString()!);
                index++;
            }

            extra.Remove("messages");
            request.Input = JsonSerializer.Deserialize(items.ToJsonString(), BifrostJson.Context.ResponsesInput);
        }

        if (request.Tools is { } tools)
        {
            foreach (var tool in tools)
            {
                if (tool?.Name is null && tool?.AdditionalProperties is { } toolExtra && toolExtra.TryGetValue("function", out var function) && function.ValueKind == JsonValueKind.Object)
                {
                    tool.Name = function.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String ? name.GetString() : null;
                    tool.Description = function.TryGetProperty("description", out var description) && description.ValueKind == JsonValueKind.String ? description.GetString() : null;
                    tool.Parameters = function.TryGetProperty("parameters", out var parameters) ? parameters.Clone() : null;
                    toolExtra.Remove("function");
                }
            }
        }
    }

    private static void AddItems(JsonArray items, JsonElement message, string role)
    {
        message.TryGetProperty("content", out var content);
        if (role == "tool")
        {
            items.Add(new JsonObject
            {
                ["type"] = "function_call_output",
                ["call_id"] = message.TryGetProperty("tool_call_id", out var callId) ? JsonNode.Parse(callId.GetRawText()) : null,
                ["output"] = content.ValueKind == JsonValueKind.String ? content.GetString() : content.ValueKind == JsonValueKind.Undefined ? string.Empty : content.GetRawText(),
            });
            return;
        }

        if (content.ValueKind is JsonValueKind.String or JsonValueKind.Array)
        {
            items.Add(new JsonObject { ["role"] = role, ["content"] = Content(content, role) });
        }

        if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
        {
            foreach (var call in calls.EnumerateArray())
            {
                if (call.ValueKind == JsonValueKind.Object && call.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object)
                {
                    items.Add(new JsonObject
                    {
                        ["type"] = "function_call",
                        ["call_id"] = call.TryGetProperty("id", out var id) ? JsonNode.Parse(id.GetRawText()) : null,
                        ["name"] = function.TryGetProperty("name", out var name) ? JsonNode.Parse(name.GetRawText()) : null,
                        ["arguments"] = function.TryGetProperty("arguments", out var arguments) ? JsonNode.Parse(arguments.GetRawText()) : null,
                    });
                }
            }
        }
    }

    private static JsonNode? Content(JsonElement content, string role)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString();
        }

        var parts = new JsonArray();
        foreach (var part in content.EnumerateArray())
        {
            var type = part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            switch (type)
            {
                case "text":
                    parts.Add(new JsonObject { ["type"] = role == "assistant" ? "output_text" : "input_text", ["text"] = part.TryGetProperty("text", out var text) ? JsonNode.Parse(text.GetRawText()) : null });
                    break;
                case "image_url":
                    var url = part.TryGetProperty("image_url", out var image) ? image.ValueKind == JsonValueKind.Object && image.TryGetProperty("url", out var u) ? u : image : default;
                    parts.Add(new JsonObject { ["type"] = "input_image", ["image_url"] = url.ValueKind == JsonValueKind.Undefined ? null : JsonNode.Parse(url.GetRawText()) });
                    break;
                default:
                    parts.Add(JsonNode.Parse(part.GetRawText()));
                    break;
            }
        }

        return parts;
    }
}
