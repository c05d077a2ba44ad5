using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Audio;
using Bifrost.Middleware.Tests.Gemini;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>Images (Imagen <c>:predict</c>, Gemini image models), speech and transcriptions on the <c>vertex</c> provider's publisher <c>google</c>; Claude models have none.</summary>
public sealed class VertexMediaTests : VertexTestBase
{
    private const string ModelsPath = "/v1/projects/my-project/locations/us-east5/publishers/google/models/";

    [Fact]
    public async Task Imagen_generates_through_the_project_predict_url_with_the_bearer_token()
    {
        await using var host = await StartHostAsync();

        var json = await host.PostOkAsync("/openai/v1/images/generations", new JsonObject { ["model"] = "vertex/imagen-4.0-fast-generate-001", ["prompt"] = "a harbour", ["n"] = 3, ["size"] = "768x1024" });

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal(ModelsPath + "imagen-4.0-fast-generate-001:predict", sent.Path);
        Assert.Equal("Bearer " + FakeVertexUpstream.Token, sent.Headers["authorization"]);
        Assert.Equal("""{"instances":[{"prompt":"a harbour"}],"parameters":{"sampleCount":3,"aspectRatio":"3:4"}}""", sent.Body!.ToJsonString());
        Assert.Equal(
            Enumerable.Range(0, 3).Select(i => FakeGeminiUpstream.ImageBytes("a harbour", i, "3:4")),
            json.GetProperty("data").EnumerateArray().Select(d => Convert.FromBase64String(d.GetProperty("b64_json").GetString()!)));
    }

    [Fact]
    public async Task Gemini_image_models_use_generateContent_and_express_mode_its_project_less_url()
    {
        await using var host = await StartHostAsync(o => { o.ProjectId = null; o.AuthHeader = "x-goog-api-key"; o.Keys = [new ProviderKeyOptions { Value = FakeVertexUpstream.ExpressKey }]; });

        var json = await host.PostOkAsync("/openai/v1/images/generations", new JsonObject { ["model"] = "vertex/gemini-2.5-flash-image", ["prompt"] = "a kite", ["size"] = "1024x1024" });

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1/publishers/google/models/gemini-2.5-flash-image:generateContent", sent.Path);
        Assert.Equal(FakeVertexUpstream.ExpressKey, sent.Headers["x-goog-api-key"]);
        Assert.Equal("""{"contents":[{"role":"user","parts":[{"text":"a kite"}]}],"generationConfig":{"responseModalities":["IMAGE"],"imageConfig":{"aspectRatio":"1:1"}}}""", sent.Body!.ToJsonString());
        Assert.Equal(FakeGeminiUpstream.ImageBytes("a kite", 0, "1:1"), Convert.FromBase64String(Assert.Single(json.GetProperty("data").EnumerateArray()).GetProperty("b64_json").GetString()!));
    }

    [Fact]
    public async Task Speech_is_Gemini_TTS_on_Vertex_answered_as_wav()
    {
        await using var host = await StartHostAsync();

        using var response = await host.PostAsync("/openai/v1/audio/speech", new JsonObject { ["model"] = "vertex/gemini-2.5-flash-tts", ["input"] = "Vertex speaks", ["voice"] = "Charon", ["response_format"] = "wav" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("audio/wav", response.Content.Headers.ContentType?.MediaType);
        GeminiMediaTests.AssertWav(await response.Content.ReadAsByteArrayAsync(Ct), FakeGeminiUpstream.Pcm("Vertex speaks"), 24000);
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal(ModelsPath + "gemini-2.5-flash-tts:generateContent", sent.Path);
        Assert.Equal("Charon", sent.Body!["generationConfig"]!["speechConfig"]!["voiceConfig"]!["prebuiltVoiceConfig"]!["voiceName"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_transcription_sends_the_audio_inline_to_generateContent()
    {
        await using var host = await StartHostAsync();
        var audio = Encoding.ASCII.GetBytes("ID3-fake-mp3");

        using var response = await host.Client.PostAsync("/openai/v1/audio/transcriptions", AudioLocalTests.Upload(audio, "clip.wav", ("model", "vertex/gemini-2.5-flash"), ("response_format", "text")), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("transcript of 12 bytes of audio/wav", await response.Content.ReadAsStringAsync(Ct));
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal(ModelsPath + "gemini-2.5-flash:generateContent", sent.Path);
        Assert.Equal(Convert.ToBase64String(audio), sent.Body!["contents"]![0]!["parts"]![1]!["inlineData"]!["data"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_translation_is_the_same_call_asking_for_English()
    {
        await using var host = await StartHostAsync();

        using var response = await host.Client.PostAsync("/openai/v1/audio/translations", AudioLocalTests.Upload([9, 8, 7], "clip.wav", ("model", "vertex/gemini-2.5-flash"), ("response_format", "text")), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("English translation of 3 bytes of audio/wav", await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(ModelsPath + "gemini-2.5-flash:generateContent", Assert.Single(Upstream.Requests).Path);
    }

    [Fact]
    public async Task Claude_models_have_no_images_speech_transcriptions_or_translations()
    {
        await using var host = await StartHostAsync();
        const string claude = "vertex/claude-sonnet-4-5@20250929";

        await host.PostErrorAsync("/openai/v1/images/generations", new JsonObject { ["model"] = claude, ["prompt"] = "x" }, 400, "unsupported_operation", "model");
        await host.PostErrorAsync("/openai/v1/audio/speech", new JsonObject { ["model"] = claude, ["input"] = "x", ["voice"] = "Kore" }, 400, "unsupported_operation", "model");
        using var transcription = await host.Client.PostAsync("/openai/v1/audio/transcriptions", AudioLocalTests.Upload([1], "a.wav", ("model", claude)), Ct);
        AssertError(await ReadAsync(transcription), 400, "unsupported_operation", "model");
        using var translation = await host.Client.PostAsync("/openai/v1/audio/translations", AudioLocalTests.Upload([1], "a.wav", ("model", claude)), Ct);
        AssertError(await ReadAsync(translation), 400, "unsupported_operation", "model");

        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task An_expired_token_on_predict_is_Googles_401()
    {
        await using var host = await StartHostAsync(o => o.Keys = [new ProviderKeyOptions { Value = "ya29.expired" }]);

        using var response = await host.PostAsync("/openai/v1/images/generations", new JsonObject { ["model"] = "vertex/imagen-4.0-generate-001", ["prompt"] = "x" });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.False((await ReadAsync(response)).GetProperty("is_bifrost_error").GetBoolean());
    }
}
