namespace Bifrost.Middleware.Providers.Gemini;

// The media parts of Google's wire format that GoogleMedia uses, on the Gemini API and on Vertex AI alike:
// speechConfig (https://ai.google.dev/gemini-api/docs/speech-generation: responseModalities ["AUDIO"] and
// speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName; the answer's inlineData is 24 kHz 16-bit mono PCM,
// mimeType "audio/L16;codec=pcm;rate=24000"), imageConfig (https://ai.google.dev/gemini-api/docs/image-generation:
// generationConfig.imageConfig.aspectRatio) and Imagen's :predict (https://ai.google.dev/gemini-api/docs/imagen,
// https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api: instances[{prompt}],
// parameters{sampleCount, aspectRatio} → predictions[{bytesBase64Encoded, mimeType}], a filtered image as
// {raiFilteredReason}).

internal sealed class GeminiSpeechConfig
{
    public GeminiVoiceConfig? VoiceConfig { get; set; }
}

internal sealed class GeminiVoiceConfig
{
    public GeminiPrebuiltVoiceConfig? PrebuiltVoiceConfig { get; set; }
}

internal sealed class GeminiPrebuiltVoiceConfig
{
    public string? VoiceName { get; set; }
}

internal sealed class GeminiImageConfig
{
    public string? AspectRatio { get; set; }
}

/// <summary>The body of <c>models/{imagen-model}:predict</c>.</summary>
internal sealed class ImagenPredictRequest
{
    public IList<ImagenInstance> Instances { get; set; } = [];

    public ImagenParameters? Parameters { get; set; }
}

internal sealed class ImagenInstance
{
    public string? Prompt { get; set; }
}

internal sealed class ImagenParameters
{
    public int? SampleCount { get; set; }

    public string? AspectRatio { get; set; }
}

internal sealed class ImagenPredictResponse
{
    public IList<ImagenPrediction>? Predictions { get; set; }
}

internal sealed class ImagenPrediction
{
    public string? BytesBase64Encoded { get; set; }

    public string? MimeType { get; set; }

    /// <summary>The prompt Imagen used, when it enhanced it.</summary>
    public string? Prompt { get; set; }

    /// <summary>Why the image was filtered (then it has no bytes).</summary>
    public string? RaiFilteredReason { get; set; }
}
