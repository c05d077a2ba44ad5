using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Caching;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Tests.Caching;

/// <summary>
/// The exact response cache (<c>Bifrost:Cache</c>) through HTTP, <see cref="IBifrostClient"/>, async jobs and batch lines,
/// against a fake OpenAI upstream (Kestrel on loopback, OpenAI's chat completions wire format:
/// https://platform.openai.com/docs/api-reference/chat) that numbers its answers, so a replayed answer is told from a new one
/// and every upstream call is counted.
/// </summary>
public sealed class ResponseCacheTests
{
    private const string Chat = "/openai/v1/chat/completions";
    private const string Model = "up/gpt-4o-mini";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A fake upstream whose n-th chat answer says <c>answer-n</c> (id <c>chatcmpl-n</c>); streams: three content chunks and a usage chunk.</summary>
    private static Task<FakeOpenAIUpstream> NumberedUpstreamAsync()
    {
        var calls = 0;
        return FakeOpenAIUpstream.StartAsync((context, request, ct) =>
        {
            var n = Interlocked.Increment(ref calls);
            var model = request.Body?.GetProperty("model").GetString();
            return request.Body?.TryGetProperty("stream", out var s) == true && s.ValueKind == JsonValueKind.True
                ? FakeResponses.Sse(
                    FakeResponses.Chunk(model, role: "assistant", content: "answer-", id: $"chatcmpl-{n}"),
                    FakeResponses.Chunk(model, content: n.ToString(System.Globalization.CultureInfo.InvariantCulture), id: $"chatcmpl-{n}"),
                    FakeResponses.Chunk(model, finishReason: "stop", id: $"chatcmpl-{n}"),
                    FakeResponses.UsageChunk(model, 5, 2, id: $"chatcmpl-{n}"))(context, request, ct)
                : FakeResponses.Json(200, FakeResponses.Completion(model, $"answer-{n}", id: $"chatcmpl-{n}"))(context, request, ct);
        });
    }

    private static Task<GatewayHost> StartAsync(FakeOpenAIUpstream upstream, Action<BifrostOptions>? configure = null, Action<IServiceCollection>? services = null) =>
        GatewayHost.StartAsync(
            options =>
            {
                options.Providers["up"] = new ProviderOptions { Type = "openai", BaseUrl = upstream.BaseUrl, MaxRetries = 0, Keys = [new ProviderKeyOptions { Value = "sk-upstream" }] };
                options.Cache.Enabled = true;
                configure?.Invoke(options);
            },
            services: services);

    private static JsonObject Body(string text = "hello", string model = Model) =>
        new() { ["model"] = model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) };

    private static async Task<(HttpResponseMessage Response, JsonElement Json)> PostAsync(GatewayHost host, string body, string? cacheKey = "k", params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (cacheKey is not null)
        {
            request.Headers.Add("x-bf-cache-key", cacheKey);
        }

        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var response = await host.Client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        return (response, JsonDocument.Parse(text).RootElement.Clone());
    }

    private static string Content(JsonElement completion) => completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    private static JsonElement Debug(JsonElement completion) => completion.GetProperty("extra_fields").GetProperty("cache_debug");

    private static string Status(HttpResponseMessage response) => response.Headers.TryGetValues("x-bf-cache-status", out var values) ? values.Single() : "(none)";

    [Fact]
    public async Task The_second_identical_request_is_answered_from_the_cache()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);
        using var metrics = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), "Bifrost.Middleware", ResponseCacheMetrics.Lookups);

        var (first, miss) = await PostAsync(host, Body().ToJsonString());
        var (second, hit) = await PostAsync(host, Body().ToJsonString());

        Assert.Equal(1, upstream.ChatCalls);
        Assert.Equal(("answer-1", "answer-1"), (Content(miss), Content(hit)));
        Assert.Equal("chatcmpl-1", hit.GetProperty("id").GetString());
        Assert.Equal(("miss", "hit"), (Status(first), Status(second)));
        Assert.False(Debug(miss).GetProperty("cache_hit").GetBoolean());
        Assert.False(Debug(miss).TryGetProperty("hit_type", out _));
        Assert.True(Debug(hit).GetProperty("cache_hit").GetBoolean());
        Assert.Equal("direct", Debug(hit).GetProperty("hit_type").GetString());
        Assert.Equal(32, Debug(hit).GetProperty("cache_id").GetString()!.Length);
        Assert.Equal(Debug(miss).GetProperty("cache_id").GetString(), Debug(hit).GetProperty("cache_id").GetString());
        Assert.Equal("up", hit.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(7, hit.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(0, hit.GetProperty("extra_fields").GetProperty("cost").GetDouble());
        Assert.True(miss.GetProperty("extra_fields").GetProperty("cost").GetDouble() > 0, "gpt-4o-mini is priced by the catalog");

        var lookups = metrics.GetMeasurementSnapshot();
        Assert.Equal(["miss", "hit"], lookups.Select(m => (string)m.Tags[ResponseCacheMetrics.OutcomeTag]!));
        Assert.All(lookups, m => Assert.Equal("chat_completion", m.Tags[ResponseCacheMetrics.RequestTypeTag]));
    }

    [Fact]
    public async Task Without_a_cache_key_nothing_is_cached_unless_a_default_key_is_configured()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using (var host = await StartAsync(upstream))
        {
            var (response, first) = await PostAsync(host, Body().ToJsonString(), cacheKey: null);
            var (_, second) = await PostAsync(host, Body().ToJsonString(), cacheKey: null);

            Assert.Equal(2, upstream.ChatCalls);
            Assert.Equal(("answer-1", "answer-2"), (Content(first), Content(second)));
            Assert.Equal("bypass", Status(response));
            Assert.False(first.GetProperty("extra_fields").TryGetProperty("cache_debug", out _));
        }

        await using (var host = await StartAsync(upstream, o => o.Cache.DefaultCacheKey = "everyone"))
        {
            var (_, third) = await PostAsync(host, Body().ToJsonString(), cacheKey: null);
            var (_, fourth) = await PostAsync(host, Body().ToJsonString(), cacheKey: null);

            Assert.Equal(3, upstream.ChatCalls);
            Assert.Equal(("answer-3", "answer-3"), (Content(third), Content(fourth)));
        }
    }

    [Fact]
    public async Task The_cache_key_header_partitions_entries()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);

        await PostAsync(host, Body().ToJsonString(), cacheKey: "a");
        var (_, other) = await PostAsync(host, Body().ToJsonString(), cacheKey: "b");
        var (_, again) = await PostAsync(host, Body().ToJsonString(), cacheKey: "a");

        Assert.Equal(2, upstream.ChatCalls);
        Assert.Equal(("answer-2", "answer-1"), (Content(other), Content(again)));
    }

    public static TheoryData<string, string> AnswerChangingPairs => new()
    {
        { """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0.2}""", """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0.3}""" },
        { """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"seed":1}""", """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"seed":2}""" },
        { """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}""", """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi!"}]}""" },
        { """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}""", """{"model":"up/gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}""" },
        { """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}""", """{"model":"up/gpt-4o","messages":[{"role":"user","content":"hi"}]}""" },
        { """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}""", """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":6}""" },
        { """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}}]}""", """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"b"}}]}""" },
    };

    [Theory]
    [MemberData(nameof(AnswerChangingPairs))]
    public async Task A_request_that_differs_in_an_answer_changing_field_misses(string first, string second)
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream, o => o.Cache.CacheNonZeroTemperature = true);

        await PostAsync(host, first);
        var (response, other) = await PostAsync(host, second);
        var (_, same) = await PostAsync(host, first);

        Assert.Equal(2, upstream.ChatCalls);
        Assert.Equal(("miss", "answer-2", "answer-1"), (Status(response), Content(other), Content(same)));
    }

    public static TheoryData<string> SameAnswerVariants => new()
    {
        """{"messages":[{"content":"hi","role":"user"}],"model":"up/gpt-4o-mini","temperature":0}""",
        """  { "model" : "up/gpt-4o-mini" ,  "temperature":0, "messages" : [ { "role" : "user" , "content" : "hi" } ] }  """,
        """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0,"user":"someone-else"}""",
        """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0,"metadata":{"trace":"x"},"store":false}""",
        """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"h\u0069"}],"temperature":0}""",
    };

    [Theory]
    [MemberData(nameof(SameAnswerVariants))]
    public async Task Field_order_whitespace_escapes_and_user_do_not_change_the_key(string variant)
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);

        await PostAsync(host, """{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0}""");
        var (response, json) = await PostAsync(host, variant);

        Assert.Equal(1, upstream.ChatCalls);
        Assert.Equal(("hit", "answer-1"), (Status(response), Content(json)));
    }

    [Fact]
    public async Task A_sampled_request_is_not_cached_unless_allowed_by_the_options_or_its_rule()
    {
        await using var upstream = await NumberedUpstreamAsync();
        var sampled = Body();
        sampled["temperature"] = 0.7;
        await using (var host = await StartAsync(upstream))
        {
            var (response, _) = await PostAsync(host, sampled.ToJsonString());
            await PostAsync(host, sampled.ToJsonString());
            Assert.Equal(2, upstream.ChatCalls);
            Assert.Equal("bypass", Status(response));
        }

        await using (var host = await StartAsync(upstream, o => o.Cache.Rules.Add(new ResponseCacheRule { Match = "up/*", CacheNonZeroTemperature = true })))
        {
            await PostAsync(host, sampled.ToJsonString());
            await PostAsync(host, sampled.ToJsonString());
            Assert.Equal(3, upstream.ChatCalls);
        }
    }

    [Fact]
    public async Task A_rule_turns_the_cache_off_for_a_model_and_the_first_matching_rule_applies()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream, o =>
        {
            o.Cache.Rules.Add(new ResponseCacheRule { Match = "up/gpt-4o-mini" });
            o.Cache.Rules.Add(new ResponseCacheRule { Match = "*", Enabled = false });
        });

        await PostAsync(host, Body(model: "up/gpt-4o").ToJsonString());
        var (response, _) = await PostAsync(host, Body(model: "up/gpt-4o").ToJsonString());
        await PostAsync(host, Body().ToJsonString());
        await PostAsync(host, Body().ToJsonString());

        Assert.Equal(3, upstream.ChatCalls);
        Assert.Equal("bypass", Status(response));
    }

    [Fact]
    public async Task Tenants_never_share_entries_unless_configured()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using (var host = await StartAsync(upstream))
        {
            var (_, a1) = await PostAsync(host, Body().ToJsonString(), "k", ("Authorization", "Bearer tenant-a"));
            var (_, b1) = await PostAsync(host, Body().ToJsonString(), "k", ("Authorization", "Bearer tenant-b"));
            var (_, a2) = await PostAsync(host, Body().ToJsonString(), "k", ("Authorization", "Bearer tenant-a"));
            var (_, b2) = await PostAsync(host, Body().ToJsonString(), "k", ("Authorization", "Bearer tenant-b"));

            Assert.Equal(2, upstream.ChatCalls);
            Assert.Equal(("answer-1", "answer-2", "answer-1", "answer-2"), (Content(a1), Content(b1), Content(a2), Content(b2)));
        }

        await using (var host = await StartAsync(upstream, o => o.Cache.ShareAcrossTenants = true))
        {
            var (_, a) = await PostAsync(host, Body().ToJsonString(), "k", ("Authorization", "Bearer tenant-a"));
            var (_, b) = await PostAsync(host, Body().ToJsonString(), "k", ("Authorization", "Bearer tenant-b"));

            Assert.Equal(3, upstream.ChatCalls);
            Assert.Equal(("answer-3", "answer-3"), (Content(a), Content(b)));
        }
    }

    [Fact]
    public async Task Virtual_keys_are_tenants_a_hit_costs_0_in_the_usage_ledger_and_a_refused_key_gets_no_cached_answer()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream, o =>
        {
            o.Governance.Mode = GovernanceMode.Required;
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = "sk-bf-tenant-aaaa" });
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "b", Value = "sk-bf-tenant-bbbb" });
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "c", Value = "sk-bf-tenant-cccc", AllowedModels = ["up/gpt-4o"] });
        });

        var (_, a1) = await PostAsync(host, Body().ToJsonString(), "k", ("x-bf-vk", "sk-bf-tenant-aaaa"));
        var (_, a2) = await PostAsync(host, Body().ToJsonString(), "k", ("x-bf-vk", "sk-bf-tenant-aaaa"));
        var (_, b1) = await PostAsync(host, Body().ToJsonString(), "k", ("x-bf-vk", "sk-bf-tenant-bbbb"));
        using var refused = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(Body().ToJsonString(), Encoding.UTF8, "application/json") };
        refused.Headers.Add("x-bf-cache-key", "k");
        refused.Headers.Add("x-bf-vk", "sk-bf-tenant-cccc");
        using var refusal = await host.Client.SendAsync(refused, Ct);

        Assert.Equal(HttpStatusCode.Forbidden, refusal.StatusCode);
        Assert.Equal(2, upstream.ChatCalls);
        Assert.Equal(("answer-1", "answer-1", "answer-2"), (Content(a1), Content(a2), Content(b1)));

        await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        var records = await host.Services.GetRequiredService<IGovernanceStore>().ListUsageAsync(new UsageQuery { VirtualKeyId = "a" }, Ct);
        Assert.Equal(2, records.Count);
        var costs = records.OrderBy(r => r.Time).Select(r => r.CostUsd).ToList();
        Assert.True(costs[0] > 0m, $"the miss is charged: {costs[0]}");
        Assert.Equal(0m, costs[1]);
        Assert.All(records, r => Assert.Equal(7, r.InputTokens + r.OutputTokens));
    }

    [Fact]
    public async Task A_cached_stream_is_replayed_with_the_same_chunks_done_and_usage_chunk()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);
        var body = Body();
        body["stream"] = true;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };

        var (firstStatus, first) = await StreamAsync(host, body.ToJsonString());
        var (secondStatus, second) = await StreamAsync(host, body.ToJsonString());

        Assert.Equal(1, upstream.ChatCalls);
        Assert.Equal(("miss", "hit"), (firstStatus, secondStatus));
        Assert.Equal(Sse.Done, first[^1]);
        Assert.Equal(Sse.Done, second[^1]);
        Assert.Equal(5, first.Count); // three content chunks, the usage chunk, [DONE]
        Assert.Equal(Normalize(first), Normalize(second));
        Assert.Equal("answer-1", string.Concat(second.SkipLast(1).Select(Sse.Json).SelectMany(c => c.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : null)));
        var usageChunk = Sse.Json(second[^2]);
        Assert.Equal(7, usageChunk.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(0, usageChunk.GetProperty("extra_fields").GetProperty("cost").GetDouble());
        Assert.True(usageChunk.GetProperty("extra_fields").GetProperty("cache_debug").GetProperty("cache_hit").GetBoolean());
        Assert.All(second.Take(3), c => Assert.False(Sse.Json(c).GetProperty("extra_fields").TryGetProperty("cache_debug", out _)));

        // A whole-answer call does not get the stream's entry (nor the other way round).
        await PostAsync(host, Body().ToJsonString());
        Assert.Equal(2, upstream.ChatCalls);
    }

    /// <summary>The data events with what a replay legitimately changes removed: latency, cost and cache_debug.</summary>
    private static List<string> Normalize(IReadOnlyList<string> events) =>
        [.. events.Select(e =>
        {
            if (e == Sse.Done)
            {
                return e;
            }

            var node = JsonNode.Parse(e)!.AsObject();
            if (node["extra_fields"] is JsonObject extra)
            {
                extra.Remove("latency");
                extra.Remove("cost");
                extra.Remove("cache_debug");
            }

            return node.ToJsonString();
        })];

    private static async Task<(string Status, IReadOnlyList<string> Events)> StreamAsync(GatewayHost host, string body, string cacheKey = "k")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("x-bf-cache-key", cacheKey);
        using var response = await host.Client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return (Status(response), Sse.ParseData(text));
    }

    [Fact]
    public async Task Errors_are_not_cached()
    {
        await using var upstream = await NumberedUpstreamAsync();
        upstream.Enqueue(FakeResponses.Error(500, "boom"));
        await using var host = await StartAsync(upstream);

        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(Body().ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add("x-bf-cache-key", "k");
        using var failed = await host.Client.SendAsync(request, Ct);
        var (_, ok) = await PostAsync(host, Body().ToJsonString());
        var (_, hit) = await PostAsync(host, Body().ToJsonString());

        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        Assert.Equal(2, upstream.ChatCalls); // the scripted error did not go through the numbering handler: its next answer is answer-1
        Assert.Equal(("answer-1", "answer-1"), (Content(ok), Content(hit)));
    }

    [Fact]
    public async Task A_stream_cut_by_the_caller_or_failing_midway_is_not_cached()
    {
        await using var upstream = await NumberedUpstreamAsync();
        var release = new TaskCompletionSource();
        upstream.Enqueue(
            FakeResponses.SseThenHang(FakeResponses.Chunk("gpt-4o-mini", role: "assistant", content: "partial")),
            FakeResponses.SseThenDrop(release.Task, FakeResponses.Chunk("gpt-4o-mini", role: "assistant", content: "dropped")));
        await using var host = await StartAsync(upstream);
        var body = Body();
        body["stream"] = true;

        // 1: the caller reads the first event and goes away.
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
            request.Headers.Add("x-bf-cache-key", "k");
            using var response = await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
            Assert.Contains("partial", await reader.ReadLineAsync(cts.Token), StringComparison.Ordinal);
            await cts.CancelAsync();
        }

        await (await upstream.WaitForRequestAsync()).Aborted.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        // 2: the upstream drops the connection after the first chunk reached the caller (an error event ends the stream).
        using (var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") })
        {
            request.Headers.Add("x-bf-cache-key", "k");
            using var response = await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
            Assert.Contains("dropped", await reader.ReadLineAsync(Ct), StringComparison.Ordinal);
            release.SetResult();
            var rest = await reader.ReadToEndAsync(Ct);
            Assert.Contains("\"error\"", rest, StringComparison.Ordinal);
            Assert.DoesNotContain(Sse.Done, rest, StringComparison.Ordinal);
        }

        // 3 and 4: a complete stream, then its replay.
        var (third, events) = await StreamAsync(host, body.ToJsonString());
        var (fourth, replay) = await StreamAsync(host, body.ToJsonString());

        Assert.Equal(3, upstream.ChatCalls);
        Assert.Equal(("miss", "hit"), (third, fourth));
        Assert.Equal(Normalize(events), Normalize(replay));
        Assert.Contains("\"content\":\"1\"", string.Join('\n', replay), StringComparison.Ordinal); // the numbering handler's first answer (the scripted two are not numbered)
    }

    [Fact]
    public async Task Entries_expire_after_their_ttl_by_the_injected_clock_and_a_request_may_set_its_own()
    {
        await using var upstream = await NumberedUpstreamAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var host = await StartAsync(upstream, o => o.Cache.Ttl = TimeSpan.FromMinutes(5), s => s.AddSingleton<TimeProvider>(clock));

        await PostAsync(host, Body().ToJsonString());
        clock.Advance(TimeSpan.FromMinutes(4));
        var (_, stillCached) = await PostAsync(host, Body().ToJsonString());
        clock.Advance(TimeSpan.FromMinutes(1));
        var (expired, fresh) = await PostAsync(host, Body().ToJsonString());

        Assert.Equal(("answer-1", "answer-2"), (Content(stillCached), Content(fresh)));
        Assert.Equal("miss", Status(expired));

        // x-bf-cache-ttl: 30s (Go duration, as Bifrost takes it).
        await PostAsync(host, Body("short").ToJsonString(), "k", ("x-bf-cache-ttl", "30s"));
        clock.Advance(TimeSpan.FromSeconds(29));
        var (_, shortHit) = await PostAsync(host, Body("short").ToJsonString());
        clock.Advance(TimeSpan.FromSeconds(1));
        var (_, shortFresh) = await PostAsync(host, Body("short").ToJsonString());

        Assert.Equal(("answer-3", "answer-4"), (Content(shortHit), Content(shortFresh)));
        Assert.Equal(4, upstream.ChatCalls);
    }

    [Fact]
    public async Task No_store_and_refresh_headers_and_cache_control_are_honoured()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);

        await PostAsync(host, Body().ToJsonString(), "k", ("x-bf-cache-no-store", "true"));
        await PostAsync(host, Body().ToJsonString(), "k", ("Cache-Control", "no-store"));
        var (_, stored) = await PostAsync(host, Body().ToJsonString());
        Assert.Equal(("answer-3", 3), (Content(stored), upstream.ChatCalls));

        var (refreshed, fresh) = await PostAsync(host, Body().ToJsonString(), "k", ("Cache-Control", "no-cache"));
        var (_, afterRefresh) = await PostAsync(host, Body().ToJsonString());
        var (_, viaHeader) = await PostAsync(host, Body().ToJsonString(), "k", ("x-bf-cache-refresh", "true"));

        Assert.Equal("miss", Status(refreshed));
        Assert.Equal(("answer-4", "answer-4", "answer-5"), (Content(fresh), Content(afterRefresh), Content(viaHeader)));

        // no-store still serves what is cached.
        var (hit, cached) = await PostAsync(host, Body().ToJsonString(), "k", ("x-bf-cache-no-store", "true"));
        Assert.Equal(("hit", "answer-5", 5), (Status(hit), Content(cached), upstream.ChatCalls));
    }

    [Fact]
    public async Task A_cache_key_longer_than_256_characters_is_a_400()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);
        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(Body().ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add("x-bf-cache-key", new string('k', 257));

        using var response = await host.Client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await GatewayHost.ReadJsonAsync(response)).GetProperty("error");
        Assert.Equal("invalid_cache_key", error.GetProperty("code").GetString());
        Assert.Equal(0, upstream.ChatCalls);
    }

    [Fact]
    public async Task An_answer_larger_than_the_entry_limit_is_served_but_not_cached()
    {
        await using var upstream = await NumberedUpstreamAsync();
        var big = new string('x', 2000);
        upstream.Enqueue(FakeResponses.Json(200, FakeResponses.Completion("gpt-4o-mini", big + "1")), FakeResponses.Json(200, FakeResponses.Completion("gpt-4o-mini", big + "2")));
        await using var host = await StartAsync(upstream, o => o.Cache.MaxEntryBytes = 1024);

        var (_, first) = await PostAsync(host, Body().ToJsonString());
        var (_, second) = await PostAsync(host, Body().ToJsonString());
        var (_, small) = await PostAsync(host, Body().ToJsonString());
        var (_, smallAgain) = await PostAsync(host, Body().ToJsonString());

        Assert.Equal((big + "1", big + "2"), (Content(first), Content(second)));
        Assert.Equal(("answer-1", "answer-1"), (Content(small), Content(smallAgain)));
        Assert.Equal(3, upstream.ChatCalls);
    }

    [Fact]
    public async Task A_hundred_identical_concurrent_requests_make_one_upstream_call()
    {
        var gate = new TaskCompletionSource();
        var calls = 0;
        await using var upstream = await FakeOpenAIUpstream.StartAsync(async (context, request, ct) =>
        {
            var n = Interlocked.Increment(ref calls);
            await gate.Task.WaitAsync(ct);
            await FakeResponses.Json(200, FakeResponses.Completion("gpt-4o-mini", $"answer-{n}"))(context, request, ct);
        });
        await using var host = await StartAsync(upstream);

        var requests = Enumerable.Range(0, 100).Select(_ => Task.Run(() => PostAsync(host, Body().ToJsonString()), Ct)).ToArray();
        await upstream.WaitForRequestAsync();
        await Task.Delay(500, Ct); // the other 99 arrive while the first is held upstream
        gate.SetResult();
        var answers = await Task.WhenAll(requests);

        Assert.Equal(1, upstream.ChatCalls);
        Assert.All(answers, a => Assert.Equal("answer-1", Content(a.Json)));
        Assert.Equal(1, answers.Count(a => Status(a.Response) == "miss"));
        Assert.Equal(99, answers.Count(a => Status(a.Response) == "hit"));
        foreach (var (response, _) in answers)
        {
            response.Dispose();
        }
    }

    [Fact]
    public async Task In_process_calls_are_cached_through_a_cache_control_scope()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);
        var client = host.Services.GetRequiredService<IBifrostClient>();

        var uncached1 = await client.ChatCompletionAsync(Model, "hello", Ct);
        var uncached2 = await client.ChatCompletionAsync(Model, "hello", Ct);
        ChatCompletionResponse first, second;
        using (BifrostCacheControl.Begin(new BifrostCacheControl { Key = "in-process" }))
        {
            first = await client.ChatCompletionAsync(Model, "hello", Ct);
            second = await client.ChatCompletionAsync(Model, "hello", Ct);
        }

        var after = await client.ChatCompletionAsync(Model, "hello", Ct);
        List<ChatCompletionChunk> streamed = [], replayed = [];
        using (BifrostCacheControl.Begin(new BifrostCacheControl { Key = "in-process", Tenant = "t1" }))
        {
            await foreach (var chunk in client.ChatCompletionStreamAsync(Model, "hello", Ct))
            {
                streamed.Add(chunk);
            }

            await foreach (var chunk in client.ChatCompletionStreamAsync(Model, "hello", Ct))
            {
                replayed.Add(chunk);
            }
        }

        Assert.Equal(5, upstream.ChatCalls);
        Assert.Equal(["answer-1", "answer-2", "answer-3", "answer-3", "answer-4"], new[] { uncached1, uncached2, first, second, after }.Select(r => r.Choices[0].Message?.Content?.ToString()));
        Assert.Null(uncached1.ExtraFields?.CacheDebug);
        Assert.True(second.ExtraFields!.CacheDebug!.CacheHit);
        Assert.False(first.ExtraFields!.CacheDebug!.CacheHit);
        Assert.Equal(streamed.Count, replayed.Count);
        Assert.Equal(
            streamed.Select(c => string.Concat(c.Choices.Select(x => x.Delta?.Content?.ToString()))),
            replayed.Select(c => string.Concat(c.Choices.Select(x => x.Delta?.Content?.ToString()))));
        Assert.True(replayed[^1].ExtraFields!.CacheDebug!.CacheHit);
    }

    [Fact]
    public async Task Async_jobs_and_batch_lines_are_cached_under_the_default_key_for_their_owner()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await FileBatchHost.StartAsync(o =>
        {
            o.Providers["up"] = new ProviderOptions { Type = "openai", BaseUrl = upstream.BaseUrl, MaxRetries = 0, Keys = [new ProviderKeyOptions { Value = "sk-upstream" }] };
            o.Cache.Enabled = true;
            o.Cache.DefaultCacheKey = "jobs";
        });

        // A synchronous call stores the answer for its owner (anonymous here)...
        var (_, sync) = await PostAsync(host.Host, Body().ToJsonString(), cacheKey: null);

        // ...an async job of the same owner is answered from it...
        using var submit = await host.PostJsonAsync("/openai/v1/async/chat/completions", Body().ToJsonString());
        var jobId = (await FileBatchHost.ExpectAsync(submit, HttpStatusCode.Accepted)).GetProperty("id").GetString()!;
        JsonElement envelope;
        var deadline = DateTime.UtcNow + FileBatchHost.Deadline;
        while (true)
        {
            using var poll = await host.GetAsync($"/openai/v1/async/chat/completions/{jobId}");
            if (poll.StatusCode == HttpStatusCode.OK)
            {
                envelope = await GatewayHost.ReadJsonAsync(poll);
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, "the async job did not finish");
            await Task.Delay(50, Ct);
        }

        var result = envelope.GetProperty("result");
        Assert.Equal("answer-1", Content(result));
        Assert.True(Debug(result).GetProperty("cache_hit").GetBoolean());

        // ...and so are the identical lines of a batch (one more upstream call for the line that differs).
        var lines = new[]
        {
            BatchLines.Chat("same-1", "hello", Model),
            BatchLines.Chat("same-2", "hello", Model),
            BatchLines.Chat("other", "something else", Model),
        };
        var file = await host.UploadOkAsync(BatchLines.Jsonl(lines));
        var batch = await host.CreateBatchAsync(file.GetProperty("id").GetString()!);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        var (output, errors) = await host.ResultsAsync(done);

        Assert.Empty(errors);
        var answers = output.ToDictionary(BatchLines.CustomId, l => Content(l.GetProperty("response").GetProperty("body")));
        Assert.Equal(("answer-1", "answer-1", "answer-2"), (answers["same-1"], answers["same-2"], answers["other"]));
        Assert.Equal(2, upstream.ChatCalls);
        Assert.Equal("answer-1", Content(sync));
    }

    [Fact]
    public async Task The_layer_is_absent_unless_enabled_and_sits_inside_governance()
    {
        await using (var off = await GatewayHost.StartAsync())
        {
            Assert.DoesNotContain("cache", off.Services.GetRequiredService<Bifrost.Middleware.Gateway.GatewayPipeline>().Layers);
        }

        await using var on = await GatewayHost.StartAsync(o =>
        {
            o.Cache.Enabled = true;
            o.Governance.Mode = GovernanceMode.Optional;
        });
        var layers = on.Services.GetRequiredService<Bifrost.Middleware.Gateway.GatewayPipeline>().Layers.ToList();
        Assert.True(layers.IndexOf("governance") >= 0 && layers.IndexOf("governance") < layers.IndexOf("cache"), string.Join(", ", layers));
        Assert.Equal("cache", layers[^1]);
    }

    public static TheoryData<Action<ResponseCacheOptions>, string> InvalidOptions => new()
    {
        { o => o.Rules.Add(new ResponseCacheRule { Match = "gpt-4o" }), "Bifrost:Cache:Rules:0:Match 'gpt-4o'" },
        { o => o.Rules.Add(new ResponseCacheRule { Match = "up/gpt*" }), "Bifrost:Cache:Rules:0:Match 'up/gpt*'" },
        { o => o.Rules.Add(new ResponseCacheRule { Match = "*", Ttl = TimeSpan.FromDays(2) }), "Bifrost:Cache:Rules:0:Ttl" },
        { o => o.MaxTtl = TimeSpan.FromSeconds(10), "Bifrost:Cache:MaxTtl" },
        { o => o.DefaultCacheKey = " ", "Bifrost:Cache:DefaultCacheKey" },
        { o => o.MaxEntryBytes = 10, "MaxEntryBytes" },
        { o => o.Ttl = TimeSpan.Zero, "Ttl" },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public async Task Invalid_cache_options_stop_the_host_naming_the_value(Action<ResponseCacheOptions> configure, string expected)
    {
        var error = await Assert.ThrowsAnyAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => GatewayHost.StartAsync(o =>
        {
            o.Cache.Enabled = true;
            configure(o.Cache);
        }));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("300", 300)]
    [InlineData("30s", 30)]
    [InlineData("5m", 300)]
    [InlineData("1h30m", 5400)]
    [InlineData("1.5", 1.5)]
    [InlineData("250ms", 0.25)]
    public void Ttl_headers_parse_as_bifrost_takes_them(string value, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Bifrost.Middleware.Endpoints.CacheHeaders.ParseTtl(value));

    [Theory]
    [InlineData("")]
    [InlineData("soon")]
    [InlineData("-5")]
    [InlineData("0")]
    [InlineData("5d")]
    [InlineData("99999999h")]
    public void Ttl_headers_that_do_not_parse_are_ignored(string value) => Assert.Null(Bifrost.Middleware.Endpoints.CacheHeaders.ParseTtl(value));

    [Fact]
    public void The_canonical_form_sorts_keys_drops_the_excluded_fields_and_keeps_nested_ones()
    {
        using var document = JsonDocument.Parse("""{"user":"u","b":{"user":"kept","a":1},"a":[2,{"z":1,"y":"\u0041"}],"stream":true,"stream_options":{},"metadata":{},"model":"m","seed":7}""");

        Assert.Equal("""{"a":[2,{"y":"A","z":1}],"b":{"a":1,"user":"kept"},"seed":7}""", CacheKeys.Canonical(document.RootElement));
    }
}
