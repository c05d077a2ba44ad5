using System.Globalization;
using System.Text;

namespace Bifrost.Middleware.Providers.Gemini;

/// <summary>
/// Gemini answers → chat completions: each candidate → a choice (text parts → <c>content</c>, <c>thought</c> parts →
/// <c>reasoning</c>, <c>functionCall</c> parts → <c>tool_calls</c> with the thought signature in
/// <c>extra_content.google.thought_signature</c>); <c>finishReason</c> → <c>finish_reason</c>; a prompt blocked by
/// <c>promptFeedback.blockReason</c> → one empty choice with <c>content_filter</c>; <c>usageMetadata</c> → usage (cached and
/// thinking tokens in the details; completion tokens include the thinking tokens, as OpenAI counts reasoning); Google's
/// error body → the Bifrost error with the HTTP status, Google's status as the code and RetryInfo as the retry hint.
/// </summary>
internal static class GeminiResponseTranslator
{
    /// <summary>
    /// STOP (and no reason) → stop, or tool_calls when the candidate called functions; MAX_TOKENS → length; SAFETY, RECITATION,
    /// LANGUAGE, BLOCKLIST, PROHIBITED_CONTENT, SPII and the IMAGE_* filters → content_filter; anything else → stop.
    /// </summary>
    public static string FinishReason(string? reason, bool hasToolCalls) => reason switch
    {
        "MAX_TOKENS" => "length",
        "SAFETY" or "RECITATION" or "LANGUAGE" or "BLOCKLIST" or "PROHIBITED_CONTENT" or "SPII"
            or "IMAGE_SAFETY" or "IMAGE_PROHIBITED_CONTENT" or "IMAGE_RECITATION" => "content_filter",
        _ when hasToolCalls => "tool_calls",
        _ => "stop",
    };

    /// <summary>prompt = promptTokenCount + toolUsePromptTokenCount (cached included: cached_tokens); completion = candidates + thoughts (reasoning_tokens).</summary>
    public static ChatUsage Usage(GeminiUsage? usage)
    {
        var prompt = (usage?.PromptTokenCount ?? 0) + (usage?.ToolUsePromptTokenCount ?? 0);
        var thoughts = usage?.ThoughtsTokenCount ?? 0;
        var completion = (usage?.CandidatesTokenCount ?? 0) + thoughts;
        return new ChatUsage
        {
            PromptTokens = prompt,
            CompletionTokens = completion,
            TotalTokens = prompt + completion,
            PromptTokensDetails = JsonSerializer.SerializeToElement(new GeminiPromptTokensDetails { CachedTokens = usage?.CachedContentTokenCount ?? 0 }, GeminiJsonContext.Wire.GeminiPromptTokensDetails),
            CompletionTokensDetails = JsonSerializer.SerializeToElement(new GeminiCompletionTokensDetails { ReasoningTokens = thoughts }, GeminiJsonContext.Wire.GeminiCompletionTokensDetails),
        };
    }

    public static ChatCompletionResponse ToChat(GeminiResponse response, string model, long created, string providerName)
    {
        ArgumentNullException.ThrowIfNull(response);
        var choices = new List<ChatChoice>();
        if (response.Candidates is { Count: > 0 } candidates)
        {
            for (var i = 0; i < candidates.Count; i++)
            {
                choices.Add(Choice(candidates[i], i));
            }
        }
        else if (response.PromptFeedback?.BlockReason is { Length: > 0 })
        {
            choices.Add(new ChatChoice { Index = 0, Message = new ChatResponseMessage { Content = string.Empty }, FinishReason = "content_filter" });
        }
        else
        {
            throw BifrostErrors.InvalidProviderResponse($"Provider '{providerName}' returned no candidates and no block reason.");
        }

        return new ChatCompletionResponse
        {
            Id = response.ResponseId is { Length: > 0 } id ? id : NewId(),
            Created = created,
            Model = response.ModelVersion ?? model,
            Choices = choices,
            Usage = Usage(response.UsageMetadata),
        };
    }

    private static ChatChoice Choice(GeminiCandidate candidate, int position)
    {
        var text = new StringBuilder();
        StringBuilder? reasoning = null;
        List<ChatCompletionToolCall>? calls = null;
        foreach (var part in candidate.Content?.Parts ?? [])
        {
            if (part.FunctionCall is { } call)
            {
                calls ??= [];
                calls.Add(ToolCall(call, part.ThoughtSignature, null));
            }
            else if (part.Text is { } partText)
            {
                if (part.Thought == true)
                {
                    (reasoning ??= new StringBuilder()).Append(partText);
                }
                else
                {
                    text.Append(partText);
                }
            }
        }

        var message = new ChatResponseMessage { Content = text.Length > 0 || calls is null ? text.ToString() : null, ToolCalls = calls };
        if (reasoning is not null)
        {
            message.AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
            {
                ["reasoning"] = JsonSerializer.SerializeToElement(reasoning.ToString(), GeminiJsonContext.Wire.String),
            };
        }

        return new ChatChoice { Index = candidate.Index ?? position, Message = message, FinishReason = FinishReason(candidate.FinishReason, calls is not null) };
    }

    /// <summary>A function call as a tool call: Gemini's id or a minted <c>call_…</c>, the arguments as JSON text, the thought signature in <c>extra_content</c>.</summary>
    public static ChatCompletionToolCall ToolCall(GeminiFunctionCall call, string? signature, int? index)
    {
        var toolCall = new ChatCompletionToolCall
        {
            Index = index,
            Id = call.Id is { Length: > 0 } id ? id : "call_" + Guid.NewGuid().ToString("N")[..24],
            Type = "function",
            Function = new ChatCompletionFunctionCall { Name = call.Name, Arguments = call.Args is { ValueKind: JsonValueKind.Object } args ? args.GetRawText() : "{}" },
        };
        if (!string.IsNullOrEmpty(signature))
        {
            toolCall.AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
            {
                ["extra_content"] = JsonSerializer.SerializeToElement(new GeminiExtraContent { Google = new GeminiExtraGoogle { ThoughtSignature = signature } }, GeminiJsonContext.Wire.GeminiExtraContent),
            };
        }

        return toolCall;
    }

    internal static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];

    /// <summary>The error type OpenAI clients expect for an HTTP status.</summary>
    public static string TypeOf(int status) => status switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        >= 400 and < 500 => "invalid_request_error",
        _ => "api_error",
    };

    /// <summary>
    /// Google's error (<c>{"error":{"code","message","status","details"}}</c>) as a Bifrost error: the HTTP status (an invalid
    /// API key, which Google answers with 400 <c>API_KEY_INVALID</c>, becomes 401), Google's <c>status</c> (or the
    /// <c>ErrorInfo</c> reason) as the code, and a <c>RetryInfo.retryDelay</c> as the retry hint when no header gave one.
    /// </summary>
    public static BifrostException Error(int httpStatus, GeminiErrorDetail? error, string fallbackMessage, TimeSpan? retryAfter)
    {
        string? reason = null;
        TimeSpan? delay = null;
        foreach (var detail in error?.Details ?? [])
        {
            if (detail.ValueKind != JsonValueKind.Object || !detail.TryGetProperty("@type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                continue;
            }

            var typeName = type.GetString();
            if (typeName == "type.googleapis.com/google.rpc.ErrorInfo" && detail.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String)
            {
                reason = r.GetString();
            }
            else if (typeName == "type.googleapis.com/google.rpc.RetryInfo" && detail.TryGetProperty("retryDelay", out var d) && d.ValueKind == JsonValueKind.String)
            {
                delay = ParseDuration(d.GetString());
            }
        }

        var status = httpStatus;
        if (reason is "API_KEY_INVALID" or "API_KEY_EXPIRED" || (status == 400 && error?.Status == "UNAUTHENTICATED"))
        {
            status = 401;
        }

        var message = string.IsNullOrWhiteSpace(error?.Message) ? fallbackMessage : error.Message;
        var code = reason ?? error?.Status;
        return BifrostErrors.ProviderError(status, TypeOf(status), code, message, null, retryAfter ?? delay);
    }

    /// <summary>A protobuf Duration in JSON (<c>"30s"</c>, <c>"12.5s"</c>), or null.</summary>
    public static TimeSpan? ParseDuration(string? value) =>
        value is { Length: > 1 } && value[^1] == 's'
        && double.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0 && seconds < 86400 * 365
            ? TimeSpan.FromSeconds(seconds)
            : null;

    /// <summary>The HTTP status of a Google status name (for errors inside a stream, which carry no HTTP status of their own).</summary>
    public static int StatusOf(GeminiErrorDetail? error) => error?.Code is >= 400 and < 600 and var code ? code : error?.Status switch
    {
        "INVALID_ARGUMENT" or "FAILED_PRECONDITION" or "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "RESOURCE_EXHAUSTED" => 429,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    };
}

/// <summary>
/// Translates one <c>streamGenerateContent?alt=sse</c> stream (each event a whole <c>GenerateContentResponse</c> with the
/// new parts) into chat completion chunks: first the role chunk; text → content deltas, thought text → <c>reasoning</c>
/// deltas, each <c>functionCall</c> (sent whole) → one tool call delta with its full arguments; the finish reasons are held
/// until the stream ends (the finish chunk per candidate, then the usage chunk when asked: the last
/// <c>usageMetadata</c>, which is cumulative). An <c>error</c> event is thrown as the provider's error.
/// </summary>
internal sealed class GeminiStreamTranslator(string model, long created, bool includeUsage) : Http.IChatStreamTranslator<GeminiResponse>
{
    private readonly SortedDictionary<int, (string? Reason, int ToolCalls)> _candidates = [];
    private string? _id;
    private string _model = model;
    private GeminiUsage? _usage;
    private bool _blocked;

    /// <summary>Whether a finish reason (or a prompt block) arrived, so the stream may end.</summary>
    /// <summary>Always false: Gemini's stream has no end marker (the body ends after the event with the finish reason).</summary>
    public bool Completed => false;

    public bool Finished => _blocked || (_candidates.Count > 0 && _candidates.Values.All(static c => c.Reason is not null));

    public void Translate(GeminiResponse evt, List<ChatCompletionChunk> output)
    {
        if (evt.Error is { } error)
        {
            throw GeminiResponseTranslator.Error(GeminiResponseTranslator.StatusOf(error), error, "The provider's stream failed.", null);
        }

        if (_id is null)
        {
            _id = evt.ResponseId is { Length: > 0 } id ? id : GeminiResponseTranslator.NewId();
            _model = evt.ModelVersion ?? _model;
            output.Add(Chunk(0, new ChatDelta { Role = "assistant", Content = string.Empty }));
        }

        _usage = evt.UsageMetadata ?? _usage;
        if (evt.Candidates is not { Count: > 0 } candidates)
        {
            if (evt.PromptFeedback?.BlockReason is { Length: > 0 })
            {
                _blocked = true;
            }

            return;
        }

        for (var c = 0; c < candidates.Count; c++)
        {
            var candidate = candidates[c];
            var index = candidate.Index ?? c;
            var state = _candidates.TryGetValue(index, out var known) ? known : (null, 0);
            foreach (var part in candidate.Content?.Parts ?? [])
            {
                if (part.FunctionCall is { } call)
                {
                    output.Add(Chunk(index, new ChatDelta { ToolCalls = [GeminiResponseTranslator.ToolCall(call, part.ThoughtSignature, state.ToolCalls)] }));
                    state.ToolCalls++;
                }
                else if (part.Text is { Length: > 0 } text)
                {
                    output.Add(part.Thought == true
                        ? Chunk(index, new ChatDelta { AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal) { ["reasoning"] = JsonSerializer.SerializeToElement(text, GeminiJsonContext.Wire.String) } })
                        : Chunk(index, new ChatDelta { Content = text }));
                }
            }

            state.Reason = candidate.FinishReason ?? state.Reason;
            _candidates[index] = state;
        }
    }

    /// <summary>The finish chunk of each candidate (content_filter for a blocked prompt), then the usage chunk when asked.</summary>
    public void Finish(List<ChatCompletionChunk> output)
    {
        if (_blocked && _candidates.Count == 0)
        {
            output.Add(Finish(0, "content_filter"));
        }

        foreach (var (index, state) in _candidates)
        {
            output.Add(Finish(index, GeminiResponseTranslator.FinishReason(state.Reason, state.ToolCalls > 0)));
        }

        if (includeUsage)
        {
            output.Add(new ChatCompletionChunk { Id = _id, Created = created, Model = _model, Usage = GeminiResponseTranslator.Usage(_usage) });
        }
    }

    private ChatCompletionChunk Finish(int index, string reason) => new()
    {
        Id = _id,
        Created = created,
        Model = _model,
        Choices = [new ChatChunkChoice { Index = index, Delta = new ChatDelta(), FinishReason = reason }],
    };

    private ChatCompletionChunk Chunk(int index, ChatDelta delta) => new()
    {
        Id = _id,
        Created = created,
        Model = _model,
        Choices = [new ChatChunkChoice { Index = index, Delta = delta }],
    };
}
