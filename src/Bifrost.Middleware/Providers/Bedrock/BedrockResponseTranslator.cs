using System.Text;

namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>
/// Converse answers → chat completions: text blocks → <c>content</c>; <c>toolUse</c> blocks → <c>tool_calls</c> (the input
/// as JSON text); <c>reasoningContent</c> → <c>reasoning</c>; stop reasons per
/// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_MessageStopEvent.html — end_turn/stop_sequence →
/// stop, max_tokens/model_context_window_exceeded → length, tool_use → tool_calls, guardrail_intervened/content_filtered →
/// content_filter; malformed_model_output/malformed_tool_use are a retryable 502. Usage: prompt_tokens = inputTokens +
/// cacheReadInputTokens + cacheWriteInputTokens (what the model read, as OpenAI counts it), cached_tokens = cacheRead.
/// </summary>
internal static class BedrockResponseTranslator
{
    public static string FinishReason(string? stopReason) => stopReason switch
    {
        "max_tokens" or "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" or "content_filtered" => "content_filter",
        "malformed_model_output" or "malformed_tool_use" => throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, stopReason, $"Bedrock's model stopped with '{stopReason}'."),
        _ => "stop", // end_turn, stop_sequence
    };

    public static ChatUsage Usage(ConverseUsage? usage)
    {
        var cacheRead = usage?.CacheReadInputTokens ?? 0;
        var cacheWrite = usage?.CacheWriteInputTokens ?? 0;
        var prompt = (usage?.InputTokens ?? 0) + cacheRead + cacheWrite;
        var completion = usage?.OutputTokens ?? 0;
        var result = new ChatUsage { PromptTokens = prompt, CompletionTokens = completion, TotalTokens = prompt + completion };
        if (cacheRead > 0 || cacheWrite > 0)
        {
            result.PromptTokensDetails = JsonSerializer.SerializeToElement(new BedrockPromptTokensDetails { CachedTokens = cacheRead, CacheCreationTokens = cacheWrite }, BedrockJsonContext.Wire.BedrockPromptTokensDetails);
        }

        return result;
    }

    /// <param name="response">Bedrock's answer.</param>
    /// <param name="id">The completion id.</param>
    /// <param name="model">The model as requested.</param>
    /// <param name="created">The creation time.</param>
    /// <param name="structuredTool">The forced tool standing for <c>response_format</c>: its input is the content, the finish <c>stop</c>.</param>
    public static ChatCompletionResponse ToChat(ConverseResponse response, string id, string model, long created, string? structuredTool = null)
    {
        ArgumentNullException.ThrowIfNull(response);
        var finish = FinishReason(response.StopReason);
        if (structuredTool is not null && finish == "tool_calls")
        {
            finish = "stop";
        }

        var text = new StringBuilder();
        StringBuilder? reasoning = null;
        List<ChatCompletionToolCall>? calls = null;
        foreach (var block in response.Output?.Message?.Content ?? [])
        {
            if (block.Text is { } piece)
            {
                text.Append(piece);
            }
            else if (block.ToolUse is { } answer && structuredTool is not null && answer.Name == structuredTool)
            {
                text.Append(answer.Input is { } json ? json.GetRawText() : "{}");
            }
            else if (block.ToolUse is { } use)
            {
                (calls ??= []).Add(new ChatCompletionToolCall
                {
                    Id = use.ToolUseId,
                    Type = "function",
                    Function = new ChatCompletionFunctionCall { Name = use.Name, Arguments = use.Input is { } input ? input.GetRawText() : "{}" },
                });
            }
            else if (block.ReasoningContent?.ReasoningText?.Text is { Length: > 0 } thought)
            {
                (reasoning ??= new StringBuilder()).Append(thought);
            }
        }

        var message = new ChatResponseMessage { Content = text.Length > 0 || calls is null ? text.ToString() : null, ToolCalls = calls };
        if (reasoning is not null)
        {
            (message.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))["reasoning"] = JsonSerializer.SerializeToElement(reasoning.ToString(), BedrockJsonContext.Wire.String);
        }

        return new ChatCompletionResponse
        {
            Id = id,
            Created = created,
            Model = model,
            Choices = [new ChatChoice { Index = 0, Message = message, FinishReason = finish }],
            Usage = Usage(response.Usage),
        };
    }

    /// <summary>
    /// A stream's exception frame (<c>:message-type: exception</c>) as the provider's error, with the status
    /// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html gives each.
    /// </summary>
    public static BifrostException StreamException(string? exceptionType, string? message)
    {
        var status = exceptionType switch
        {
            "throttlingException" => 429,
            "validationException" => 400,
            "modelStreamErrorException" => 424,
            "serviceUnavailableException" => 503,
            "internalServerException" => 500,
            "modelTimeoutException" => 408,
            "accessDeniedException" => 403,
            "resourceNotFoundException" => 404,
            _ => 502,
        };
        var name = string.IsNullOrEmpty(exceptionType) ? "UnknownException" : char.ToUpperInvariant(exceptionType[0]) + exceptionType[1..];
        var error = BifrostErrors.ProviderError(status, null, name, string.IsNullOrWhiteSpace(message) ? $"Bedrock sent {name} in the stream." : message);
        return status == 424 ? new BifrostException(error.Error) { IsRetryable = true } : error;
    }
}

/// <summary>
/// Translates one ConverseStream (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html)
/// into chat completion chunks: messageStart → the role chunk; text deltas → content; reasoning deltas →
/// <c>delta.reasoning</c>; a contentBlockStart with <c>toolUse</c> → a tool call delta with id and name (index counted among
/// tool calls) and its <c>toolUse.input</c> deltas → arguments; messageStop → the finish chunk; metadata (after messageStop)
/// → the usage chunk when asked, and the end.
/// </summary>
internal sealed class BedrockStreamTranslator(string id, string model, long created, bool includeUsage, string? structuredTool = null) : Http.IChatStreamTranslator<BedrockStreamEvent>
{
    private readonly Dictionary<int, int> _toolIndex = [];
    private readonly HashSet<int> _structured = [];

    /// <summary>Whether metadata (the last event) arrived.</summary>
    public bool Completed { get; private set; }

    /// <summary>Whether messageStop arrived (the finish chunk was sent).</summary>
    public bool Stopped { get; private set; }

    public void Translate(BedrockStreamEvent evt, List<ChatCompletionChunk> output)
    {
        switch (evt.Type)
        {
            case "messageStart":
                output.Add(Chunk(new ChatDelta { Role = "assistant", Content = string.Empty }));
                break;
            case "contentBlockStart" when evt.Start?.ToolUse is { } structuredUse && structuredTool is not null && structuredUse.Name == structuredTool:
                _structured.Add(evt.ContentBlockIndex ?? -1); // its input is streamed as content
                break;
            case "contentBlockStart" when evt.Start?.ToolUse is { } use:
                var index = _toolIndex.Count;
                _toolIndex[evt.ContentBlockIndex ?? index] = index;
                output.Add(Chunk(new ChatDelta
                {
                    ToolCalls = [new ChatCompletionToolCall { Index = index, Id = use.ToolUseId, Type = "function", Function = new ChatCompletionFunctionCall { Name = use.Name, Arguments = string.Empty } }],
                }));
                break;
            case "contentBlockDelta" when evt.Delta is { } delta:
                if (!string.IsNullOrEmpty(delta.Text))
                {
                    output.Add(Chunk(new ChatDelta { Content = delta.Text }));
                }
                else if (delta.ToolUse?.Input is { Length: > 0 } json && _structured.Contains(evt.ContentBlockIndex ?? -1))
                {
                    output.Add(Chunk(new ChatDelta { Content = json }));
                }
                else if (delta.ToolUse?.Input is { Length: > 0 } arguments && _toolIndex.TryGetValue(evt.ContentBlockIndex ?? -1, out var toolIndex))
                {
                    output.Add(Chunk(new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = toolIndex, Function = new ChatCompletionFunctionCall { Arguments = arguments } }] }));
                }
                else if (delta.ReasoningContent?.Text is { Length: > 0 } thought)
                {
                    output.Add(Chunk(new ChatDelta
                    {
                        AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal) { ["reasoning"] = JsonSerializer.SerializeToElement(thought, BedrockJsonContext.Wire.String) },
                    }));
                }

                break;
            case "messageStop" when !Stopped:
                Stopped = true;
                output.Add(new ChatCompletionChunk
                {
                    Id = id,
                    Created = created,
                    Model = model,
                    Choices = [new ChatChunkChoice { Index = 0, Delta = new ChatDelta(), FinishReason = _structured.Count > 0 && evt.StopReason == "tool_use" ? "stop" : BedrockResponseTranslator.FinishReason(evt.StopReason) }],
                });
                break;
            case "metadata" when Stopped:
                if (includeUsage)
                {
                    output.Add(UsageChunk(evt.Usage));
                }

                Completed = true;
                break;
            default:
                break; // contentBlockStop, and event types added later
        }
    }

    /// <summary>The usage chunk (zeros when Bedrock sent no metadata).</summary>
    public ChatCompletionChunk UsageChunk(ConverseUsage? usage) => new() { Id = id, Created = created, Model = model, Usage = BedrockResponseTranslator.Usage(usage) };

    private ChatCompletionChunk Chunk(ChatDelta delta) => new()
    {
        Id = id,
        Created = created,
        Model = model,
        Choices = [new ChatChunkChoice { Index = 0, Delta = delta }],
    };
}
