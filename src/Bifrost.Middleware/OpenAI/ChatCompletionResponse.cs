using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI <c>chat.completion</c> object with Bifrost's <c>extra_fields</c>.</summary>
public sealed class ChatCompletionResponse
{
    /// <summary>The completion's id.</summary>
    public string? Id { get; set; }

    /// <summary>Always <c>chat.completion</c>.</summary>
    public string Object { get; set; } = "chat.completion";

    /// <summary>Unix seconds when the completion was created.</summary>
    public long Created { get; set; }

    /// <summary>The model that answered, as the provider names it.</summary>
    public string? Model { get; set; }

    /// <summary>The generated choices.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<ChatChoice> Choices { get; set; } = [];

    /// <summary>Token usage.</summary>
    public ChatUsage? Usage { get; set; }

    /// <summary>The backend configuration fingerprint.</summary>
    public string? SystemFingerprint { get; set; }

    /// <summary>The service tier that served the request.</summary>
    public string? ServiceTier { get; set; }

    /// <summary>Gateway metadata: provider, requested model, latency, ...</summary>
    public BifrostExtraFields? ExtraFields { get; set; }

    /// <summary>Other response fields from the provider, passed through unchanged.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

/// <summary>A choice of a non-streamed completion.</summary>
public sealed class ChatChoice
{
    /// <summary>The choice's index.</summary>
    public int Index { get; set; }

    /// <summary>The generated message.</summary>
    public ChatResponseMessage? Message { get; set; }

    /// <summary><c>stop</c>, <c>length</c>, <c>tool_calls</c>, <c>content_filter</c>, ...</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FinishReason { get; set; }

    /// <summary>Log probabilities, when requested.</summary>
    public JsonElement? Logprobs { get; set; }

    /// <summary>Other fields, passed through unchanged.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

/// <summary>A generated assistant message.</summary>
public sealed class ChatResponseMessage
{
    /// <summary>Always <c>assistant</c>.</summary>
    public string Role { get; set; } = "assistant";

    /// <summary>The text (null when the model only called tools).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? Content { get; set; }

    /// <summary>A refusal, if the model refused.</summary>
    public string? Refusal { get; set; }

    /// <summary>Tool calls the model made.</summary>
    public IList<ChatToolCall>? ToolCalls { get; set; }

    /// <summary>Other fields (audio, annotations, reasoning, ...), passed through unchanged.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

/// <summary>Token usage of a request.</summary>
public sealed class ChatUsage
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

    /// <summary>Other fields, passed through unchanged.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}
