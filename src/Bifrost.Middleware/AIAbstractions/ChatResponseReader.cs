using System.Text;
using Bifrost.Middleware.Providers.ChatClient;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.AIAbstractions;

/// <summary>
/// Turns the gateway's <c>chat.completion</c> objects and chunks into Microsoft.Extensions.AI responses and updates: the
/// inverse of <see cref="ChatClientResponseMapper"/>. The wire objects stay reachable as <c>RawRepresentation</c>
/// (with <c>extra_fields</c>: the provider that served, latency, ...).
/// </summary>
internal static class ChatResponseReader
{
    /// <summary>The field some providers (DeepSeek, vLLM) use for reasoning text instead of <c>reasoning</c>.</summary>
    private const string ReasoningContentKey = "reasoning_content";

    public static AI.ChatResponse Read(ChatCompletionResponse response)
    {
        var choice = response.Choices.Count > 0 ? response.Choices[0] : null;
        var contents = new List<AI.AIContent>();
        if (choice?.Message is { } message)
        {
            AddAssistantContents(contents, message, message.Content);
            if (message.ToolCalls is { Count: > 0 } calls)
            {
                foreach (var call in calls)
                {
                    contents.Add(FunctionCall(call.Id, call.Function?.Name, call.Function?.Arguments, call));
                }
            }
        }

        var createdAt = CreatedAt(response.Created);
        var result = new AI.ChatResponse(new AI.ChatMessage(AI.ChatRole.Assistant, contents)
        {
            MessageId = response.Id,
            CreatedAt = createdAt,
            RawRepresentation = choice?.Message,
        })
        {
            ResponseId = response.Id,
            ModelId = response.Model,
            CreatedAt = createdAt,
            FinishReason = FinishReason(choice?.FinishReason),
            Usage = Usage(response.Usage),
            RawRepresentation = response,
        };
        if (response.SystemFingerprint is { } fingerprint)
        {
            result.AdditionalProperties = new() { ["system_fingerprint"] = fingerprint };
        }

        return result;
    }

    /// <summary>Text, reasoning and refusal of an assistant message or delta, in that order.</summary>
    internal static void AddAssistantContents(List<AI.AIContent> contents, ChatAssistantMessageBase message, string? text)
    {
        if (Reasoning(message) is { Length: > 0 } reasoning)
        {
            contents.Add(new AI.TextReasoningContent(reasoning));
        }

        if (!string.IsNullOrEmpty(text))
        {
            contents.Add(new AI.TextContent(text));
        }

        if (!string.IsNullOrEmpty(message.Refusal))
        {
            contents.Add(new AI.ErrorContent(message.Refusal) { ErrorCode = ChatClientRequestMapper.RefusalErrorCode });
        }
    }

    /// <summary>A tool call with its arguments parsed; malformed arguments are kept on <see cref="AI.FunctionCallContent.Exception"/>, as M.E.AI does.</summary>
    internal static AI.FunctionCallContent FunctionCall(string? id, string? name, string? arguments, object? raw)
    {
        var call = AI.FunctionCallContent.CreateFromParsedArguments(
            string.IsNullOrWhiteSpace(arguments) ? "{}" : arguments,
            id ?? string.Empty,
            name ?? string.Empty,
            static json => ChatClientRequestMapper.ParseArguments(json));
        call.RawRepresentation = raw;
        return call;
    }

    public static AI.ChatFinishReason? FinishReason(string? reason) => reason switch
    {
        null or "" => null,
        "function_call" => AI.ChatFinishReason.ToolCalls,
        _ => new AI.ChatFinishReason(reason),
    };

    public static DateTimeOffset? CreatedAt(long created) => created > 0 ? DateTimeOffset.FromUnixTimeSeconds(created) : null;

    /// <summary>
    /// The wire usage as <see cref="AI.UsageDetails"/>: cached and reasoning tokens into their typed properties, every
    /// other detail count into <see cref="AI.UsageDetails.AdditionalCounts"/> as <c>prompt_tokens_details.NAME</c> or
    /// <c>completion_tokens_details.NAME</c>.
    /// </summary>
    public static AI.UsageDetails? Usage(ChatUsage? usage)
    {
        if (usage is null)
        {
            return null;
        }

        var details = new AI.UsageDetails
        {
            InputTokenCount = usage.PromptTokens,
            OutputTokenCount = usage.CompletionTokens,
            TotalTokenCount = usage.TotalTokens,
        };
        var counts = Counts("prompt_tokens_details", usage.PromptTokensDetails).Concat(Counts("completion_tokens_details", usage.CompletionTokensDetails));
        foreach (var (name, count) in counts)
        {
            switch (name)
            {
                case "prompt_tokens_details.cached_tokens":
                    details.CachedInputTokenCount = count;
                    break;
                case "completion_tokens_details.reasoning_tokens":
                    details.ReasoningTokenCount = count;
                    break;
                default:
                    (details.AdditionalCounts ??= [])[name] = count;
                    break;
            }
        }

        return details;
    }

    private static IEnumerable<(string Name, long Count)> Counts(string prefix, JsonElement? details)
    {
        if (details is not { ValueKind: JsonValueKind.Object } value)
        {
            yield break;
        }

        foreach (var property in value.EnumerateObject())
        {
            if (property.Value.ValueKind == JsonValueKind.Number && property.Value.TryGetInt64(out var count))
            {
                yield return ($"{prefix}.{property.Name}", count);
            }
        }
    }

    private static string? Reasoning(ChatAssistantMessageBase message)
    {
        if (message.AdditionalProperties is not { } extra)
        {
            return null;
        }

        foreach (var key in (ReadOnlySpan<string>)[ChatClientResponseMapper.ReasoningKey, ReasoningContentKey])
        {
            if (extra.TryGetValue(key, out var value) && value.ValueKind == JsonValueKind.String)
            {
                return value.GetString();
            }
        }

        return null;
    }
}

/// <summary>
/// Turns a chunk stream into <see cref="AI.ChatResponseUpdate"/>s, one per chunk: text, reasoning and refusal deltas as they
/// come; tool-call deltas accumulated by index and reported whole (arguments parsed) on the chunk with the finish reason, or
/// at the end of the stream if none had one; the usage chunk as <see cref="AI.UsageContent"/>.
/// </summary>
internal sealed class ChatChunkReader
{
    private readonly SortedDictionary<int, PendingCall> _calls = [];

    public AI.ChatResponseUpdate Read(ChatCompletionChunk chunk)
    {
        var contents = new List<AI.AIContent>();
        var update = new AI.ChatResponseUpdate(AI.ChatRole.Assistant, contents)
        {
            ResponseId = chunk.Id,
            MessageId = chunk.Id,
            ModelId = chunk.Model,
            CreatedAt = ChatResponseReader.CreatedAt(chunk.Created),
            RawRepresentation = chunk,
        };

        foreach (var choice in chunk.Choices)
        {
            if (choice.Index != 0)
            {
                continue; // n > 1 is refused before the call; a provider's extra choice is not part of this conversation
            }

            ChatResponseReader.AddAssistantContents(contents, choice.Delta, choice.Delta.Content);
            if (choice.Delta.ToolCalls is { Count: > 0 } calls)
            {
                for (var i = 0; i < calls.Count; i++)
                {
                    Accumulate(calls[i], i);
                }
            }

            if (ChatResponseReader.FinishReason(choice.FinishReason) is { } finish)
            {
                update.FinishReason = finish;
                AddCalls(contents);
            }
        }

        if (ChatResponseReader.Usage(chunk.Usage) is { } usage)
        {
            contents.Add(new AI.UsageContent(usage));
        }

        return update;
    }

    /// <summary>The tool calls no chunk finished (a stream that ended without a finish reason), or null.</summary>
    public AI.ChatResponseUpdate? Complete()
    {
        if (_calls.Count == 0)
        {
            return null;
        }

        var contents = new List<AI.AIContent>();
        AddCalls(contents);
        return new AI.ChatResponseUpdate(AI.ChatRole.Assistant, contents);
    }

    private void Accumulate(ChatCompletionToolCall delta, int position)
    {
        var index = delta.Index ?? position;
        if (!_calls.TryGetValue(index, out var call))
        {
            _calls[index] = call = new PendingCall();
        }

        if (!string.IsNullOrEmpty(delta.Id))
        {
            call.Id = delta.Id;
        }

        if (!string.IsNullOrEmpty(delta.Function?.Name))
        {
            call.Name += delta.Function.Name;
        }

        call.Arguments.Append(delta.Function?.Arguments);
    }

    private void AddCalls(List<AI.AIContent> contents)
    {
        foreach (var call in _calls.Values)
        {
            contents.Add(ChatResponseReader.FunctionCall(call.Id, call.Name, call.Arguments.ToString(), raw: null));
        }

        _calls.Clear();
    }

    private sealed class PendingCall
    {
        public string? Id { get; set; }

        public string? Name { get; set; }

        public StringBuilder Arguments { get; } = new();
    }
}
