namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI <c>chat.completion</c> object with Bifrost's <c>extra_fields</c>.</summary>
public sealed class ChatCompletionResponse : ChatCompletionEnvelope<ChatChoice>
{
    /// <summary>Creates an empty <c>chat.completion</c>.</summary>
    public ChatCompletionResponse()
        : base("chat.completion")
    {
    }
}

/// <summary>The envelope of a chat completion and of its stream chunks: the completion envelope plus <c>service_tier</c>.</summary>
/// <typeparam name="TChoice">The choice type.</typeparam>
public abstract class ChatCompletionEnvelope<TChoice> : CompletionEnvelope<TChoice>
{
    private protected ChatCompletionEnvelope(string @object)
        : base(@object)
    {
    }

    /// <summary>The service tier that served the request.</summary>
    [JsonPropertyOrder(Own)]
    public string? ServiceTier { get; set; }
}

/// <summary>What a choice of a completion and a choice delta of a stream chunk have in common: index, finish reason, log probabilities.</summary>
public abstract class ChatChoiceBase : ExtensibleObject
{
    private protected ChatChoiceBase()
    {
    }

    /// <summary>The choice's index.</summary>
    [JsonPropertyOrder(-1)]
    public int Index { get; set; }

    /// <summary><c>stop</c>, <c>length</c>, <c>tool_calls</c>, <c>content_filter</c>, ...; on a stream, null until the choice's last chunk.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FinishReason { get; set; }

    /// <summary>Log probabilities, when requested.</summary>
    public JsonElement? Logprobs { get; set; }
}

/// <summary>A choice of a non-streamed completion.</summary>
public sealed class ChatChoice : ChatChoiceBase
{
    /// <summary>The generated message.</summary>
    public ChatResponseMessage? Message { get; set; }
}

/// <summary>What a generated assistant message and a stream delta have in common besides role and content: refusal and tool calls.</summary>
public abstract class ChatAssistantMessageBase : ExtensibleObject
{
    private protected ChatAssistantMessageBase()
    {
    }

    /// <summary>A refusal, if the model refused (a piece of it on a stream delta).</summary>
    public string? Refusal { get; set; }

    /// <summary>Tool calls the model made (pieces of them on a stream delta, with <see cref="ChatCompletionToolCall.Index"/>).</summary>
    public IList<ChatCompletionToolCall>? ToolCalls { get; set; }
}

/// <summary>A generated assistant message. Other fields (audio, annotations, reasoning, ...) are passed through unchanged.</summary>
public sealed class ChatResponseMessage : ChatAssistantMessageBase
{
    /// <summary>Always <c>assistant</c>.</summary>
    public string Role { get; set; } = "assistant";

    /// <summary>The text (null when the model only called tools).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? Content { get; set; }
}

/// <summary>Token usage of a request.</summary>
public sealed class ChatUsage : ExtensibleObject
{
    /// <summary>Tokens in the prompt.</summary>
    public int PromptTokens { get; set; }

    /// <summary>Tokens generated.</summary>
    public int CompletionTokens { get; set; }

    /// <summary>Prompt plus completion tokens.</summary>
    public int TotalTokens { get; set; }

    /// <summary>Prompt token breakdown (cached tokens, audio tokens, ...).</summary>
    public JsonElement? PromptTokensDetails { get; set; }

    /// <summary>Completion token breakdown (reasoning tokens, ...).</summary>
    public JsonElement? CompletionTokensDetails { get; set; }
}
