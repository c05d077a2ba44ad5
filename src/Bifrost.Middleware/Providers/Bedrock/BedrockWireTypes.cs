using System.Text.Encodings.Web;

namespace Bifrost.Middleware.Providers.Bedrock;

// Amazon Bedrock Runtime's wire format: Converse / ConverseStream
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html) and the InvokeModel bodies
// of the embedding models (Titan Text Embeddings, Cohere Embed on Bedrock). Flat classes, every field optional; unions
// (ContentBlock, ToolChoice) are written as one class whose unused members stay null.

/// <summary>The body of <c>POST /model/{modelId}/converse</c> and <c>/converse-stream</c>.</summary>
internal sealed class ConverseRequest
{
    public IList<ConverseMessage> Messages { get; set; } = [];

    public IList<ConverseContentBlock>? System { get; set; }

    public ConverseInferenceConfig? InferenceConfig { get; set; }

    public ConverseToolConfig? ToolConfig { get; set; }

    /// <summary>Model-native fields (e.g. <c>top_k</c>, Claude's <c>thinking</c>), passed through.</summary>
    public JsonElement? AdditionalModelRequestFields { get; set; }

    /// <summary>Converse's own fields the caller sent (<c>guardrailConfig</c>, <c>performanceConfig</c>, <c>requestMetadata</c>, ...).</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }

    /// <summary>Not sent: the forced tool standing for <c>response_format</c>, whose input is the answer's content.</summary>
    [JsonIgnore]
    public string? StructuredOutputTool { get; set; }
}

/// <summary>A message: role <c>user</c> or <c>assistant</c>, a list of content blocks.</summary>
internal sealed class ConverseMessage
{
    public string Role { get; set; } = "user";

    public IList<ConverseContentBlock> Content { get; set; } = [];
}

/// <summary>A ContentBlock (exactly one member set): text, image, toolUse, toolResult, reasoningContent, cachePoint, ...</summary>
internal sealed class ConverseContentBlock
{
    public string? Text { get; set; }

    public ConverseImage? Image { get; set; }

    public ConverseToolUse? ToolUse { get; set; }

    public ConverseToolResult? ToolResult { get; set; }

    public ConverseReasoningContent? ReasoningContent { get; set; }

    /// <summary>Blocks this adapter does not model (document, cachePoint, guardContent, citations ...): kept as they are.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

internal sealed class ConverseImage
{
    /// <summary>png, jpeg, gif or webp.</summary>
    public string? Format { get; set; }

    public ConverseImageSource? Source { get; set; }
}

internal sealed class ConverseImageSource
{
    /// <summary>The image bytes, base64 in JSON.</summary>
    public string? Bytes { get; set; }
}

internal sealed class ConverseToolUse
{
    public string? ToolUseId { get; set; }

    public string? Name { get; set; }

    public JsonElement? Input { get; set; }
}

internal sealed class ConverseToolResult
{
    public string? ToolUseId { get; set; }

    public IList<ConverseToolResultContent> Content { get; set; } = [];

    /// <summary><c>success</c> or <c>error</c>.</summary>
    public string? Status { get; set; }
}

internal sealed class ConverseToolResultContent
{
    public string? Text { get; set; }

    public JsonElement? Json { get; set; }
}

internal sealed class ConverseReasoningContent
{
    public ConverseReasoningText? ReasoningText { get; set; }

    public string? RedactedContent { get; set; }
}

internal sealed class ConverseReasoningText
{
    public string? Text { get; set; }

    public string? Signature { get; set; }
}

internal sealed class ConverseInferenceConfig
{
    public int? MaxTokens { get; set; }

    public double? Temperature { get; set; }

    public double? TopP { get; set; }

    public IList<string>? StopSequences { get; set; }
}

internal sealed class ConverseToolConfig
{
    public IList<ConverseTool> Tools { get; set; } = [];

    /// <summary><c>{"auto":{}}</c>, <c>{"any":{}}</c> or <c>{"tool":{"name":...}}</c>.</summary>
    public JsonElement? ToolChoice { get; set; }
}

internal sealed class ConverseTool
{
    public ConverseToolSpec? ToolSpec { get; set; }
}

internal sealed class ConverseToolSpec
{
    public string? Name { get; set; }

    public string? Description { get; set; }

    public ConverseToolInputSchema? InputSchema { get; set; }
}

internal sealed class ConverseToolInputSchema
{
    public JsonElement? Json { get; set; }
}

/// <summary>The answer of <c>POST /model/{modelId}/converse</c>.</summary>
internal sealed class ConverseResponse
{
    public ConverseOutput? Output { get; set; }

    public string? StopReason { get; set; }

    public ConverseUsage? Usage { get; set; }

    public JsonElement? AdditionalModelResponseFields { get; set; }
}

internal sealed class ConverseOutput
{
    public ConverseMessage? Message { get; set; }
}

internal sealed class ConverseUsage
{
    public int? InputTokens { get; set; }

    public int? OutputTokens { get; set; }

    public int? TotalTokens { get; set; }

    public int? CacheReadInputTokens { get; set; }

    public int? CacheWriteInputTokens { get; set; }
}

/// <summary>
/// The JSON payload of one ConverseStream event (its kind is the frame's <c>:event-type</c> header, set on <see cref="Type"/>):
/// messageStart (<c>role</c>), contentBlockStart (<c>start.toolUse</c>), contentBlockDelta (<c>delta.text</c> /
/// <c>delta.toolUse.input</c> / <c>delta.reasoningContent</c>), contentBlockStop, messageStop (<c>stopReason</c>), metadata
/// (<c>usage</c>); for an exception frame, <c>message</c>.
/// </summary>
internal sealed class BedrockStreamEvent
{
    [JsonIgnore]
    public string? Type { get; set; }

    public string? Role { get; set; }

    public int? ContentBlockIndex { get; set; }

    public BedrockStreamStart? Start { get; set; }

    public BedrockStreamDelta? Delta { get; set; }

    public string? StopReason { get; set; }

    public ConverseUsage? Usage { get; set; }

    public string? Message { get; set; }
}

internal sealed class BedrockStreamStart
{
    public ConverseToolUse? ToolUse { get; set; }
}

internal sealed class BedrockStreamDelta
{
    public string? Text { get; set; }

    public BedrockToolUseDelta? ToolUse { get; set; }

    public ConverseReasoningText? ReasoningContent { get; set; }
}

internal sealed class BedrockToolUseDelta
{
    /// <summary>A piece of the tool input's JSON text.</summary>
    public string? Input { get; set; }
}

/// <summary>Titan Text Embeddings (V1/V2) InvokeModel body: one text per call (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html).</summary>
internal sealed class TitanEmbedRequest
{
    public string? InputText { get; set; }

    /// <summary>V2 only: 256, 512 or 1024.</summary>
    public int? Dimensions { get; set; }

    public bool? Normalize { get; set; }
}

internal sealed class TitanEmbedResponse
{
    public float[]? Embedding { get; set; }

    public int? InputTextTokenCount { get; set; }
}

/// <summary>Cohere Embed on Bedrock InvokeModel body (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html).</summary>
internal sealed class BedrockCohereEmbedRequest
{
    [JsonPropertyName("texts")]
    public IList<string> Texts { get; set; } = [];

    [JsonPropertyName("input_type")]
    public string InputType { get; set; } = "search_document";

    [JsonPropertyName("truncate")]
    public string? Truncate { get; set; }

    [JsonPropertyName("embedding_types")]
    public IList<string>? EmbeddingTypes { get; set; }
}

/// <summary>Cohere's answer: <c>embeddings</c> is a list of vectors (embeddings_floats) or an object by type (embeddings_by_type).</summary>
internal sealed class BedrockCohereEmbedResponse
{
    [JsonPropertyName("embeddings")]
    public JsonElement? Embeddings { get; set; }
}

/// <summary>The body of <c>POST /model/{modelId}/count-tokens</c> (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokensInput.html).</summary>
internal sealed class BedrockCountTokensRequest
{
    public BedrockCountTokensInput Input { get; set; } = new();
}

internal sealed class BedrockCountTokensInput
{
    /// <summary>A ConverseTokensRequest: the messages and system blocks of a Converse request.</summary>
    public ConverseRequest? Converse { get; set; }
}

internal sealed class BedrockCountTokensResponse
{
    public int? InputTokens { get; set; }
}

internal sealed class BedrockPromptTokensDetails
{
    [JsonPropertyName("cached_tokens")]
    public int CachedTokens { get; set; }

    [JsonPropertyName("cache_creation_tokens")]
    public int CacheCreationTokens { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(ConverseRequest))]
[JsonSerializable(typeof(ConverseResponse))]
[JsonSerializable(typeof(BedrockStreamEvent))]
[JsonSerializable(typeof(TitanEmbedRequest))]
[JsonSerializable(typeof(TitanEmbedResponse))]
[JsonSerializable(typeof(BedrockCohereEmbedRequest))]
[JsonSerializable(typeof(BedrockCohereEmbedResponse))]
[JsonSerializable(typeof(BedrockPromptTokensDetails))]
[JsonSerializable(typeof(BedrockCountTokensRequest))]
[JsonSerializable(typeof(BedrockCountTokensResponse))]
// Bedrock native batches (bbatch)
[JsonSerializable(typeof(BedrockBatchJobRequest))]
[JsonSerializable(typeof(BedrockBatchJobCreated))]
[JsonSerializable(typeof(BedrockBatchJob))]
[JsonSerializable(typeof(BedrockBatchRecord))]
// Bedrock model listing, images and rerank (BedrockModelWireTypes.cs)
[JsonSerializable(typeof(BedrockFoundationModelList))]
[JsonSerializable(typeof(BedrockInferenceProfileList))]
[JsonSerializable(typeof(BedrockImageRequest))]
[JsonSerializable(typeof(BedrockImageResponse))]
[JsonSerializable(typeof(BedrockRerankRequest))]
[JsonSerializable(typeof(BedrockRerankResponse))]
[JsonSerializable(typeof(IList<string>))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(LlamaResponse))]
[JsonSerializable(typeof(IList<float[]>))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
internal sealed partial class BedrockJsonContext : JsonSerializerContext
{
    /// <summary>The context the adapter uses: generated metadata with the relaxed encoder the gateway writes with.</summary>
    public static BedrockJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
