using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Providers.Local;

namespace Bifrost.Middleware.Tests.Gateway;

/// <summary><see cref="IBifrostClient"/>'s moderations, images, rerank and audio methods from DI, without any HTTP server.</summary>
public sealed class InProcessOperationsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ServiceProvider Build()
    {
        var services = new ServiceCollection();
        services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", MaxRetries = 0 };
        });
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task ModerationAsync_classifies_with_extra_fields()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();

        var response = await client.ModerationAsync(new ModerationRequest { Model = "local/omni-moderation-latest", Input = Json("""["fine text", "this is bifrost-flag:violence"]""") }, Ct);

        Assert.Equal(2, response.Results.Count);
        Assert.False(response.Results[0].Flagged);
        Assert.True(response.Results[1].Flagged);
        Assert.True(response.Results[1].Categories!["violence"]);
        Assert.Equal("moderation", response.ExtraFields!.RequestType);
        Assert.Equal("local", response.ExtraFields.Provider);
    }

    [Fact]
    public async Task ImageGenerationAsync_edit_and_variation_answer_the_local_pngs()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();

        var generated = await client.ImageGenerationAsync(new ImageRequest { Model = "local/gpt-image-1", Prompt = "in process", N = 2 }, Ct);
        Assert.Equal(LocalProviderAdapter.Png("in process", 1), Convert.FromBase64String(generated.Data[1].B64Json!));
        Assert.Equal("image_generation", generated.ExtraFields!.RequestType);
        Assert.Equal("gpt-image-1", generated.Model);

        byte[] image = [1, 2, 3, 250, 251, 252];
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(image));
        using var stream = new MemoryStream(image);
        var edit = new ImageEditRequest { Model = "local/gpt-image-1", Prompt = "a hat", Images = [new ImageFile(stream, "a.png", "image/png")] };
        var edited = await client.ImageEditAsync(edit, Ct);
        Assert.Equal(LocalProviderAdapter.Png($"edit:{sha}||a hat", 0), Convert.FromBase64String(Assert.Single(edited.Data).B64Json!));
        Assert.Equal("image_edit", edited.ExtraFields!.RequestType);

        // The caller's stream is read from its start again by the next call.
        var varied = await client.ImageVariationAsync(new ImageEditRequest { Model = "local/dall-e-2", Images = [new ImageFile(stream, "a.png", null)] }, Ct);
        Assert.Equal(LocalProviderAdapter.Png($"variation:{sha}||", 0), Convert.FromBase64String(Assert.Single(varied.Data).B64Json!));
        Assert.Equal("image_variation", varied.ExtraFields!.RequestType);

        var error = await Assert.ThrowsAsync<BifrostException>(() => client.ImageVariationAsync(new ImageEditRequest { Model = "local/dall-e-2", Prompt = "no", Images = [new ImageFile(stream, "a.png", null)] }, Ct));
        Assert.Equal(400, error.StatusCode);
        Assert.Equal("prompt", error.Error.Error.Param);
    }

    [Fact]
    public async Task RerankAsync_ranks_by_word_overlap()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();

        var response = await client.RerankAsync(new RerankRequest { Model = "local/rerank-1", Query = "Red fox", Documents = Json("""["a red fox jumps", "blue whale", "the fox."]"""), TopN = 2 }, Ct);

        Assert.Equal([0, 2], response.Results.Select(static r => r.Index));
        Assert.Equal([0.5, 0.333333], response.Results.Select(static r => r.RelevanceScore));
        Assert.Equal("rerank", response.ExtraFields!.RequestType);
    }

    [Fact]
    public async Task SpeechAsync_and_TranscriptionAsync_answer_bytes_and_text_with_extra_fields()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();

        await using (var speech = await client.SpeechAsync(new SpeechRequest { Model = "local/tts", Input = "hello", Voice = "alloy", ResponseFormat = "wav" }, Ct))
        {
            using var bytes = new MemoryStream();
            await speech.Content.CopyToAsync(bytes, Ct);
            Assert.Equal("audio/wav", speech.ContentType);
            Assert.Equal(44 + (5 * 80 * 2), bytes.Length);
            Assert.Equal("RIFF"u8.ToArray(), bytes.ToArray()[..4]);
            Assert.Equal("speech", speech.ExtraFields!.RequestType);
        }

        using var audio = new MemoryStream(Encoding.ASCII.GetBytes("RIFF-in-process"));
        await using (var transcription = await client.TranscriptionAsync(new TranscriptionRequest { Model = "local/whisper-1", File = audio, Filename = "clip.wav", FileBytes = audio.Length, Prompt = "heard in process", ResponseFormat = "text" }, Ct))
        {
            using var reader = new StreamReader(transcription.Content);
            Assert.Equal("heard in process", (await reader.ReadToEndAsync(Ct)).Trim());
            Assert.Equal("transcription", transcription.ExtraFields!.RequestType);
        }

        await using var translation = await client.TranslationAsync(new TranscriptionRequest { Model = "local/whisper-1", File = audio, Filename = "clip.wav", FileBytes = audio.Length, Prompt = "translated in process" }, Ct);
        using var json = JsonDocument.Parse(translation.Content);
        Assert.Equal("translated in process", json.RootElement.GetProperty("text").GetString());
        Assert.Equal("translation", translation.ExtraFields!.RequestType);
    }
}
