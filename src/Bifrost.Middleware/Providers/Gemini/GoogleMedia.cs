using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Gemini;

/// <summary>
/// Image generation, speech and transcriptions on Google's models, shared by the <c>gemini</c> and <c>vertex</c> adapters
/// (they differ only in the URL of a model method and the auth, which the caller supplies):
/// <list type="bullet">
/// <item>images: a model whose name starts with <c>imagen-</c> → <c>:predict</c> (<c>instances[{prompt}]</c>,
/// <c>parameters{sampleCount = n, aspectRatio}</c>); any other model (Gemini image models such as
/// <c>gemini-2.5-flash-image</c>) → <c>:generateContent</c> with <c>responseModalities ["IMAGE"]</c> and
/// <c>imageConfig.aspectRatio</c>, once per image asked for. <c>size</c> maps to the aspect ratio only when its
/// width:height is exactly one the model family takes (else 400); Google answers bytes, so <c>response_format: url</c>
/// is a 400.</item>
/// <item>speech: <c>:generateContent</c> with <c>responseModalities ["AUDIO"]</c> and the OpenAI <c>voice</c> as
/// <c>prebuiltVoiceConfig.voiceName</c> (passed as it is: Gemini's voices are named <c>Kore</c>, <c>Puck</c>, ...; an
/// unknown name is Google's 400). The 24 kHz 16-bit mono PCM answered is relayed raw for <c>pcm</c> and in a WAV file for
/// <c>wav</c> (also the default); other formats are a 400 (no transcoding).</item>
/// <item>transcriptions: <c>:generateContent</c> with the audio as <c>inlineData</c> (the whole request at most
/// <see cref="MaxInlineRequestBytes"/>, else 413) and a transcription prompt; <c>json</c> or <c>text</c>. Translations are
/// the same call with a prompt asking for the English translation.</item>
/// </list>
/// </summary>
internal static partial class GoogleMedia
{
    /// <summary>The most images one request may ask Google for (Imagen's documented maximum per request).</summary>
    internal const int MaxImages = 4;

    /// <summary>The largest generateContent request carrying inline data (Gemini's documented 20 MB).</summary>
    internal const long MaxInlineRequestBytes = 20L * 1024 * 1024;

    /// <summary>Bytes of the request besides the base64 audio (prompt, field names), reserved under <see cref="MaxInlineRequestBytes"/>.</summary>
    internal const int InlineOverheadBytes = 16 * 1024;

    /// <summary>Gemini TTS's PCM rate when the mime type names none.</summary>
    internal const int DefaultSampleRate = 24000;

    /// <summary>The aspect ratios of Imagen models (https://ai.google.dev/gemini-api/docs/imagen).</summary>
    internal static readonly string[] ImagenRatios = ["1:1", "3:4", "4:3", "9:16", "16:9"];

    /// <summary>The aspect ratios of Gemini image models (https://ai.google.dev/gemini-api/docs/image-generation).</summary>
    internal static readonly string[] GeminiImageRatios = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"];

    /// <summary>The speech formats Google's PCM can be answered in without transcoding.</summary>
    internal static readonly string[] SpeechFormats = ["wav", "pcm"];

    /// <summary>The audio types of the Gemini API (https://ai.google.dev/gemini-api/docs/audio), by file extension.</summary>
    private static readonly Dictionary<string, string> AudioTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".wav"] = "audio/wav",
        [".mp3"] = "audio/mp3",
        [".aiff"] = "audio/aiff",
        [".aif"] = "audio/aiff",
        [".aac"] = "audio/aac",
        [".ogg"] = "audio/ogg",
        [".oga"] = "audio/ogg",
        [".flac"] = "audio/flac",
    };

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Whether the model is an Imagen model (served by <c>:predict</c>).</summary>
    internal static bool IsImagen(string model) => model.StartsWith("imagen-", StringComparison.OrdinalIgnoreCase);

    /// <summary>Generates the images: Imagen through <c>:predict</c>, other models through <c>:generateContent</c>.</summary>
    /// <param name="http">The adapter's upstream client.</param>
    /// <param name="context">The attempt.</param>
    /// <param name="request">The request.</param>
    /// <param name="endpoint">The URL of a method of the context's model (<c>predict</c>, <c>generateContent</c>).</param>
    /// <param name="created">Unix seconds for <c>created</c>.</param>
    /// <param name="logger">The adapter's logger.</param>
    /// <param name="cancellationToken">Cancels the upstream calls.</param>
    public static async Task<ImageResponse> GenerateImagesAsync(UpstreamClient http, ProviderContext context, ImageRequest request, Func<string, Uri> endpoint, long created, ILogger logger, CancellationToken cancellationToken)
    {
        var imagen = IsImagen(context.Model);
        var n = request.N ?? 1;
        if (n > MaxImages)
        {
            throw BifrostErrors.InvalidValue($"'n' may be at most {MaxImages} on provider '{context.ProviderName}' (Google's models answer at most {MaxImages} images per request).", "n");
        }

        if (request.ResponseFormat == "url")
        {
            throw BifrostErrors.UnsupportedParameter($"Provider '{context.ProviderName}' answers image bytes only: use 'response_format': 'b64_json' (the default).", "response_format");
        }

        var ratio = AspectRatio(request.Size, imagen ? ImagenRatios : GeminiImageRatios, imagen ? "Imagen" : "Gemini image");
        var response = new ImageResponse { Created = created, Model = context.Model };
        if (imagen)
        {
            var body = new ImagenPredictRequest
            {
                Instances = [new ImagenInstance { Prompt = request.Prompt }],
                Parameters = new ImagenParameters { SampleCount = n, AspectRatio = ratio },
            };
            var message = http.CreateRequest(context, HttpMethod.Post, endpoint("predict"), stream: false);
            message.Content = UpstreamClient.Json(body, GeminiJsonContext.Wire.ImagenPredictRequest);
            var answer = await http.SendForJsonAsync(context, message, GeminiJsonContext.Wire.ImagenPredictResponse, cancellationToken).ConfigureAwait(false);
            string? filtered = null;
            foreach (var prediction in answer.Predictions ?? [])
            {
                if (string.IsNullOrEmpty(prediction.BytesBase64Encoded))
                {
                    filtered ??= prediction.RaiFilteredReason ?? "no image bytes";
                    continue;
                }

                response.Data.Add(new ImageData { B64Json = Base64(context, prediction.BytesBase64Encoded), RevisedPrompt = prediction.Prompt });
            }

            if (response.Data.Count < n)
            {
                Log.ImagesFiltered(logger, context.ProviderName, n - response.Data.Count, n, filtered ?? "no prediction");
            }

            if (response.Data.Count == 0)
            {
                throw ContentPolicy(context, filtered ?? "Imagen answered no image (all were filtered)");
            }

            return response;
        }

        long input = 0, output = 0;
        for (var i = 0; i < n; i++)
        {
            var body = new GeminiRequest
            {
                Contents = [new GeminiContent { Role = "user", Parts = [new GeminiPart { Text = request.Prompt }] }],
                GenerationConfig = new GeminiGenerationConfig { ResponseModalities = ["IMAGE"], ImageConfig = ratio is null ? null : new GeminiImageConfig { AspectRatio = ratio } },
            };
            var answer = await GenerateAsync(http, context, endpoint, body, cancellationToken).ConfigureAwait(false);
            var image = Parts(answer).FirstOrDefault(static p => p.InlineData is { Data.Length: > 0, MimeType: { } type } && type.StartsWith("image/", StringComparison.OrdinalIgnoreCase))
                ?? throw NoOutput(context, answer, "an image");
            response.Data.Add(new ImageData { B64Json = Base64(context, image.InlineData!.Data!) });
            input += answer.UsageMetadata?.PromptTokenCount ?? 0;
            output += answer.UsageMetadata?.CandidatesTokenCount ?? 0;
        }

        response.Usage = new ImageUsage { InputTokens = input, OutputTokens = output, TotalTokens = input + output };
        return response;
    }

    /// <summary>Speaks <c>input</c> with a TTS model: the PCM answered, raw (<c>pcm</c>) or as a WAV file (<c>wav</c>, the default).</summary>
    /// <param name="http">The adapter's upstream client.</param>
    /// <param name="context">The attempt.</param>
    /// <param name="request">The request.</param>
    /// <param name="endpoint">The URL of a method of the context's model.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    public static async Task<AudioResponse> SpeakAsync(UpstreamClient http, ProviderContext context, SpeechRequest request, Func<string, Uri> endpoint, CancellationToken cancellationToken)
    {
        var format = request.ResponseFormat ?? "wav";
        if (Array.IndexOf(SpeechFormats, format) < 0)
        {
            throw BifrostErrors.UnsupportedParameter($"Provider '{context.ProviderName}' speaks 24 kHz 16-bit PCM: 'response_format' must be wav (the default) or pcm; '{format}' would need transcoding.", "response_format");
        }

        if (request.StreamFormat == "sse")
        {
            throw BifrostErrors.UnsupportedParameter($"Provider '{context.ProviderName}' does not stream speech: omit 'stream_format' or use 'audio'.", "stream_format");
        }

        if (request.Speed is { } speed && speed != 1.0)
        {
            throw BifrostErrors.UnsupportedParameter($"Provider '{context.ProviderName}' has no speed setting: omit 'speed' (or ask for the pace in 'instructions').", "speed");
        }

        // Gemini TTS is steered in natural language before the text ("Say cheerfully: ..."), which is what instructions are.
        var text = string.IsNullOrWhiteSpace(request.Instructions) ? request.Input : request.Instructions.Trim() + ": " + request.Input;
        var body = new GeminiRequest
        {
            Contents = [new GeminiContent { Role = "user", Parts = [new GeminiPart { Text = text }] }],
            GenerationConfig = new GeminiGenerationConfig
            {
                ResponseModalities = ["AUDIO"],
                SpeechConfig = new GeminiSpeechConfig { VoiceConfig = new GeminiVoiceConfig { PrebuiltVoiceConfig = new GeminiPrebuiltVoiceConfig { VoiceName = request.Voice } } },
            },
        };
        var answer = await GenerateAsync(http, context, endpoint, body, cancellationToken).ConfigureAwait(false);
        using var pcm = new MemoryStream();
        var rate = 0;
        foreach (var part in Parts(answer))
        {
            if (part.InlineData is not { Data.Length: > 0, MimeType: { } type } blob)
            {
                continue;
            }

            var partRate = PcmRate(type) ?? throw UpstreamHttp.InvalidResponse(context, $"audio of type '{type}', not the PCM Gemini's TTS models answer");
            if (rate != 0 && partRate != rate)
            {
                throw UpstreamHttp.InvalidResponse(context, "audio parts of different sample rates");
            }

            rate = partRate;
            var bytes = Bytes(context, blob.Data);
            pcm.Write(bytes);
        }

        if (rate == 0)
        {
            throw NoOutput(context, answer, "audio");
        }

        var data = pcm.ToArray();
        return format == "pcm"
            ? new AudioResponse(new MemoryStream(data, writable: false), "audio/pcm")
            : new AudioResponse(new MemoryStream(Wav(data, rate), writable: false), "audio/wav");
    }

    /// <summary>
    /// Transcribes the upload with a Gemini model (or, for <paramref name="translate"/>, renders its speech in English):
    /// <c>{"text": ..., "usage": ...}</c> (<c>json</c>, the default) or the text (<c>text</c>).
    /// </summary>
    /// <param name="http">The adapter's upstream client.</param>
    /// <param name="context">The attempt.</param>
    /// <param name="request">The request (its file is read from the start).</param>
    /// <param name="endpoint">The URL of a method of the context's model.</param>
    /// <param name="translate">Whether the answer is an English translation (<c>audio/translations</c>) rather than a transcript.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    public static async Task<AudioResponse> TranscribeAsync(UpstreamClient http, ProviderContext context, TranscriptionRequest request, Func<string, Uri> endpoint, bool translate, CancellationToken cancellationToken)
    {
        var file = request.File ?? throw BifrostErrors.MissingParameter("'file' is required.", "file");
        var format = request.ResponseFormat ?? "json";
        if (format is not ("json" or "text"))
        {
            throw BifrostErrors.UnsupportedParameter($"Provider '{context.ProviderName}' answers transcriptions as json or text; '{format}' (timestamps, subtitles) is not available.", "response_format");
        }

        if (request.Stream == true)
        {
            throw BifrostErrors.UnsupportedParameter($"Provider '{context.ProviderName}' does not stream transcriptions: omit 'stream'.", "stream");
        }

        if (request.TimestampGranularities is { Count: > 0 })
        {
            throw BifrostErrors.UnsupportedParameter($"Provider '{context.ProviderName}' gives no timestamps: omit 'timestamp_granularities[]'.", "timestamp_granularities[]");
        }

        var type = AudioType(request) ?? throw BifrostException.Gateway(
            StatusCodes.Status415UnsupportedMediaType,
            BifrostErrors.InvalidRequestType,
            "unsupported_media_type",
            $"Provider '{context.ProviderName}' takes audio as {string.Join(", ", AudioTypes.Values.Distinct(StringComparer.Ordinal))}: give the file one of their extensions or content types.",
            "file");
        var length = file.CanSeek ? file.Length - file.Position : request.FileBytes;
        var limit = MaxInlineRequestBytes - InlineOverheadBytes - Encoding.UTF8.GetByteCount(request.Prompt ?? string.Empty);
        if ((length + 2) / 3 * 4 > limit)
        {
            throw BifrostErrors.TooLarge("file_too_large", $"Provider '{context.ProviderName}' takes audio inline, in a request of at most {MaxInlineRequestBytes} bytes: this file ({length} bytes, {(length + 2) / 3 * 4} in base64) is too large.", "file");
        }

        var audio = new byte[length];
        await file.ReadExactlyAsync(audio, cancellationToken).ConfigureAwait(false);
        var prompt = new StringBuilder(translate
            ? "Translate the speech in this audio into English. Answer with the English translation only, without timestamps, labels or comments."
            : "Generate a verbatim transcript of the speech in this audio. Answer with the transcript text only, without timestamps, labels or comments.");
        if (!translate && !string.IsNullOrWhiteSpace(request.Language))
        {
            prompt.Append(CultureInfo.InvariantCulture, $" The speech is in the language with ISO-639-1 code '{request.Language.Trim()}'.");
        }

        if (!string.IsNullOrWhiteSpace(request.Prompt))
        {
            prompt.Append(" Context for spelling and style (do not transcribe it): ").Append(request.Prompt);
        }

        var body = new GeminiRequest
        {
            Contents = [new GeminiContent { Role = "user", Parts = [new GeminiPart { Text = prompt.ToString() }, new GeminiPart { InlineData = new GeminiBlob { MimeType = type, Data = Convert.ToBase64String(audio) } }] }],
            GenerationConfig = request.Temperature is { } temperature ? new GeminiGenerationConfig { Temperature = temperature } : null,
        };
        var answer = await GenerateAsync(http, context, endpoint, body, cancellationToken).ConfigureAwait(false);
        if (answer.Candidates is not { Count: > 0 })
        {
            throw NoOutput(context, answer, translate ? "a translation" : "a transcript");
        }

        var text = string.Concat(Parts(answer).Where(static p => p.Thought != true && p.Text is not null).Select(static p => p.Text)).Trim();
        if (format == "text")
        {
            return new AudioResponse(new MemoryStream(Encoding.UTF8.GetBytes(text), writable: false), "text/plain; charset=utf-8");
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("text", text);
            if (answer.UsageMetadata is { } usage)
            {
                // as OpenAI's token-billed transcription models report it
                writer.WriteStartObject("usage");
                writer.WriteString("type", "tokens");
                writer.WriteNumber("input_tokens", usage.PromptTokenCount ?? 0);
                writer.WriteNumber("output_tokens", (usage.CandidatesTokenCount ?? 0) + (usage.ThoughtsTokenCount ?? 0));
                writer.WriteNumber("total_tokens", usage.TotalTokenCount ?? 0);
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        return new AudioResponse(new MemoryStream(buffer.WrittenSpan.ToArray(), writable: false), "application/json");
    }

    /// <summary>
    /// The aspect ratio of an OpenAI <c>size</c>: null for none or <c>auto</c>; <c>WxH</c> → <c>w:h</c> reduced, when it is
    /// one of <paramref name="ratios"/>; else a 400 naming them.
    /// </summary>
    internal static string? AspectRatio(string? size, string[] ratios, string family)
    {
        if (size is null or "auto")
        {
            return null;
        }

        var x = size.IndexOf('x', StringComparison.Ordinal);
        if (x > 0
            && int.TryParse(size.AsSpan(0, x), NumberStyles.None, CultureInfo.InvariantCulture, out var width)
            && int.TryParse(size.AsSpan(x + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var height)
            && width > 0 && height > 0)
        {
            var divisor = Gcd(width, height);
            var ratio = $"{width / divisor}:{height / divisor}";
            if (Array.IndexOf(ratios, ratio) >= 0)
            {
                return ratio;
            }
        }

        throw BifrostErrors.InvalidValue($"'size' '{size}' has no exact {family} aspect ratio: use auto or a WIDTHxHEIGHT whose ratio is one of {string.Join(", ", ratios)} (e.g. 1024x1024, 768x1024, 1024x768, 1080x1920, 1920x1080).", "size");

        static int Gcd(int a, int b)
        {
            while (b != 0)
            {
                (a, b) = (b, a % b);
            }

            return a;
        }
    }

    /// <summary>The sample rate of Google's PCM (<c>audio/L16;codec=pcm;rate=24000</c>, <c>audio/pcm</c>), or null for another type.</summary>
    internal static int? PcmRate(string mimeType)
    {
        var parts = mimeType.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || !(parts[0].Equals("audio/L16", StringComparison.OrdinalIgnoreCase) || parts[0].Equals("audio/pcm", StringComparison.OrdinalIgnoreCase)))
        {
            return null;
        }

        foreach (var parameter in parts.Skip(1))
        {
            if (parameter.StartsWith("rate=", StringComparison.OrdinalIgnoreCase))
            {
                return int.TryParse(parameter.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var rate) && rate is > 0 and <= 384000 ? rate : null;
            }
        }

        return DefaultSampleRate;
    }

    /// <summary>A WAV file of 16-bit little-endian mono PCM: the 44-byte RIFF/WAVE header (PCM format 1), then the samples.</summary>
    internal static byte[] Wav(ReadOnlySpan<byte> pcm, int sampleRate)
    {
        const int channels = 1, bits = 16;
        var wav = new byte[44 + pcm.Length];
        var span = wav.AsSpan();
        "RIFF"u8.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)(36 + pcm.Length));
        "WAVE"u8.CopyTo(span[8..]);
        "fmt "u8.CopyTo(span[12..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], 16);
        BinaryPrimitives.WriteUInt16LittleEndian(span[20..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(span[22..], channels);
        BinaryPrimitives.WriteUInt32LittleEndian(span[24..], (uint)sampleRate);
        BinaryPrimitives.WriteUInt32LittleEndian(span[28..], (uint)(sampleRate * channels * bits / 8));
        BinaryPrimitives.WriteUInt16LittleEndian(span[32..], channels * bits / 8);
        BinaryPrimitives.WriteUInt16LittleEndian(span[34..], bits);
        "data"u8.CopyTo(span[36..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[40..], (uint)pcm.Length);
        pcm.CopyTo(span[44..]);
        return wav;
    }

    /// <summary>The upload's audio type: its content type when it is <c>audio/*</c>, else by its file extension; null when neither says.</summary>
    private static string? AudioType(TranscriptionRequest request)
    {
        if (request.FileContentType is { } contentType
            && System.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var parsed)
            && parsed.MediaType is { } media
            && media.StartsWith("audio/", StringComparison.OrdinalIgnoreCase))
        {
            return media.ToLowerInvariant();
        }

        return AudioTypes.TryGetValue(Path.GetExtension(request.Filename ?? string.Empty), out var type) ? type : null;
    }

    private static Task<GeminiResponse> GenerateAsync(UpstreamClient http, ProviderContext context, Func<string, Uri> endpoint, GeminiRequest body, CancellationToken cancellationToken)
    {
        var message = http.CreateRequest(context, HttpMethod.Post, endpoint("generateContent"), stream: false);
        message.Content = UpstreamClient.Json(body, GeminiJsonContext.Wire.GeminiRequest);
        return http.SendForJsonAsync(context, message, GeminiJsonContext.Wire.GeminiResponse, cancellationToken);
    }

    private static IEnumerable<GeminiPart> Parts(GeminiResponse answer) =>
        answer.Candidates is { Count: > 0 } candidates ? candidates[0].Content?.Parts ?? [] : [];

    /// <summary>No output: a blocked prompt or a filtered answer is a 400 <c>content_policy_violation</c>, anything else a 502.</summary>
    private static BifrostException NoOutput(ProviderContext context, GeminiResponse answer, string what)
    {
        if (answer.PromptFeedback?.BlockReason is { Length: > 0 } reason)
        {
            return ContentPolicy(context, $"the prompt was blocked ({reason}{(answer.PromptFeedback.BlockReasonMessage is { } detail ? ": " + detail : string.Empty)})");
        }

        var finish = answer.Candidates is { Count: > 0 } candidates ? candidates[0].FinishReason : null;
        return GeminiResponseTranslator.FinishReason(finish, hasToolCalls: false) == "content_filter"
            ? ContentPolicy(context, $"the answer was filtered ({finish})")
            : UpstreamHttp.InvalidResponse(context, $"no {what} (finish reason {finish ?? "none"})");
    }

    private static BifrostException ContentPolicy(ProviderContext context, string why) =>
        BifrostErrors.ProviderError(400, BifrostErrors.InvalidRequestType, "content_policy_violation", $"Provider '{context.ProviderName}' refused: {why}.");

    /// <summary>Google's base64, checked (the caller gets it as <c>b64_json</c> unchanged).</summary>
    private static string Base64(ProviderContext context, string data)
    {
        _ = Bytes(context, data);
        return data;
    }

    private static byte[] Bytes(ProviderContext context, string? data)
    {
        try
        {
            return Convert.FromBase64String(data ?? string.Empty);
        }
        catch (FormatException)
        {
            throw UpstreamHttp.InvalidResponse(context, "media data that is not base64");
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1360, LogLevel.Information, "Provider '{Provider}' answered {Missing} of {Requested} images without bytes ({Reason}).")]
        public static partial void ImagesFiltered(ILogger logger, string provider, int missing, int requested, string reason);
    }
}
