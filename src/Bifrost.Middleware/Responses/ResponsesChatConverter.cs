using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Responses;

/// <summary>
/// Runs the Responses API on providers that only speak chat completions. The mapping (README, "Responses API"):
/// <c>instructions</c> → a system message; <c>input</c> string → a user message; message items → messages
/// (<c>input_text</c>/<c>output_text</c> → text parts, <c>input_image</c> → <c>image_url</c> parts);
/// <c>function_call</c> items → an assistant message's <c>tool_calls</c>; <c>function_call_output</c> → a <c>tool</c>
/// message; function tools → chat function tools; <c>text.format</c> → <c>response_format</c>;
/// <c>reasoning.effort</c> → <c>reasoning_effort</c>; <c>max_output_tokens</c> → <c>max_completion_tokens</c>.
/// What chat completions cannot express (<c>previous_response_id</c>, hosted tools, file inputs, background, ...)
/// is refused with a 400 rather than ignored. Back: the first choice becomes a <c>message</c> output item (and
/// <c>function_call</c> items), usage becomes input/output tokens, <c>finish_reason: length</c> becomes
/// <c>status: incomplete</c>.
/// </summary>
internal static class ResponsesChatConverter
{
    private static readonly HashSet<string> ForwardedToChat = new(StringComparer.Ordinal) { "safety_identifier", "prompt_cache_key", "top_logprobs", "service_tier", "stream_options" };

    public static ChatCompletionRequest ToChat(ResponsesRequest request, bool stream)
    {
        if (request.PreviousResponseId is not null)
        {
            throw Unsupported("'previous_response_id' needs stored responses: use a provider with a native Responses API (ProviderOptions.NativeResponses), or send the whole conversation in 'input'.", "previous_response_id");
        }

        var chat = new ChatCompletionRequest
        {
            Model = request.Model,
            Messages = ToChatMessages(request),
            Temperature = request.Temperature,
            TopP = request.TopP,
            MaxCompletionTokens = request.MaxOutputTokens,
            ParallelToolCalls = request.ParallelToolCalls,
            Metadata = request.Metadata,
            User = request.User,
            ReasoningEffort = request.Reasoning?.Effort,
            Fallbacks = request.Fallbacks,
            Stream = stream ? true : null,
            StreamOptions = stream ? new ChatStreamOptions { IncludeUsage = true } : null,
        };

        if (request.Tools is { Count: > 0 } tools)
        {
            chat.Tools = [];
            for (var i = 0; i < tools.Count; i++)
            {
                var tool = tools[i];
                if (tool.Type != "function")
                {
                    throw Unsupported($"Tool type '{tool.Type}' is not supported when the Responses API is converted to chat completions; only function tools are.", $"tools[{i}].type");
                }

                chat.Tools.Add(new ChatCompletionTool { Type = "function", Function = new ChatFunctionDefinition { Name = tool.Name, Description = tool.Description, Parameters = tool.Parameters, Strict = tool.Strict } });
            }
        }

        if (request.ToolChoice is { } choice)
        {
            chat.ToolChoice = choice.ValueKind == JsonValueKind.Object
                ? ConvertToolChoice(choice)
                : choice;
        }

        if (request.Text?.Format is { } format)
        {
            chat.ResponseFormat = format.Type switch
            {
                "text" or null => null,
                "json_object" => new ChatCompletionResponseFormat { Type = "json_object" },
                "json_schema" => new ChatCompletionResponseFormat { Type = "json_schema", JsonSchema = new ChatJsonSchema { Name = format.Name, Description = format.Description, Schema = format.Schema, Strict = format.Strict } },
                _ => throw Unsupported($"Text format '{format.Type}' is not supported.", "text.format.type"),
            };
        }

        if (request.AdditionalProperties is { Count: > 0 } extra)
        {
            foreach (var (key, value) in extra)
            {
                if (key == "background" && value.ValueKind == JsonValueKind.True)
                {
                    throw Unsupported("'background' is not supported; use the x-bf-async header for background work.", "background");
                }

                if (key is "background" or "truncation" && value.ValueKind is JsonValueKind.False or JsonValueKind.Null || (key == "truncation" && value.ValueKind == JsonValueKind.String && value.GetString() == "disabled"))
                {
                    continue;
                }

                if (key == "include" && value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 0)
                {
                    continue;
                }

                if (!ForwardedToChat.Contains(key))
                {
                    throw Unsupported($"'{key}' is not supported when the Responses API is converted to chat completions.", key);
                }

                if (key != "stream_options")
                {
                    (chat.AdditionalProperties ??= new Dictionary<string, JsonElement>())[key] = value;
                }
            }
        }

        return chat;
    }

    /// <summary>The conversation as chat messages (also what local token counting counts).</summary>
    public static IList<ChatCompletionMessage> ToChatMessages(ResponsesRequest request)
    {
        var messages = new List<ChatCompletionMessage>();
        if (!string.IsNullOrEmpty(request.Instructions))
        {
            messages.Add(ChatCompletionMessage.FromText("system", request.Instructions));
        }

        if (request.Input is null)
        {
            throw BifrostErrors.MissingParameter("'input' is required.", "input");
        }

        if (request.Input.Text is { } text)
        {
            messages.Add(ChatCompletionMessage.FromText("user", text));
            return messages;
        }

        var items = request.Input.Items!;
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            switch (item.Type ?? (item.Role is not null ? "message" : null))
            {
                case "message":
                    messages.Add(ToChatMessage(item, i));
                    break;
                case "function_call":
                    var call = new ChatCompletionToolCall { Id = item.CallId, Type = "function", Function = new ChatCompletionFunctionCall { Name = item.Name, Arguments = item.Arguments ?? "{}" } };
                    if (messages.Count > 0 && messages[^1] is { Role: "assistant", ToolCalls: { } calls })
                    {
                        calls.Add(call);
                    }
                    else
                    {
                        messages.Add(new ChatCompletionMessage { Role = "assistant", ToolCalls = [call] });
                    }

                    break;
                case "function_call_output":
                    if (item.Output is { ValueKind: not (JsonValueKind.String or JsonValueKind.Null) })
                    {
                        throw Unsupported("A 'function_call_output' with content parts is not supported when the Responses API is converted to chat completions; send the output as a string.", $"input[{i}].output");
                    }

                    messages.Add(new ChatCompletionMessage { Role = "tool", ToolCallId = item.CallId, Content = new ChatCompletionContent(item.Output?.GetString() ?? string.Empty) });
                    break;
                case "reasoning":
                    break; // a previous turn's reasoning cannot be replayed to a chat completions API
                default:
                    throw Unsupported($"Input item type '{item.Type}' is not supported when the Responses API is converted to chat completions.", $"input[{i}].type");
            }
        }

        return messages;
    }

    public static ResponsesResponse FromChat(ChatCompletionResponse chat, ResponsesRequest request)
    {
        var response = Skeleton(request, "resp_" + (chat.Id ?? Guid.NewGuid().ToString("N")), chat.Created, chat.Model);
        var choice = chat.Choices.Count > 0 ? chat.Choices[0] : null;
        if (choice?.Message is { } message)
        {
            var index = 0;
            if (message.Content is not null || message.Refusal is not null)
            {
                response.Output.Add(MessageItem(response.Id!, message.Content, message.Refusal, "completed"));
            }

            foreach (var call in message.ToolCalls ?? [])
            {
                response.Output.Add(new ResponsesItem { Type = "function_call", Id = $"fc_{response.Id}_{index++}", CallId = call.Id, Name = call.Function?.Name, Arguments = call.Function?.Arguments ?? string.Empty, Status = "completed" });
            }
        }

        ApplyFinish(response, choice?.FinishReason);
        response.Usage = Usage(chat.Usage);
        return response;
    }

    /// <summary>Turns a chat completion stream into the Responses event sequence (created, in_progress, output items, text deltas, done events, completed).</summary>
    public static async IAsyncEnumerable<ResponsesStreamEvent> StreamFromChat(IAsyncEnumerable<ChatCompletionChunk> chunks, ResponsesRequest request, TimeProvider time, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var sequence = 0;
        ResponsesResponse? response = null;
        string? text = null;
        System.Text.StringBuilder? textBuilder = null;
        var textIndex = -1;
        var calls = new SortedDictionary<int, (int OutputIndex, ResponsesItem Item, System.Text.StringBuilder Arguments)>();
        var outputCount = 0;
        string? finish = null;
        ChatUsage? usage = null;

        await foreach (var chunk in chunks.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (response is null)
            {
                response = Skeleton(request, "resp_" + (chunk.Id ?? Guid.NewGuid().ToString("N")), chunk.Created != 0 ? chunk.Created : time.GetUtcNow().ToUnixTimeSeconds(), chunk.Model);
                response.Status = "in_progress";
                yield return Event("response.created", sequence++, e => e["response"] = Node(response));
                yield return Event("response.in_progress", sequence++, e => e["response"] = Node(response));
            }

            usage = chunk.Usage ?? usage;
            foreach (var choice in chunk.Choices)
            {
                if (choice.Index != 0)
                {
                    continue;
                }

                if (choice.Delta.Content is { Length: > 0 } delta)
                {
                    if (textIndex < 0)
                    {
                        textIndex = outputCount++;
                        textBuilder = new System.Text.StringBuilder();
                        var added = MessageItem(response.Id!, null, null, "in_progress");
                        yield return Event("response.output_item.added", sequence++, e =>
                        {
                            e["output_index"] = textIndex;
                            e["item"] = Node(added);
                        });
                        yield return Event("response.content_part.added", sequence++, e =>
                        {
                            e["item_id"] = MessageId(response.Id!);
                            e["output_index"] = textIndex;
                            e["content_index"] = 0;
                            e["part"] = new JsonObject { ["type"] = "output_text", ["text"] = string.Empty, ["annotations"] = new JsonArray() };
                        });
                    }

                    textBuilder!.Append(delta);
                    yield return Event("response.output_text.delta", sequence++, e =>
                    {
                        e["item_id"] = MessageId(response.Id!);
                        e["output_index"] = textIndex;
                        e["content_index"] = 0;
                        e["delta"] = delta;
                        e["logprobs"] = new JsonArray();
                    });
                }

                foreach (var call in choice.Delta.ToolCalls ?? [])
                {
                    var key = call.Index ?? 0;
                    if (!calls.TryGetValue(key, out var entry))
                    {
                        var item = new ResponsesItem { Type = "function_call", Id = $"fc_{response.Id}_{key}", CallId = call.Id, Name = call.Function?.Name, Arguments = string.Empty, Status = "in_progress" };
                        entry = (outputCount++, item, new System.Text.StringBuilder());
                        calls[key] = entry;
                        var outputIndex = entry.OutputIndex;
                        yield return Event("response.output_item.added", sequence++, e =>
                        {
                            e["output_index"] = outputIndex;
                            e["item"] = Node(item);
                        });
                    }

                    if (call.Function?.Arguments is { Length: > 0 } arguments)
                    {
                        entry.Arguments.Append(arguments);
                        var (outputIndex, item, _) = entry;
                        yield return Event("response.function_call_arguments.delta", sequence++, e =>
                        {
                            e["item_id"] = item.Id;
                            e["output_index"] = outputIndex;
                            e["delta"] = arguments;
                        });
                    }
                }

                finish = choice.FinishReason ?? finish;
            }
        }

        response ??= Skeleton(request, "resp_" + Guid.NewGuid().ToString("N"), time.GetUtcNow().ToUnixTimeSeconds(), request.Model);
        if (textIndex >= 0)
        {
            text = textBuilder!.ToString();
            var done = MessageItem(response.Id!, text, null, "completed");
            yield return Event("response.output_text.done", sequence++, e =>
            {
                e["item_id"] = done.Id;
                e["output_index"] = textIndex;
                e["content_index"] = 0;
                e["text"] = text;
                e["logprobs"] = new JsonArray();
            });
            yield return Event("response.content_part.done", sequence++, e =>
            {
                e["item_id"] = done.Id;
                e["output_index"] = textIndex;
                e["content_index"] = 0;
                e["part"] = new JsonObject { ["type"] = "output_text", ["text"] = text, ["annotations"] = new JsonArray() };
            });
            yield return Event("response.output_item.done", sequence++, e =>
            {
                e["output_index"] = textIndex;
                e["item"] = Node(done);
            });
        }

        var output = new SortedDictionary<int, ResponsesItem>();
        if (textIndex >= 0)
        {
            output[textIndex] = MessageItem(response.Id!, text, null, "completed");
        }

        foreach (var (_, (outputIndex, item, arguments)) in calls)
        {
            item.Arguments = arguments.ToString();
            item.Status = "completed";
            yield return Event("response.function_call_arguments.done", sequence++, e =>
            {
                e["item_id"] = item.Id;
                e["output_index"] = outputIndex;
                e["arguments"] = item.Arguments;
            });
            yield return Event("response.output_item.done", sequence++, e =>
            {
                e["output_index"] = outputIndex;
                e["item"] = Node(item);
            });
            output[outputIndex] = item;
        }

        response.Output = [.. output.Values];
        response.Usage = Usage(usage);
        ApplyFinish(response, finish);
        var final = response.Status == "incomplete" ? "response.incomplete" : "response.completed";
        yield return Event(final, sequence, e => e["response"] = Node(response));
    }

    /// <summary>The <c>error</c> event of a Responses stream that failed after it began.</summary>
    public static ResponsesStreamEvent ErrorEvent(BifrostError error, int sequence) => Event("error", sequence, e =>
    {
        e["code"] = error.Error.Code;
        e["message"] = error.Error.Message;
        e["param"] = error.Error.Param;
    });

    private static ResponsesResponse Skeleton(ResponsesRequest request, string id, long createdAt, string? model) => new()
    {
        Id = id,
        CreatedAt = createdAt,
        Model = model ?? request.Model,
        Instructions = request.Instructions is null ? null : new ResponsesInput(request.Instructions),
        MaxOutputTokens = request.MaxOutputTokens,
        Temperature = request.Temperature ?? 1,
        TopP = request.TopP ?? 1,
        ParallelToolCalls = request.ParallelToolCalls ?? true,
        ToolChoice = request.ToolChoice ?? JsonSerializer.SerializeToElement("auto", BifrostJsonContext.Default.String),
        Tools = request.Tools ?? [],
        Metadata = request.Metadata ?? new Dictionary<string, string>(),
        Text = request.Text ?? new ResponsesTextOptions { Format = new ResponsesTextFormat { Type = "text" } },
    };

    private static string MessageId(string responseId) => "msg_" + responseId;

    private static ResponsesItem MessageItem(string responseId, string? text, string? refusal, string status)
    {
        var parts = new List<ResponsesContentPart>();
        if (text is not null)
        {
            parts.Add(new ResponsesContentPart { Type = "output_text", Text = text, Annotations = [] });
        }

        if (refusal is not null)
        {
            parts.Add(new ResponsesContentPart { Type = "refusal", AdditionalProperties = new Dictionary<string, JsonElement> { ["refusal"] = JsonSerializer.SerializeToElement(refusal, BifrostJsonContext.Default.String) } });
        }

        return new ResponsesItem { Type = "message", Id = MessageId(responseId), Status = status, Role = "assistant", Content = new ResponsesContent(parts) };
    }

    private static void ApplyFinish(ResponsesResponse response, string? finishReason)
    {
        var reason = finishReason switch
        {
            "length" => "max_output_tokens",
            "content_filter" => "content_filter",
            _ => null,
        };
        response.Status = reason is null ? "completed" : "incomplete";
        response.IncompleteDetails = reason is null ? null : JsonSerializer.SerializeToElement(new JsonObject { ["reason"] = reason }, BifrostJsonContext.Default.JsonNode);
    }

    private static ResponsesUsage? Usage(ChatUsage? usage)
    {
        if (usage is null)
        {
            return null;
        }

        var cached = usage.PromptTokensDetails is { ValueKind: JsonValueKind.Object } p && p.TryGetProperty("cached_tokens", out var c) && c.TryGetInt32(out var cv) ? cv : 0;
        var reasoning = usage.CompletionTokensDetails is { ValueKind: JsonValueKind.Object } q && q.TryGetProperty("reasoning_tokens", out var r) && r.TryGetInt32(out var rv) ? rv : 0;
        return new ResponsesUsage
        {
            InputTokens = usage.PromptTokens,
            OutputTokens = usage.CompletionTokens,
            TotalTokens = usage.TotalTokens != 0 ? usage.TotalTokens : usage.PromptTokens + usage.CompletionTokens,
            InputTokensDetails = JsonSerializer.SerializeToElement(new JsonObject { ["cached_tokens"] = cached }, BifrostJsonContext.Default.JsonNode),
            OutputTokensDetails = JsonSerializer.SerializeToElement(new JsonObject { ["reasoning_tokens"] = reasoning }, BifrostJsonContext.Default.JsonNode),
        };
    }

    private static ChatCompletionMessage ToChatMessage(ResponsesItem item, int index)
    {
        var role = item.Role ?? throw Unsupported("A message item needs a 'role'.", $"input[{index}].role");
        if (item.Content is null)
        {
            return new ChatCompletionMessage { Role = role, Content = new ChatCompletionContent(string.Empty) };
        }

        if (item.Content.Text is { } text)
        {
            return ChatCompletionMessage.FromText(role, text);
        }

        var parts = new List<ChatContentPart>();
        string? refusal = null;
        var partsList = item.Content.Parts!;
        for (var p = 0; p < partsList.Count; p++)
        {
            var part = partsList[p];
            switch (part.Type)
            {
                case "input_text" or "output_text" or "text":
                    parts.Add(new ChatContentPart { Type = "text", Text = part.Text ?? string.Empty });
                    break;
                case "input_image" when part.ImageUrl is not null:
                    parts.Add(new ChatContentPart { Type = "image_url", ImageUrl = new ChatImageUrl { Url = part.ImageUrl, Detail = part.Detail } });
                    break;
                case "refusal":
                    refusal = part.AdditionalProperties is { } extra && extra.TryGetValue("refusal", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
                    break;
                default:
                    throw Unsupported($"Content part '{part.Type}'{(part.FileId is null ? string.Empty : " with a file_id")} is not supported when the Responses API is converted to chat completions.", $"input[{index}].content[{p}]");
            }
        }

        // Assistant turns go back as plain text: not every chat server accepts parts for them.
        if (role == "assistant")
        {
            return new ChatCompletionMessage { Role = role, Content = new ChatCompletionContent(string.Join("\n", parts.Select(x => x.Text))), Refusal = refusal };
        }

        return new ChatCompletionMessage { Role = role, Content = new ChatCompletionContent(parts) };
    }

    private static JsonElement ConvertToolChoice(JsonElement choice)
    {
        if (choice.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "function"
            && choice.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
        {
            return JsonSerializer.SerializeToElement(new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = name.GetString() } }, BifrostJsonContext.Default.JsonNode);
        }

        throw Unsupported("Only 'none', 'auto', 'required' or a function tool_choice are supported when the Responses API is converted to chat completions.", "tool_choice");
    }

    private static JsonNode? Node(ResponsesResponse response) => JsonSerializer.SerializeToNode(response, BifrostJson.Context.ResponsesResponse);

    private static JsonNode? Node(ResponsesItem item) => JsonSerializer.SerializeToNode(item, BifrostJson.Context.ResponsesItem);

    private static ResponsesStreamEvent Event(string type, int sequence, Action<JsonObject> fill)
    {
        var node = new JsonObject { ["type"] = type, ["sequence_number"] = sequence };
        fill(node);
        return new ResponsesStreamEvent(type, JsonSerializer.SerializeToElement(node, BifrostJson.Context.JsonNode));
    }

    private static BifrostException Unsupported(string message, string param) =>
        BifrostErrors.UnsupportedParameter(message, param);
}
