using System.Text;

namespace Bifrost.Middleware.Providers.Cohere;

/// <summary>
/// Cohere v2 chat answers → chat completions: text blocks → <c>content</c>; <c>tool_calls</c> → <c>tool_calls</c>;
/// thinking blocks and the <c>tool_plan</c> → <c>reasoning</c>; <c>citations</c> kept as they are; finish reasons
/// COMPLETE/STOP_SEQUENCE → stop, MAX_TOKENS → length, TOOL_CALL → tool_calls (ERROR and TIMEOUT are errors); usage
/// from <c>usage.tokens</c> (the tokens the model read and wrote, which is what OpenAI reports), falling back to
/// <c>usage.billed_units</c> when <c>tokens</c> is absent; <c>cached_tokens</c> → <c>prompt_tokens_details.cached_tokens</c>.
/// </summary>
internal static class CohereResponseTranslator
{
    /// <summary>Cohere's finish reason as OpenAI's; ERROR and TIMEOUT are thrown by <see cref="ThrowIfFailed"/> first.</summary>
    public static string FinishReason(string? finishReason) => finishReason switch
    {
        "MAX_TOKENS" => "length",
        "TOOL_CALL" => "tool_calls",
        _ => "stop", // COMPLETE, STOP_SEQUENCE
    };

    /// <summary>A generation that ended in <c>ERROR</c> (502) or <c>TIMEOUT</c> (504) is a retryable provider error.</summary>
    public static void ThrowIfFailed(string? finishReason, string? error)
    {
        if (finishReason == "TIMEOUT")
        {
            throw BifrostErrors.ProviderError(504, BifrostErrors.ApiErrorType, "provider_timeout", string.IsNullOrWhiteSpace(error) ? "Cohere's generation timed out." : error);
        }

        if (finishReason == "ERROR" || !string.IsNullOrWhiteSpace(error))
        {
            throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "provider_generation_error", string.IsNullOrWhiteSpace(error) ? "Cohere's generation failed." : error);
        }
    }

    public static ChatUsage Usage(CohereUsage? usage)
    {
        var counts = usage?.Tokens ?? usage?.BilledUnits;
        var prompt = (int)(counts?.InputTokens ?? 0);
        var completion = (int)(counts?.OutputTokens ?? 0);
        var result = new ChatUsage { PromptTokens = prompt, CompletionTokens = completion, TotalTokens = prompt + completion };
        if (usage?.CachedTokens is { } cached)
        {
            result.PromptTokensDetails = JsonSerializer.SerializeToElement(new CoherePromptTokensDetails { CachedTokens = (int)cached }, CohereJsonContext.Wire.CoherePromptTokensDetails);
        }

        return result;
    }

    public static ChatCompletionResponse ToChat(CohereChatResponse response, string model, long created)
    {
        ArgumentNullException.ThrowIfNull(response);
        ThrowIfFailed(response.FinishReason, null);
        var text = new StringBuilder();
        StringBuilder? reasoning = null;
        var message = response.Message;
        if (!string.IsNullOrEmpty(message?.ToolPlan))
        {
            reasoning = new StringBuilder(message.ToolPlan);
        }

        foreach (var block in message?.Content ?? [])
        {
            switch (block.Type)
            {
                case "text":
                    text.Append(block.Text);
                    break;
                case "thinking" when !string.IsNullOrEmpty(block.Thinking):
                    reasoning ??= new StringBuilder();
                    if (reasoning.Length > 0)
                    {
                        reasoning.Append('\n');
                    }

                    reasoning.Append(block.Thinking);
                    break;
                default:
                    break;
            }
        }

        List<ChatCompletionToolCall>? calls = null;
        foreach (var call in message?.ToolCalls ?? [])
        {
            (calls ??= []).Add(new ChatCompletionToolCall
            {
                Id = call.Id,
                Type = "function",
                Function = new ChatCompletionFunctionCall { Name = call.Function?.Name, Arguments = string.IsNullOrEmpty(call.Function?.Arguments) ? "{}" : call.Function.Arguments },
            });
        }

        var responseMessage = new ChatResponseMessage
        {
            Content = text.Length > 0 || calls is null ? text.ToString() : null,
            ToolCalls = calls,
        };
        if (reasoning is not null)
        {
            (responseMessage.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))["reasoning"] = JsonSerializer.SerializeToElement(reasoning.ToString(), CohereJsonContext.Wire.String);
        }

        if (message?.Citations is { ValueKind: JsonValueKind.Array } citations && citations.GetArrayLength() > 0)
        {
            (responseMessage.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))["citations"] = citations.Clone();
        }

        return new ChatCompletionResponse
        {
            Id = string.IsNullOrEmpty(response.Id) ? "chatcmpl-cohere" : response.Id,
            Created = created,
            Model = model,
            Choices = [new ChatChoice { Index = 0, Message = responseMessage, FinishReason = FinishReason(response.FinishReason) }],
            Usage = Usage(response.Usage),
        };
    }
}

/// <summary>
/// Translates one Cohere v2 chat stream (https://docs.cohere.com/v2/docs/streaming) into chat completion chunks:
/// <c>message-start</c> → the role chunk; text <c>content-delta</c>s → content; thinking deltas and
/// <c>tool-plan-delta</c> → <c>delta.reasoning</c>; <c>tool-call-start</c> → a tool call delta with id and name
/// (index counted among tool calls), <c>tool-call-delta</c> → its arguments; <c>message-end</c> → one chunk with the
/// finish reason, then the usage chunk when asked. A <c>message-end</c> carrying an error (finish ERROR/TIMEOUT) is
/// thrown as the provider's error.
/// </summary>
internal sealed class CohereStreamTranslator(string model, long created, bool includeUsage) : Http.IChatStreamTranslator<CohereStreamEvent>
{
    private readonly Dictionary<int, int> _toolIndex = [];
    private string _id = "chatcmpl-cohere";

    /// <summary>Whether <c>message-end</c> arrived.</summary>
    public bool Completed { get; private set; }

    public void Translate(CohereStreamEvent evt, List<ChatCompletionChunk> output)
    {
        var message = evt.Delta?.Message;
        switch (evt.Type)
        {
            case "message-start":
                _id = string.IsNullOrEmpty(evt.Id) ? _id : evt.Id;
                output.Add(Chunk(new ChatDelta { Role = "assistant", Content = string.Empty }));
                break;
            case "content-start" or "content-delta" when message?.Content is { ValueKind: JsonValueKind.Object } content:
                if (content.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String && text.GetString() is { Length: > 0 } piece)
                {
                    output.Add(Chunk(new ChatDelta { Content = piece }));
                }
                else if (content.TryGetProperty("thinking", out var thinking) && thinking.ValueKind == JsonValueKind.String && thinking.GetString() is { Length: > 0 } thought)
                {
                    output.Add(Reasoning(thought));
                }

                break;
            case "tool-plan-delta" when !string.IsNullOrEmpty(message?.ToolPlan):
                output.Add(Reasoning(message.ToolPlan));
                break;
            case "tool-call-start" when message?.ToolCalls is { ValueKind: JsonValueKind.Object } start:
                var call = start.Deserialize(CohereJsonContext.Wire.CohereToolCall);
                var index = _toolIndex.Count;
                _toolIndex[evt.Index ?? index] = index;
                output.Add(Chunk(new ChatDelta
                {
                    ToolCalls = [new ChatCompletionToolCall { Index = index, Id = call?.Id, Type = "function", Function = new ChatCompletionFunctionCall { Name = call?.Function?.Name, Arguments = call?.Function?.Arguments ?? string.Empty } }],
                }));
                break;
            case "tool-call-delta" when message?.ToolCalls is { ValueKind: JsonValueKind.Object } delta:
                var arguments = delta.Deserialize(CohereJsonContext.Wire.CohereToolCall)?.Function?.Arguments;
                if (!string.IsNullOrEmpty(arguments) && _toolIndex.TryGetValue(evt.Index ?? _toolIndex.Count - 1, out var toolIndex))
                {
                    output.Add(Chunk(new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = toolIndex, Function = new ChatCompletionFunctionCall { Arguments = arguments } }] }));
                }

                break;
            case "message-end":
                CohereResponseTranslator.ThrowIfFailed(evt.Delta?.FinishReason, evt.Delta?.Error);
                output.Add(new ChatCompletionChunk
                {
                    Id = _id,
                    Created = created,
                    Model = model,
                    Choices = [new ChatChunkChoice { Index = 0, Delta = new ChatDelta(), FinishReason = CohereResponseTranslator.FinishReason(evt.Delta?.FinishReason) }],
                });
                if (includeUsage)
                {
                    output.Add(new ChatCompletionChunk { Id = _id, Created = created, Model = model, Usage = CohereResponseTranslator.Usage(evt.Delta?.Usage) });
                }

                Completed = true;
                break;
            default:
                break; // content-end, tool-call-end, citation-start/end, debug, and event types added later
        }
    }

    private ChatCompletionChunk Reasoning(string text) => Chunk(new ChatDelta
    {
        AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal) { ["reasoning"] = JsonSerializer.SerializeToElement(text, CohereJsonContext.Wire.String) },
    });

    private ChatCompletionChunk Chunk(ChatDelta delta) => new()
    {
        Id = _id,
        Created = created,
        Model = model,
        Choices = [new ChatChunkChoice { Index = 0, Delta = delta }],
    };
}
