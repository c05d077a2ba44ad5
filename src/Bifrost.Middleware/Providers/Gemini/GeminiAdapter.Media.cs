namespace Bifrost.Middleware.Providers.Gemini;

/// <summary>Image generation (Imagen <c>:predict</c>, Gemini image models), speech (TTS models), transcriptions and translations on the Gemini API (<see cref="GoogleMedia"/>).</summary>
internal sealed partial class GeminiAdapter
{
    public Task<ImageResponse> ImageGenerationAsync(ProviderContext context, ImageRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        return GoogleMedia.GenerateImagesAsync(_http, context, request, method => Endpoint(context, ModelPath(context, method)), time.GetUtcNow().ToUnixTimeSeconds(), logger, cancellationToken);
    }

    public Task<AudioResponse> SpeechAsync(ProviderContext context, SpeechRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        return GoogleMedia.SpeakAsync(_http, context, request, method => Endpoint(context, ModelPath(context, method)), cancellationToken);
    }

    public Task<AudioResponse> TranscriptionAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        return GoogleMedia.TranscribeAsync(_http, context, request, method => Endpoint(context, ModelPath(context, method)), translate: false, cancellationToken);
    }

    public Task<AudioResponse> TranslationAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        return GoogleMedia.TranscribeAsync(_http, context, request, method => Endpoint(context, ModelPath(context, method)), translate: true, cancellationToken);
    }
}
