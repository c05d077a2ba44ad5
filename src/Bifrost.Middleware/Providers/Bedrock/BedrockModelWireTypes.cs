namespace Bifrost.Middleware.Providers.Bedrock;

// The Bedrock wire types of model listing (control plane), image generation (InvokeModel bodies of Nova Canvas and Titan
// Image Generator) and rerank (Agents for Amazon Bedrock Runtime). Flat classes, every field optional.

/// <summary>
/// <c>GET /foundation-models</c>: <c>{"modelSummaries": [...]}</c>, not paged
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_ListFoundationModels.html).
/// </summary>
internal sealed class BedrockFoundationModelList
{
    public IList<BedrockFoundationModelSummary>? ModelSummaries { get; set; }
}

/// <summary>A FoundationModelSummary (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_FoundationModelSummary.html).</summary>
internal sealed class BedrockFoundationModelSummary
{
    public string? ModelId { get; set; }

    public string? ModelArn { get; set; }

    public string? ModelName { get; set; }

    public string? ProviderName { get; set; }

    /// <summary><c>TEXT</c>, <c>IMAGE</c>, <c>EMBEDDING</c>, ...</summary>
    public IList<string>? InputModalities { get; set; }

    public IList<string>? OutputModalities { get; set; }

    public bool? ResponseStreamingSupported { get; set; }

    /// <summary><c>ON_DEMAND</c>, <c>PROVISIONED</c> (and, in practice, <c>INFERENCE_PROFILE</c>).</summary>
    public IList<string>? InferenceTypesSupported { get; set; }

    public BedrockModelLifecycle? ModelLifecycle { get; set; }
}

/// <summary><c>{"status": "ACTIVE" | "LEGACY"}</c>.</summary>
internal sealed class BedrockModelLifecycle
{
    public string? Status { get; set; }
}

/// <summary>
/// <c>GET /inference-profiles?maxResults&amp;nextToken&amp;type</c>: <c>{"inferenceProfileSummaries": [...], "nextToken"}</c>
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_ListInferenceProfiles.html).
/// </summary>
internal sealed class BedrockInferenceProfileList
{
    public IList<BedrockInferenceProfileSummary>? InferenceProfileSummaries { get; set; }

    public string? NextToken { get; set; }
}

/// <summary>An InferenceProfileSummary: its id (e.g. <c>us.anthropic.claude-3-5-sonnet-20240620-v1:0</c>), name, status, type and models.</summary>
internal sealed class BedrockInferenceProfileSummary
{
    public string? InferenceProfileId { get; set; }

    public string? InferenceProfileName { get; set; }

    public string? InferenceProfileArn { get; set; }

    public string? Status { get; set; }

    public string? Type { get; set; }

    public IList<BedrockInferenceProfileModel>? Models { get; set; }
}

/// <summary><c>{"modelArn"}</c> of a model an inference profile routes to.</summary>
internal sealed class BedrockInferenceProfileModel
{
    public string? ModelArn { get; set; }
}

/// <summary>
/// The InvokeModel body of Amazon Nova Canvas and Titan Image Generator for a text-to-image task
/// (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html,
/// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html).
/// </summary>
internal sealed class BedrockImageRequest
{
    public string TaskType { get; set; } = "TEXT_IMAGE";

    public BedrockTextToImageParams TextToImageParams { get; set; } = new();

    public BedrockImageGenerationConfig ImageGenerationConfig { get; set; } = new();
}

/// <summary><c>{"text", "negativeText"}</c>.</summary>
internal sealed class BedrockTextToImageParams
{
    public string? Text { get; set; }

    public string? NegativeText { get; set; }
}

/// <summary><c>{"numberOfImages", "width", "height", "quality", "cfgScale", "seed"}</c>.</summary>
internal sealed class BedrockImageGenerationConfig
{
    public int NumberOfImages { get; set; } = 1;

    public int? Width { get; set; }

    public int? Height { get; set; }

    /// <summary><c>standard</c> or <c>premium</c>.</summary>
    public string? Quality { get; set; }

    public double? CfgScale { get; set; }

    public long? Seed { get; set; }
}

/// <summary>
/// The answer: <c>{"images": [base64 PNG, ...], "error"}</c>; <c>error</c> is set when the output filter dropped some or all
/// images ("Some/All of the generated images have been blocked by our content filters.",
/// https://docs.aws.amazon.com/nova/latest/userguide/image-gen-errors.html).
/// </summary>
internal sealed class BedrockImageResponse
{
    public IList<string>? Images { get; set; }

    public string? Error { get; set; }
}

/// <summary>
/// The body of <c>POST /rerank</c> on Agents for Amazon Bedrock Runtime
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_agent-runtime_Rerank.html).
/// </summary>
internal sealed class BedrockRerankRequest
{
    public IList<BedrockRerankQuery> Queries { get; set; } = [];

    public IList<BedrockRerankSource> Sources { get; set; } = [];

    public BedrockRerankConfig RerankingConfiguration { get; set; } = new();

    public string? NextToken { get; set; }
}

/// <summary><c>{"type": "TEXT", "textQuery": {"text"}}</c>.</summary>
internal sealed class BedrockRerankQuery
{
    public string Type { get; set; } = "TEXT";

    public BedrockRerankText TextQuery { get; set; } = new();
}

/// <summary><c>{"text"}</c>.</summary>
internal sealed class BedrockRerankText
{
    public string? Text { get; set; }
}

/// <summary><c>{"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text"}}}</c>.</summary>
internal sealed class BedrockRerankSource
{
    public string Type { get; set; } = "INLINE";

    public BedrockRerankDocument InlineDocumentSource { get; set; } = new();
}

/// <summary>A RerankDocument: <c>{"type": "TEXT", "textDocument": {"text"}}</c>.</summary>
internal sealed class BedrockRerankDocument
{
    public string Type { get; set; } = "TEXT";

    public BedrockRerankText? TextDocument { get; set; }
}

/// <summary><c>{"type": "BEDROCK_RERANKING_MODEL", "bedrockRerankingConfiguration": {...}}</c>.</summary>
internal sealed class BedrockRerankConfig
{
    public string Type { get; set; } = "BEDROCK_RERANKING_MODEL";

    public BedrockRerankingModelSettings BedrockRerankingConfiguration { get; set; } = new();
}

/// <summary><c>{"numberOfResults", "modelConfiguration": {"modelArn", "additionalModelRequestFields"}}</c>.</summary>
internal sealed class BedrockRerankingModelSettings
{
    public int? NumberOfResults { get; set; }

    public BedrockRerankingModelConfiguration ModelConfiguration { get; set; } = new();
}

/// <summary><c>{"modelArn", "additionalModelRequestFields"}</c>.</summary>
internal sealed class BedrockRerankingModelConfiguration
{
    public string? ModelArn { get; set; }

    public JsonElement? AdditionalModelRequestFields { get; set; }
}

/// <summary><c>{"results": [{"index", "relevanceScore", "document"}], "nextToken"}</c>.</summary>
internal sealed class BedrockRerankResponse
{
    public IList<BedrockRerankResult>? Results { get; set; }

    public string? NextToken { get; set; }
}

/// <summary>One result: the source's position in the request (<c>index</c>) and its <c>relevanceScore</c>.</summary>
internal sealed class BedrockRerankResult
{
    public int Index { get; set; }

    public double RelevanceScore { get; set; }
}
