namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI text-to-speech request (<c>POST audio/speech</c>), plus Bifrost's <c>fallbacks</c>.</summary>
public sealed class SpeechRequest : InferenceRequest
{
    /// <summary>Creates an empty request (set <see cref="InferenceRequest.Model"/>, <see cref="Input"/> and <see cref="Voice"/>).</summary>
    public SpeechRequest()
    {
    }

    /// <summary>The text to speak.</summary>
    public string? Input { get; set; }

    /// <summary>The voice (<c>alloy</c>, <c>nova</c>, ...).</summary>
    public string? Voice { get; set; }

    /// <summary>The audio format: <c>mp3</c> (default), <c>opus</c>, <c>aac</c>, <c>flac</c>, <c>wav</c> or <c>pcm</c>.</summary>
    public string? ResponseFormat { get; set; }

    /// <summary>The speed, 0.25 to 4.0 (default 1).</summary>
    public double? Speed { get; set; }

    /// <summary>How to speak (models that take instructions).</summary>
    public string? Instructions { get; set; }

    /// <summary><c>audio</c> (default: the audio bytes) or <c>sse</c> (<c>speech.audio.delta</c> and <c>speech.audio.done</c> events).</summary>
    public string? StreamFormat { get; set; }

    internal SpeechRequest ForProvider(string model) => CopyForProvider<SpeechRequest>(model);
}

/// <summary>
/// An OpenAI transcription or translation request (<c>POST audio/transcriptions</c>, <c>audio/translations</c>): the
/// multipart form's fields, and the uploaded audio in <see cref="File"/>. Form fields it does not model are kept in
/// <see cref="ExtensibleObject.AdditionalProperties"/> (as strings) and forwarded.
/// </summary>
public sealed class TranscriptionRequest : InferenceRequest
{
    /// <summary>Creates an empty request.</summary>
    public TranscriptionRequest()
    {
    }

    /// <summary>The language of the audio (ISO-639-1), transcriptions only.</summary>
    public string? Language { get; set; }

    /// <summary>Text to guide the model's style or continue a previous segment.</summary>
    public string? Prompt { get; set; }

    /// <summary><c>json</c> (default), <c>text</c>, <c>srt</c>, <c>verbose_json</c> or <c>vtt</c>.</summary>
    public string? ResponseFormat { get; set; }

    /// <summary>The sampling temperature, 0 to 1.</summary>
    public double? Temperature { get; set; }

    /// <summary><c>word</c> and/or <c>segment</c> (with <c>verbose_json</c>).</summary>
    public IList<string>? TimestampGranularities { get; set; }

    /// <summary>Whether the transcription is streamed as server-sent events (<c>transcript.text.delta</c>, <c>transcript.text.done</c>).</summary>
    public bool? Stream { get; set; }

    /// <summary>The uploaded file's name.</summary>
    public string? Filename { get; set; }

    /// <summary>The uploaded file's content type, if the form gave one.</summary>
    public string? FileContentType { get; set; }

    /// <summary>The uploaded file's size in bytes.</summary>
    public long FileBytes { get; set; }

    /// <summary>
    /// The audio: a readable, seekable stream owned by the gateway (each attempt reads it from the start); adapters read
    /// it and must not dispose it. Not part of the JSON form.
    /// </summary>
    [JsonIgnore]
    public Stream? File { get; set; }

    /// <summary>The audio as base64: set only in an async job's stored request (the job reads it instead of <see cref="File"/>).</summary>
    public byte[]? FileData { get; set; }

    internal TranscriptionRequest ForProvider(string model)
    {
        var copy = CopyForProvider<TranscriptionRequest>(model);
        if (copy.File is { CanSeek: true } file)
        {
            file.Position = 0;
        }
        else if (copy.File is null && FileData is { } data)
        {
            copy.File = new MemoryStream(data, writable: false); // an async job's stored upload
        }

        return copy;
    }

    /// <summary>Reads <see cref="File"/> into <see cref="FileData"/> (an async job keeps it), up to <paramref name="maxBytes"/> (else 413).</summary>
    internal async Task BufferFileAsync(long maxBytes, CancellationToken cancellationToken)
    {
        if (FileData is not null || File is not { } file)
        {
            return;
        }

        if (file.CanSeek)
        {
            file.Position = 0;
        }

        using var memory = new MemoryStream();
        await Files.LimitedCopy.CopyAsync(file, memory, maxBytes, cancellationToken).ConfigureAwait(false);
        FileData = memory.ToArray();
    }
}

/// <summary>
/// An audio answer as the provider sent it: its bytes (<see cref="Content"/>, read as they arrive and never buffered whole
/// on the synchronous routes) and their <see cref="ContentType"/> — audio for speech, JSON, text or subtitles for
/// transcriptions, <c>text/event-stream</c> for streams. Dispose it to release the upstream connection.
/// </summary>
public sealed class AudioResponse : IAsyncDisposable
{
    /// <summary>Creates an answer.</summary>
    /// <param name="content">The body, read once by the gateway (disposed with the answer).</param>
    /// <param name="contentType">Its media type.</param>
    public AudioResponse(Stream content, string contentType)
    {
        Content = content ?? throw new ArgumentNullException(nameof(content));
        ContentType = contentType ?? throw new ArgumentNullException(nameof(contentType));
    }

    /// <summary>The async job's id, while the job runs (the pending shape); else null.</summary>
    public string? Id { get; set; }

    /// <summary>The body's media type (<c>audio/mpeg</c>, <c>application/json</c>, <c>text/plain</c>, ...).</summary>
    public string ContentType { get; }

    /// <summary>The body, as the provider sends it. Not part of the JSON form.</summary>
    [JsonIgnore]
    public Stream Content { get; private set; }

    /// <summary>The whole body, base64 in the JSON form: set only for an answer kept as an async job's result.</summary>
    public byte[]? Audio { get; set; }

    /// <summary>Bifrost's metadata (in the JSON form only: the bytes themselves are passed through unchanged).</summary>
    public BifrostExtraFields? ExtraFields { get; set; }

    /// <summary>Releases the body.</summary>
    /// <returns>The disposal.</returns>
    public ValueTask DisposeAsync() => Content.DisposeAsync();

    /// <summary>Reads the whole body into <see cref="Audio"/> (async job results), up to <paramref name="maxBytes"/> (else 502).</summary>
    internal async Task BufferAsync(long maxBytes, CancellationToken cancellationToken)
    {
        using var memory = new MemoryStream();
        try
        {
            await Files.LimitedCopy.CopyAsync(Content, memory, maxBytes, cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException)
        {
            throw BifrostErrors.InvalidProviderResponse($"The provider's audio is larger than {maxBytes} bytes, the most an async job keeps.");
        }

        await Content.DisposeAsync().ConfigureAwait(false);
        Audio = memory.ToArray();
        Content = new MemoryStream(Audio, writable: false);
    }
}
