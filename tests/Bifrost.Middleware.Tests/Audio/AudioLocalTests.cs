using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Audio;

/// <summary>audio/speech, audio/transcriptions and audio/translations against the local provider: bytes, formats, bounds, async speech.</summary>
public sealed class AudioLocalTests
{
    private static JsonObject Speech(string input, string? format = "wav", string? streamFormat = null)
    {
        var body = new JsonObject { ["model"] = "local/tts", ["input"] = input, ["voice"] = "alloy" };
        if (format is not null)
        {
            body["response_format"] = format;
        }

        if (streamFormat is not null)
        {
            body["stream_format"] = streamFormat;
        }

        return body;
    }

    internal static MultipartFormDataContent Upload(byte[] file, string filename = "clip.wav", params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        var content = new ByteArrayContent(file);
        content.Headers.ContentType = new MediaTypeHeaderValue("audio/wav");
        form.Add(content, "file", filename);
        foreach (var (name, value) in fields)
        {
            form.Add(new StringContent(value), name);
        }

        return form;
    }

    private static async Task<(HttpResponseMessage Response, string Text)> PostUploadAsync(GatewayHost host, string path, HttpContent content)
    {
        var response = await host.Client.PostAsync(path, content, Ct);
        return (response, await response.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Speech_is_a_valid_wav_whose_length_follows_the_input()
    {
        await using var host = await StartLocalAsync();
        using var response = await host.PostAsync("/openai/v1/audio/speech", Speech("hello"));
        var bytes = await response.Content.ReadAsByteArrayAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("audio/wav", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(44 + (5 * 80 * 2), bytes.Length); // 10 ms per character at 8 kHz, 16-bit mono
        Assert.Equal("RIFF", Encoding.ASCII.GetString(bytes, 0, 4));
        Assert.Equal(bytes.Length - 8, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal("WAVEfmt ", Encoding.ASCII.GetString(bytes, 8, 8));
        Assert.Equal(1, BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(20))); // PCM
        Assert.Equal(8000, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(24)));
        Assert.Equal("data", Encoding.ASCII.GetString(bytes, 36, 4));
        Assert.Equal(800, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(40)));

        // Deterministic, and another input makes other audio.
        using var again = await host.PostAsync("/openai/v1/audio/speech", Speech("hello"));
        Assert.Equal(bytes, await again.Content.ReadAsByteArrayAsync(Ct));
        using var other = await host.PostAsync("/openai/v1/audio/speech", Speech("world"));
        var otherBytes = await other.Content.ReadAsByteArrayAsync(Ct);
        Assert.Equal(bytes.Length, otherBytes.Length);
        Assert.NotEqual(bytes, otherBytes);

        // pcm: the same samples without the header; mp3 (any other format): the WAV.
        using var pcm = await host.PostAsync("/openai/audio/speech", Speech("hello", "pcm"));
        Assert.Equal("audio/pcm", pcm.Content.Headers.ContentType?.MediaType);
        Assert.Equal(bytes[44..], await pcm.Content.ReadAsByteArrayAsync(Ct));
        using var mp3 = await host.PostAsync("/openai/v1/audio/speech", Speech("hello", format: null));
        Assert.Equal("audio/wav", mp3.Content.Headers.ContentType?.MediaType);
        Assert.Equal(bytes, await mp3.Content.ReadAsByteArrayAsync(Ct));
    }

    [Fact]
    public async Task Speech_as_sse_sends_the_audio_in_delta_events_then_done()
    {
        await using var host = await StartLocalAsync();
        using var wav = await host.PostAsync("/openai/v1/audio/speech", Speech(new string('a', 30)));
        var expected = await wav.Content.ReadAsByteArrayAsync(Ct);

        using var response = await host.PostAsync("/openai/v1/audio/speech", Speech(new string('a', 30), streamFormat: "sse"));
        var events = await ReadEventStreamAsync(response);

        Assert.Equal(["speech.audio.delta", "speech.audio.delta", "speech.audio.done"], events.Select(e => e.Type));
        var audio = events.Where(e => e.Type == "speech.audio.delta").SelectMany(e => e.Data.GetProperty("audio").GetBytesFromBase64()).ToArray();
        Assert.Equal(expected, audio);
        Assert.Equal(4096, events[0].Data.GetProperty("audio").GetBytesFromBase64().Length);
        Assert.Equal(Bifrost.Middleware.Providers.Local.LocalProviderAdapter.CountPieces(new string('a', 30)), events[2].Data.GetProperty("usage").GetProperty("input_tokens").GetInt32());
    }

    [Theory]
    [InlineData("""{"model":"local/tts","voice":"alloy"}""", "missing_required_parameter", "input")]
    [InlineData("""{"model":"local/tts","input":"","voice":"alloy"}""", "missing_required_parameter", "input")]
    [InlineData("""{"model":"local/tts","input":"hi"}""", "missing_required_parameter", "voice")]
    [InlineData("""{"model":"local/tts","input":"hi","voice":"alloy","response_format":"ogg"}""", "invalid_value", "response_format")]
    [InlineData("""{"model":"local/tts","input":"hi","voice":"alloy","speed":4.5}""", "invalid_value", "speed")]
    [InlineData("""{"model":"local/tts","input":"hi","voice":"alloy","speed":0.1}""", "invalid_value", "speed")]
    [InlineData("""{"model":"local/tts","input":"hi","voice":"alloy","stream_format":"chunks"}""", "invalid_value", "stream_format")]
    public async Task Bad_speech_requests_are_400s_naming_the_field(string body, string code, string param)
    {
        await using var host = await StartLocalAsync();
        using var response = await host.SendAsync(HttpMethod.Post, "/openai/v1/audio/speech", body);
        AssertError(await ReadAsync(response), 400, code, param);
    }

    [Fact]
    public async Task Speech_input_is_bounded_at_4096_characters()
    {
        await using var host = await StartLocalAsync();
        await host.PostErrorAsync("/openai/v1/audio/speech", Speech(new string('x', 4097)), 400, "invalid_value", "input");
        using var ok = await host.PostAsync("/openai/v1/audio/speech", Speech(new string('x', 4096)));
        Assert.Equal(44 + (4096 * 160), (await ok.Content.ReadAsByteArrayAsync(Ct)).Length);
    }

    [Fact]
    public async Task Async_speech_is_polled_to_the_audio_as_base64()
    {
        await using var host = await StartLocalAsync();
        using var wav = await host.PostAsync("/openai/v1/audio/speech", Speech("async"));
        var expected = await wav.Content.ReadAsByteArrayAsync(Ct);

        var pending = await host.PostOkAsync("/openai/v1/audio/speech", Speech("async"), ("x-bf-async", "true"));
        var id = pending.GetProperty("id").GetString()!;
        Assert.False(pending.TryGetProperty("audio", out _));
        Assert.Equal("speech", pending.GetProperty("extra_fields").GetProperty("request_type").GetString());

        var done = await EventuallyAsync("the speech job", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Post, "/openai/v1/audio/speech", "{}", ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            return json.TryGetProperty("audio", out _) ? (JsonElement?)json : null;
        });
        Assert.Equal(expected, done.GetValueOrDefault().GetProperty("audio").GetBytesFromBase64());
        Assert.Equal("audio/wav", done.GetValueOrDefault().GetProperty("content_type").GetString());
        Assert.Equal("local", done.GetValueOrDefault().GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("speech", done.GetValueOrDefault().GetProperty("extra_fields").GetProperty("request_type").GetString());

        // The job envelope too.
        using var submit = await host.PostAsync("/openai/v1/async/audio/speech", Speech("async"));
        Assert.Equal(HttpStatusCode.Accepted, submit.StatusCode);
        var jobId = (await ReadAsync(submit)).GetProperty("id").GetString()!;
        var envelope = await EventuallyAsync("the speech envelope", async () =>
        {
            using var get = await host.SendAsync(HttpMethod.Get, "/openai/v1/async/audio/speech/" + jobId, null);
            var json = await ReadAsync(get);
            return get.StatusCode == HttpStatusCode.OK ? (JsonElement?)json : null;
        });
        Assert.Equal("completed", envelope.GetValueOrDefault().GetProperty("status").GetString());
        Assert.Equal(expected, envelope.GetValueOrDefault().GetProperty("result").GetProperty("audio").GetBytesFromBase64());
    }

    [Fact]
    public async Task Transcriptions_echo_the_file_name_and_size_or_the_prompt_in_every_format()
    {
        await using var host = await StartLocalAsync();
        var file = new byte[1000];

        var (json, jsonText) = await PostUploadAsync(host, "/openai/v1/audio/transcriptions", Upload(file, "clip.wav", ("model", "local/whisper")));
        Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        Assert.Equal("application/json", json.Content.Headers.ContentType?.MediaType);
        Assert.Equal("""{"text":"clip.wav (1000 bytes)"}""", jsonText);

        var (text, textBody) = await PostUploadAsync(host, "/openai/v1/audio/transcriptions", Upload(file, "clip.wav", ("model", "local/whisper"), ("prompt", "hello there world"), ("response_format", "text")));
        Assert.Equal("text/plain", text.Content.Headers.ContentType?.MediaType);
        Assert.Equal("hello there world\n", textBody);

        var (srt, srtBody) = await PostUploadAsync(host, "/openai/audio/transcriptions", Upload(file, "clip.wav", ("model", "local/whisper"), ("prompt", "hello there world"), ("response_format", "srt")));
        Assert.Equal(HttpStatusCode.OK, srt.StatusCode);
        Assert.Equal("1\n00:00:00,000 --> 00:00:01,500\nhello there world\n\n", srtBody);

        var (vtt, vttBody) = await PostUploadAsync(host, "/openai/v1/audio/transcriptions", Upload(file, "clip.wav", ("model", "local/whisper"), ("prompt", "hi"), ("response_format", "vtt")));
        Assert.Equal("text/vtt", vtt.Content.Headers.ContentType?.MediaType);
        Assert.Equal("WEBVTT\n\n00:00:00.000 --> 00:00:00.500\nhi\n\n", vttBody);

        var (verbose, verboseBody) = await PostUploadAsync(host, "/openai/v1/audio/transcriptions", Upload(
            file, "clip.wav", ("model", "local/whisper"), ("prompt", "one two"), ("response_format", "verbose_json"), ("language", "en"), ("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment")));
        Assert.Equal(HttpStatusCode.OK, verbose.StatusCode);
        var v = JsonDocument.Parse(verboseBody).RootElement;
        Assert.Equal("transcribe", v.GetProperty("task").GetString());
        Assert.Equal("en", v.GetProperty("language").GetString());
        Assert.Equal(1.0, v.GetProperty("duration").GetDouble());
        Assert.Equal("one two", v.GetProperty("text").GetString());
        Assert.Equal("one two", v.GetProperty("segments")[0].GetProperty("text").GetString());
        Assert.Equal(["one", "two"], v.GetProperty("words").EnumerateArray().Select(w => w.GetProperty("word").GetString()));
        Assert.Equal(0.5, v.GetProperty("words")[1].GetProperty("start").GetDouble());
    }

    [Fact]
    public async Task Streamed_transcriptions_send_text_deltas_then_done()
    {
        await using var host = await StartLocalAsync();
        using var response = await host.Client.PostAsync("/openai/v1/audio/transcriptions", Upload([1, 2, 3], "a.mp3", ("model", "local/whisper"), ("prompt", "one two three"), ("stream", "true")), Ct);
        var events = await ReadEventStreamAsync(response);

        Assert.Equal(["transcript.text.delta", "transcript.text.delta", "transcript.text.delta", "transcript.text.done"], events.Select(e => e.Type));
        Assert.Equal("one two three", string.Concat(events.Take(3).Select(e => e.Data.GetProperty("delta").GetString())));
        Assert.Equal("one two three", events[3].Data.GetProperty("text").GetString());
    }

    [Fact]
    public async Task Translations_echo_like_transcriptions_and_refuse_what_only_transcriptions_take()
    {
        await using var host = await StartLocalAsync();
        var (ok, body) = await PostUploadAsync(host, "/openai/v1/audio/translations", Upload(new byte[7], "de.wav", ("model", "local/whisper"), ("response_format", "verbose_json")));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var json = JsonDocument.Parse(body).RootElement;
        Assert.Equal("translate", json.GetProperty("task").GetString());
        Assert.Equal("english", json.GetProperty("language").GetString());
        Assert.Equal("de.wav (7 bytes)", json.GetProperty("text").GetString());

        var (stream, streamBody) = await PostUploadAsync(host, "/openai/v1/audio/translations", Upload(new byte[7], "de.wav", ("model", "local/whisper"), ("stream", "true")));
        AssertError(JsonDocument.Parse(streamBody).RootElement, 400, "unsupported_parameter", "stream");
        Assert.Equal(HttpStatusCode.BadRequest, stream.StatusCode);
    }

    [Theory]
    [InlineData("response_format", "mp3", "invalid_value", "response_format")]
    [InlineData("temperature", "1.5", "invalid_value", "temperature")]
    [InlineData("temperature", "warm", "invalid_type", "temperature")]
    [InlineData("timestamp_granularities[]", "sentence", "invalid_value", "timestamp_granularities[]")]
    [InlineData("stream", "maybe", "invalid_type", "stream")]
    public async Task Bad_transcription_fields_are_400s_naming_them(string name, string value, string code, string param)
    {
        await using var host = await StartLocalAsync();
        var (response, body) = await PostUploadAsync(host, "/openai/v1/audio/transcriptions", Upload([1], "a.wav", ("model", "local/whisper"), (name, value)));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertError(JsonDocument.Parse(body).RootElement, 400, code, param);
    }

    [Fact]
    public async Task An_upload_without_a_file_is_a_400_and_one_that_is_not_multipart_a_415()
    {
        await using var host = await StartLocalAsync();
        using var noFile = new MultipartFormDataContent { { new StringContent("local/whisper"), "model" } };
        var (response, body) = await PostUploadAsync(host, "/openai/v1/audio/transcriptions", noFile);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertError(JsonDocument.Parse(body).RootElement, 400, "missing_required_parameter", "file");

        using var json = await host.SendAsync(HttpMethod.Post, "/openai/v1/audio/transcriptions", """{"model":"local/whisper"}""");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, json.StatusCode);
        Assert.Equal("unsupported_media_type", (await ReadAsync(json)).GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task An_upload_over_the_limit_is_a_413()
    {
        await using var host = await StartLocalAsync(options => options.Files.MaxUploadBytes = 1000);
        var (atLimit, atLimitBody) = await PostUploadAsync(host, "/openai/v1/audio/transcriptions", Upload(new byte[1000], "a.wav", ("model", "local/whisper")));
        Assert.Equal(HttpStatusCode.OK, atLimit.StatusCode);
        Assert.Equal("""{"text":"a.wav (1000 bytes)"}""", atLimitBody);

        var (over, overBody) = await PostUploadAsync(host, "/openai/v1/audio/transcriptions", Upload(new byte[1001], "a.wav", ("model", "local/whisper")));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, over.StatusCode);
        Assert.Equal("file_too_large", JsonDocument.Parse(overBody).RootElement.GetProperty("error").GetProperty("code").GetString());
    }
}
