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
    /// <c>response_format</c>; an edit may stream (<c>partial_images</c> from 0 to <see cref="MaxPartialImages"/>), a variation not.
    /// </summary>
    public static void Validate(ImageEditRequest request, bool variation)
    {
        if (request.Images.Count == 0)
        {
            throw Missing("image", "'image' is required: the image to " + (variation ? "vary." : "edit."));
        }

        ImageSources(request, variation);
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

        if (variation && request.Stream == true)
        {
            throw BifrostErrors.UnsupportedParameter("Variations do not stream; omit 'stream' (images/edits and images/generations stream).", "stream");
        }

        if (variation && request.PartialImages is not null)
        {
            throw BifrostErrors.UnsupportedParameter("Variations take no 'partial_images'.", "partial_images");
        }

        Integer("partial_images", request.PartialImages, 0, MaxPartialImages);
        Fallbacks(request.Fallbacks);
    }

    /// <summary>
    /// Each image (and the mask) is bytes (an upload) or one OpenAI JSON reference (<c>image_url</c>: an http(s) or
    /// <c>data:image/...</c> URL; or <c>file_id</c>), never both, and one request does not mix the two kinds (the provider gets
    /// either the multipart form or the JSON body). Variations take uploads only; an edit at most
    /// <see cref="Operations.InferenceOperations.MaxEditImages"/> images.
    /// </summary>
    private static void ImageSources(ImageEditRequest request, bool variation)
    {
        if (request.Images.Count > Operations.InferenceOperations.MaxEditImages)
        {
            throw Invalid("images", $"At most {Operations.InferenceOperations.MaxEditImages} images may be edited at once; the request has {request.Images.Count}.");
        }

        bool? references = null;
        foreach (var (image, param) in request.Images.Select(static i => ((ImageFile?)i, "images")).Append((request.Mask, "mask")))
        {
            if (image is null)
            {
                if (param == "images")
                {
                    throw Invalid(param, "'images' must not hold null.");
                }

                continue;
            }

            var sources = (image.Content is not null || image.Data is not null ? 1 : 0) + (image.ImageUrl is not null ? 1 : 0) + (image.FileId is not null ? 1 : 0);
            if (sources != 1)
            {
                throw Invalid(param, $"Each image reference in '{param}' takes exactly one of 'image_url' or 'file_id'.");
            }

            if (image.ImageUrl is { } url && !(url.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("data:image/", StringComparison.OrdinalIgnoreCase)))
            {
                throw Invalid(param, $"'image_url' in '{param}' must be an http(s) URL or a base64 'data:image/...' URL.");
            }

            if (image.FileId is { Length: 0 })
            {
                throw Invalid(param, $"'file_id' in '{param}' must not be empty.");
            }

            if (references is { } kind && kind != image.IsReference)
            {
                throw Invalid(param, "One request either uploads its images (multipart) or references them (JSON 'image_url' / 'file_id'), not both.");
            }

            references = image.IsReference;
        }

        if (variation && references == true)
        {
            throw BifrostErrors.UnsupportedParameter("Variations take an uploaded image (multipart), not an image reference.", "image");
        }
    }
}
