namespace Bifrost.Middleware.Operations;

/// <summary>
/// The audio operations: text to speech (JSON in, audio bytes or SSE out) and transcriptions and translations (a multipart
/// upload in, JSON, text, subtitles or SSE out). Their answers are binary (<see cref="AudioResponse"/>): the synchronous
/// routes relay the provider's bytes as they arrive with its content type; an async speech job keeps them as base64
/// (<c>{"audio": "...", "content_type": "...", "extra_fields": {...}}</c>, as Bifrost's speech response has <c>audio</c>).
/// </summary>
internal static class AudioOperations
{
    /// <summary>Longest speech <c>input</c> (OpenAI's limit, in characters).</summary>
    public const int MaxSpeechInputChars = 4096;

    /// <summary>Longest speech <c>instructions</c>.</summary>
    public const int MaxInstructionsChars = 4096;

    /// <summary>Largest audio upload (OpenAI's limit; <c>Files:MaxUploadBytes</c> when that is lower).</summary>
    public const long MaxAudioUploadBytes = 25L * 1024 * 1024;

    /// <summary>Largest speech audio an async job keeps.</summary>
    public const long MaxStoredAudioBytes = 64L * 1024 * 1024;

    internal static readonly string[] SpeechFormats = ["mp3", "opus", "aac", "flac", "wav", "pcm"];

    internal static readonly string[] TranscriptionFormats = ["json", "text", "srt", "verbose_json", "vtt"];

    private static readonly string[] AudioTypes = ["audio/mpeg", "audio/opus", "audio/aac", "audio/flac", "audio/wav", "audio/pcm", "text/event-stream", "application/json"];

    private static readonly string[] TextTypes = ["application/json", "text/plain", "text/vtt", "text/event-stream"];

    public static readonly InferenceOperation<SpeechRequest, AudioResponse, AudioResponse> Speech = new()
    {
        Name = "speech",
        Summary = "speech",
        Paths = ["audio/speech"],
        RequestInfo = BifrostJson.Context.SpeechRequest,
        ResponseInfo = BifrostJson.Context.AudioResponse,
        ContentTypes = AudioTypes,
        Validate = ValidateSpeech,
        Call = static (call, r, ct) => call.Adapter.SpeechAsync(call.Context, r.ForProvider(call.Target.Model), ct),
        ClientCall = static (client, r, ct) => client.SpeechAsync(r, ct),
        BodyOf = static r => (r.Content, r.ContentType),
        BeforeStore = static (r, ct) => r.BufferAsync(MaxStoredAudioBytes, ct),
        ExtraFieldsOf = static r => r.ExtraFields,
        SetExtraFields = static (r, extra) => r.ExtraFields = extra,
        Pending = static (job, _, model) => new AudioResponse(Stream.Null, "application/json")
        {
            Id = job.Id,
            ExtraFields = new BifrostExtraFields { RequestType = "speech", ModelRequested = model },
        },
    };

    public static readonly InferenceOperation<TranscriptionRequest, AudioResponse, AudioResponse> Transcription = Upload(
        "transcription",
        "transcription",
        "audio/transcriptions",
        static (call, r, ct) => call.Adapter.TranscriptionAsync(call.Context, r.ForProvider(call.Target.Model), ct),
        static (client, r, ct) => client.TranscriptionAsync(r, ct),
        translation: false);

    public static readonly InferenceOperation<TranscriptionRequest, AudioResponse, AudioResponse> Translation = Upload(
        "translation",
        "translation",
        "audio/translations",
        static (call, r, ct) => call.Adapter.TranslationAsync(call.Context, r.ForProvider(call.Target.Model), ct),
        static (client, r, ct) => client.TranslationAsync(r, ct),
        translation: true);

    /// <summary>The audio operations, in the order their routes are mapped.</summary>
    public static IEnumerable<BifrostOperation> All => [Speech, Transcription, Translation];

    private static InferenceOperation<TranscriptionRequest, AudioResponse, AudioResponse> Upload(
        string name, string summary, string path, Func<ProviderCall, TranscriptionRequest, CancellationToken, Task<AudioResponse>> call, Func<IBifrostClient, TranscriptionRequest, CancellationToken, Task<AudioResponse>> clientCall, bool translation) => new()
        {
            Name = name,
            Summary = summary,
            Paths = [path],
            // Async (x-bf-async, v1/async/...): the job keeps the upload in its stored request (FileData, at most
            // MaxAudioUploadBytes, the upload's own bound) and the answer as speech's is kept: {"audio": base64 of the
            // provider's body, "content_type": ..., "extra_fields": ...}.
            IsStreamRequested = static r => r.Stream == true,
            ClearStream = static r => r.Stream = null,
            BeforeSubmit = static (r, ct) => r.BufferFileAsync(MaxAudioUploadBytes, ct),
            BeforeStore = static (r, ct) => r.BufferAsync(MaxStoredAudioBytes, ct),
            RequestBody = RouteBody.Upload,
            ReadRequest = AudioUpload.ReadAsync,
            UploadForm = typeof(AudioUploadForm),
            RequestInfo = BifrostJson.Context.TranscriptionRequest,
            ResponseInfo = BifrostJson.Context.AudioResponse,
            ContentTypes = TextTypes,
            Validate = r => ValidateTranscription(r, translation),
            Call = call,
            ClientCall = clientCall,
            BodyOf = static r => (r.Content, r.ContentType),
            ExtraFieldsOf = static r => r.ExtraFields,
            SetExtraFields = static (r, extra) => r.ExtraFields = extra,
            Pending = static (job, _, model) => new AudioResponse(Stream.Null, "application/json") { Id = job.Id },
        };

    private static void ValidateSpeech(SpeechRequest request)
    {
        if (string.IsNullOrEmpty(request.Input))
        {
            throw BifrostErrors.MissingParameter("'input' is required: the text to speak.", "input");
        }

        if (request.Input.Length > MaxSpeechInputChars)
        {
            throw BifrostErrors.InvalidValue($"'input' is longer than {MaxSpeechInputChars} characters.", "input");
        }

        if (string.IsNullOrEmpty(request.Voice))
        {
            throw BifrostErrors.MissingParameter("'voice' is required.", "voice");
        }

        if (request.Voice.Length > 256)
        {
            throw BifrostErrors.InvalidValue("'voice' is longer than 256 characters.", "voice");
        }

        if (request.ResponseFormat is { } format && Array.IndexOf(SpeechFormats, format) < 0)
        {
            throw BifrostErrors.InvalidValue($"'response_format' must be one of: {string.Join(", ", SpeechFormats)}.", "response_format");
        }

        if (request.Speed is { } speed && !(speed >= 0.25 && speed <= 4.0))
        {
            throw BifrostErrors.InvalidValue("'speed' must be between 0.25 and 4.0.", "speed");
        }

        if (request.Instructions is { Length: > MaxInstructionsChars })
        {
            throw BifrostErrors.InvalidValue($"'instructions' is longer than {MaxInstructionsChars} characters.", "instructions");
        }

        if (request.StreamFormat is { } stream && stream is not ("audio" or "sse"))
        {
            throw BifrostErrors.InvalidValue("'stream_format' must be 'audio' or 'sse'.", "stream_format");
        }
    }

    private static void ValidateTranscription(TranscriptionRequest request, bool translation)
    {
        if (request.File is null && request.FileData is null) // an async job's stored request holds the upload in FileData
        {
            throw BifrostErrors.MissingParameter("'file' is required: the audio to " + (translation ? "translate." : "transcribe."), "file");
        }

        if (request.ResponseFormat is { } format && Array.IndexOf(TranscriptionFormats, format) < 0)
        {
            throw BifrostErrors.InvalidValue($"'response_format' must be one of: {string.Join(", ", TranscriptionFormats)}.", "response_format");
        }

        if (request.Temperature is { } temperature && !(temperature >= 0 && temperature <= 1))
        {
            throw BifrostErrors.InvalidValue("'temperature' must be between 0 and 1.", "temperature");
        }

        if (request.TimestampGranularities is { } granularities)
        {
            if (translation)
            {
                throw BifrostErrors.UnsupportedParameter("'timestamp_granularities[]' is for transcriptions only.", "timestamp_granularities[]");
            }

            if (granularities.Count > 2 || granularities.Any(static g => g is not ("word" or "segment")))
            {
                throw BifrostErrors.InvalidValue("'timestamp_granularities[]' takes 'word' and/or 'segment'.", "timestamp_granularities[]");
            }
        }

        if (translation && request.Stream == true)
        {
            throw BifrostErrors.UnsupportedParameter("Translations do not stream.", "stream");
        }
    }
}
