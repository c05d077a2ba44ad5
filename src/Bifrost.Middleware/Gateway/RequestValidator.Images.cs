namespace Bifrost.Middleware.Gateway;

/// <summary>Image requests (issue 17, J).</summary>
internal static partial class RequestValidator
{
    /// <summary>The most images one request may ask for (OpenAI's bound for <c>n</c>).</summary>
    public const int MaxImages = 10;

    /// <summary>The longest image prompt, in characters (OpenAI's bound for gpt-image models).</summary>
    public const int MaxImagePromptChars = 32_000;

    /// <summary>An image generation request: a prompt, <c>n</c> from 1 to <see cref="MaxImages"/>, a known <c>response_format</c>, no stream.</summary>
    public static void Validate(ImageRequest request)
    {
        if (string.IsNullOrEmpty(request.Prompt))
        {
            throw Missing("prompt", "'prompt' is required and must not be empty.");
        }

        if (request.Prompt.Length > MaxImagePromptChars)
        {
            throw Invalid("prompt", $"'prompt' may hold at most {MaxImagePromptChars} characters; it holds {request.Prompt.Length}.");
        }

        Integer("n", request.N, 1, MaxImages);
        if (request.ResponseFormat is not (null or "url" or "b64_json"))
        {
            throw Invalid("response_format", "'response_format' must be \"url\" or \"b64_json\".");
        }

        Integer("partial_images", request.PartialImages, 0, MaxPartialImages);
        Fallbacks(request.Fallbacks);
    }

    /// <summary>The most partial images a streamed generation may ask for (OpenAI's bound for <c>partial_images</c>).</summary>
    public const int MaxPartialImages = 3;

    // Image edits and variations (issue 17, img).

    /// <summary>
    /// An image edit (<paramref name="variation"/> false: one to <see cref="Operations.InferenceOperations.MaxEditImages"/> images and a
    /// prompt) or variation (one image, no prompt or mask): <c>n</c> from 1 to <see cref="MaxImages"/>, a known
    /// <c>response_format</c>, no stream.
    /// </summary>
    public static void Validate(ImageEditRequest request, bool variation)
    {
        if (request.Images.Count == 0)
        {
            throw Missing("image", "'image' is required: the image to " + (variation ? "vary." : "edit."));
        }

        if (variation)
        {
            if (request.Prompt is not null)
            {
                throw BifrostErrors.UnsupportedParameter("Variations take no 'prompt'; use images/edits to edit with a prompt.", "prompt");
            }

            if (request.Mask is not null)
            {
                throw BifrostErrors.UnsupportedParameter("Variations take no 'mask'; use images/edits.", "mask");
            }
        }
        else if (string.IsNullOrEmpty(request.Prompt))
        {
            throw Missing("prompt", "'prompt' is required and must not be empty.");
        }
        else if (request.Prompt.Length > MaxImagePromptChars)
        {
            throw Invalid("prompt", $"'prompt' may hold at most {MaxImagePromptChars} characters; it holds {request.Prompt.Length}.");
        }

        Integer("n", request.N, 1, MaxImages);
        if (request.ResponseFormat is not (null or "url" or "b64_json"))
        {
            throw Invalid("response_format", "'response_format' must be \"url\" or \"b64_json\".");
        }

        if (request.AdditionalProperties is { } extra && extra.TryGetValue("stream", out var stream) && stream.ValueKind == JsonValueKind.String && string.Equals(stream.GetString()?.Trim(), "true", StringComparison.OrdinalIgnoreCase))
        {
            throw BifrostErrors.UnsupportedOperation("Streamed image edits ('stream': true) are not supported by this gateway; omit 'stream'.", "stream");
        }

        Fallbacks(request.Fallbacks);
    }
}
