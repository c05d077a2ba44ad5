using System.Text;
using System.Text.Json.Nodes;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Providers.ChatClient;

/// <summary>
/// Turns Microsoft.Extensions.AI answers into <c>chat.completion</c> objects and chunks.
/// </summary>
/// <remarks>
/// An <see cref="AI.IChatClient"/> pipeline may run tools itself (<c>UseFunctionInvocation()</c>): its answer then holds the
/// intermediate assistant calls and the tool results too. Only what follows the last tool result is the answer, and a call
/// whose result is in the answer is not reported (the caller must not run it again); informational calls never are.
/// </remarks>
internal static class ChatClientResponseMapper
{
    /// <summary>The field that carries reasoning text on a message or a delta (Bifrost's name for it).</summary>
    internal const string ReasoningKey = "reasoning";

    /// <summary>
    /// Arguments hold JsonElements when they came from JSON; anything else a client put there goes through the abstraction's
    /// own serializer options (the ones its function invocation uses), written compact as OpenAI sends arguments.
    /// </summary>
    private static readonly System.Text.Json.Serialization.Metadata.JsonTypeInfo ArgumentsTypeInfo =
        new JsonSerializerOptions(AI.AIJsonUtilities.DefaultOptions) { WriteIndented = false }.GetTypeInfo(typeof(IDictionary<string, object?>));

    public static ChatCompletionResponse ToCompletion(AI.ChatResponse response, ProviderContext context, TimeProvider time)
    {
        var messages = response.Messages;
        var start = messages.Count;
        while (start > 0 && messages[start - 1].Role != AI.ChatRole.Tool)
        {
            start--;
        }

        var resolved = ResolvedCallIds(messages);
        var text = new StringBuilder();
        StringBuilder? reasoning = null;
        StringBuilder? refusal = null;
        var calls = new List<ChatCompletionToolCall>();
        for (var m = start; m < messages.Count; m++)
        {
            foreach (var content in messages[m].Contents)
            {
                switch (content)
                {
                    case AI.TextContent t:
                        text.Append(t.Text);
                        break;
                    case AI.TextReasoningContent r when !string.IsNullOrEmpty(r.Text):
                        (reasoning ??= new StringBuilder()).Append(r.Text);
                        break;
                    case AI.ErrorContent { ErrorCode: ChatClientRequestMapper.RefusalErrorCode } e:
                        (refusal ??= new StringBuilder()).Append(e.Message);
                        break;
                    case AI.FunctionCallContent call when IsPending(call, resolved):
                        calls.Add(ToToolCall(call, index: null));
                        break;
                }
            }
        }

        var message = new ChatResponseMessage
        {
            Content = text.Length > 0 ? text.ToString() : calls.Count > 0 || refusal is not null ? null : string.Empty,
            Refusal = refusal?.ToString(),
            ToolCalls = calls.Count > 0 ? calls : null,
        };
        if (reasoning is not null)
        {
            message.AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal) { [ReasoningKey] = JsonString(reasoning.ToString()) };
        }

        return new ChatCompletionResponse
        {
            Id = string.IsNullOrEmpty(response.ResponseId) ? NewId() : response.ResponseId,
            Created = (response.CreatedAt ?? time.GetUtcNow()).ToUnixTimeSeconds(),
            Model = string.IsNullOrEmpty(response.ModelId) ? context.Model : response.ModelId,
            Choices = [new ChatChoice { Index = 0, Message = message, FinishReason = FinishReason(response.FinishReason, calls.Count > 0) }],
            Usage = ToUsage(response.Usage),
        };
    }

    /// <summary>The wire <c>finish_reason</c>; without one from the client: <c>tool_calls</c> when calls are reported, else <c>stop</c>.</summary>
    public static string FinishReason(AI.ChatFinishReason? reason, bool hasToolCalls)
    {
        if (reason is not { } value)
        {
            return hasToolCalls ? "tool_calls" : "stop";
        }

        // The well-known reasons' values are the OpenAI wire values (stop, length, tool_calls, content_filter); others pass through.
        return value.Value;
    }

    public static ChatUsage? ToUsage(AI.UsageDetails? usage)
    {
        if (usage is null)
        {
            return null;
        }

        var prompt = Int(usage.InputTokenCount);
        var completion = Int(usage.OutputTokenCount);
        return new ChatUsage
        {
            PromptTokens = prompt,
            CompletionTokens = completion,
            TotalTokens = usage.TotalTokenCount is { } total ? Int(total) : prompt + completion,
            PromptTokensDetails = Details(("cached_tokens", usage.CachedInputTokenCount)),
            CompletionTokensDetails = Details(("reasoning_tokens", usage.ReasoningTokenCount)),
        };
    }

    public static ChatCompletionToolCall ToToolCall(AI.FunctionCallContent call, int? index) => new()
    {
        Index = index,
        Id = string.IsNullOrEmpty(call.CallId) ? "call_" + Guid.NewGuid().ToString("N") : call.CallId,
        Type = "function",
        Function = new ChatCompletionFunctionCall { Name = call.Name, Arguments = ArgumentsJson(call.Arguments) },
    };

    /// <summary>The call ids answered by a <see cref="AI.FunctionResultContent"/> within the answer itself.</summary>
    public static HashSet<string> ResolvedCallIds(IEnumerable<AI.ChatMessage> messages)
    {
        var resolved = new HashSet<string>(StringComparer.Ordinal);
        foreach (var message in messages)
        {
            foreach (var content in message.Contents)
            {
                if (content is AI.FunctionResultContent result && result.CallId is { } id)
                {
                    resolved.Add(id);
                }
            }
        }

        return resolved;
    }

    public static bool IsPending(AI.FunctionCallContent call, HashSet<string> resolved) =>
        !call.InformationalOnly && (string.IsNullOrEmpty(call.CallId) || !resolved.Contains(call.CallId));

    public static string ArgumentsJson(IDictionary<string, object?>? arguments)
    {
        if (arguments is null)
        {
            return "{}";
        }

        return JsonSerializer.Serialize(arguments, ArgumentsTypeInfo);
    }

    public static JsonElement JsonString(string value) => JsonSerializer.SerializeToElement(value, BifrostJsonContext.Default.String);

    public static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N");

    private static JsonElement? Details(params ReadOnlySpan<(string Name, long? Value)> counts)
    {
        JsonObject? details = null;
        foreach (var (name, value) in counts)
        {
            if (value is { } count)
            {
                (details ??= [])[name] = Int(count);
            }
        }

        return details is null ? null : JsonSerializer.SerializeToElement(details, BifrostJsonContext.Default.JsonNode);
    }

    private static int Int(long? value) => value is { } v ? (int)Math.Clamp(v, 0, int.MaxValue) : 0;
}

/// <summary>
/// Turns a stream of <see cref="AI.ChatResponseUpdate"/>s into chunks: the role first, then text (and reasoning, refusal)
/// deltas as they come, the tool calls at the end (a call resolved within the stream by the client's own function
/// invocation is dropped), the finish reason on the last choice chunk, and a usage chunk when asked for.
/// </summary>
internal sealed class ChatClientStreamTranslator(ProviderContext context, TimeProvider time, bool includeUsage)
{
    private readonly List<AI.FunctionCallContent> _calls = [];
    private readonly HashSet<string> _resolved = new(StringComparer.Ordinal);
    private string _id = string.Empty;
    private string _model = string.Empty;
    private long _created;
    private bool _started;
    private AI.ChatFinishReason? _finish;
    private AI.UsageDetails? _usage;

    public IEnumerable<ChatCompletionChunk> Translate(AI.ChatResponseUpdate update)
    {
        if (!_started)
        {
            yield return Start(update);
        }

        if (update.FinishReason is { } finish)
        {
            _finish = finish;
        }

        var isToolResult = update.Role == AI.ChatRole.Tool;
        StringBuilder? text = null;
        StringBuilder? reasoning = null;
        StringBuilder? refusal = null;
        foreach (var content in update.Contents)
        {
            switch (content)
            {
                case AI.TextContent t when !isToolResult && !string.IsNullOrEmpty(t.Text):
                    (text ??= new StringBuilder()).Append(t.Text);
                    break;
                case AI.TextReasoningContent r when !string.IsNullOrEmpty(r.Text):
                    (reasoning ??= new StringBuilder()).Append(r.Text);
                    break;
                case AI.ErrorContent { ErrorCode: ChatClientRequestMapper.RefusalErrorCode } e when !string.IsNullOrEmpty(e.Message):
                    (refusal ??= new StringBuilder()).Append(e.Message);
                    break;
                case AI.FunctionCallContent call:
                    _calls.Add(call);
                    break;
                case AI.FunctionResultContent result when result.CallId is { } id:
                    _resolved.Add(id);
                    break;
                case AI.UsageContent usage:
                    (_usage ??= new AI.UsageDetails()).Add(usage.Details);
                    break;
            }
        }

        if (text is not null || reasoning is not null || refusal is not null)
        {
            var delta = new ChatDelta { Content = text?.ToString(), Refusal = refusal?.ToString() };
            if (reasoning is not null)
            {
                delta.AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
                {
                    [ChatClientResponseMapper.ReasoningKey] = ChatClientResponseMapper.JsonString(reasoning.ToString()),
                };
            }

            yield return Chunk(delta, null);
        }
    }

    public IEnumerable<ChatCompletionChunk> Complete()
    {
        if (!_started)
        {
            yield return Start(null); // the client streamed nothing: still a well-formed (empty) completion
        }

        var index = 0;
        foreach (var call in _calls)
        {
            if (ChatClientResponseMapper.IsPending(call, _resolved))
            {
                yield return Chunk(new ChatDelta { ToolCalls = [ChatClientResponseMapper.ToToolCall(call, index++)] }, null);
            }
        }

        yield return Chunk(new ChatDelta(), ChatClientResponseMapper.FinishReason(_finish, index > 0));
        if (includeUsage && ChatClientResponseMapper.ToUsage(_usage) is { } usage)
        {
            yield return new ChatCompletionChunk { Id = _id, Created = _created, Model = _model, Usage = usage };
        }
    }

    private ChatCompletionChunk Start(AI.ChatResponseUpdate? first)
    {
        _started = true;
        _id = string.IsNullOrEmpty(first?.ResponseId) ? ChatClientResponseMapper.NewId() : first.ResponseId;
        _model = string.IsNullOrEmpty(first?.ModelId) ? context.Model : first.ModelId;
        _created = (first?.CreatedAt ?? time.GetUtcNow()).ToUnixTimeSeconds();
        return Chunk(new ChatDelta { Role = "assistant", Content = string.Empty }, null);
    }

    private ChatCompletionChunk Chunk(ChatDelta delta, string? finishReason) => new()
    {
        Id = _id,
        Created = _created,
        Model = _model,
        Choices = [new ChatChunkChoice { Index = 0, Delta = delta, FinishReason = finishReason }],
    };
}
