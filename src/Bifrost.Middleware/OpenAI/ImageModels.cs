namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI image generation request (<c>POST images/generations</c>), plus Bifrost's <c>fallbacks</c>. Fields it does not model (<c>moderation</c>, <c>output_compression</c>, ...) pass through.</summary>
public sealed class ImageRequest : InferenceRequest
{
    /// <summary>Creates an empty request (set <see cref="InferenceRequest.Model"/> and <see cref="Prompt"/>).</summary>
    public ImageRequest()
    {
    }

    /// <summary>The description of the image(s).</summary>
    public string? Prompt { get; set; }

    /// <summary>How many images (1 to 10).</summary>
    public int? N { get; set; }

    /// <summary>The size, e.g. <c>1024x1024</c> or <c>auto</c>.</summary>
    public string? Size { get; set; }

    /// <summary>The quality (<c>standard</c>, <c>hd</c>, <c>low</c>, <c>medium</c>, <c>high</c>, <c>auto</c>).</summary>
    public string? Quality { get; set; }

    /// <summary><c>url</c> or <c>b64_json</c> (dall-e models; gpt-image models always answer <c>b64_json</c>).</summary>
    public string? ResponseFormat { get; set; }

    /// <summary>The style (<c>vivid</c> or <c>natural</c>, dall-e-3).</summary>
    public string? Style { get; set; }

    /// <summary>The background (<c>transparent</c>, <c>opaque</c>, <c>auto</c>; gpt-image models).</summary>
    public string? Background { get; set; }

    /// <summary>The output format (<c>png</c>, <c>jpeg</c>, <c>webp</c>; gpt-image models).</summary>
    public string? OutputFormat { get; set; }

    /// <summary>A stable identifier of the end user.</summary>
    public string? User { get; set; }

    /// <summary>A shallow copy for one provider attempt: the provider's bare model, no fallbacks.</summary>
    internal ImageRequest ForProvider(string model) => CopyForProvider<ImageRequest>(model);
}

/// <summary>An OpenAI images response (generations, edits, variations).</summary>
public sealed class ImageResponse : ExtensibleObject, Operations.IOperationAnswer
{
    /// <summary>Bifrost extension: the job id of an async answer (OpenAI's answer has none).</summary>
    public string? Id { get; set; }

    /// <summary>Unix seconds of creation.</summary>
    public long Created { get; set; }

    /// <summary>Bifrost extension: the model that answered (the gateway fills it when the provider omits it, as OpenAI does).</summary>
    public string? Model { get; set; }

    /// <summary>The images.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<ImageData> Data { get; set; } = [];

    /// <summary>The background used (gpt-image models).</summary>
    public string? Background { get; set; }

    /// <summary>The output format (gpt-image models).</summary>
    public string? OutputFormat { get; set; }

    /// <summary>The quality used (gpt-image models).</summary>
    public string? Quality { get; set; }

    /// <summary>The size (gpt-image models).</summary>
    public string? Size { get; set; }

    /// <summary>Token usage (gpt-image models).</summary>
    public ImageUsage? Usage { get; set; }

    /// <summary>Gateway metadata.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }

    Operations.TokenCounts? Operations.IOperationAnswer.Tokens => Usage is { } usage ? new Operations.TokenCounts(usage.InputTokens, usage.OutputTokens) : null;
}

/// <summary>One image: base64 bytes or a URL.</summary>
public sealed class ImageData : ExtensibleObject
{
    /// <summary>The image bytes as base64 (<c>response_format: b64_json</c>).</summary>
    public string? B64Json { get; set; }

    /// <summary>The image URL (<c>response_format: url</c>).</summary>
    public string? Url { get; set; }

    /// <summary>The prompt the model used, when it rewrote it (dall-e-3).</summary>
    public string? RevisedPrompt { get; set; }
}

/// <summary>Token usage of an image request (gpt-image models); the details objects pass through.</summary>
public sealed class ImageUsage : ExtensibleObject
{
    /// <summary>Input tokens (text and image).</summary>
    public long InputTokens { get; set; }

    /// <summary>Output (image) tokens.</summary>
    public long OutputTokens { get; set; }

    /// <summary>Input plus output tokens.</summary>
    public long TotalTokens { get; set; }
}
