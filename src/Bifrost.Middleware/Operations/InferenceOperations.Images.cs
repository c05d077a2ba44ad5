using Bifrost.Middleware.Gateway;

namespace Bifrost.Middleware.Operations;

/// <summary>Image generation (issue 17, J), edits and variations.</summary>
internal static partial class InferenceOperations
{
    public static readonly InferenceOperation<ImageRequest, ImageResponse, ImageStreamEvent> ImageGeneration = new()
    {
        Name = "image_generation",
        StreamName = "image_generation_stream",
        BatchLineUrl = "/v1/images/generations", // OpenAI's batch API takes image generation lines (its endpoint list names /v1/images/generations)
        MetricName = "images",
        Summary = "image generation",
        Paths = ["images/generations"],
        RequestInfo = BifrostJson.Context.ImageRequest,
        ResponseInfo = BifrostJson.Context.ImageResponse,
        Validate = RequestValidator.Validate,
        EstimateInputTokens = static (r, _) => Tokenization.TokenEstimate.Text(r.Prompt is { } prompt ? TextInput.FromString(prompt) : null),
        Call = static (call, r, ct) => call.Adapter.ImageGenerationAsync(call.Context, r.ForProvider(call.Target.Model), ct),
        ClientCall = static (client, r, ct) => client.ImageGenerationAsync(r, ct),

        // Streamed generation (issue 17, img): OpenAI's image_generation.partial_image / image_generation.completed events.
        StreamShape = StreamShape.TypedEvents,
        ChunkInfo = BifrostJson.Context.ImageStreamEvent,
        EventTypeOf = static e => e.Type,
        CallStream = static (call, r, ct) => call.Adapter.StreamImageGenerationAsync(call.Context, r.ForProvider(call.Target.Model), ct),
        ClientStream = static (client, r, ct) => client.ImageGenerationStreamAsync(r, ct),
        Complete = static (_, response, target) =>
        {
            response.Model ??= target.Model; // OpenAI's answer names no model; Bifrost's does
            return response;
        },
        Pending = static (job, _, model) => new ImageResponse
        {
            Id = job.Id,
            Created = job.CreatedAt.ToUnixTimeSeconds(),
            Model = model,
            ExtraFields = new BifrostExtraFields { RequestType = "image_generation", ModelRequested = model },
        },
    };

    // Image edits and variations (issue 17, img): multipart uploads (Endpoints/ImageUpload.cs), answered like generations.

    /// <summary>Most images one edit may take (OpenAI's bound for gpt-image models).</summary>
    public const int MaxEditImages = 16;

    /// <summary>Largest upload of an edit or variation, all its images and mask together (OpenAI's per-image bound for gpt-image models; <c>Files:MaxUploadBytes</c> when that is lower).</summary>
    public const long MaxImageUploadBytes = 50L * 1024 * 1024;

    /// <summary>Largest upload an async edit or variation keeps in its stored job (its images travel in the job's payload).</summary>
    public const long MaxAsyncImageUploadBytes = 16L * 1024 * 1024;

    /// <summary>
    /// Image edits. Also a batch line (<c>/v1/images/edits</c>: OpenAI's batch endpoint list names it,
    /// https://platform.openai.com/docs/api-reference/batch/create): the line's body is OpenAI's JSON edit body, its images
    /// references (<c>images: [{"image_url": ...} | {"file_id": ...}]</c>, <c>mask</c> alike) that the provider resolves.
    /// </summary>
    public static readonly InferenceOperation<ImageEditRequest, ImageResponse, ImageStreamEvent> ImageEdit = ImageUploadOperation(
        "image_edit", "image edit", "images/edits", Endpoints.ImageUpload.ReadEditAsync, static (call, r, ct) => call.Adapter.ImageEditAsync(call.Context, r.ForProvider(call.Target.Model), ct), static (client, r, ct) => client.ImageEditAsync(r, ct), variation: false);

    public static readonly InferenceOperation<ImageEditRequest, ImageResponse, ImageStreamEvent> ImageVariation = ImageUploadOperation(
        "image_variation", "image variation", "images/variations", Endpoints.ImageUpload.ReadVariationAsync, static (call, r, ct) => call.Adapter.ImageVariationAsync(call.Context, r.ForProvider(call.Target.Model), ct), static (client, r, ct) => client.ImageVariationAsync(r, ct), variation: true);

    private static InferenceOperation<ImageEditRequest, ImageResponse, ImageStreamEvent> ImageUploadOperation(
        string name, string summary, string path, Func<HttpContext, Task<ImageEditRequest>> read, Func<ProviderCall, ImageEditRequest, CancellationToken, Task<ImageResponse>> call, Func<IBifrostClient, ImageEditRequest, CancellationToken, Task<ImageResponse>> clientCall, bool variation) => new()
        {
            Name = name,
            BatchLineUrl = variation ? null : "/v1/images/edits",
            MetricName = "images",
            Summary = summary,
            Paths = [path],
            RequestBody = RouteBody.Upload,
            ReadRequest = read,
            UploadForm = typeof(ImageUploadForm),
            RequestInfo = BifrostJson.Context.ImageEditRequest,
            ResponseInfo = BifrostJson.Context.ImageResponse,
            Validate = r => RequestValidator.Validate(r, variation),
            EstimateInputTokens = static (r, _) => Tokenization.TokenEstimate.Text(r.Prompt is { } prompt ? TextInput.FromString(prompt) : null),
            Call = call,
            ClientCall = clientCall,

            // Streamed edits (issue 17, media): OpenAI's image_edit.partial_image / image_edit.completed events
            // (https://developers.openai.com/api/reference/resources/images/edit-streaming-events). Variations do not stream.
            StreamName = variation ? null : "image_edit_stream",
            StreamShape = variation ? StreamShape.None : StreamShape.TypedEvents,
            ChunkInfo = variation ? null : BifrostJson.Context.ImageStreamEvent,
            EventTypeOf = variation ? null : static e => e.Type,
            CallStream = variation ? null : static (call, r, ct) => call.Adapter.StreamImageEditAsync(call.Context, r.ForProvider(call.Target.Model), ct),
            ClientStream = variation ? null : static (client, r, ct) => client.ImageEditStreamAsync(r, ct),
            BeforeSubmit = static (r, ct) => BufferUploadsAsync(r, ct),
            Complete = static (_, response, target) =>
            {
                response.Model ??= target.Model;
                return response;
            },
            Pending = (job, _, model) => new ImageResponse
            {
                Id = job.Id,
                Created = job.CreatedAt.ToUnixTimeSeconds(),
                Model = model,
                ExtraFields = new BifrostExtraFields { RequestType = name, ModelRequested = model },
            },
        };

    /// <summary>An async edit or variation keeps its images in the stored request, up to <see cref="MaxAsyncImageUploadBytes"/> in all (413 past it).</summary>
    private static async Task BufferUploadsAsync(ImageEditRequest request, CancellationToken cancellationToken)
    {
        long total = 0;
        foreach (var file in request.Mask is { } mask ? [.. request.Images, mask] : request.Images)
        {
            try
            {
                total += await file.BufferAsync(MaxAsyncImageUploadBytes - total, cancellationToken).ConfigureAwait(false);
            }
            catch (BifrostException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                throw BifrostErrors.TooLarge("file_too_large", $"An async image request keeps its images with the job: at most {MaxAsyncImageUploadBytes} bytes in all. Send larger uploads synchronously.", "image");
            }
        }
    }
}
