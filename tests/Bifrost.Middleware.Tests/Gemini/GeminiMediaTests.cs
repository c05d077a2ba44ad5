using System.Buffers.Binary;
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Gemini;
using Bifrost.Middleware.Tests.Audio;
using OpenAI;
using OpenAI.Audio;
using OpenAI.Images;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>
/// Images (Imagen <c>:predict</c>, Gemini image models), speech (TTS PCM → wav / pcm) and transcriptions (inline audio) on
/// the <c>gemini</c> provider, through the gateway's OpenAI routes, the adapter and the OpenAI SDK, against the fake Gemini API.
/// </summary>
public sealed class GeminiMediaTests : GeminiTestBase
{
    private const string Images = "/openai/v1/images/generations";
    private const string Speech = "/openai/v1/audio/speech";
    private const string Transcriptions = "/openai/v1/audio/transcriptions";
    private const string Imagen = "imagen-4.0-generate-001";
    private const string Tts = "gemini-2.5-flash-preview-tts";

    [Fact]
    public async Task Imagen_models_generate_through_predict_with_sampleCount_and_the_exact_aspect_ratio()
    {
        await using var host = await StartHostAsync();

        var json = await host.PostOkAsync(Images, new JsonObject { ["model"] = "gemini/" + Imagen, ["prompt"] = "a lighthouse", ["n"] = 2, ["size"] = "1920x1080" });

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1beta/models/imagen-4.0-generate-001:predict", sent.Path);
        Assert.Equal(FakeGeminiUpstream.Key, sent.Headers["x-goog-api-key"]);
        Assert.Equal("""{"instances":[{"prompt":"a lighthouse"}],"parameters":{"sampleCount":2,"aspectRatio":"16:9"}}""", sent.Body!.ToJsonString());
        var data = json.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(FakeGeminiUpstream.ImageBytes("a lighthouse", i, "16:9"), Convert.FromBase64String(data[i].GetProperty("b64_json").GetString()!));
            Assert.False(data[i].TryGetProperty("url", out _));
        }

        Assert.Equal(Imagen, json.GetProperty("model").GetString());
        Assert.Equal("image_generation", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task Without_n_or_size_Imagen_is_asked_for_one_image_and_no_aspect_ratio()
    {
        await using var host = await StartHostAsync();

        var json = await host.PostOkAsync(Images, new JsonObject { ["model"] = "gemini/" + Imagen, ["prompt"] = "a cat", ["size"] = "auto" });

        Assert.Equal("""{"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":1}}""", Assert.Single(Upstream.Requests).Body!.ToJsonString());
        Assert.Equal(FakeGeminiUpstream.ImageBytes("a cat", 0, "1:1"), Convert.FromBase64String(Assert.Single(json.GetProperty("data").EnumerateArray()).GetProperty("b64_json").GetString()!));
    }

    [Theory]
    [InlineData("1792x1024", "size", "invalid_value")] // 7:4 is no Imagen ratio
    [InlineData("1536x1024", "size", "invalid_value")] // 3:2 is a Gemini image ratio, not an Imagen one
    [InlineData("big", "size", "invalid_value")]
    public async Task A_size_without_an_exact_Imagen_ratio_is_a_400_naming_the_ratios(string size, string param, string code)
    {
        await using var host = await StartHostAsync();

        var json = await host.PostErrorAsync(Images, new JsonObject { ["model"] = "gemini/" + Imagen, ["prompt"] = "x", ["size"] = size }, 400, code, param);

        Assert.Contains("1:1, 3:4, 4:3, 9:16, 16:9", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task More_images_than_Google_answers_and_url_output_are_400s_before_any_call()
    {
        await using var host = await StartHostAsync();

        await host.PostErrorAsync(Images, new JsonObject { ["model"] = "gemini/" + Imagen, ["prompt"] = "x", ["n"] = 5 }, 400, "invalid_value", "n");
        await host.PostErrorAsync(Images, new JsonObject { ["model"] = "gemini/" + Imagen, ["prompt"] = "x", ["response_format"] = "url" }, 400, "unsupported_parameter", "response_format");
        await host.PostErrorAsync(Images, new JsonObject { ["model"] = "gemini/gemini-2.5-flash-image", ["prompt"] = "x", ["n"] = 5 }, 400, "invalid_value", "n");

        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Filtered_Imagen_images_are_left_out_and_all_filtered_is_a_content_policy_400()
    {
        await using var host = await StartHostAsync();

        var some = await host.PostOkAsync(Images, new JsonObject { ["model"] = "gemini/" + Imagen, ["prompt"] = "[filter-one] dogs", ["n"] = 3 });
        Assert.Equal(
            [FakeGeminiUpstream.ImageBytes("[filter-one] dogs", 1, "1:1"), FakeGeminiUpstream.ImageBytes("[filter-one] dogs", 2, "1:1")],
            some.GetProperty("data").EnumerateArray().Select(d => Convert.FromBase64String(d.GetProperty("b64_json").GetString()!)));

        using var response = await host.PostAsync(Images, new JsonObject { ["model"] = "gemini/" + Imagen, ["prompt"] = "[filter-all] dogs" });
        var error = await ReadAsync(response);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("content_policy_violation", error.GetProperty("error").GetProperty("code").GetString());
        Assert.False(error.GetProperty("is_bifrost_error").GetBoolean());
    }

    [Fact]
    public async Task Gemini_image_models_generate_through_generateContent_once_per_image_with_usage()
    {
        await using var host = await StartHostAsync();

        var json = await host.PostOkAsync(Images, new JsonObject { ["model"] = "gemini/gemini-2.5-flash-image", ["prompt"] = "a red kite", ["n"] = 2, ["size"] = "1536x1024" });

        Assert.Equal(2, Upstream.Requests.Count);
        Assert.All(Upstream.Requests, sent =>
        {
            Assert.Equal("/v1beta/models/gemini-2.5-flash-image:generateContent", sent.Path);
            Assert.Equal(
                """{"contents":[{"role":"user","parts":[{"text":"a red kite"}]}],"generationConfig":{"responseModalities":["IMAGE"],"imageConfig":{"aspectRatio":"3:2"}}}""",
                sent.Body!.ToJsonString());
        });
        Assert.All(json.GetProperty("data").EnumerateArray(), d => Assert.Equal(FakeGeminiUpstream.ImageBytes("a red kite", 0, "3:2"), Convert.FromBase64String(d.GetProperty("b64_json").GetString()!)));
        Assert.Equal(2, json.GetProperty("data").GetArrayLength());
        var usage = json.GetProperty("usage");
        Assert.Equal((14, 2580, 2594), (usage.GetProperty("input_tokens").GetInt32(), usage.GetProperty("output_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32()));
    }

    [Fact]
    public async Task A_blocked_image_prompt_is_a_content_policy_400_and_an_upstream_ratio_error_is_mapped()
    {
        await using var host = await StartHostAsync();

        using var blocked = await host.PostAsync(Images, new JsonObject { ["model"] = "gemini/gemini-2.5-flash-image", ["prompt"] = "[filter-all] x" });
        var error = await ReadAsync(blocked);
        Assert.Equal(HttpStatusCode.BadRequest, blocked.StatusCode);
        Assert.Equal("content_policy_violation", error.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("PROHIBITED_CONTENT", error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);

        Upstream.Failures.Enqueue(new FakeGeminiUpstream.Failure(429, "Resource has been exhausted.", RetryDelay: TimeSpan.FromSeconds(7)));
        using var limited = await host.PostAsync(Images, new JsonObject { ["model"] = "gemini/gemini-2.5-flash-image", ["prompt"] = "x" });
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.Equal("Resource has been exhausted.", (await ReadAsync(limited)).GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Speech_asks_for_AUDIO_with_the_voice_and_wraps_the_PCM_in_an_exact_WAV_header()
    {
        await using var host = await StartHostAsync();

        using var response = await host.PostAsync(Speech, new JsonObject { ["model"] = "gemini/" + Tts, ["input"] = "Have a wonderful day!", ["voice"] = "Kore", ["response_format"] = "wav" });
        var wav = await response.Content.ReadAsByteArrayAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("audio/wav", response.Content.Headers.ContentType?.MediaType);
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1beta/models/gemini-2.5-flash-preview-tts:generateContent", sent.Path);
        Assert.Equal(
            """{"contents":[{"role":"user","parts":[{"text":"Have a wonderful day!"}]}],"generationConfig":{"responseModalities":["AUDIO"],"speechConfig":{"voiceConfig":{"prebuiltVoiceConfig":{"voiceName":"Kore"}}}}}""",
            sent.Body!.ToJsonString());
        var pcm = FakeGeminiUpstream.Pcm("Have a wonderful day!");
        AssertWav(wav, pcm, 24000);
    }

    [Fact]
    public async Task Speech_as_pcm_relays_the_raw_samples_and_without_a_format_answers_wav()
    {
        await using var host = await StartHostAsync();

        using var raw = await host.PostAsync(Speech, new JsonObject { ["model"] = "gemini/" + Tts, ["input"] = "raw", ["voice"] = "Puck", ["response_format"] = "pcm" });
        Assert.Equal("audio/pcm", raw.Content.Headers.ContentType?.MediaType);
        Assert.Equal(FakeGeminiUpstream.Pcm("raw"), await raw.Content.ReadAsByteArrayAsync(Ct));

        using var standard = await host.PostAsync(Speech, new JsonObject { ["model"] = "gemini/" + Tts, ["input"] = "wav", ["voice"] = "Puck" });
        Assert.Equal("audio/wav", standard.Content.Headers.ContentType?.MediaType);
        AssertWav(await standard.Content.ReadAsByteArrayAsync(Ct), FakeGeminiUpstream.Pcm("wav"), 24000);
    }

    [Fact]
    public async Task Speech_instructions_steer_the_text_as_Gemini_TTS_prompts_do()
    {
        await using var host = await StartHostAsync();

        using var response = await host.PostAsync(Speech, new JsonObject { ["model"] = "gemini/" + Tts, ["input"] = "Hello there", ["voice"] = "Kore", ["instructions"] = "Say cheerfully" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Say cheerfully: Hello there", Assert.Single(Upstream.Requests).Body!["contents"]![0]!["parts"]![0]!["text"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("response_format", "mp3")]
    [InlineData("response_format", "opus")]
    [InlineData("stream_format", "sse")]
    public async Task Speech_formats_that_need_transcoding_or_streaming_are_400s_before_any_call(string field, string value)
    {
        await using var host = await StartHostAsync();

        await host.PostErrorAsync(Speech, new JsonObject { ["model"] = "gemini/" + Tts, ["input"] = "x", ["voice"] = "Kore", [field] = value }, 400, "unsupported_parameter", field);
        await host.PostErrorAsync(Speech, new JsonObject { ["model"] = "gemini/" + Tts, ["input"] = "x", ["voice"] = "Kore", ["speed"] = 1.5 }, 400, "unsupported_parameter", "speed");

        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task An_OpenAI_voice_name_is_passed_on_and_Googles_400_reaches_the_caller()
    {
        await using var host = await StartHostAsync();

        using var response = await host.PostAsync(Speech, new JsonObject { ["model"] = "gemini/" + Tts, ["input"] = "x", ["voice"] = "alloy" });
        var error = await ReadAsync(response);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("alloy", Assert.Single(Upstream.Requests).Body!["generationConfig"]!["speechConfig"]!["voiceConfig"]!["prebuiltVoiceConfig"]!["voiceName"]!.GetValue<string>());
        Assert.False(error.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal("Voice name 'alloy' is not supported.", error.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_transcription_sends_the_audio_inline_with_a_prompt_and_answers_json_with_usage()
    {
        await using var host = await StartHostAsync();
        var audio = Encoding.ASCII.GetBytes("RIFF....WAVEfmt fake audio");

        using var response = await host.Client.PostAsync(Transcriptions, AudioLocalTests.Upload(audio, "clip.wav", ("model", "gemini/gemini-2.5-flash"), ("language", "de"), ("prompt", "Bifrost"), ("temperature", "0.2")), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("""{"text":"transcript of 26 bytes of audio/wav","usage":{"type":"tokens","input_tokens":120,"output_tokens":9,"total_tokens":129}}""", body);
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1beta/models/gemini-2.5-flash:generateContent", sent.Path);
        var parts = sent.Body!["contents"]![0]!["parts"]!.AsArray();
        Assert.Equal(
            "Generate a verbatim transcript of the speech in this audio. Answer with the transcript text only, without timestamps, labels or comments. The speech is in the language with ISO-639-1 code 'de'. Context for spelling and style (do not transcribe it): Bifrost",
            parts[0]!["text"]!.GetValue<string>());
        Assert.Equal($$$"""{"inlineData":{"mimeType":"audio/wav","data":"{{{Convert.ToBase64String(audio)}}}"}}""", parts[1]!.ToJsonString());
        Assert.Equal("""{"temperature":0.2}""", sent.Body["generationConfig"]!.ToJsonString());
    }

    [Fact]
    public async Task A_text_transcription_is_the_bare_text_and_the_type_comes_from_the_extension_when_the_upload_has_none()
    {
        await using var host = await StartHostAsync();
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent([1, 2, 3]);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "file", "voice.flac");
        form.Add(new StringContent("gemini/gemini-2.5-flash"), "model");
        form.Add(new StringContent("text"), "response_format");

        using var response = await host.Client.PostAsync(Transcriptions, form, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("transcript of 3 bytes of audio/flac", await response.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Transcription_options_Gemini_cannot_honour_and_unknown_audio_types_are_refused_before_any_call()
    {
        await using var host = await StartHostAsync();

        foreach (var (field, value, param) in new[] { ("response_format", "verbose_json", "response_format"), ("response_format", "srt", "response_format"), ("stream", "true", "stream"), ("timestamp_granularities[]", "word", "timestamp_granularities[]") })
        {
            using var refused = await host.Client.PostAsync(Transcriptions, AudioLocalTests.Upload([1, 2], "a.wav", ("model", "gemini/gemini-2.5-flash"), (field, value)), Ct);
            AssertError(await ReadAsync(refused), 400, "unsupported_parameter", param);
        }

        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent([1, 2, 3]);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "file", "voice.xyz");
        form.Add(new StringContent("gemini/gemini-2.5-flash"), "model");
        using var unknown = await host.Client.PostAsync(Transcriptions, form, Ct);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, unknown.StatusCode);
        AssertError(await ReadAsync(unknown), 415, "unsupported_media_type", "file");

        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Audio_whose_base64_would_pass_Geminis_20_MB_inline_limit_is_a_413_without_a_call()
    {
        await using var services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
        IProviderAdapter adapter = services.GetRequiredService<GeminiAdapter>();
        var fits = (GoogleMedia.MaxInlineRequestBytes - GoogleMedia.InlineOverheadBytes) / 4 * 3;
        using var large = new MemoryStream(new byte[fits + 3]);
        var request = new TranscriptionRequest { Model = "gemini-2.5-flash", File = large, Filename = "big.wav", FileContentType = "audio/wav", FileBytes = large.Length };

        var error = await Assert.ThrowsAsync<BifrostException>(() => adapter.TranscriptionAsync(Context(), request, Ct));

        Assert.Equal((413, "file_too_large", "file"), (error.StatusCode, error.Error.Error.Code, error.Error.Error.Param));
        Assert.Empty(Upstream.Requests);

        using var small = new MemoryStream(new byte[fits]);
        await using var answer = await adapter.TranscriptionAsync(Context(), new TranscriptionRequest { Model = "gemini-2.5-flash", File = small, Filename = "ok.wav", FileBytes = small.Length }, Ct);
        using var reader = new StreamReader(answer.Content);
        Assert.StartsWith($$"""{"text":"transcript of {{fits}} bytes of audio/wav""", await reader.ReadToEndAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_translation_asks_for_English_and_leaves_out_the_language_hint()
    {
        await using var host = await StartHostAsync();

        using var response = await host.Client.PostAsync("/openai/v1/audio/translations", AudioLocalTests.Upload([1, 2, 3, 4], "a.ogg", ("model", "gemini/gemini-2.5-flash"), ("prompt", "names: Ada")), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"text":"English translation of 4 bytes of audio/wav","usage":{"type":"tokens","input_tokens":120,"output_tokens":9,"total_tokens":129}}""", await response.Content.ReadAsStringAsync(Ct));
        var parts = Assert.Single(Upstream.Requests).Body!["contents"]![0]!["parts"]!.AsArray();
        Assert.Equal(
            "Translate the speech in this audio into English. Answer with the English translation only, without timestamps, labels or comments. Context for spelling and style (do not transcribe it): names: Ada",
            parts[0]!["text"]!.GetValue<string>());
        Assert.Equal("audio/wav", parts[1]!["inlineData"]!["mimeType"]!.GetValue<string>()); // the upload's content type wins over the extension
    }

    [Fact]
    public async Task The_OpenAI_sdk_generates_images_speaks_and_transcribes_through_Gemini()
    {
        await using var host = await StartHostAsync();
        var client = new OpenAIClient(
            new ApiKeyCredential("sk-test"),
            new OpenAIClientOptions { Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"), Transport = new HttpClientPipelineTransport(new HttpClient(host.Server.CreateHandler())), RetryPolicy = new ClientRetryPolicy(0) });

        GeneratedImageCollection images = await client.GetImageClient("gemini/" + Imagen).GenerateImagesAsync("sdk fox", 2, new ImageGenerationOptions { Size = GeneratedImageSize.W1024xH1024, ResponseFormat = GeneratedImageFormat.Bytes }, Ct);
        Assert.Equal(
            [FakeGeminiUpstream.ImageBytes("sdk fox", 0, "1:1"), FakeGeminiUpstream.ImageBytes("sdk fox", 1, "1:1")],
            images.Select(i => i.ImageBytes.ToArray()));

        BinaryData speech = await client.GetAudioClient("gemini/" + Tts).GenerateSpeechAsync("sdk says hi", new GeneratedSpeechVoice("Kore"), new SpeechGenerationOptions { ResponseFormat = GeneratedSpeechFormat.Wav }, Ct);
        AssertWav(speech.ToArray(), FakeGeminiUpstream.Pcm("sdk says hi"), 24000);

        using var clip = new MemoryStream(Encoding.ASCII.GetBytes("RIFF-sdk-clip"));
        AudioTranscription transcription = await client.GetAudioClient("gemini/gemini-2.5-flash").TranscribeAudioAsync(clip, "clip.mp3", cancellationToken: Ct);
        Assert.Equal("transcript of 13 bytes of audio/mp3", transcription.Text);

        Assert.Equal(
            ["/v1beta/models/imagen-4.0-generate-001:predict", "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent", "/v1beta/models/gemini-2.5-flash:generateContent"],
            Upstream.Requests.Select(r => r.Path));
    }

    /// <summary>A 44-byte PCM WAV header (RIFF size, fmt chunk of 16 bytes: format 1, mono, the rate, rate×2 bytes/s, block 2, 16 bits; data size) and then exactly the samples.</summary>
    internal static void AssertWav(byte[] wav, byte[] pcm, int rate)
    {
        Assert.Equal(44 + pcm.Length, wav.Length);
        Assert.Equal("RIFF", Encoding.ASCII.GetString(wav, 0, 4));
        Assert.Equal((uint)(36 + pcm.Length), BinaryPrimitives.ReadUInt32LittleEndian(wav.AsSpan(4)));
        Assert.Equal("WAVEfmt ", Encoding.ASCII.GetString(wav, 8, 8));
        Assert.Equal(16u, BinaryPrimitives.ReadUInt32LittleEndian(wav.AsSpan(16)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(wav.AsSpan(20)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(wav.AsSpan(22)));
        Assert.Equal((uint)rate, BinaryPrimitives.ReadUInt32LittleEndian(wav.AsSpan(24)));
        Assert.Equal((uint)(rate * 2), BinaryPrimitives.ReadUInt32LittleEndian(wav.AsSpan(28)));
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(wav.AsSpan(32)));
        Assert.Equal(16, BinaryPrimitives.ReadUInt16LittleEndian(wav.AsSpan(34)));
        Assert.Equal("data", Encoding.ASCII.GetString(wav, 36, 4));
        Assert.Equal((uint)pcm.Length, BinaryPrimitives.ReadUInt32LittleEndian(wav.AsSpan(40)));
        Assert.Equal(pcm, wav[44..]);
    }
}
