using System.Globalization;

namespace Bifrost.Middleware.Providers.Cohere;

/// <summary>
/// Chat completions request → Cohere v2 chat request (https://docs.cohere.com/reference/chat). system/developer →
/// <c>system</c>; user text and <c>image_url</c> parts (http(s) or data URLs) → content blocks; assistant text and
/// <c>tool_calls</c> → an assistant message; <c>tool</c> messages → <c>tool</c> messages; function tools →
/// <c>{type:"function", function:{name, description, parameters}}</c>; <c>tool_choice</c> none → <c>NONE</c>,
/// required → <c>REQUIRED</c>, a named function → <c>REQUIRED</c> with only that tool, auto → omitted;
/// <c>top_p</c> → <c>p</c>, <c>top_k</c> → <c>k</c>, <c>max_completion_tokens</c>/<c>max_tokens</c> → <c>max_tokens</c>,
/// <c>stop</c> → <c>stop_sequences</c>; <c>response_format</c> json_object → <c>{type:"json_object"}</c>, json_schema →
/// <c>{type:"json_object", json_schema: schema}</c>; <c>reasoning_effort</c> → <c>thinking</c>. What Cohere cannot do
/// (n &gt; 1, logprobs, audio or file parts, legacy function messages) is refused with a 400; hints without an
/// equivalent (logit_bias, user, parallel_tool_calls, service_tier, metadata, store) are not sent.
/// </summary>
internal static class CohereRequestTranslator
{
    /// <summary>Request fields that are Cohere's own and are forwarded when a caller sends them alongside the OpenAI fields.</summary>
    private static readonly HashSet<string> ForwardedFields = new(StringComparer.Ordinal)
    {
        "safety_mode", "documents", "citation_options", "strict_tools", "priority",
    };

    /// <summary>The thinking budget for a <c>reasoning_effort</c>: minimal 1024, low 2048, medium 8192, high 16384 tokens (none → disabled).</summary>
    public static int? ThinkingBudget(string? effort) => effort switch
    {
        null or "none" => null,
        "minimal" => 1024,
        "low" => 2048,
        "medium" => 8192,
        "high" => 16384,
        _ => throw Invalid($"'reasoning_effort' '{effort}' is not supported by Cohere; use none, minimal, low, medium or high.", "reasoning_effort"),
    };

    public static CohereChatRequest Translate(ChatCompletionRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.N is > 1)
        {
            throw Invalid("'n' greater than 1 is not supported by Cohere: send one request per choice.", "n");
        }

        if (request.Logprobs == true)
        {
            throw Invalid("'logprobs' is not supported by the Cohere adapter.", "logprobs");
        }

        if (request.Messages is not { Count: > 0 } messages)
        {
            throw Invalid("'messages' is required and must contain at least one message.", "messages");
        }

        var result = new CohereChatRequest
        {
            Model = request.Model,
            Temperature = request.Temperature,
            P = request.TopP,
            MaxTokens = request.MaxCompletionTokens ?? request.MaxTokens,
            StopSequences = request.Stop is { Count: > 0 } stop ? [.. stop] : null,
            Seed = request.Seed,
            FrequencyPenalty = request.FrequencyPenalty,
            PresencePenalty = request.PresencePenalty,
            Stream = request.Stream == true ? true : null,
        };

        for (var i = 0; i < messages.Count; i++)
        {
            result.Messages.Add(Message(messages[i] ?? throw Invalid($"'messages[{i}]' must not be null.", $"messages[{i}]"), i));
        }

        TranslateTools(request, result);
        result.ResponseFormat = ResponseFormat(request.ResponseFormat);

        JsonElement? thinking = null;
        if (request.AdditionalProperties is { Count: > 0 } extra)
        {
            foreach (var (key, value) in extra)
            {
                if (ForwardedFields.Contains(key))
                {
                    (result.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))[key] = value;
                }
                else if (key is "top_k" or "k" && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var k))
                {
                    result.K = k;
                }
                else if (key == "thinking" && value.ValueKind == JsonValueKind.Object)
                {
                    thinking = value;
                }
            }
        }

        // The caller's own Cohere "thinking" object wins over reasoning_effort.
        result.Thinking = thinking ?? request.ReasoningEffort switch
        {
            null => null,
            "none" => Parse("""{"type":"disabled"}"""),
            var effort => Parse("{\"type\":\"enabled\",\"token_budget\":" + ThinkingBudget(effort)!.Value.ToString(CultureInfo.InvariantCulture) + "}"),
        };
        return result;
    }

    private static CohereMessage Message(ChatCompletionMessage message, int index)
    {
        switch (message.Role)
        {
            case "system" or "developer":
                return new CohereMessage { Role = "system", Content = TextContent(message.Content, index) };
            case "user":
                return new CohereMessage { Role = "user", Content = UserContent(message.Content, index) };
            case "assistant":
                var calls = message.ToolCalls is { Count: > 0 } toolCalls
                    ? toolCalls.Select((call, c) => new CohereToolCall
                    {
                        Id = call.Id,
                        Type = "function",
                        Function = new CohereFunctionCall
                        {
                            Name = call.Function?.Name ?? throw Invalid($"'messages[{index}].tool_calls[{c}].function.name' is required.", $"messages[{index}].tool_calls[{c}].function.name"),
                            Arguments = string.IsNullOrEmpty(call.Function.Arguments) ? "{}" : call.Function.Arguments,
                        },
                    }).ToList()
                    : null;
                var content = message.Content is null && !string.IsNullOrEmpty(message.Refusal) ? String(message.Refusal) : TextContent(message.Content, index);
                return new CohereMessage { Role = "assistant", Content = content, ToolCalls = calls };
            case "tool":
                if (string.IsNullOrEmpty(message.ToolCallId))
                {
                    throw Invalid($"'messages[{index}].tool_call_id' is required for a tool message.", $"messages[{index}].tool_call_id");
                }

                return new CohereMessage { Role = "tool", ToolCallId = message.ToolCallId, Content = TextContent(message.Content, index) ?? String(string.Empty) };
            default:
                throw Invalid($"Message role '{message.Role}' is not supported by Cohere (legacy 'function' messages: use tools and 'tool' messages).", $"messages[{index}].role");
        }
    }

    /// <summary>Text only (system, assistant, tool): a string as a string, text parts as text blocks.</summary>
    private static JsonElement? TextContent(ChatCompletionContent? content, int index)
    {
        if (content is null)
        {
            return null;
        }

        if (content.Text is { } text)
        {
            return String(text);
        }

        var blocks = new List<CohereContentBlock>();
        for (var p = 0; p < content.Parts!.Count; p++)
        {
            var part = content.Parts[p];
            if (part.Type is not ("text" or "input_text" or "output_text" or "refusal"))
            {
                throw Invalid($"Content part type '{part.Type}' is not supported by Cohere in this message.", $"messages[{index}].content[{p}].type");
            }

            if (!string.IsNullOrEmpty(part.Text))
            {
                blocks.Add(new CohereContentBlock { Type = "text", Text = part.Text });
            }
        }

        return Blocks(blocks);
    }

    /// <summary>User content: a string as a string; text and image_url parts as blocks.</summary>
    private static JsonElement? UserContent(ChatCompletionContent? content, int index)
    {
        if (content is null)
        {
            throw Invalid($"'messages[{index}].content' is required for a user message.", $"messages[{index}].content");
        }

        if (content.Text is { } text)
        {
            return String(text);
        }

        var blocks = new List<CohereContentBlock>();
        for (var p = 0; p < content.Parts!.Count; p++)
        {
            var part = content.Parts[p];
            var param = $"messages[{index}].content[{p}]";
            switch (part.Type)
            {
                case "text" or "input_text":
                    blocks.Add(new CohereContentBlock { Type = "text", Text = part.Text ?? string.Empty });
                    break;
                case "image_url":
                    var url = part.ImageUrl?.Url;
                    if (string.IsNullOrEmpty(url)
                        || !(url.StartsWith("data:", StringComparison.OrdinalIgnoreCase) || url.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("http://", StringComparison.OrdinalIgnoreCase)))
                    {
                        throw Invalid("An image_url part needs 'image_url.url': an http(s) URL or a base64 data URL.", param + ".image_url.url");
                    }

                    blocks.Add(new CohereContentBlock { Type = "image_url", ImageUrl = new CohereImageUrl { Url = url, Detail = part.ImageUrl!.Detail } });
                    break;
                default:
                    throw Invalid($"Content part type '{part.Type}' is not supported by Cohere.", param + ".type");
            }
        }

        return Blocks(blocks);
    }

    private static void TranslateTools(ChatCompletionRequest request, CohereChatRequest result)
    {
        string? forced = null;
        if (request.ToolChoice is { } choice)
        {
            switch (choice.ValueKind)
            {
                case JsonValueKind.String when choice.GetString() is "auto":
                    break;
                case JsonValueKind.String when choice.GetString() is "none":
                    result.ToolChoice = "NONE";
                    break;
                case JsonValueKind.String when choice.GetString() is "required":
                    result.ToolChoice = "REQUIRED";
                    break;
                case JsonValueKind.Object when choice.TryGetProperty("function", out var fn) && fn.ValueKind == JsonValueKind.Object
                    && fn.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String:
                    // Cohere cannot force one named tool: offer only that tool and require a call.
                    forced = name.GetString();
                    result.ToolChoice = "REQUIRED";
                    break;
                case JsonValueKind.Null:
                    break;
                default:
                    throw Invalid("'tool_choice' must be auto, required, none or {\"type\":\"function\",\"function\":{\"name\":...}}.", "tool_choice");
            }
        }

        if (request.Tools is not { Count: > 0 } tools)
        {
            if (forced is not null)
            {
                throw Invalid($"'tool_choice' names the function '{forced}', which is not in 'tools'.", "tool_choice");
            }

            return;
        }

        var list = new List<CohereTool>(tools.Count);
        for (var t = 0; t < tools.Count; t++)
        {
            var tool = tools[t];
            if (tool.Type != "function" || tool.Function?.Name is not { Length: > 0 } toolName)
            {
                throw Invalid($"Cohere supports function tools only, each with a name ('tools[{t}]').", $"tools[{t}]");
            }

            if (forced is not null && toolName != forced)
            {
                continue;
            }

            list.Add(new CohereTool { Function = new CohereFunction { Name = toolName, Description = tool.Function.Description, Parameters = tool.Function.Parameters } });
        }

        if (forced is not null && list.Count == 0)
        {
            throw Invalid($"'tool_choice' names the function '{forced}', which is not in 'tools'.", "tool_choice");
        }

        result.Tools = list;
    }

    private static CohereResponseFormat? ResponseFormat(ChatCompletionResponseFormat? format) => format?.Type switch
    {
        null or "text" => null,
        "json_object" => new CohereResponseFormat { Type = "json_object" },
        "json_schema" => new CohereResponseFormat
        {
            Type = "json_object",
            JsonSchema = format.JsonSchema?.Schema ?? throw Invalid("'response_format.json_schema.schema' is required for a json_schema response format.", "response_format.json_schema.schema"),
        },
        _ => throw Invalid($"'response_format' type '{format.Type}' is not supported by Cohere; use text, json_object or json_schema.", "response_format.type"),
    };

    private static JsonElement String(string text) => JsonSerializer.SerializeToElement(text, CohereJsonContext.Wire.String);

    private static JsonElement Blocks(List<CohereContentBlock> blocks) => JsonSerializer.SerializeToElement<IList<CohereContentBlock>>(blocks, CohereJsonContext.Wire.IListCohereContentBlock);

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    internal static BifrostException Invalid(string message, string? param) =>
        BifrostErrors.UnsupportedParameter(message, param);
}
