using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Audio;

/// <summary>Async transcriptions and translations (<c>x-bf-async</c> and the <c>v1/async</c> envelope): the upload is kept with the job, the result is the sync answer's bytes.</summary>
public sealed class AudioAsyncTests
{
    private static MultipartFormDataContent Upload(byte[] file, params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        var content = new ByteArrayContent(file);
        content.Headers.ContentType = new MediaTypeHeaderValue("audio/wav");
        form.Add(content, "file", "clip.wav");
        foreach (var (name, value) in fields)
        {
            form.Add(new StringContent(value), name);
        }

        return form;
    }

    private static async Task<(HttpStatusCode Status, string Body)> PostAsync(GatewayHost host, string path, HttpContent content, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        foreach (var (name, value) in headers)
        {
            request.Headers.Add(name, value);
        }

        using var response = await host.Client.SendAsync(request, Ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
    }

    [Theory]
    [InlineData("transcriptions", "transcription")]
    [InlineData("translations", "translation")]
    public async Task X_bf_async_keeps_the_upload_and_the_poll_answers_the_sync_bytes(string route, string requestType)
    {
        await using var host = await StartLocalAsync();
        var path = "/openai/v1/audio/" + route;
        var audio = Encoding.ASCII.GetBytes("RIFF-async-audio-" + new string('a', 300));
        var (syncStatus, sync) = await PostAsync(host, path, Upload(audio, ("model", "local/whisper-1"), ("response_format", "text")));
        Assert.Equal(HttpStatusCode.OK, syncStatus);
        Assert.Contains("clip.wav", sync, StringComparison.Ordinal); // the local provider hears "{file name} ({bytes} bytes)"

        var (status, submitted) = await PostAsync(host, path, Upload(audio, ("model", "local/whisper-1"), ("response_format", "text")), ("x-bf-async", "true"));
        Assert.True(status == HttpStatusCode.OK, submitted);
        var id = JsonDocument.Parse(submitted).RootElement.GetProperty("id").GetString()!;
        Assert.False(JsonDocument.Parse(submitted).RootElement.TryGetProperty("audio", out _));

        var completed = await EventuallyAsync($"{route} job {id}", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Get, path, null, ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            Assert.True(poll.StatusCode == HttpStatusCode.OK, $"poll answered {(int)poll.StatusCode}: {json}");
            return json.TryGetProperty("audio", out _) ? (JsonElement?)json : null;
        });
        Assert.Equal(sync, Encoding.UTF8.GetString(completed!.Value.GetProperty("audio").GetBytesFromBase64()));
        Assert.StartsWith("text/plain", completed.Value.GetProperty("content_type").GetString(), StringComparison.Ordinal);
        Assert.Equal(requestType, completed.Value.GetProperty("extra_fields").GetProperty("request_type").GetString());
        Assert.Equal("local", completed.Value.GetProperty("extra_fields").GetProperty("provider").GetString());

        var (accepted, envelope) = await PostAsync(host, "/openai/v1/async/audio/" + route, Upload(audio, ("model", "local/whisper-1"), ("response_format", "text")));
        Assert.Equal(HttpStatusCode.Accepted, accepted);
        var envelopeId = JsonDocument.Parse(envelope).RootElement.GetProperty("id").GetString()!;
        var result = await EventuallyAsync($"{route} envelope {envelopeId}", async () =>
        {
            using var response = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/audio/{route}/{envelopeId}", null);
            var json = await ReadAsync(response);
            return json.GetProperty("status").GetString() == "completed" ? (JsonElement?)json : null;
        });
        Assert.Equal(sync, Encoding.UTF8.GetString(result!.Value.GetProperty("result").GetProperty("audio").GetBytesFromBase64()));
    }

    [Fact]
    public async Task Async_with_stream_is_a_400_and_nothing_is_queued()
    {
        await using var host = await StartLocalAsync();
        var (status, body) = await PostAsync(host, "/openai/v1/audio/transcriptions", Upload([1, 2, 3], ("model", "local/whisper-1"), ("stream", "true")), ("x-bf-async", "true"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        AssertError(JsonDocument.Parse(body).RootElement, 400, "async_stream_not_supported", "stream");
    }
}
