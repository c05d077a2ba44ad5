using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI <c>chat.completion.chunk</c> of a streamed completion, with Bifrost's <c>extra_fields</c>.</summary>
public sealed class ChatCompletionChunk
{
    /// <summary>The completion's id (the same on every chunk).</summary>
    public string? Id { get; set; }

    /// <summary>Always <c>chat.completion.chunk</c>.</summary>
    public string Object { get; set; } = "chat.completion.chunk";

    /// <summary>Unix seconds when the completion was created.</summary>
    public long Created { get; set; }

    /// <summary>The model that answers.</summary>
    public string? Model { get; set; }

    /// <summary>The choice deltas; empty on the final usage chunk.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<ChatChunkChoice> Choices { get; set; } = [];

    /// <summary>Usage, on the final chunk when <c>stream_options.include_usage</c> is true.</summary>
    public ChatUsage? Usage { get; set; }

    /// <summary>The backend configuration fingerprint.</summary>
    public string? SystemFingerprint { get; set; }

    /// <summary>The service tier that served the request.</summary>
    public string? ServiceTier { get; set; }

    /// <summary>Gateway metadata, including <c>chunk_index</c>.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }

    /// <summary>Other fields, passed through unchanged.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

/// <summary>A choice delta in a stream chunk.</summary>
public sealed class ChatChunkChoice
{
    /// <summary>The choice's index.</summary>
    public int Index { get; set; }

    /// <summary>What this chunk adds.</summary>
    public ChatDelta Delta { get; set; } = new();

    /// <summary>Null until the choice's last chunk.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FinishReason { get; set; }

    /// <summary>Log probabilities, when requested.</summary>
    public JsonElement? Logprobs { get; set; }

    /// <summary>Other fields, passed through unchanged.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

/// <summary>The incremental part of a streamed message.</summary>
public sealed class ChatDelta
{
    /// <summary>The role, on the first chunk of a choice.</summary>
    public string? Role { get; set; }

    /// <summary>A piece of text.</summary>
    public string? Content { get; set; }

    /// <summary>A piece of a refusal.</summary>
    public string? Refusal { get; set; }

    /// <summary>Pieces of tool calls.</summary>
    public IList<ChatToolCall>? ToolCalls { get; set; }

    /// <summary>Other fields, passed through unchanged.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}
