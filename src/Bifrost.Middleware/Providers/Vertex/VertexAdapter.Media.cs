using Bifrost.Middleware.Providers.Gemini;

namespace Bifrost.Middleware.Providers.Vertex;

/// <summary>
/// Image generation (Imagen <c>:predict</c>, Gemini image models), speech (Gemini TTS models), transcriptions and translations on Vertex
/// AI's publisher <c>google</c> (<see cref="GoogleMedia"/>, the same bodies as the Gemini API). Claude models have none of them.
/// </summary>
internal sealed partial class VertexAdapter
{
    public Task<ImageResponse> ImageGenerationAsync(ProviderContext context, ImageRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        RequireGoogleModel(context, "image generation");
        return GoogleMedia.GenerateImagesAsync(_google, context, request, method => Endpoint(context, method), time.GetUtcNow().ToUnixTimeSeconds(), logger, cancellationToken);
    }

    public Task<AudioResponse> SpeechAsync(ProviderContext context, SpeechRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        RequireGoogleModel(context, "speech");
        return GoogleMedia.SpeakAsync(_google, context, request, method => Endpoint(context, method), cancellationToken);
    }

    public Task<AudioResponse> TranscriptionAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        RequireGoogleModel(context, "transcriptions");
        return GoogleMedia.TranscribeAsync(_google, context, request, method => Endpoint(context, method), translate: false, cancellationToken);
    }

    public Task<AudioResponse> TranslationAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        RequireGoogleModel(context, "translations");
        return GoogleMedia.TranscribeAsync(_google, context, request, method => Endpoint(context, method), translate: true, cancellationToken);
    }

    private static void RequireGoogleModel(ProviderContext context, string operation)
    {
        if (IsClaude(context.Model))
        {
            throw ProviderErrors.Unsupported(context, operation + " with a Claude model");
        }
    }
}
