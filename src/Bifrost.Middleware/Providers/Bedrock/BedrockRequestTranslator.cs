namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>
/// Chat completions request → Converse request (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html).
/// system/developer messages → <c>system</c> text blocks; user text and base64 <c>image_url</c> data URLs (png, jpeg,
/// gif, webp) → <c>text</c> / <c>image</c> blocks; assistant text and <c>tool_calls</c> → <c>text</c> / <c>toolUse</c>
/// blocks; <c>tool</c> messages → <c>toolResult</c> blocks in a user turn; consecutive turns of one role are merged (Converse
/// alternates user and assistant). Function tools → <c>toolConfig.tools[].toolSpec</c>; <c>tool_choice</c> auto →
/// <c>{auto:{}}</c>, required → <c>{any:{}}</c>, a named function → <c>{tool:{name}}</c>, none → no <c>toolConfig</c> (kept
/// without a choice when the history holds tool calls, which Converse requires). <c>max_completion_tokens</c>/<c>max_tokens</c>,
/// <c>temperature</c>, <c>top_p</c>, <c>stop</c> → <c>inferenceConfig</c>. Converse's own fields sent alongside
/// (<c>additionalModelRequestFields</c>, <c>guardrailConfig</c>, <c>performanceConfig</c>, <c>requestMetadata</c>,
/// <c>additionalModelResponseFieldPaths</c>, <c>promptVariables</c>) are forwarded. <c>response_format</c> json_schema /
/// json_object → one forced tool with that schema (Converse has no JSON mode), whose input becomes the answer's content.
/// Refused with a 400: n &gt; 1, logprobs, response_format with tools, reasoning_effort (use
/// <c>additionalModelRequestFields</c>), image URLs that are not data URLs, audio and file parts. Hints without an equivalent (seed, penalties, logit_bias, user, ...) are not sent.
/// </summary>
internal static class BedrockRequestTranslator
{
    private static readonly HashSet<string> ForwardedFields = new(StringComparer.Ordinal)
    {
        "guardrailConfig", "performanceConfig", "requestMetadata", "additionalModelResponseFieldPaths", "promptVariables",
    };

    public static ConverseRequest Translate(ChatCompletionRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.N is > 1)
        {
            throw Invalid("'n' greater than 1 is not supported by Bedrock: send one request per choice.", "n");
        }

        if (request.Logprobs == true)
        {
            throw Invalid("'logprobs' is not supported by Bedrock.", "logprobs");
        }

        var structured = StructuredOutput(request);

        if (request.ReasoningEffort is { } effort && effort != "none")
        {
            throw Invalid("'reasoning_effort' is not supported by the Bedrock adapter: send the model's own field in 'additionalModelRequestFields' (e.g. Claude's {\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}}).", "reasoning_effort");
        }

        if (request.Messages is not { Count: > 0 } messages)
        {
            throw Invalid("'messages' is required and must contain at least one message.", "messages");
        }

        var result = new ConverseRequest();
        var maxTokens = request.MaxCompletionTokens ?? request.MaxTokens;
        if (maxTokens is not null || request.Temperature is not null || request.TopP is not null || request.Stop is { Count: > 0 })
        {
            result.InferenceConfig = new ConverseInferenceConfig
            {
                MaxTokens = maxTokens,
                Temperature = request.Temperature,
                TopP = request.TopP,
                StopSequences = request.Stop is { Count: > 0 } stop ? [.. stop] : null,
            };
        }

        var hasToolHistory = false;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw Invalid($"'messages[{i}]' must not be null.", $"messages[{i}]");
            switch (message.Role)
            {
                case "system" or "developer":
                    foreach (var text in Texts(message.Content, i))
                    {
                        (result.System ??= []).Add(new ConverseContentBlock { Text = text });
                    }

                    break;
                case "user":
                    Append(result, "user", UserBlocks(message.Content, i));
                    break;
                case "assistant":
                    var blocks = new List<ConverseContentBlock>();
                    foreach (var text in Texts(message.Content, i))
                    {
                        blocks.Add(new ConverseContentBlock { Text = text });
                    }

                    if (message.ToolCalls is { Count: > 0 } calls)
                    {
                        hasToolHistory = true;
                        for (var c = 0; c < calls.Count; c++)
                        {
                            var call = calls[c];
                            var param = $"messages[{i}].tool_calls[{c}]";
                            blocks.Add(new ConverseContentBlock
                            {
                                ToolUse = new ConverseToolUse
                                {
                                    ToolUseId = string.IsNullOrEmpty(call?.Id) ? throw Invalid($"'{param}.id' is required.", param + ".id") : call.Id,
                                    Name = call.Function?.Name is { Length: > 0 } name ? name : throw Invalid($"'{param}.function.name' is required.", param + ".function.name"),
                                    Input = ToolCallArguments.ParseObject(call.Function.Arguments, param + ".function.arguments", "Bedrock"),
                                },
                            });
                        }
                    }

                    if (blocks.Count == 0)
                    {
                        throw Invalid($"'messages[{i}]' (assistant) needs text content or tool_calls: Bedrock refuses empty turns.", $"messages[{i}].content");
                    }

                    Append(result, "assistant", blocks);
                    break;
                case "tool":
                    if (string.IsNullOrEmpty(message.ToolCallId))
                    {
                        throw Invalid($"'messages[{i}].tool_call_id' is required for a tool message.", $"messages[{i}].tool_call_id");
                    }

                    hasToolHistory = true;
                    var output = string.Concat(Texts(message.Content, i));
                    Append(result, "user", [new ConverseContentBlock
                    {
                        ToolResult = new ConverseToolResult { ToolUseId = message.ToolCallId, Content = [new ConverseToolResultContent { Text = output }], Status = "success" },
                    }]);
                    break;
                default:
                    throw Invalid($"Message role '{message.Role}' is not supported by Bedrock (legacy 'function' messages: use tools and 'tool' messages).", $"messages[{i}].role");
            }
        }

        if (result.Messages.Count == 0)
        {
            throw Invalid("'messages' needs at least one user or assistant message besides the system messages.", "messages");
        }

        if (structured is { } forcedOutput)
        {
            // Converse has no JSON mode: one forced tool whose input schema is the response format's schema; its input is the answer.
            result.ToolConfig = new ConverseToolConfig
            {
                Tools = [new ConverseTool { ToolSpec = new ConverseToolSpec { Name = forcedOutput.Name, Description = "Answer with this tool: its input is the response.", InputSchema = new ConverseToolInputSchema { Json = forcedOutput.Schema } } }],
                ToolChoice = Parse("{\"tool\":{\"name\":" + JsonSerializer.Serialize(forcedOutput.Name, BedrockJsonContext.Wire.String) + "}}"),
            };
            result.StructuredOutputTool = forcedOutput.Name;
        }
        else
        {
            TranslateTools(request, result, hasToolHistory);
        }
        if (request.AdditionalProperties is { Count: > 0 } extra)
        {
            foreach (var (key, value) in extra)
            {
                if (key == "additionalModelRequestFields")
                {
                    result.AdditionalModelRequestFields = value.ValueKind == JsonValueKind.Object ? value : throw Invalid("'additionalModelRequestFields' must be an object.", key);
                }
                else if (ForwardedFields.Contains(key))
                {
                    (result.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))[key] = value;
                }
            }
        }

        return result;
    }

    /// <summary>
    /// <c>response_format</c> json_schema / json_object → the forced tool standing for it (its name: the schema's name, else
    /// <c>json_response</c>; json_object: any object). With <c>tools</c> too it is refused: the forced tool would hide them.
    /// </summary>
    private static (string Name, JsonElement Schema)? StructuredOutput(ChatCompletionRequest request)
    {
        var format = request.ResponseFormat;
        if (format?.Type is null or "text")
        {
            return null;
        }

        if (format.Type is not ("json_schema" or "json_object"))
        {
            throw Invalid($"'response_format' type '{format.Type}' is not supported by Bedrock; use text, json_object or json_schema.", "response_format.type");
        }

        if (request.Tools is { Count: > 0 })
        {
            throw Invalid("'response_format' with 'tools' is not supported by the Bedrock adapter: Converse has no JSON mode, and the forced tool that stands for it would hide your tools.", "response_format");
        }

        if (format.Type == "json_object")
        {
            return ("json_response", Parse("""{"type":"object"}"""));
        }

        var schema = format.JsonSchema?.Schema ?? throw Invalid("'response_format.json_schema.schema' is required for a json_schema response format.", "response_format.json_schema.schema");
        var name = format.JsonSchema.Name is { Length: > 0 } given && given.All(static c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-') ? given : "json_response";
        return (name, schema);
    }

    /// <summary>Adds <paramref name="blocks"/> as a turn of <paramref name="role"/>, or to the last turn when it has that role.</summary>
    private static void Append(ConverseRequest request, string role, List<ConverseContentBlock> blocks)
    {
        if (request.Messages.Count > 0 && request.Messages[^1].Role == role)
        {
            foreach (var block in blocks)
            {
                request.Messages[^1].Content.Add(block);
            }

            return;
        }

        request.Messages.Add(new ConverseMessage { Role = role, Content = blocks });
    }

    /// <summary>The non-empty texts of a text-only content (system, assistant, tool).</summary>
    private static List<string> Texts(ChatCompletionContent? content, int index)
    {
        var texts = new List<string>();
        if (content is null)
        {
            return texts;
        }

        if (content.Text is { } text)
        {
            if (text.Length > 0)
            {
                texts.Add(text);
            }

            return texts;
        }

        for (var p = 0; p < content.Parts!.Count; p++)
        {
            var part = content.Parts[p];
            if (part.Type is not ("text" or "input_text" or "output_text" or "refusal"))
            {
                throw Invalid($"Content part type '{part.Type}' is not supported by Bedrock in this message.", $"messages[{index}].content[{p}].type");
            }

            if (!string.IsNullOrEmpty(part.Text))
            {
                texts.Add(part.Text);
            }
        }

        return texts;
    }

    private static List<ConverseContentBlock> UserBlocks(ChatCompletionContent? content, int index)
    {
        if (content is null)
        {
            throw Invalid($"'messages[{index}].content' is required for a user message.", $"messages[{index}].content");
        }

        if (content.Text is { } text)
        {
            return [new ConverseContentBlock { Text = text }];
        }

        var blocks = new List<ConverseContentBlock>();
        for (var p = 0; p < content.Parts!.Count; p++)
        {
            var part = content.Parts[p];
            var param = $"messages[{index}].content[{p}]";
            switch (part.Type)
            {
                case "text" or "input_text":
                    blocks.Add(new ConverseContentBlock { Text = part.Text ?? string.Empty });
                    break;
                case "image_url":
                    blocks.Add(new ConverseContentBlock { Image = Image(part.ImageUrl?.Url, param + ".image_url.url") });
                    break;
                default:
                    throw Invalid($"Content part type '{part.Type}' is not supported by the Bedrock adapter.", param + ".type");
            }
        }

        if (blocks.Count == 0)
        {
            throw Invalid($"'messages[{index}].content' must not be empty.", $"messages[{index}].content");
        }

        return blocks;
    }

    /// <summary>A base64 data URL → an image block with the bytes (base64 in JSON). Converse does not fetch URLs.</summary>
    private static ConverseImage Image(string? url, string param)
    {
        if (string.IsNullOrEmpty(url) || !url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            throw Invalid("Bedrock takes images as base64 data URLs ('data:image/png;base64,...'); it does not fetch web URLs — download the image and send it as a data URL.", param);
        }

        var comma = url.IndexOf(',', StringComparison.Ordinal);
        var header = comma > 5 ? url[5..comma] : string.Empty;
        if (comma < 0 || !header.EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
        {
            throw Invalid("A data URL must look like 'data:<media type>;base64,<data>'.", param);
        }

        var format = header[..^7].ToLowerInvariant() switch
        {
            "image/png" => "png",
            "image/jpeg" or "image/jpg" => "jpeg",
            "image/gif" => "gif",
            "image/webp" => "webp",
            var other => throw Invalid($"Bedrock takes png, jpeg, gif and webp images, not '{other}'.", param),
        };
        return new ConverseImage { Format = format, Source = new ConverseImageSource { Bytes = url[(comma + 1)..] } };
    }

    private static void TranslateTools(ChatCompletionRequest request, ConverseRequest result, bool hasToolHistory)
    {
        JsonElement? choice = null;
        var none = false;
        if (request.ToolChoice is { } toolChoice)
        {
            switch (toolChoice.ValueKind)
            {
                case JsonValueKind.String when toolChoice.GetString() is "auto":
                    choice = Parse("""{"auto":{}}""");
                    break;
                case JsonValueKind.String when toolChoice.GetString() is "required":
                    choice = Parse("""{"any":{}}""");
                    break;
                case JsonValueKind.String when toolChoice.GetString() is "none":
                    none = true;
                    break;
                case JsonValueKind.Object when toolChoice.TryGetProperty("function", out var fn) && fn.ValueKind == JsonValueKind.Object
                    && fn.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String:
                    var forced = name.GetString()!;
                    if (request.Tools?.Any(t => t.Function?.Name == forced) != true)
                    {
                        throw Invalid($"'tool_choice' names the function '{forced}', which is not in 'tools'.", "tool_choice");
                    }

                    choice = Parse("{\"tool\":{\"name\":" + JsonSerializer.Serialize(forced, BedrockJsonContext.Wire.String) + "}}");
                    break;
                case JsonValueKind.Null:
                    break;
                default:
                    throw Invalid("'tool_choice' must be auto, required, none or {\"type\":\"function\",\"function\":{\"name\":...}}.", "tool_choice");
            }
        }

        if (request.Tools is not { Count: > 0 } tools || (none && !hasToolHistory))
        {
            return;
        }

        var list = new List<ConverseTool>(tools.Count);
        for (var t = 0; t < tools.Count; t++)
        {
            var tool = tools[t];
            if (tool?.Type != "function" || tool.Function?.Name is not { Length: > 0 } toolName)
            {
                throw Invalid($"Bedrock supports function tools only, each with a name ('tools[{t}]').", $"tools[{t}]");
            }

            list.Add(new ConverseTool
            {
                ToolSpec = new ConverseToolSpec
                {
                    Name = toolName,
                    Description = string.IsNullOrEmpty(tool.Function.Description) ? null : tool.Function.Description,
                    InputSchema = new ConverseToolInputSchema { Json = tool.Function.Parameters ?? Parse("""{"type":"object","properties":{}}""") },
                },
            });
        }

        result.ToolConfig = new ConverseToolConfig { Tools = list, ToolChoice = none ? null : choice };
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    internal static BifrostException Invalid(string message, string? param) => BifrostErrors.UnsupportedParameter(message, param);
}
