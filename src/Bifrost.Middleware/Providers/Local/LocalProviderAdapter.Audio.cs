using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Bifrost.Middleware.Providers.Local;

/// <summary>
/// Audio of the local provider, deterministic and without a model:
/// speech is a valid WAV (8 kHz, mono, 16-bit PCM), <see cref="SpeechMillisecondsPerChar"/> ms of tone per input
/// character (the tone follows the characters), whatever <c>response_format</c> asks (<c>pcm</c>: the same samples without
/// the WAV header, <c>audio/pcm</c>; every other format: the WAV, <c>audio/wav</c>); <c>stream_format: sse</c> sends it
/// base64 in <c>speech.audio.delta</c> events of <see cref="SpeechDeltaBytes"/> bytes, then <c>speech.audio.done</c>.
/// A transcription or translation "hears" the request's <c>prompt</c> when it has one, else
/// <c>{file name} ({bytes} bytes)</c>, and answers it in the asked <c>response_format</c> (json, text, srt, vtt,
/// verbose_json with one segment, and words with <c>timestamp_granularities[]=word</c>), or as
/// <c>transcript.text.delta</c>/<c>transcript.text.done</c> events with <c>stream</c>.
/// </summary>
internal sealed partial class LocalProviderAdapter
{
    /// <summary>Milliseconds of speech per input character.</summary>
    internal const int SpeechMillisecondsPerChar = 10;

    /// <summary>Sample rate of local speech.</summary>
    internal const int SpeechSampleRate = 8000;

    /// <summary>Audio bytes per <c>speech.audio.delta</c> event.</summary>
    internal const int SpeechDeltaBytes = 4096;

    /// <summary>Seconds of "audio" per word of a local transcription.</summary>
    private const double SecondsPerWord = 0.5;

    public Task<AudioResponse> SpeechAsync(ProviderContext context, SpeechRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var input = request.Input ?? string.Empty;
        var pcm = request.ResponseFormat == "pcm";
        var audio = Wav(input, header: !pcm);
        if (request.StreamFormat == "sse")
        {
            return Task.FromResult(new AudioResponse(new MemoryStream(SpeechEvents(audio, input), writable: false), "text/event-stream"));
        }

        return Task.FromResult(new AudioResponse(new MemoryStream(audio, writable: false), pcm ? "audio/pcm" : "audio/wav"));
    }

    public Task<AudioResponse> TranscriptionAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(Transcribe(request, "transcribe"));

    public Task<AudioResponse> TranslationAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(Transcribe(request, "translate"));

    /// <summary>What the local provider "hears" in an upload: its prompt, else its file name and size.</summary>
    internal static string Heard(TranscriptionRequest request) =>
        string.IsNullOrEmpty(request.Prompt) ? $"{request.Filename ?? "audio"} ({request.FileBytes.ToString(CultureInfo.InvariantCulture)} bytes)" : request.Prompt;

    /// <summary>The WAV (or, without <paramref name="header"/>, the raw 16-bit little-endian samples) of <paramref name="input"/>.</summary>
    internal static byte[] Wav(string input, bool header)
    {
        var samplesPerChar = SpeechSampleRate * SpeechMillisecondsPerChar / 1000;
        var dataBytes = input.Length * samplesPerChar * 2;
        var offset = header ? 44 : 0;
        var bytes = new byte[offset + dataBytes];
        if (header)
        {
            var span = bytes.AsSpan();
            "RIFF"u8.CopyTo(span);
            BinaryPrimitives.WriteInt32LittleEndian(span[4..], 36 + dataBytes);
            "WAVEfmt "u8.CopyTo(span[8..]);
            BinaryPrimitives.WriteInt32LittleEndian(span[16..], 16); // fmt chunk size
            BinaryPrimitives.WriteInt16LittleEndian(span[20..], 1); // PCM
            BinaryPrimitives.WriteInt16LittleEndian(span[22..], 1); // mono
            BinaryPrimitives.WriteInt32LittleEndian(span[24..], SpeechSampleRate);
            BinaryPrimitives.WriteInt32LittleEndian(span[28..], SpeechSampleRate * 2); // byte rate
            BinaryPrimitives.WriteInt16LittleEndian(span[32..], 2); // block align
            BinaryPrimitives.WriteInt16LittleEndian(span[34..], 16); // bits per sample
            "data"u8.CopyTo(span[36..]);
            BinaryPrimitives.WriteInt32LittleEndian(span[40..], dataBytes);
        }

        for (var c = 0; c < input.Length; c++)
        {
            // A square wave whose period follows the character (2 to 33 samples), at a quarter of full scale.
            var period = 2 + (input[c] % 32);
            for (var s = 0; s < samplesPerChar; s++)
            {
                var sample = (short)((s % period) < period / 2 ? 8192 : -8192);
                BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(offset + (((c * samplesPerChar) + s) * 2)), sample);
            }
        }

        return bytes;
    }

    private static byte[] SpeechEvents(byte[] audio, string input)
    {
        using var buffer = new MemoryStream();
        using var json = new Utf8JsonWriter(buffer, BifrostJson.WriterOptions);
        for (var start = 0; start < audio.Length; start += SpeechDeltaBytes)
        {
            var length = Math.Min(SpeechDeltaBytes, audio.Length - start);
            Event(buffer, json, "speech.audio.delta", writer => writer.WriteBase64String("audio"u8, audio.AsSpan(start, length)));
        }

        var tokens = CountPieces(input);
        Event(buffer, json, "speech.audio.done", writer =>
        {
            writer.WriteStartObject("usage"u8);
            writer.WriteNumber("input_tokens"u8, tokens);
            writer.WriteNumber("output_tokens"u8, 0);
            writer.WriteNumber("total_tokens"u8, tokens);
            writer.WriteEndObject();
        });
        return buffer.ToArray();
    }

    private static AudioResponse Transcribe(TranscriptionRequest request, string task)
    {
        var text = Heard(request);
        if (request.Stream == true)
        {
            using var events = new MemoryStream();
            using var json = new Utf8JsonWriter(events, BifrostJson.WriterOptions);
            foreach (var word in Words(text))
            {
                Event(events, json, "transcript.text.delta", writer => writer.WriteString("delta"u8, word));
            }

            Event(events, json, "transcript.text.done", writer => writer.WriteString("text"u8, text));
            return Answer(events.ToArray(), "text/event-stream");
        }

        var words = Words(text);
        var duration = Math.Max(1, words.Count) * SecondsPerWord;
        switch (request.ResponseFormat ?? "json")
        {
            case "text":
                return Answer(Encoding.UTF8.GetBytes(text + "\n"), "text/plain; charset=utf-8");
            case "srt":
                return Answer(Encoding.UTF8.GetBytes($"1\n{Timestamp(0, ',')} --> {Timestamp(duration, ',')}\n{text}\n\n"), "text/plain; charset=utf-8");
            case "vtt":
                return Answer(Encoding.UTF8.GetBytes($"WEBVTT\n\n{Timestamp(0, '.')} --> {Timestamp(duration, '.')}\n{text}\n\n"), "text/vtt; charset=utf-8");
            case "verbose_json":
                return Answer(Json(writer =>
                {
                    writer.WriteString("task"u8, task);
                    writer.WriteString("language"u8, task == "translate" ? "english" : request.Language ?? "english");
                    writer.WriteNumber("duration"u8, duration);
                    writer.WriteString("text"u8, text);
                    var granularities = request.TimestampGranularities;
                    if (granularities is null || granularities.Contains("segment"))
                    {
                        writer.WriteStartArray("segments"u8);
                        writer.WriteStartObject();
                        writer.WriteNumber("id"u8, 0);
                        writer.WriteNumber("seek"u8, 0);
                        writer.WriteNumber("start"u8, 0.0);
                        writer.WriteNumber("end"u8, duration);
                        writer.WriteString("text"u8, text);
                        writer.WriteStartArray("tokens"u8);
                        writer.WriteEndArray();
                        writer.WriteNumber("temperature"u8, request.Temperature ?? 0);
                        writer.WriteNumber("avg_logprob"u8, 0.0);
                        writer.WriteNumber("compression_ratio"u8, 1.0);
                        writer.WriteNumber("no_speech_prob"u8, 0.0);
                        writer.WriteEndObject();
                        writer.WriteEndArray();
                    }

                    if (granularities?.Contains("word") == true)
                    {
                        writer.WriteStartArray("words"u8);
                        for (var i = 0; i < words.Count; i++)
                        {
                            writer.WriteStartObject();
                            writer.WriteString("word"u8, words[i].Trim());
                            writer.WriteNumber("start"u8, i * SecondsPerWord);
                            writer.WriteNumber("end"u8, (i + 1) * SecondsPerWord);
                            writer.WriteEndObject();
                        }

                        writer.WriteEndArray();
                    }
                }), "application/json");
            default:
                return Answer(Json(writer => writer.WriteString("text"u8, text)), "application/json");
        }
    }

    /// <summary>The text's words, each with the space before the next (so the deltas concatenate to the text).</summary>
    private static List<string> Words(string text)
    {
        var words = new List<string>();
        var start = 0;
        while (start < text.Length)
        {
            var space = text.IndexOf(' ', start);
            var end = space < 0 ? text.Length : space + 1;
            words.Add(text[start..end]);
            start = end;
        }

        return words;
    }

    private static string Timestamp(double seconds, char separator)
    {
        var time = TimeSpan.FromSeconds(seconds);
        return string.Create(CultureInfo.InvariantCulture, $"{(int)time.TotalHours:00}:{time.Minutes:00}:{time.Seconds:00}{separator}{time.Milliseconds:000}");
    }

    private static AudioResponse Answer(byte[] body, string contentType) => new(new MemoryStream(body, writable: false), contentType);

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, BifrostJson.WriterOptions))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>One SSE event: <c>event: {type}</c> and <c>data: {"type": ..., ...}</c>.</summary>
    private static void Event(MemoryStream buffer, Utf8JsonWriter json, string type, Action<Utf8JsonWriter> write)
    {
        buffer.Write(Encoding.UTF8.GetBytes($"event: {type}\ndata: "));
        json.Reset(buffer);
        json.WriteStartObject();
        json.WriteString("type"u8, type);
        write(json);
        json.WriteEndObject();
        json.Flush();
        buffer.Write("\n\n"u8);
    }
}
