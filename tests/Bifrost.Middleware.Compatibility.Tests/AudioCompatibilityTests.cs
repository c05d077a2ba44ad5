using System.Buffers.Binary;
using System.Text;
using OpenAI.Audio;

namespace Bifrost.Middleware.Compatibility.Tests;

/// <summary>The official SDK's <see cref="AudioClient"/> against the local provider: speech, transcriptions, translations.</summary>
public sealed class AudioCompatibilityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GenerateSpeech_returns_the_local_wav()
    {
        await using var host = await SdkHost.StartAsync();
        var audio = host.Client.GetAudioClient("local/echo");

        BinaryData speech = await audio.GenerateSpeechAsync("Hello SDK", GeneratedSpeechVoice.Alloy, new SpeechGenerationOptions { ResponseFormat = GeneratedSpeechFormat.Wav, SpeedRatio = 1.5f }, Ct);

        var bytes = speech.ToArray();
        Assert.Equal(44 + (9 * 160), bytes.Length);
        Assert.Equal("RIFF", Encoding.ASCII.GetString(bytes, 0, 4));
        Assert.Equal("WAVE", Encoding.ASCII.GetString(bytes, 8, 4));
        Assert.Equal(9 * 160, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(40)));
    }

    [Fact]
    public async Task TranscribeAudio_echoes_the_file_or_the_prompt()
    {
        await using var host = await SdkHost.StartAsync();
        var audio = host.Client.GetAudioClient("local/echo");

        using var clip = new MemoryStream(new byte[321]);
        AudioTranscription plain = await audio.TranscribeAudioAsync(clip, "meeting.wav", cancellationToken: Ct);
        Assert.Equal("meeting.wav (321 bytes)", plain.Text);

        using var clip2 = new MemoryStream(new byte[10]);
        AudioTranscription verbose = await audio.TranscribeAudioAsync(clip2, "meeting.wav", new AudioTranscriptionOptions
        {
            Prompt = "good morning everyone",
            Language = "en",
            ResponseFormat = AudioTranscriptionFormat.Verbose,
            TimestampGranularities = AudioTimestampGranularities.Word | AudioTimestampGranularities.Segment,
        }, Ct);
        Assert.Equal("good morning everyone", verbose.Text);
        Assert.Equal("en", verbose.Language);
        Assert.Equal(TimeSpan.FromSeconds(1.5), verbose.Duration);
        Assert.Equal(["good", "morning", "everyone"], verbose.Words.Select(w => w.Word));
        Assert.Equal(TimeSpan.FromSeconds(1), verbose.Words[2].StartTime);
        Assert.Equal("good morning everyone", Assert.Single(verbose.Segments).Text);
    }

    [Fact]
    public async Task TranslateAudio_echoes_the_prompt()
    {
        await using var host = await SdkHost.StartAsync();
        var audio = host.Client.GetAudioClient("local/echo");

        using var clip = new MemoryStream(new byte[5]);
        AudioTranslation translation = await audio.TranslateAudioAsync(clip, "de.wav", new AudioTranslationOptions { Prompt = "guten Tag" }, Ct);

        Assert.Equal("guten Tag", translation.Text);
    }
}
