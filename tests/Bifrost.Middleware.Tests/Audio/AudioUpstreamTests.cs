using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using OpenAI;
using OpenAI.Audio;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Audio;

/// <summary>Audio through the OpenAI-compatible adapter against a real fake upstream: what it receives, and its bytes passed through exactly.</summary>
public sealed class AudioUpstreamTests : IAsyncLifetime
{
    private static readonly byte[] AudioBytes = [.. Enumerable.Range(0, 256).Select(static i => (byte)i), .. Enumerable.Range(0, 256).Select(static i => (byte)(255 - i))];
    private FakeOpenAIUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await FakeOpenAIUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    private Task<GatewayHost> StartAsync(int retries = 0) => StartLocalAsync(options => options.Providers["compat"] = new ProviderOptions
    {
        Type = "openai",
        BaseUrl = _upstream.BaseUrl,
        MaxRetries = retries,
        RetryBaseDelay = TimeSpan.FromMilliseconds(1),
        Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
    });

    private static FakeOpenAIUpstream.UpstreamResponse Bytes(string contentType, byte[] body) => async (context, _, ct) =>
    {
        context.Response.ContentType = contentType;
        await context.Response.Body.WriteAsync(body, ct);
    };

    /// <summary>The multipart form the upstream received: fields by name (repeated ones joined with '|'), and the file part.</summary>
    private static async Task<(Dictionary<string, string> Fields, string? Filename, string? FileType, byte[] File)> FormAsync(RecordedRequest request)
    {
        var boundary = HeaderUtilities.RemoveQuotes(MediaTypeHeaderValue.Parse(request.Header("Content-Type")).Boundary).Value!;
        var reader = new MultipartReader(boundary, new MemoryStream(Encoding.UTF8.GetBytes(request.RawBody)));
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        string? filename = null;
        string? fileType = null;
        var file = Array.Empty<byte>();
        while (await reader.ReadNextSectionAsync(Ct) is { } section)
        {
            var disposition = ContentDispositionHeaderValue.Parse(section.ContentDisposition);
            var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value!;
            using var buffer = new MemoryStream();
            await section.Body.CopyToAsync(buffer, Ct);
            if (name == "file")
            {
                filename = HeaderUtilities.RemoveQuotes(disposition.FileName).Value;
                fileType = section.ContentType;
                file = buffer.ToArray();
            }
            else
            {
                var value = Encoding.UTF8.GetString(buffer.ToArray());
                fields[name] = fields.TryGetValue(name, out var before) ? before + "|" + value : value;
            }
        }

        return (fields, filename, fileType, file);
    }

    [Fact]
    public async Task Speech_bytes_and_content_type_pass_through_exactly_and_the_request_is_forwarded()
    {
        _upstream.Enqueue(Bytes("audio/mpeg", AudioBytes));
        await using var host = await StartAsync();
        using var response = await host.PostAsync("/openai/v1/audio/speech", new JsonObject
        {
            ["model"] = "compat/tts-1",
            ["input"] = "Hello there",
            ["voice"] = "nova",
            ["response_format"] = "mp3",
            ["speed"] = 1.25,
            ["instructions"] = "cheerful",
            ["fallbacks"] = new JsonArray("local/tts"),
            ["vendor_option"] = 7,
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("audio/mpeg", response.Content.Headers.ContentType?.ToString());
        Assert.Equal(AudioBytes, await response.Content.ReadAsByteArrayAsync(Ct));

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/audio/speech", sent.Path);
        Assert.Equal("Bearer sk-upstream", sent.Header("Authorization"));
        AssertSameJson(
            JsonNode.Parse("""{"model":"tts-1","input":"Hello there","voice":"nova","response_format":"mp3","speed":1.25,"instructions":"cheerful","vendor_option":7}""")!,
            JsonNode.Parse(sent.RawBody)!);
    }

    [Fact]
    public async Task Speech_reaches_the_caller_as_it_arrives_not_when_the_upstream_finishes()
    {
        var rest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Enqueue(async (context, _, ct) =>
        {
            context.Response.ContentType = "audio/opus";
            await context.Response.Body.WriteAsync(AudioBytes.AsMemory(0, 100), ct);
            await context.Response.Body.FlushAsync(ct);
            await rest.Task.WaitAsync(ct);
            await context.Response.Body.WriteAsync(AudioBytes.AsMemory(100), ct);
        });
        await using var host = await StartAsync();
        using var response = await host.PostAsync("/openai/v1/audio/speech", new JsonObject { ["model"] = "compat/tts-1", ["input"] = "hi", ["voice"] = "nova", ["response_format"] = "opus" });
        Assert.Equal("audio/opus", response.Content.Headers.ContentType?.MediaType);
        await using var body = await response.Content.ReadAsStreamAsync(Ct);

        var first = new byte[100];
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await body.ReadExactlyAsync(first, timeout.Token); // the upstream has not finished: only relayed bytes can arrive
        }

        Assert.Equal(AudioBytes[..100], first);
        Assert.False(rest.Task.IsCompleted);
        rest.SetResult();
        using var remainder = new MemoryStream();
        await body.CopyToAsync(remainder, Ct);
        Assert.Equal(AudioBytes[100..], remainder.ToArray());
    }

    [Fact]
    public async Task Speech_sse_from_the_upstream_is_relayed_unchanged()
    {
        const string Events = "data: {\"type\":\"speech.audio.delta\",\"audio\":\"AAEC\"}\n\ndata: {\"type\":\"speech.audio.done\",\"usage\":{\"input_tokens\":2,\"output_tokens\":9,\"total_tokens\":11}}\n\n";
        _upstream.Enqueue(FakeResponses.Body(200, "text/event-stream", Events));
        await using var host = await StartAsync();
        using var response = await host.PostAsync("/openai/v1/audio/speech", new JsonObject { ["model"] = "compat/gpt-4o-mini-tts", ["input"] = "hi", ["voice"] = "nova", ["stream_format"] = "sse" });

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Events, await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal("sse", Assert.Single(_upstream.Requests).Body!.Value.GetProperty("stream_format").GetString());
    }

    [Fact]
    public async Task An_upstream_error_is_a_bifrost_error_with_its_status()
    {
        _upstream.Enqueue(FakeResponses.Error(400, "voice 'x' is not supported", "invalid_request_error", "invalid_value", "voice"));
        await using var host = await StartAsync();
        using var response = await host.PostAsync("/openai/v1/audio/speech", new JsonObject { ["model"] = "compat/tts-1", ["input"] = "hi", ["voice"] = "x" });
        var json = await ReadAsync(response);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("voice 'x' is not supported", json.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("compat", json.GetProperty("extra_fields").GetProperty("provider").GetString());
    }

    [Fact]
    public async Task Transcription_fields_and_file_are_forwarded_as_multipart_and_the_answer_passes_through()
    {
        const string Vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nBonjour\n";
        _upstream.Enqueue(FakeResponses.Body(200, "text/vtt; charset=utf-8", Vtt));
        await using var host = await StartAsync();
        var file = Encoding.ASCII.GetBytes("ID3-fake-audio-" + new string('z', 5000));
        using var form = AudioLocalTests.Upload(
            file,
            "speech.mp3",
            ("model", "compat/whisper-1"),
            ("language", "fr"),
            ("prompt", "A greeting"),
            ("response_format", "vtt"),
            ("temperature", "0.2"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
            ("include[]", "logprobs"));
        using var response = await host.Client.PostAsync("/openai/v1/audio/transcriptions", form, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/vtt; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        Assert.Equal(Vtt, await response.Content.ReadAsStringAsync(Ct));

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/audio/transcriptions", sent.Path);
        Assert.StartsWith("multipart/form-data", sent.Header("Content-Type"), StringComparison.Ordinal);
        var (fields, filename, fileType, sentFile) = await FormAsync(sent);
        Assert.Equal("speech.mp3", filename);
        Assert.Equal("audio/wav", fileType);
        Assert.Equal(file, sentFile);
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["model"] = "whisper-1",
                ["language"] = "fr",
                ["prompt"] = "A greeting",
                ["response_format"] = "vtt",
                ["temperature"] = "0.2",
                ["timestamp_granularities[]"] = "word|segment",
                ["include[]"] = "logprobs",
            },
            fields);
    }

    [Fact]
    public async Task A_streamed_transcription_asks_the_upstream_for_a_stream_and_relays_its_events()
    {
        const string Events = "data: {\"type\":\"transcript.text.delta\",\"delta\":\"Hi\"}\n\ndata: {\"type\":\"transcript.text.done\",\"text\":\"Hi\"}\n\n";
        _upstream.Enqueue(FakeResponses.Body(200, "text/event-stream", Events));
        await using var host = await StartAsync();
        using var response = await host.Client.PostAsync("/openai/v1/audio/transcriptions", AudioLocalTests.Upload([65, 66], "a.wav", ("model", "compat/gpt-4o-transcribe"), ("stream", "true")), Ct);

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Events, await response.Content.ReadAsStringAsync(Ct));
        var (fields, _, _, file) = await FormAsync(Assert.Single(_upstream.Requests));
        Assert.Equal("true", fields["stream"]);
        Assert.Equal("gpt-4o-transcribe", fields["model"]);
        Assert.Equal([65, 66], file);
    }

    [Fact]
    public async Task A_provider_without_audio_answers_unsupported_operation()
    {
        await using var host = await StartLocalAsync(options => options.Providers["claude"] = new ProviderOptions
        {
            Type = "anthropic",
            BaseUrl = _upstream.BaseUrl,
            Keys = [new ProviderKeyOptions { Value = "sk-ant" }],
        });
        await host.PostErrorAsync("/openai/v1/audio/speech", new JsonObject { ["model"] = "claude/any", ["input"] = "hi", ["voice"] = "nova" }, 400, "unsupported_operation", "model");
        using var response = await host.Client.PostAsync("/openai/v1/audio/translations", AudioLocalTests.Upload([1], "a.wav", ("model", "claude/any")), Ct);
        AssertError(await ReadAsync(response), 400, "unsupported_operation", "model");
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task A_retried_upload_sends_the_whole_file_again()
    {
        _upstream.Enqueue(FakeResponses.Error(503, "busy"), FakeResponses.Json(200, """{"text":"second time"}"""));
        await using var host = await StartAsync(retries: 1);
        var file = Encoding.ASCII.GetBytes(new string('q', 3000));
        using var response = await host.Client.PostAsync("/openai/v1/audio/translations", AudioLocalTests.Upload(file, "q.wav", ("model", "compat/whisper-1")), Ct);

        Assert.Equal("""{"text":"second time"}""", await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(2, _upstream.Requests.Count);
        foreach (var request in _upstream.Requests)
        {
            Assert.Equal("/v1/audio/translations", request.Path);
            Assert.Equal(file, (await FormAsync(request)).File);
        }
    }

    [Fact]
    public async Task The_OpenAI_sdk_AudioClient_speaks_and_transcribes_through_the_gateway()
    {
        _upstream.Enqueue(
            Bytes("audio/mpeg", AudioBytes),
            FakeResponses.Json(200, """{"text":"transcribed by the upstream"}"""),
            FakeResponses.Json(200, """{"text":"translated by the upstream"}"""));
        await using var host = await StartAsync();
        var client = new OpenAIClient(
            new ApiKeyCredential("sk-test"),
            new OpenAIClientOptions { Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"), Transport = new HttpClientPipelineTransport(host.Client), RetryPolicy = new ClientRetryPolicy(0) });
        var audio = client.GetAudioClient("compat/tts-1");

        BinaryData speech = await audio.GenerateSpeechAsync("Hello", GeneratedSpeechVoice.Nova, new SpeechGenerationOptions { ResponseFormat = GeneratedSpeechFormat.Mp3 }, Ct);
        Assert.Equal(AudioBytes, speech.ToArray());
        Assert.Equal("tts-1", _upstream.Requests[0].Body!.Value.GetProperty("model").GetString());

        using var clip = new MemoryStream(Encoding.ASCII.GetBytes("RIFF-clip"));
        AudioTranscription transcription = await client.GetAudioClient("compat/whisper-1").TranscribeAudioAsync(clip, "clip.wav", cancellationToken: Ct);
        Assert.Equal("transcribed by the upstream", transcription.Text);
        Assert.Equal(Encoding.ASCII.GetBytes("RIFF-clip"), (await FormAsync(_upstream.Requests[1])).File);

        using var clip2 = new MemoryStream(Encoding.ASCII.GetBytes("RIFF-clip-2"));
        AudioTranslation translation = await client.GetAudioClient("compat/whisper-1").TranslateAudioAsync(clip2, "clip.wav", cancellationToken: Ct);
        Assert.Equal("translated by the upstream", translation.Text);
        Assert.Equal("/v1/audio/translations", _upstream.Requests[2].Path);
    }
}
