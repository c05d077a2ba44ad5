using System.Text.Encodings.Web;

namespace Bifrost.Middleware.Providers.Gemini;

// The Gemini API (Google AI Studio, generativelanguage.googleapis.com/v1beta) wire format, as flat classes with camelCase
// names: https://ai.google.dev/api/generate-content, https://ai.google.dev/api/embeddings, https://ai.google.dev/api/tokens,
// https://ai.google.dev/api/models. Unions (Part) are classes with every member optional; unknown fields are kept.

/// <summary>The body of <c>models/{model}:generateContent</c> and <c>:streamGenerateContent</c> (and countTokens' <c>generateContentRequest</c>).</summary>
internal sealed class GeminiRequest
{
    /// <summary>Only inside countTokens' <c>generateContentRequest</c> (<c>models/{model}</c>).</summary>
    public string? Model { get; set; }

    public IList<GeminiContent> Contents { get; set; } = [];

    public GeminiContent? SystemInstruction { get; set; }

    public IList<GeminiTool>? Tools { get; set; }

    public GeminiToolConfig? ToolConfig { get; set; }

    public GeminiGenerationConfig? GenerationConfig { get; set; }

    /// <summary>Gemini-only fields the caller sent (<c>safetySettings</c>, <c>cachedContent</c>).</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

internal sealed class GeminiContent
{
    public string? Role { get; set; }

    public IList<GeminiPart> Parts { get; set; } = [];
}

/// <summary>One part: <c>text</c> (with <c>thought</c> for thought summaries), <c>inlineData</c>, <c>fileData</c>, <c>functionCall</c> or <c>functionResponse</c>, with an optional <c>thoughtSignature</c>.</summary>
internal sealed class GeminiPart
{
    public string? Text { get; set; }

    public bool? Thought { get; set; }

    public string? ThoughtSignature { get; set; }

    public GeminiBlob? InlineData { get; set; }

    public GeminiFileData? FileData { get; set; }

    public GeminiFunctionCall? FunctionCall { get; set; }

    public GeminiFunctionResponse? FunctionResponse { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

internal sealed class GeminiBlob
{
    public string? MimeType { get; set; }

    public string? Data { get; set; }
}

internal sealed class GeminiFileData
{
    public string? MimeType { get; set; }

    public string? FileUri { get; set; }
}

internal sealed class GeminiFunctionCall
{
    public string? Id { get; set; }

    public string? Name { get; set; }

    public JsonElement? Args { get; set; }
}

internal sealed class GeminiFunctionResponse
{
    public string? Id { get; set; }

    public string? Name { get; set; }

    public JsonElement? Response { get; set; }
}

internal sealed class GeminiTool
{
    public IList<GeminiFunctionDeclaration>? FunctionDeclarations { get; set; }
}

internal sealed class GeminiFunctionDeclaration
{
    public string? Name { get; set; }

    public string? Description { get; set; }

    /// <summary>The parameters as JSON Schema (not the OpenAPI subset of <c>parameters</c>).</summary>
    public JsonElement? ParametersJsonSchema { get; set; }
}

internal sealed class GeminiToolConfig
{
    public GeminiFunctionCallingConfig? FunctionCallingConfig { get; set; }
}

internal sealed class GeminiFunctionCallingConfig
{
    /// <summary><c>AUTO</c>, <c>ANY</c> or <c>NONE</c>.</summary>
    public string? Mode { get; set; }

    public IList<string>? AllowedFunctionNames { get; set; }
}

internal sealed class GeminiGenerationConfig
{
    public double? Temperature { get; set; }

    public double? TopP { get; set; }

    public int? TopK { get; set; }

    public int? CandidateCount { get; set; }

    public int? MaxOutputTokens { get; set; }

    public IList<string>? StopSequences { get; set; }

    public double? PresencePenalty { get; set; }

    public double? FrequencyPenalty { get; set; }

    public int? Seed { get; set; }

    public string? ResponseMimeType { get; set; }

    public JsonElement? ResponseJsonSchema { get; set; }

    public GeminiThinkingConfig? ThinkingConfig { get; set; }

    // Media (images and speech on Gemini / Vertex, GoogleMedia): output modalities, the TTS voice and the image aspect ratio.

    /// <summary><c>IMAGE</c> (image models) or <c>AUDIO</c> (TTS models).</summary>
    public IList<string>? ResponseModalities { get; set; }

    public GeminiSpeechConfig? SpeechConfig { get; set; }

    public GeminiImageConfig? ImageConfig { get; set; }
}

internal sealed class GeminiThinkingConfig
{
    public int? ThinkingBudget { get; set; }

    public bool? IncludeThoughts { get; set; }
}

/// <summary>A <c>GenerateContentResponse</c> (also each SSE event of a stream; a stream error carries <see cref="Error"/> instead).</summary>
internal sealed class GeminiResponse
{
    public IList<GeminiCandidate>? Candidates { get; set; }

    public GeminiPromptFeedback? PromptFeedback { get; set; }

    public GeminiUsage? UsageMetadata { get; set; }

    public string? ModelVersion { get; set; }

    public string? ResponseId { get; set; }

    public GeminiErrorDetail? Error { get; set; }
}

internal sealed class GeminiCandidate
{
    public GeminiContent? Content { get; set; }

    public string? FinishReason { get; set; }

    public int? Index { get; set; }
}

internal sealed class GeminiPromptFeedback
{
    public string? BlockReason { get; set; }

    public string? BlockReasonMessage { get; set; }
}

internal sealed class GeminiUsage
{
    public int? PromptTokenCount { get; set; }

    public int? CandidatesTokenCount { get; set; }

    public int? TotalTokenCount { get; set; }

    public int? CachedContentTokenCount { get; set; }

    public int? ThoughtsTokenCount { get; set; }

    public int? ToolUsePromptTokenCount { get; set; }
}

/// <summary>Google's error body: <c>{"error":{"code","message","status","details":[...]}}</c>.</summary>
internal sealed class GeminiErrorResponse
{
    public GeminiErrorDetail? Error { get; set; }
}

internal sealed class GeminiErrorDetail
{
    public int? Code { get; set; }

    public string? Message { get; set; }

    public string? Status { get; set; }

    public IList<JsonElement>? Details { get; set; }
}

/// <summary>The body of <c>:embedContent</c>, and one request of <c>:batchEmbedContents</c> (with <see cref="Model"/>).</summary>
internal sealed class GeminiEmbedRequest
{
    public string? Model { get; set; }

    public GeminiContent Content { get; set; } = new();

    public string? TaskType { get; set; }

    public string? Title { get; set; }

    public int? OutputDimensionality { get; set; }
}

internal sealed class GeminiBatchEmbedRequest
{
    public IList<GeminiEmbedRequest> Requests { get; set; } = [];
}

internal sealed class GeminiEmbedResponse
{
    public GeminiEmbedding? Embedding { get; set; }
}

internal sealed class GeminiBatchEmbedResponse
{
    public IList<GeminiEmbedding>? Embeddings { get; set; }
}

internal sealed class GeminiEmbedding
{
    public float[]? Values { get; set; }
}

internal sealed class GeminiCountTokensRequest
{
    public GeminiRequest? GenerateContentRequest { get; set; }
}

internal sealed class GeminiCountTokensResponse
{
    public int? TotalTokens { get; set; }

    public int? CachedContentTokenCount { get; set; }
}

internal sealed class GeminiModelList
{
    public IList<GeminiModel>? Models { get; set; }

    public string? NextPageToken { get; set; }
}

internal sealed class GeminiModel
{
    public string? Name { get; set; }

    public string? DisplayName { get; set; }

    public int? InputTokenLimit { get; set; }

    public int? OutputTokenLimit { get; set; }

    public IList<string>? SupportedGenerationMethods { get; set; }
}

/// <summary>OpenAI's <c>prompt_tokens_details</c> (snake_case: written into the gateway's answer).</summary>
internal sealed class GeminiPromptTokensDetails
{
    [JsonPropertyName("cached_tokens")]
    public int CachedTokens { get; set; }
}

/// <summary>OpenAI's <c>completion_tokens_details</c>.</summary>
internal sealed class GeminiCompletionTokensDetails
{
    [JsonPropertyName("reasoning_tokens")]
    public int ReasoningTokens { get; set; }
}

/// <summary>The tool call's <c>extra_content</c> carrying Gemini's thought signature (the convention of Google's OpenAI-compatible endpoint).</summary>
internal sealed class GeminiExtraContent
{
    [JsonPropertyName("google")]
    public GeminiExtraGoogle? Google { get; set; }
}

internal sealed class GeminiExtraGoogle
{
    [JsonPropertyName("thought_signature")]
    public string? ThoughtSignature { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(GeminiRequest))]
[JsonSerializable(typeof(GeminiResponse))]
[JsonSerializable(typeof(GeminiErrorResponse))]
[JsonSerializable(typeof(GeminiEmbedRequest))]
[JsonSerializable(typeof(GeminiBatchEmbedRequest))]
[JsonSerializable(typeof(GeminiEmbedResponse))]
[JsonSerializable(typeof(GeminiBatchEmbedResponse))]
[JsonSerializable(typeof(GeminiCountTokensRequest))]
[JsonSerializable(typeof(GeminiCountTokensResponse))]
[JsonSerializable(typeof(GeminiModelList))]
[JsonSerializable(typeof(GeminiPromptTokensDetails))]
[JsonSerializable(typeof(GeminiCompletionTokensDetails))]
[JsonSerializable(typeof(GeminiExtraContent))]
[JsonSerializable(typeof(GeminiBatchInputLine))]
[JsonSerializable(typeof(GeminiBatchResultLine))]
[JsonSerializable(typeof(GeminiUploadStart))]
[JsonSerializable(typeof(GeminiFileEnvelope))]
[JsonSerializable(typeof(GeminiBatchCreateRequest))]
[JsonSerializable(typeof(GeminiBatchOperation))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
// Media (GoogleMedia): Imagen's :predict.
[JsonSerializable(typeof(ImagenPredictRequest))]
[JsonSerializable(typeof(ImagenPredictResponse))]
internal sealed partial class GeminiJsonContext : JsonSerializerContext
{
    /// <summary>The context the adapter uses: generated metadata with the relaxed encoder the gateway writes with.</summary>
    public static GeminiJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
