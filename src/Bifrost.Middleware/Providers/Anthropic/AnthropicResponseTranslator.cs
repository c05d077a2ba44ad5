using System.Text;

namespace Bifrost.Middleware.Providers.Anthropic;

/// <summary>
/// Messages API answers → chat completions: text blocks → <c>content</c>, <c>tool_use</c> → <c>tool_calls</c>,
/// thinking → <c>reasoning</c> (text) and <c>reasoning_details</c> (signed blocks, to send back on the next turn),
/// stop reasons → finish reasons, usage with cache tokens → prompt/completion tokens.
/// </summary>
internal static class AnthropicResponseTranslator
{
    internal const string ReasoningFormat = "anthropic-claude-v1";

    /// <summary>end_turn/stop_sequence/pause_turn → stop, max_tokens/model_context_window_exceeded → length, tool_use → tool_calls, refusal → content_filter.</summary>
    public static string FinishReason(string? stopReason) => stopReason switch
    {
        "max_tokens" or "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    };

    /// <summary>prompt_tokens = input + cache creation + cache read (Anthropic's input_tokens excludes cached tokens); cached_tokens = cache read.</summary>
    public static ChatUsage Usage(int input, int output, int cacheCreation, int cacheRead)
    {
        var prompt = input + cacheCreation + cacheRead;
        return new ChatUsage
        {
            PromptTokens = prompt,
            CompletionTokens = output,
            TotalTokens = prompt + output,
            PromptTokensDetails = JsonSerializer.SerializeToElement(
                new AnthropicPromptTokensDetails { CachedTokens = cacheRead, CacheCreationTokens = cacheCreation },
                AnthropicJsonContext.Wire.AnthropicPromptTokensDetails),
        };
    }

    public static ChatUsage Usage(AnthropicUsage? usage) =>
        Usage(usage?.InputTokens ?? 0, usage?.OutputTokens ?? 0, usage?.CacheCreationInputTokens ?? 0, usage?.CacheReadInputTokens ?? 0);

    /// <summary>The Anthropic error type of a status and back: 529 is <c>overloaded_error</c>.</summary>
    public static int StatusOf(string? errorType) => errorType switch
    {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    };

    public static ChatCompletionResponse ToChat(AnthropicResponse message, long created)
    {
        ArgumentNullException.ThrowIfNull(message);
        var text = new StringBuilder();
        StringBuilder? reasoning = null;
        List<AnthropicReasoningDetail>? details = null;
        List<ChatCompletionToolCall>? calls = null;
        foreach (var block in message.Content ?? [])
        {
            switch (block.Type)
            {
                case "text":
                    text.Append(block.Text);
                    break;
                case "tool_use":
                    (calls ??= []).Add(new ChatCompletionToolCall
                    {
                        Id = block.Id,
                        Type = "function",
                        Function = new ChatCompletionFunctionCall { Name = block.Name, Arguments = block.Input is { } input ? input.GetRawText() : "{}" },
                    });
                    break;
                case "thinking":
                    reasoning ??= new StringBuilder();
                    if (reasoning.Length > 0)
                    {
                        reasoning.Append('\n');
                    }

                    reasoning.Append(block.Thinking);
                    (details ??= []).Add(new AnthropicReasoningDetail { Type = "reasoning.text", Text = block.Thinking ?? string.Empty, Signature = block.Signature, Format = ReasoningFormat, Index = details.Count });
                    break;
                case "redacted_thinking":
                    (details ??= []).Add(new AnthropicReasoningDetail { Type = "reasoning.encrypted", Data = block.Data, Format = ReasoningFormat, Index = details.Count });
                    break;
                default:
                    break; // server tool blocks (server_tool_use, web_search_tool_result, ...) ran upstream; their text comes in text blocks
            }
        }

        var responseMessage = new ChatResponseMessage
        {
            Content = text.Length > 0 || calls is null ? text.ToString() : null,
            ToolCalls = calls,
        };
        AddReasoning(responseMessage.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal), reasoning?.ToString(), details);
        if (responseMessage.AdditionalProperties.Count == 0)
        {
            responseMessage.AdditionalProperties = null;
        }

        return new ChatCompletionResponse
        {
            Id = message.Id,
            Created = created,
            Model = message.Model,
            Choices = [new ChatChoice { Index = 0, Message = responseMessage, FinishReason = FinishReason(message.StopReason) }],
            Usage = Usage(message.Usage),
        };
    }

    internal static void AddReasoning(IDictionary<string, JsonElement> target, string? reasoning, List<AnthropicReasoningDetail>? details)
    {
        if (reasoning is not null)
        {
            target["reasoning"] = JsonSerializer.SerializeToElement(reasoning, AnthropicJsonContext.Wire.String);
        }

        if (details is { Count: > 0 })
        {
            target["reasoning_details"] = JsonSerializer.SerializeToElement<IList<AnthropicReasoningDetail>>(details, AnthropicJsonContext.Wire.IListAnthropicReasoningDetail);
        }
    }

    public static BifrostException Error(int status, AnthropicErrorDetail? error, string fallbackMessage, TimeSpan? retryAfter = null)
    {
        // A batch result nests a whole error response ({"type":"error","error":{...}}); a stream or body error is flat.
        var detail = error?.Error ?? error;
        var message = string.IsNullOrWhiteSpace(detail?.Message) ? fallbackMessage : detail.Message;
        return BifrostErrors.ProviderError(status, detail?.Type, null, message, null, retryAfter);
    }
}

/// <summary>
/// Translates one Messages stream into chat completion chunks: <c>message_start</c> → the role chunk; text deltas →
/// content; <c>tool_use</c> blocks → tool call deltas (index counted among tool calls, id and name first, then the
/// arguments as they arrive); thinking deltas → <c>delta.reasoning</c> (and the signed block as
/// <c>delta.reasoning_details</c> when it ends); <c>message_stop</c> → one chunk with the finish reason, then the usage
/// chunk when asked. An <c>error</c> event is thrown as the provider's error.
/// </summary>
internal sealed class AnthropicStreamTranslator(string model, long created, bool includeUsage) : Http.IChatStreamTranslator<AnthropicStreamEvent>
{
    private readonly Dictionary<int, int> _toolIndexByBlock = [];
    private readonly Dictionary<int, (StringBuilder Text, string? Signature)> _thinking = [];
    private string _id = "msg";
    private string _model = model;
    private int _input;
    private int _output;
    private int _cacheCreation;
    private int _cacheRead;
    private string? _stopReason;
    private int _reasoningIndex;

    /// <summary>Whether <c>message_stop</c> arrived (the finish and usage chunks were produced).</summary>
    public bool Completed { get; private set; }

    /// <summary>Whether anything was produced yet.</summary>
    public bool Started { get; private set; }

    public void Translate(AnthropicStreamEvent evt, List<ChatCompletionChunk> output)
    {
        switch (evt.Type)
        {
            case "message_start":
                if (evt.Message is { } message)
                {
                    _id = message.Id ?? _id;
                    _model = message.Model ?? _model;
                    TakeUsage(message.Usage);
                }

                Started = true;
                output.Add(Chunk(new ChatDelta { Role = "assistant", Content = string.Empty }));
                break;
            case "content_block_start" when evt.ContentBlock is { } block && evt.Index is { } index:
                Start(index, block, output);
                break;
            case "content_block_delta" when evt.Delta is { } delta && evt.Index is { } index:
                Delta(index, delta, output);
                break;
            case "content_block_stop" when evt.Index is { } index:
                if (_thinking.Remove(index, out var thinking))
                {
                    var detail = new AnthropicReasoningDetail { Type = "reasoning.text", Text = thinking.Text.ToString(), Signature = thinking.Signature, Format = AnthropicResponseTranslator.ReasoningFormat, Index = _reasoningIndex++ };
                    output.Add(ReasoningChunk(null, [detail]));
                }

                break;
            case "message_delta":
                _stopReason = evt.Delta?.StopReason ?? _stopReason;
                TakeUsage(evt.Usage);
                break;
            case "message_stop":
                output.Add(new ChatCompletionChunk
                {
                    Id = _id,
                    Created = created,
                    Model = _model,
                    Choices = [new ChatChunkChoice { Index = 0, Delta = new ChatDelta(), FinishReason = AnthropicResponseTranslator.FinishReason(_stopReason) }],
                });
                if (includeUsage)
                {
                    output.Add(new ChatCompletionChunk { Id = _id, Created = created, Model = _model, Usage = AnthropicResponseTranslator.Usage(_input, _output, _cacheCreation, _cacheRead) });
                }

                Completed = true;
                break;
            case "error":
                throw AnthropicResponseTranslator.Error(AnthropicResponseTranslator.StatusOf(evt.Error?.Type), evt.Error, "The provider's stream failed.");
            default:
                break; // ping, and event types added later
        }
    }

    private void Start(int index, AnthropicContentBlock block, List<ChatCompletionChunk> output)
    {
        switch (block.Type)
        {
            case "text" when !string.IsNullOrEmpty(block.Text):
                output.Add(Chunk(new ChatDelta { Content = block.Text }));
                break;
            case "tool_use":
                var toolIndex = _toolIndexByBlock.Count;
                _toolIndexByBlock[index] = toolIndex;

                // Anthropic starts a tool_use block with an empty input ({}); the arguments come as input_json_delta.
                var arguments = block.Input is { ValueKind: JsonValueKind.Object } input && input.EnumerateObject().Any() ? input.GetRawText() : string.Empty;
                output.Add(Chunk(new ChatDelta
                {
                    ToolCalls = [new ChatCompletionToolCall { Index = toolIndex, Id = block.Id, Type = "function", Function = new ChatCompletionFunctionCall { Name = block.Name, Arguments = arguments } }],
                }));
                break;
            case "thinking":
                _thinking[index] = (new StringBuilder(block.Thinking), block.Signature);
                if (!string.IsNullOrEmpty(block.Thinking))
                {
                    output.Add(ReasoningChunk(block.Thinking, null));
                }

                break;
            case "redacted_thinking":
                output.Add(ReasoningChunk(null, [new AnthropicReasoningDetail { Type = "reasoning.encrypted", Data = block.Data, Format = AnthropicResponseTranslator.ReasoningFormat, Index = _reasoningIndex++ }]));
                break;
            default:
                break;
        }
    }

    private void Delta(int index, AnthropicDelta delta, List<ChatCompletionChunk> output)
    {
        switch (delta.Type)
        {
            case "text_delta" when !string.IsNullOrEmpty(delta.Text):
                output.Add(Chunk(new ChatDelta { Content = delta.Text }));
                break;
            case "input_json_delta" when !string.IsNullOrEmpty(delta.PartialJson) && _toolIndexByBlock.TryGetValue(index, out var toolIndex):
                output.Add(Chunk(new ChatDelta { ToolCalls = [new ChatCompletionToolCall { Index = toolIndex, Function = new ChatCompletionFunctionCall { Arguments = delta.PartialJson } }] }));
                break;
            case "thinking_delta" when !string.IsNullOrEmpty(delta.Thinking):
                if (_thinking.TryGetValue(index, out var thinking))
                {
                    thinking.Text.Append(delta.Thinking);
                }

                output.Add(ReasoningChunk(delta.Thinking, null));
                break;
            case "signature_delta" when _thinking.TryGetValue(index, out var signed):
                _thinking[index] = (signed.Text, signed.Signature + delta.Signature);
                break;
            default:
                break; // citations_delta, and delta types added later
        }
    }

    private void TakeUsage(AnthropicUsage? usage)
    {
        if (usage is null)
        {
            return;
        }

        // message_delta's usage is cumulative; newer API versions repeat the input counts there too.
        _input = usage.InputTokens ?? _input;
        _output = usage.OutputTokens ?? _output;
        _cacheCreation = usage.CacheCreationInputTokens ?? _cacheCreation;
        _cacheRead = usage.CacheReadInputTokens ?? _cacheRead;
    }

    private ChatCompletionChunk ReasoningChunk(string? text, List<AnthropicReasoningDetail>? details)
    {
        var delta = new ChatDelta { AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal) };
        AnthropicResponseTranslator.AddReasoning(delta.AdditionalProperties, text, details);
        return Chunk(delta);
    }

    private ChatCompletionChunk Chunk(ChatDelta delta) => new()
    {
        Id = _id,
        Created = created,
        Model = _model,
        Choices = [new ChatChunkChoice { Index = 0, Delta = delta }],
    };
}
