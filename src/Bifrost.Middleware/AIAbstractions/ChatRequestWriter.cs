using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.ChatClient;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.AIAbstractions;

/// <summary>
/// Turns Microsoft.Extensions.AI messages and <see cref="AI.ChatOptions"/> into the gateway's chat request: the inverse of
/// <see cref="ChatClientRequestMapper"/>, so a request that crosses both ways arrives as it was sent.
/// </summary>
/// <remarks>
/// Precedence, highest first: the <see cref="ChatCompletionRequest"/> that <see cref="AI.ChatOptions.RawRepresentationFactory"/>
/// returns, then <see cref="AI.ChatOptions.AdditionalProperties"/> (wire fields by their wire names: <c>fallbacks</c>,
/// <c>user</c>, <c>reasoning_effort</c>, provider-specific fields, ...), then the typed options.
/// </remarks>
internal static class ChatRequestWriter
{
    public static ChatCompletionRequest Write(AI.IChatClient client, IEnumerable<AI.ChatMessage> messages, AI.ChatOptions? options, string? defaultModel, bool stream)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var request = Base(client, options);
        if (request.N is > 1)
        {
            throw BifrostErrors.UnsupportedParameter("An IChatClient answers one choice per request; 'n' must be 1 (use IBifrostClient for more).", "n");
        }

        request.Model ??= options?.ModelId ?? defaultModel;
        var wire = new List<ChatCompletionMessage>(request.Messages ?? []);
        if (!string.IsNullOrEmpty(options?.Instructions))
        {
            wire.Insert(0, ChatCompletionMessage.FromText("system", options.Instructions));
        }

        foreach (var message in messages)
        {
            AddMessage(wire, message);
        }

        request.Messages = wire;
        if (options is not null)
        {
            ApplyOptions(request, options);
        }

        request.Stream = stream ? true : null;
        if (stream)
        {
            request.StreamOptions ??= new ChatStreamOptions { IncludeUsage = true };
        }

        return request;
    }

    /// <summary>The request to start from: the raw representation, with the additional properties' wire fields where it has none.</summary>
    private static ChatCompletionRequest Base(AI.IChatClient client, AI.ChatOptions? options) => WireRequest.Create(
        options?.RawRepresentationFactory?.Invoke(client) as ChatCompletionRequest,
        options?.AdditionalProperties,
        BifrostJsonContext.Default.ChatCompletionRequest,
        "ChatOptions");

    private static void ApplyOptions(ChatCompletionRequest request, AI.ChatOptions options)
    {
        request.Temperature ??= options.Temperature;
        request.TopP ??= options.TopP;
        request.MaxCompletionTokens ??= request.MaxTokens is null ? options.MaxOutputTokens : null;
        request.Seed ??= options.Seed;
        request.PresencePenalty ??= options.PresencePenalty;
        request.FrequencyPenalty ??= options.FrequencyPenalty;
        if (request.Stop is null && options.StopSequences is { Count: > 0 } stop)
        {
            request.Stop = [.. stop];
        }

        if (options.TopK is { } topK)
        {
            // No OpenAI field: sent as top_k, which Anthropic, Gemini and most OpenAI-compatible servers read.
            request.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            request.AdditionalProperties.TryAdd("top_k", JsonSerializer.SerializeToElement(topK, BifrostJsonContext.Default.Int32));
        }

        if (request.ReasoningEffort is null && options.Reasoning?.Effort is { } effort)
        {
            request.ReasoningEffort = ReasoningEffort(effort);
        }

        var strict = options.AdditionalProperties?.TryGetValue(ChatClientRequestMapper.StrictKey, out var s) == true && s is bool flag ? flag : (bool?)null;
        if (request.ResponseFormat is null && options.ResponseFormat is { } format)
        {
            request.ResponseFormat = ResponseFormat(format, strict);
        }

        if (options.Tools is { Count: > 0 } tools)
        {
            var wireTools = new List<ChatCompletionTool>(request.Tools ?? []);
            for (var i = 0; i < tools.Count; i++)
            {
                wireTools.Add(Tool(tools[i], i));
            }

            request.Tools = wireTools;
        }

        if (request.Tools is { Count: > 0 })
        {
            if (request.ToolChoice is null && options.ToolMode is { } mode)
            {
                request.ToolChoice = ToolChoice(mode);
            }

            request.ParallelToolCalls ??= options.AllowMultipleToolCalls;
        }
    }

    private static void AddMessage(List<ChatCompletionMessage> wire, AI.ChatMessage message)
    {
        var role = message.Role == AI.ChatRole.System ? "system"
            : message.Role == AI.ChatRole.User ? "user"
            : message.Role == AI.ChatRole.Assistant ? "assistant"
            : message.Role == AI.ChatRole.Tool ? "tool"
            : message.Role.Value;

        List<ChatContentPart>? parts = null;
        List<ChatCompletionToolCall>? calls = null;
        List<ChatCompletionMessage>? results = null;
        string? refusal = null;
        foreach (var content in message.Contents)
        {
            switch (content)
            {
                case AI.TextContent text:
                    (parts ??= []).Add(new ChatContentPart { Type = "text", Text = text.Text });
                    break;
                case AI.ErrorContent { ErrorCode: ChatClientRequestMapper.RefusalErrorCode } error:
                    refusal += error.Message;
                    break;
                case AI.FunctionCallContent call:
                    (calls ??= []).Add(ChatClientResponseMapper.ToToolCall(call, index: null));
                    break;
                case AI.FunctionResultContent result:
                    (results ??= []).Add(new ChatCompletionMessage { Role = "tool", ToolCallId = result.CallId, Content = new ChatCompletionContent(ResultText(result)) });
                    break;
                case AI.DataContent or AI.UriContent or AI.HostedFileContent:
                    (parts ??= []).Add(MediaPart(content));
                    break;

                    // Reasoning, usage and other informational content is the model's own output: not sent back.
            }
        }

        // A message whose contents were all informational (reasoning, usage) is not sent; an empty one is, as empty text.
        if (parts is not null || calls is not null || refusal is not null || message.Contents.Count == 0)
        {
            var wireMessage = new ChatCompletionMessage
            {
                Role = role,
                Name = message.AuthorName,
                Content = parts switch
                {
                    null when calls is not null || refusal is not null => null,
                    null => new ChatCompletionContent(string.Empty),
                    [{ Type: "text", Text: { } single }] => new ChatCompletionContent(single),
                    _ => new ChatCompletionContent(parts),
                },
                ToolCalls = calls,
                Refusal = refusal,
            };
            if (message.AdditionalProperties is { Count: > 0 } extra)
            {
                wireMessage.AdditionalProperties = extra.ToDictionary(p => p.Key, p => ToElement(p.Value), StringComparer.Ordinal);
            }

            wire.Add(wireMessage);
        }

        if (results is not null)
        {
            wire.AddRange(results);
        }
    }

    private static ChatContentPart MediaPart(AI.AIContent content)
    {
        var detail = content.AdditionalProperties?.TryGetValue(ChatClientRequestMapper.DetailKey, out var d) == true ? d?.ToString() : null;
        switch (content)
        {
            case AI.DataContent data when data.HasTopLevelMediaType("image"):
                return new ChatContentPart { Type = "image_url", ImageUrl = new ChatImageUrl { Url = data.Uri, Detail = detail } };
            case AI.DataContent data when data.HasTopLevelMediaType("audio"):
                return Part("input_audio", new JsonObject { ["data"] = data.Base64Data.ToString(), ["format"] = AudioFormat(data.MediaType) });
            case AI.DataContent data:
                return Part("file", new JsonObject { ["file_data"] = data.Uri, ["filename"] = data.Name });
            case AI.HostedFileContent file:
                return Part("file", new JsonObject { ["file_id"] = file.FileId, ["filename"] = file.Name });
            case AI.UriContent uri when uri.HasTopLevelMediaType("image"):
                return new ChatContentPart { Type = "image_url", ImageUrl = new ChatImageUrl { Url = uri.Uri.ToString(), Detail = detail } };
            default:
                var uriContent = (AI.UriContent)content;
                throw BifrostErrors.InvalidRequest(
                    "unsupported_content",
                    $"Content of type '{uriContent.MediaType}' cannot be sent by URL in a chat completion; only images can. Send the bytes as DataContent instead.",
                    "messages");
        }
    }

    private static ChatContentPart Part(string type, JsonObject value)
    {
        foreach (var key in value.Where(p => p.Value is null).Select(p => p.Key).ToList())
        {
            value.Remove(key);
        }

        return new ChatContentPart
        {
            Type = type,
            AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
            {
                [type] = JsonSerializer.SerializeToElement<JsonNode>(value, BifrostJsonContext.Default.JsonNode),
            },
        };
    }

    private static string AudioFormat(string mediaType) => mediaType.ToUpperInvariant() switch
    {
        "AUDIO/MPEG" or "AUDIO/MP3" => "mp3",
        "AUDIO/WAV" or "AUDIO/X-WAV" or "AUDIO/WAVE" => "wav",
        var other => other[(other.IndexOf('/', StringComparison.Ordinal) + 1)..].ToLowerInvariant(),
    };

    /// <summary>A function result as the tool message's text: a string as is, anything else as JSON.</summary>
    private static string ResultText(AI.FunctionResultContent result) => result.Result switch
    {
        null => string.Empty,
        string text => text,
        JsonElement { ValueKind: JsonValueKind.String } element => element.GetString()!,
        var value => JsonSerializer.Serialize(value, WireRequest.ObjectTypeInfo),
    };

    private static ChatCompletionTool Tool(AI.AITool tool, int index)
    {
        if (tool is not AI.AIFunctionDeclaration function)
        {
            throw BifrostErrors.InvalidRequest(
                "unsupported_tool_type",
                $"ChatOptions.Tools[{index}] ({tool.GetType().Name}) is not a function; chat completions through the gateway take function tools only.",
                $"tools[{index}]");
        }

        return new ChatCompletionTool
        {
            Type = "function",
            Function = new ChatFunctionDefinition
            {
                Name = function.Name,
                Description = string.IsNullOrEmpty(function.Description) ? null : function.Description,
                Parameters = function.JsonSchema,
                Strict = function.AdditionalProperties.TryGetValue(ChatClientRequestMapper.StrictKey, out var strict) && strict is bool value ? value : null,
            },
        };
    }

    private static JsonElement ToolChoice(AI.ChatToolMode mode) => mode switch
    {
        AI.NoneChatToolMode => ToElement("none"),
        AI.RequiredChatToolMode { RequiredFunctionName: { } name } => ToElement(new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = name } }),
        AI.RequiredChatToolMode => ToElement("required"),
        _ => ToElement("auto"),
    };

    private static ChatCompletionResponseFormat ResponseFormat(AI.ChatResponseFormat format, bool? strict) => format switch
    {
        AI.ChatResponseFormatJson { Schema: { } schema } json => new ChatCompletionResponseFormat
        {
            Type = "json_schema",
            JsonSchema = new ChatJsonSchema { Name = json.SchemaName ?? "json_schema", Description = json.SchemaDescription, Schema = schema, Strict = strict },
        },
        AI.ChatResponseFormatJson => new ChatCompletionResponseFormat { Type = "json_object" },
        _ => new ChatCompletionResponseFormat { Type = "text" },
    };

    private static string ReasoningEffort(AI.ReasoningEffort effort) => effort switch
    {
        AI.ReasoningEffort.None => "none",
        AI.ReasoningEffort.Low => "low",
        AI.ReasoningEffort.Medium => "medium",
        AI.ReasoningEffort.High => "high",
        AI.ReasoningEffort.ExtraHigh => "xhigh",
        _ => effort.ToString().ToLowerInvariant(),
    };

    private static JsonElement ToElement(object? value) => WireRequest.ToElement(value);
}
