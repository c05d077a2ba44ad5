using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Tests.Anthropic;

namespace Bifrost.Middleware.Tests.Caching;

/// <summary>
/// The response cache on the Anthropic-compatible route (<c>POST /anthropic/v1/messages</c>, whole answers and streams): the
/// <c>x-bf-cache-*</c> headers apply there too, an identical request is an exact hit and a paraphrase a semantic one, a
/// completed stream is replayed as the same events, against a fake Anthropic upstream speaking Anthropic's Messages wire
/// format (https://docs.anthropic.com/en/api/messages, streams: https://docs.anthropic.com/en/api/messages-streaming) that
/// echoes the last user text and numbers its message ids.
/// </summary>
public sealed class AnthropicCacheTests : IAsyncLifetime
{
    private FakeAnthropicUpstream _upstream = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _upstream = await FakeAnthropicUpstream.StartAsync();

    public ValueTask DisposeAsync() => _upstream.DisposeAsync();

    private static async Task<(string Status, JsonElement Json)> MessageAsync(AnthropicInboundTests.InboundHost host, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/anthropic/v1/messages")
        {
            Content = new StringContent(
                JsonSerializer.Serialize(new { model = "anthropic/claude-sonnet-4-5", max_tokens = 64, messages = new[] { new { role = "user", content = text } } }),
                Encoding.UTF8,
                "application/json"),
        };
        request.Headers.TryAddWithoutValidation("anthropic-version", "2023-06-01");
        request.Headers.Add("x-bf-cache-key", "k");
        using var response = await host.Client.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return (response.Headers.TryGetValues("x-bf-cache-status", out var values) ? values.Single() : "(none)", JsonDocument.Parse(body).RootElement.Clone());
    }

    private static string Text(JsonElement message) => message.GetProperty("content")[0].GetProperty("text").GetString()!;

    [Fact]
    public async Task Identical_messages_hit_exactly_and_paraphrases_semantically()
    {
        await using var host = await AnthropicInboundTests.InboundHost.StartAsync(_upstream.BaseUrl, o =>
        {
            o.Cache.Enabled = true;
            o.Cache.Semantic.Enabled = true;
            o.Cache.Semantic.EmbeddingModel = "local/hash-embed";
            o.Cache.Semantic.Threshold = 0.85;
        });

        var (firstStatus, first) = await MessageAsync(host, "What is the capital of France?");
        var (sameStatus, same) = await MessageAsync(host, "What is the capital of France?");
        var (nearStatus, near) = await MessageAsync(host, "what's the capital of france");
        var (farStatus, far) = await MessageAsync(host, "How do I bake sourdough bread at home?");

        Assert.Equal(("miss", "hit", "hit", "miss"), (firstStatus, sameStatus, nearStatus, farStatus));
        Assert.Equal(2, _upstream.MessageRequests.Count());
        Assert.Equal("echo: What is the capital of France?", Text(first));
        Assert.Equal(first.GetProperty("id").GetString(), same.GetProperty("id").GetString());
        Assert.Equal(first.GetProperty("id").GetString(), near.GetProperty("id").GetString());
        Assert.Equal("echo: What is the capital of France?", Text(near));
        Assert.Equal("echo: How do I bake sourdough bread at home?", Text(far));
    }

    private static HttpRequestMessage StreamRequest(string text, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/anthropic/v1/messages")
        {
            Content = new StringContent(
                JsonSerializer.Serialize(new { model = "anthropic/claude-sonnet-4-5", max_tokens = 64, stream = true, messages = new[] { new { role = "user", content = text } } }),
                Encoding.UTF8,
                "application/json"),
        };
        request.Headers.TryAddWithoutValidation("anthropic-version", "2023-06-01");
        request.Headers.Add("x-bf-cache-key", "k");
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return request;
    }

    /// <summary>A streamed call: its cache status and its body as the client read it.</summary>
    private static async Task<(string Status, string Body)> StreamAsync(AnthropicInboundTests.InboundHost host, string text, params (string Name, string Value)[] headers)
    {
        using var request = StreamRequest(text, headers);
        using var response = await host.Client.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return (response.Headers.TryGetValues("x-bf-cache-status", out var values) ? values.Single() : "(none)", body);
    }

    /// <summary>The events of an SSE body: (event name, data).</summary>
    private static List<(string Name, string Data)> Events(string body)
    {
        var events = new List<(string, string)>();
        foreach (var block in body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            Assert.Equal(2, lines.Length);
            Assert.StartsWith("event: ", lines[0], StringComparison.Ordinal);
            Assert.StartsWith("data: ", lines[1], StringComparison.Ordinal);
            events.Add((lines[0]["event: ".Length..], lines[1]["data: ".Length..]));
        }

        return events;
    }

    private static string StreamText(string body) =>
        string.Concat(Events(body).Where(e => e.Name == "content_block_delta").Select(e => JsonNode.Parse(e.Data)!["delta"]!["text"]!.GetValue<string>()));

    private static string MessageId(string body) => JsonNode.Parse(Events(body)[0].Data)!["message"]!["id"]!.GetValue<string>();

    [Fact]
    public async Task A_completed_messages_stream_is_replayed_as_the_same_events_and_paraphrases_hit_semantically()
    {
        await using var host = await AnthropicInboundTests.InboundHost.StartAsync(_upstream.BaseUrl, o =>
        {
            o.Cache.Enabled = true;
            o.Cache.Semantic.Enabled = true;
            o.Cache.Semantic.EmbeddingModel = "local/hash-embed";
            o.Cache.Semantic.Threshold = 0.85;
        });

        var (firstStatus, first) = await StreamAsync(host, "What is the capital of France?");
        var (sameStatus, same) = await StreamAsync(host, "What is the capital of France?");
        var (nearStatus, near) = await StreamAsync(host, "what's the capital of france");
        var (farStatus, far) = await StreamAsync(host, "How do I bake sourdough bread at home?");

        Assert.Equal(("miss", "hit", "hit", "miss"), (firstStatus, sameStatus, nearStatus, farStatus));
        Assert.Equal(2, _upstream.MessageRequests.Count());
        Assert.Equal(
            ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"],
            Events(first).Select(e => e.Name));
        Assert.Equal(Events(first), Events(same)); // names and data, in order: Anthropic's wire has no extra_fields to differ
        Assert.Equal(first, same);
        Assert.Equal(first, near);
        Assert.Equal("echo: What is the capital of France?", StreamText(near));
        Assert.Equal("echo: How do I bake sourdough bread at home?", StreamText(far));
        Assert.NotEqual(MessageId(first), MessageId(far));

        // The whole answer does not get the stream's entry.
        var (wholeStatus, _) = await MessageAsync(host, "What is the capital of France?");
        Assert.Equal("miss", wholeStatus);
    }

    [Fact]
    public async Task A_messages_stream_cut_failed_or_left_by_the_caller_stores_nothing()
    {
        var calls = 0;
        _upstream.RawStream = message => Interlocked.Increment(ref calls) switch
        {
            1 => FakeAnthropicUpstream.Events(message).SkipLast(1), // the connection closes before message_stop
            2 => [.. FakeAnthropicUpstream.Events(message).Take(4), "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"],
            _ => FakeAnthropicUpstream.Events(message),
        };
        await using var host = await AnthropicInboundTests.InboundHost.StartAsync(_upstream.BaseUrl, o => o.Cache.Enabled = true);
        const string Question = "What is the capital of France?";

        // 1 and 2: cut and failed upstream streams reach the caller as they end (an error event), and are not stored.
        var (cutStatus, cut) = await StreamAsync(host, Question);
        var (failedStatus, failed) = await StreamAsync(host, Question);
        Assert.Equal(("miss", "miss"), (cutStatus, failedStatus));
        Assert.Equal("error", Events(cut)[^1].Name);
        Assert.Equal("error", Events(failed)[^1].Name);

        // 3: the caller reads the first event and goes away (the upstream waits between events).
        _upstream.Script = new Bifrost.Middleware.Testing.ProviderScript { Reply = "echo: " + Question, ChunkDelay = TimeSpan.FromMinutes(5) };
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            using var request = StreamRequest(Question);
            using var response = await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
            Assert.Equal("event: message_start", await reader.ReadLineAsync(cts.Token));
            await cts.CancelAsync();
        }

        _upstream.Script = null;

        // 4 and 5: each of those reached the upstream; a complete stream is stored and replayed.
        var (fourth, complete) = await StreamAsync(host, Question);
        var (fifth, replay) = await StreamAsync(host, Question);

        Assert.Equal(4, _upstream.MessageRequests.Count());
        Assert.Equal(("miss", "hit"), (fourth, fifth));
        Assert.Equal(complete, replay);
        Assert.Equal("message_stop", Events(replay)[^1].Name);
    }

    [Fact]
    public async Task A_cached_messages_stream_is_per_virtual_key_and_costs_0_in_the_usage_ledger_with_its_tokens()
    {
        await using var host = await AnthropicInboundTests.InboundHost.StartAsync(_upstream.BaseUrl, o =>
        {
            o.Cache.Enabled = true;
            o.Governance.Mode = GovernanceMode.Required;
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = "sk-bf-tenant-aaaa" });
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "b", Value = "sk-bf-tenant-bbbb" });
        });

        var (_, a1) = await StreamAsync(host, "What is the capital of France?", ("x-bf-vk", "sk-bf-tenant-aaaa"));
        var (a2Status, a2) = await StreamAsync(host, "What is the capital of France?", ("x-bf-vk", "sk-bf-tenant-aaaa"));
        var (b1Status, b1) = await StreamAsync(host, "What is the capital of France?", ("x-bf-vk", "sk-bf-tenant-bbbb"));

        Assert.Equal(("hit", "miss"), (a2Status, b1Status));
        Assert.Equal(2, _upstream.MessageRequests.Count());
        Assert.Equal(a1, a2);
        Assert.NotEqual(MessageId(a1), MessageId(b1));

        await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        var records = (await host.Services.GetRequiredService<IGovernanceStore>().ListUsageAsync(new UsageQuery { VirtualKeyId = "a" }, Ct)).OrderBy(r => r.Time).ToList();
        Assert.Equal(2, records.Count);
        Assert.True(records[0].CostUsd > 0m, $"the miss is charged: {records[0].CostUsd}");
        Assert.Equal(0m, records[1].CostUsd);
        Assert.All(records, r => Assert.Equal((12L, 9L), (r.InputTokens, r.OutputTokens)));
    }
}
