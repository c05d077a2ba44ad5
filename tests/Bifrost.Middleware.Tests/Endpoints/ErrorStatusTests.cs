using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Inference;
using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Upstream;

namespace Bifrost.Middleware.Tests.Endpoints;

/// <summary>A local gateway whose scripted provider never retries, with async jobs of one attempt.</summary>
public sealed class ScriptedStatusFixture : IAsyncLifetime
{
    public GatewayHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await GatewayHost.StartAsync(ErrorStatusTests.Configure);

    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>
/// A provider status that is not an HTTP error status (0, -1, 999, 1xx, 2xx or 3xx on an error) is answered as 502; real
/// 4xx/5xx pass through as they are — the same on the sync answer, the stream (before and after its first chunk), the async
/// job (its poll status and the envelope's <c>status_code</c>) and the batch error line.
/// </summary>
public sealed class ErrorStatusTests(ScriptedStatusFixture fixture) : IClassFixture<ScriptedStatusFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<int, int> Statuses() => new()
    {
        { 0, 502 },
        { -1, 502 },
        { 999, 502 },
        { 600, 502 },
        { 100, 502 },
        { 200, 502 },
        { 201, 502 },
        { 302, 502 },
        { 399, 502 },
        { 400, 400 },
        { 404, 404 },
        { 418, 418 },
        { 503, 503 },
        { 599, 599 },
    };

    internal static void Configure(BifrostOptions options)
    {
        options.Providers["local"] = new ProviderOptions { Type = "local", MaxRetries = 0 };
        options.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
        options.Jobs.MaxAttempts = 1;
    }

    private static string Chat(int status, bool stream = false, int? failAfterChunks = null)
    {
        var metadata = $"\"local_status\":\"{status}\"" + (failAfterChunks is { } n ? $",\"local_fail_after_chunks\":\"{n}\"" : string.Empty);
        return "{\"model\":\"local/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there friend\"}]"
            + (stream ? ",\"stream\":true" : string.Empty) + ",\"metadata\":{" + metadata + "}}";
    }

    [Theory]
    [MemberData(nameof(Statuses))]
    public async Task Sync_and_stream_before_the_first_chunk(int scripted, int expected)
    {
        foreach (var stream in new[] { false, true })
        {
            using var response = await fixture.Host.PostJsonAsync("/openai/v1/chat/completions", Chat(scripted, stream), Ct);
            var json = await InferenceKit.ReadAsync(response);
            Assert.True(expected == (int)response.StatusCode, $"stream={stream}: {(int)response.StatusCode} {json}");
            UpstreamGateway.AssertProviderError(json, expected);
            if (expected == 502)
            {
                Assert.Equal("api_error", json.GetProperty("error").GetProperty("type").GetString());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Statuses))]
    public async Task Stream_after_the_first_chunk(int scripted, int expected)
    {
        using var response = await fixture.Host.PostJsonAsync("/openai/v1/chat/completions", Chat(scripted, stream: true, failAfterChunks: 1), Ct);
        var (chunks, done) = await InferenceKit.ReadDataStreamAsync(response);
        Assert.False(done);
        var error = chunks[^1];
        Assert.True(chunks.Count >= 2);
        UpstreamGateway.AssertProviderError(error, expected);
    }

    [Theory]
    [MemberData(nameof(Statuses))]
    public async Task Async_job_poll_and_envelope(int scripted, int expected)
    {
        using var submit = await fixture.Host.PostJsonAsync("/openai/v1/async/chat/completions", Chat(scripted), Ct);
        var id = (await InferenceKit.ReadAsync(submit)).GetProperty("id").GetString()!;
        var envelope = (await InferenceKit.EventuallyAsync<JsonElement?>("the job to finish", async () =>
        {
            using var get = await fixture.Host.Client.GetAsync($"/openai/v1/async/chat/completions/{id}", Ct);
            var json = await InferenceKit.ReadAsync(get);
            return json.GetProperty("status").GetString() is "completed" or "failed" ? json : null;
        }))!.Value;
        Assert.Equal("failed", envelope.GetProperty("status").GetString());
        Assert.Equal(expected, envelope.GetProperty("status_code").GetInt32());
        UpstreamGateway.AssertProviderError(envelope.GetProperty("error"), expected);

        using var poll = await InferenceKit.SendAsync(fixture.Host, HttpMethod.Post, "/openai/v1/chat/completions", "{}", ("x-bf-async-id", id));
        var polled = await InferenceKit.ReadAsync(poll);
        Assert.Equal(expected, (int)poll.StatusCode);
        UpstreamGateway.AssertProviderError(polled, expected);
    }

    [Fact]
    public async Task Batch_error_lines()
    {
        await using var host = await FileBatchHost.StartAsync(Configure);
        var statuses = Statuses();
        var lines = statuses.Select(row => BatchLines.Chat($"s{row.Data.Item1}", metadata: [("local_status", row.Data.Item1.ToString(System.Globalization.CultureInfo.InvariantCulture))])).ToList();
        var batch = await host.StartBatchAsync(lines);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        var (output, errors) = await host.ResultsAsync(done);
        Assert.Empty(output);
        foreach (var row in statuses)
        {
            var (scripted, expected) = row.Data;
            var line = Assert.Single(errors, e => BatchLines.CustomId(e) == $"s{scripted}");
            Assert.Equal(expected, line.GetProperty("response").GetProperty("status_code").GetInt32());
            UpstreamGateway.AssertProviderError(line.GetProperty("response").GetProperty("body"), expected);
        }
    }

    [Theory]
    [InlineData(302, 502)]
    [InlineData(999, 502)]
    [InlineData(304, 502)]
    [InlineData(451, 451)]
    public async Task Upstream_http_statuses(int upstreamStatus, int expected)
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(upstreamStatus, "odd", headers: ("Location", "http://127.0.0.1:1/elsewhere")));
        await using var host = await UpstreamGateway.StartAsync(upstream, p => p.MaxRetries = 0);
        foreach (var stream in new[] { false, true })
        {
            using var response = await host.PostChatAsync(UpstreamGateway.Chat(stream: stream));
            var json = await InferenceKit.ReadAsync(response);
            Assert.True(expected == (int)response.StatusCode, $"{(int)response.StatusCode} {json}");
            UpstreamGateway.AssertProviderError(json, expected);
        }
    }

    [Theory]
    [InlineData(200, 502)]
    [InlineData(0, 502)]
    [InlineData(1000, 502)]
    [InlineData(529, 529)]
    public async Task Upstream_stream_error_event_statuses(int eventStatus, int expected)
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Sse(
            FakeResponses.Chunk("m", role: "assistant", content: "hi"),
            "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"status_code\":" + eventStatus.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}}"));
        await using var host = await UpstreamGateway.StartAsync(upstream, p => p.MaxRetries = 0);
        using var response = await host.PostChatAsync(UpstreamGateway.Chat(stream: true));
        var text = await response.Content.ReadAsStringAsync(Ct);
        var events = UpstreamGateway.ParseSse(text);
        var error = UpstreamGateway.Parse(response.StatusCode == HttpStatusCode.OK ? events[^1] : text);
        UpstreamGateway.AssertProviderError(error, expected);
        Assert.True(response.StatusCode is HttpStatusCode.OK || (int)response.StatusCode == expected, text);
    }
}
