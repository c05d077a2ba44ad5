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

        if (request.AdditionalProperties is { } extra && extra.TryGetValue("stream", out var stream) && stream.ValueKind == JsonValueKind.True)
        {
            throw BifrostErrors.UnsupportedOperation("Streamed image generation ('stream': true) is not supported by this gateway; omit 'stream'.", "stream");
        }

        Fallbacks(request.Fallbacks);
    }
}
