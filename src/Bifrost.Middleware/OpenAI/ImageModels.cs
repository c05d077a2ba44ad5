namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI image generation request (<c>POST images/generations</c>), plus Bifrost's <c>fallbacks</c>. Fields it does not model (<c>moderation</c>, <c>output_compression</c>, ...) pass through.</summary>
public sealed class ImageRequest : InferenceRequest, Operations.IStreamableRequest
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

    /// <summary>Whether to stream the generation as server-sent events (<c>image_generation.partial_image</c>, <c>image_generation.completed</c>; gpt-image models).</summary>
    public bool? Stream { get; set; }

    /// <summary>How many partial images a stream sends before each final one (0 to 3).</summary>
    public int? PartialImages { get; set; }

    void Operations.IStreamableRequest.ClearStream()
    {
        Stream = null;
        PartialImages = null;
    }

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

/// <summary>
/// An OpenAI image edit or variation request (<c>POST images/edits</c>, <c>images/variations</c>, multipart): the form's
/// fields and its uploaded images. Variations take no <see cref="Prompt"/> or <see cref="Mask"/>. Form fields it does not
/// model (<c>input_fidelity</c>, <c>output_compression</c>, ...) are kept in <see cref="ExtensibleObject.AdditionalProperties"/>
/// (as strings) and forwarded.
/// </summary>
public sealed class ImageEditRequest : InferenceRequest, Operations.IStreamableRequest
{
    /// <summary>Creates an empty request.</summary>
    public ImageEditRequest()
    {
    }

    /// <summary>The description of the edit (edits; required there).</summary>
    public string? Prompt { get; set; }

    /// <summary>How many images (1 to 10).</summary>
    public int? N { get; set; }

    /// <summary>The size, e.g. <c>1024x1024</c> or <c>auto</c>.</summary>
    public string? Size { get; set; }

    /// <summary>The quality (gpt-image models; edits).</summary>
    public string? Quality { get; set; }

    /// <summary><c>url</c> or <c>b64_json</c> (dall-e models).</summary>
    public string? ResponseFormat { get; set; }

    /// <summary>The background (<c>transparent</c>, <c>opaque</c>, <c>auto</c>; gpt-image models; edits).</summary>
    public string? Background { get; set; }

    /// <summary>The output format (<c>png</c>, <c>jpeg</c>, <c>webp</c>; gpt-image models; edits).</summary>
    public string? OutputFormat { get; set; }

    /// <summary>A stable identifier of the end user.</summary>
    public string? User { get; set; }

    /// <summary>The images to edit (the form's <c>image</c> or <c>image[]</c> parts; one for variations).</summary>
    public IList<ImageFile> Images { get; set; } = [];

    /// <summary>The mask (edits): a PNG whose transparent areas say where to edit.</summary>
    public ImageFile? Mask { get; set; }

    /// <summary>Whether to stream the edit as server-sent events (<c>image_edit.partial_image</c>, <c>image_edit.completed</c>; edits with gpt-image models; the form's <c>stream</c> field).</summary>
    public bool? Stream { get; set; }

    /// <summary>How many partial images a streamed edit sends before each final one (0 to 3; the form's <c>partial_images</c> field).</summary>
    public int? PartialImages { get; set; }

    void Operations.IStreamableRequest.ClearStream()
    {
        Stream = null;
        PartialImages = null;
    }

    /// <summary>A shallow copy for one provider attempt: the provider's bare model, no fallbacks, every upload read from its start.</summary>
    internal ImageEditRequest ForProvider(string model)
    {
        var copy = CopyForProvider<ImageEditRequest>(model);
        copy.Images = [.. Images];
        return copy;
    }
}

/// <summary>
/// One uploaded image of an edit or variation: its name, media type and bytes. On the synchronous routes the bytes are the
/// gateway's spooled copy of the upload (<see cref="Content"/>); an async job keeps them in its stored request as base64
/// (<see cref="Data"/>).
/// </summary>
public sealed class ImageFile
{
    /// <summary>Creates an empty image (for deserialization).</summary>
    public ImageFile()
    {
    }

    /// <summary>Creates an image from a readable, seekable stream the caller owns.</summary>
    /// <param name="content">The bytes (read from its start by each attempt; not disposed by the gateway).</param>
    /// <param name="filename">The file name sent upstream.</param>
    /// <param name="contentType">The media type, e.g. <c>image/png</c>.</param>
    public ImageFile(Stream content, string filename, string? contentType)
    {
        Content = content ?? throw new ArgumentNullException(nameof(content));
        Filename = filename;
        ContentType = contentType;
        Length = content.CanSeek ? content.Length : 0;
    }

    /// <summary>The file name.</summary>
    public string? Filename { get; set; }

    /// <summary>The media type the form gave, if any.</summary>
    public string? ContentType { get; set; }

    /// <summary>The size in bytes.</summary>
    public long Length { get; set; }

    /// <summary>The bytes as base64: set only in an async job's stored request.</summary>
    public byte[]? Data { get; set; }

    /// <summary>
    /// OpenAI's JSON image reference (<c>images/edits</c> with a JSON body, e.g. a <c>/v1/images/edits</c> batch line): a fully
    /// qualified URL or a base64 <c>data:</c> URL of the image, sent to the provider as it is. An image has bytes
    /// (<see cref="Content"/> or <see cref="Data"/>), an <see cref="ImageUrl"/> or a <see cref="FileId"/>, one of them.
    /// </summary>
    public string? ImageUrl { get; set; }

    /// <summary>OpenAI's JSON image reference by file: the id of an image in the provider's Files API, sent to the provider as it is.</summary>
    public string? FileId { get; set; }

    /// <summary>Whether the image is a reference (<see cref="ImageUrl"/> or <see cref="FileId"/>) rather than bytes.</summary>
    internal bool IsReference => ImageUrl is not null || FileId is not null;

    /// <summary>The bytes as a readable, seekable stream owned by the gateway; adapters read it (through <see cref="OpenRead"/>) and must not dispose it. Not part of the JSON form.</summary>
    [JsonIgnore]
    public Stream? Content { get; set; }

    /// <summary>The bytes from their start: <see cref="Content"/> rewound, or a stream over <see cref="Data"/>.</summary>
    /// <returns>A stream the caller may read (disposing it does not dispose <see cref="Content"/>'s owner's copy when it is <see cref="Data"/>).</returns>
    public Stream OpenRead()
    {
        if (Content is { } content)
        {
            if (content.CanSeek)
            {
                content.Position = 0;
            }

            return content;
        }

        return new MemoryStream(Data ?? [], writable: false);
    }

    /// <summary>Reads the bytes into <see cref="Data"/> (an async job keeps them), up to <paramref name="maxBytes"/> (else 413).</summary>
    internal async Task<long> BufferAsync(long maxBytes, CancellationToken cancellationToken)
    {
        if (Data is not null || (Content is null && IsReference))
        {
            return Data?.Length ?? 0; // stored bytes, or a reference the provider resolves
        }

        using var memory = new MemoryStream();
        await Files.LimitedCopy.CopyAsync(OpenRead(), memory, maxBytes, cancellationToken).ConfigureAwait(false);
        Data = memory.ToArray();
        return Data.Length;
    }
}

/// <summary>
/// One event of a streamed image generation or edit (OpenAI's image streaming events,
/// https://platform.openai.com/docs/api-reference/images-streaming and
/// https://developers.openai.com/api/reference/resources/images/edit-streaming-events): <c>image_generation.partial_image</c>
/// / <c>image_edit.partial_image</c> (a partial image, with <see cref="PartialImageIndex"/>) or
/// <c>image_generation.completed</c> / <c>image_edit.completed</c> (the final image, with <see cref="Usage"/>).
/// Fields it does not model pass through.
/// </summary>
public sealed class ImageStreamEvent : ExtensibleObject, Operations.IOperationAnswer
{
    /// <summary>The event type: <c>image_generation.partial_image</c>, <c>image_generation.completed</c>, <c>image_edit.partial_image</c> or <c>image_edit.completed</c>.</summary>
    public string? Type { get; set; }

    /// <summary>The (partial or final) image as base64.</summary>
    public string? B64Json { get; set; }

    /// <summary>Unix seconds of the event.</summary>
    public long? CreatedAt { get; set; }

    /// <summary>The size of the requested image.</summary>
    public string? Size { get; set; }

    /// <summary>The quality of the requested image.</summary>
    public string? Quality { get; set; }

    /// <summary>The background of the requested image.</summary>
    public string? Background { get; set; }

    /// <summary>The output format of the requested image.</summary>
    public string? OutputFormat { get; set; }

    /// <summary>The 0-based index of a partial image.</summary>
    public int? PartialImageIndex { get; set; }

    /// <summary>Token usage (the completed event).</summary>
    public ImageUsage? Usage { get; set; }

    /// <summary>Gateway metadata.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }

    string? Operations.IOperationAnswer.Id => null;

    Operations.TokenCounts? Operations.IOperationAnswer.Tokens => Usage is { } usage ? new Operations.TokenCounts(usage.InputTokens, usage.OutputTokens) : null;
}
