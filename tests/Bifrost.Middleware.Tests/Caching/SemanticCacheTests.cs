using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Caching;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Extensions.VectorData;

namespace Bifrost.Middleware.Tests.Caching;

/// <summary>
/// The semantic cache (<c>Bifrost:Cache:Semantic</c>) through HTTP and <see cref="IBifrostClient"/>: the embeddings come from
/// the local provider (hashed character 3-grams, so a paraphrase is near: "What is the capital of France?" and "what's the
/// capital of france" have a cosine similarity of 0.8934, "What is the capital of Germany?" 0.755, an unrelated question
/// about 0), the answers from a fake OpenAI upstream (OpenAI's chat completions wire format:
/// https://platform.openai.com/docs/api-reference/chat) that numbers them, so a replayed answer is told from a new one.
/// </summary>
public sealed class SemanticCacheTests
{
    private const string Chat = "/openai/v1/chat/completions";
    private const string Model = "up/gpt-4o-mini";
    private const string France = "What is the capital of France?";
    private const string FranceParaphrase = "what's the capital of france";
    private const string Germany = "What is the capital of Germany?";
    private const string Bread = "How do I bake sourdough bread at home?";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

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
                options.Cache.Semantic.Enabled = true;
                options.Cache.Semantic.EmbeddingModel = "local/hash-embed";
                options.Cache.Semantic.Threshold = 0.85;
                configure?.Invoke(options);
            },
            services: services);

    private static JsonObject Body(string text, string model = Model, string? system = null)
    {
        var messages = new JsonArray();
        if (system is not null)
        {
            messages.Add(new JsonObject { ["role"] = "system", ["content"] = system });
        }

        messages.Add(new JsonObject { ["role"] = "user", ["content"] = text });
        return new JsonObject { ["model"] = model, ["messages"] = messages };
    }

    private static async Task<(string Status, JsonElement Json)> PostAsync(GatewayHost host, JsonObject body, string cacheKey = "k", params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add("x-bf-cache-key", cacheKey);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await host.Client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        var status = response.Headers.TryGetValues("x-bf-cache-status", out var values) ? values.Single() : "(none)";
        return (status, JsonDocument.Parse(text).RootElement.Clone());
    }

    private static string Content(JsonElement completion) => completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    private static JsonElement Debug(JsonElement completion) => completion.GetProperty("extra_fields").GetProperty("cache_debug");

    [Fact]
    public async Task A_paraphrase_is_answered_from_the_semantic_cache_and_unrelated_or_too_far_prompts_miss()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);
        using var metrics = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), "Bifrost.Middleware", ResponseCacheMetrics.Lookups);

        var (firstStatus, first) = await PostAsync(host, Body(France));
        var (paraphraseStatus, paraphrase) = await PostAsync(host, Body(FranceParaphrase));
        var (_, bread) = await PostAsync(host, Body(Bread));
        var (_, germany) = await PostAsync(host, Body(Germany));

        Assert.Equal(3, upstream.ChatCalls);
        Assert.Equal(("answer-1", "answer-1", "answer-2", "answer-3"), (Content(first), Content(paraphrase), Content(bread), Content(germany)));
        Assert.Equal(("miss", "hit"), (firstStatus, paraphraseStatus));

        var miss = Debug(first);
        Assert.False(miss.GetProperty("cache_hit").GetBoolean());
        Assert.Equal("local", miss.GetProperty("provider_used").GetString());
        Assert.Equal("hash-embed", miss.GetProperty("model_used").GetString());
        Assert.Equal(Bifrost.Middleware.Providers.Local.LocalProviderAdapter.CountPieces(France), miss.GetProperty("input_tokens").GetInt32()); // the local provider's count
        Assert.False(miss.TryGetProperty("similarity", out _));

        var hit = Debug(paraphrase);
        Assert.True(hit.GetProperty("cache_hit").GetBoolean());
        Assert.Equal("semantic", hit.GetProperty("hit_type").GetString());
        Assert.Equal(0.8934, hit.GetProperty("similarity").GetDouble(), 3);
        Assert.Equal(0.85, hit.GetProperty("threshold").GetDouble());
        Assert.Equal("local", hit.GetProperty("provider_used").GetString());
        Assert.Equal("hash-embed", hit.GetProperty("model_used").GetString());
        Assert.Equal(miss.GetProperty("cache_id").GetString(), hit.GetProperty("cache_id").GetString()); // the entry the first call stored
        Assert.Equal(0, paraphrase.GetProperty("extra_fields").GetProperty("cost").GetDouble());
        Assert.Equal("chatcmpl-1", paraphrase.GetProperty("id").GetString());
        Assert.False(Debug(bread).GetProperty("cache_hit").GetBoolean());
        Assert.False(Debug(germany).GetProperty("cache_hit").GetBoolean());

        var lookups = metrics.GetMeasurementSnapshot();
        Assert.Equal(["miss", "hit", "miss", "miss"], lookups.Select(m => (string)m.Tags[ResponseCacheMetrics.OutcomeTag]!));
        Assert.All(lookups, m => Assert.Equal("semantic", m.Tags[ResponseCacheMetrics.KindTag]));
        Assert.Equal(3, ((InMemorySemanticCacheCollection)host.Services.GetRequiredService<VectorStoreCollection<string, SemanticCacheEntry>>()).Count);
    }

    [Fact]
    public async Task The_default_threshold_is_0_95_and_a_request_may_raise_the_threshold_but_never_lower_it()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using (var strict = await StartAsync(upstream, o => o.Cache.Semantic = new SemanticCacheOptions { Enabled = true, EmbeddingModel = "local/hash-embed" }))
        {
            Assert.Equal(0.95, new SemanticCacheOptions().Threshold);
            await PostAsync(strict, Body(France));
            var (_, lowered) = await PostAsync(strict, Body(FranceParaphrase), "k", ("x-bf-cache-threshold", "0.5"));
            Assert.Equal("answer-2", Content(lowered)); // 0.8934 < 0.95: a lower header does not apply
        }

        await using var host = await StartAsync(upstream);
        await PostAsync(host, Body(France)); // answer-3
        var (raisedStatus, raised) = await PostAsync(host, Body(FranceParaphrase), "k", ("x-bf-cache-threshold", "0.9"));
        Assert.Equal(("miss", "answer-4"), (raisedStatus, Content(raised)));

        var (_, raisedLess) = await PostAsync(host, Body("What's the capital of France"), "k", ("x-bf-cache-threshold", "0.88"));
        Assert.Equal("semantic", Debug(raisedLess).GetProperty("hit_type").GetString());
        Assert.Equal(0.88, Debug(raisedLess).GetProperty("threshold").GetDouble());
        Assert.Equal(4, upstream.ChatCalls);
    }

    [Fact]
    public async Task Non_message_parameters_the_model_the_cache_key_the_tenant_and_the_other_messages_must_match_exactly()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);
        await PostAsync(host, Body(France));

        var otherParameter = Body(FranceParaphrase);
        otherParameter["max_tokens"] = 50;
        var (_, a) = await PostAsync(host, otherParameter);
        var (_, b) = await PostAsync(host, Body(FranceParaphrase, model: "up/gpt-4o"));
        var (_, c) = await PostAsync(host, Body(FranceParaphrase), cacheKey: "other-key");
        var (_, d) = await PostAsync(host, Body(FranceParaphrase, system: "Answer in French."));
        using (BifrostCacheControl.Begin(new() { Key = "k", Tenant = "someone-else" }))
        {
            var response = await host.Services.GetRequiredService<IBifrostClient>().ChatCompletionAsync(Model, FranceParaphrase, Ct);
            Assert.Equal("answer-6", response.Choices[0].Message?.Content?.ToString());
        }

        Assert.Equal(("answer-2", "answer-3", "answer-4", "answer-5"), (Content(a), Content(b), Content(c), Content(d)));
        Assert.Equal(6, upstream.ChatCalls);

        // The same changed parameter on both sides hits.
        var again = Body("What's the capital of France");
        again["max_tokens"] = 50;
        var (_, e) = await PostAsync(host, again);
        Assert.Equal(("answer-2", "semantic"), (Content(e), Debug(e).GetProperty("hit_type").GetString()));
    }

    [Fact]
    public async Task All_messages_mode_matches_the_whole_conversation_by_meaning()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream, o => o.Cache.Semantic.Text = SemanticCacheText.AllMessages);
        await PostAsync(host, Body(France, system: "You are a geography tutor."));
        var (_, near) = await PostAsync(host, Body(FranceParaphrase, system: "you are a geography tutor"));
        var (_, far) = await PostAsync(host, Body(France, system: "Reply only with emojis, never with words, whatever the user asks."));

        Assert.Equal(("answer-1", "semantic"), (Content(near), Debug(near).GetProperty("hit_type").GetString()));
        Assert.Equal("answer-2", Content(far));
        Assert.Equal(2, upstream.ChatCalls);
    }

    [Fact]
    public async Task A_streamed_answer_is_stored_once_complete_and_replayed_as_a_stream_to_a_paraphrase()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);
        JsonObject Streamed(string text)
        {
            var body = Body(text);
            body["stream"] = true;
            body["stream_options"] = new JsonObject { ["include_usage"] = true };
            return body;
        }

        var (firstStatus, first) = await StreamAsync(host, Streamed(France));
        var (secondStatus, second) = await StreamAsync(host, Streamed(FranceParaphrase));

        Assert.Equal(1, upstream.ChatCalls);
        Assert.Equal(("miss", "hit"), (firstStatus, secondStatus));
        Assert.Equal(5, second.Count);
        Assert.Equal(Sse.Done, second[^1]);
        Assert.Equal("answer-1", string.Concat(second.SkipLast(1).Select(Sse.Json).SelectMany(c => c.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : null)));
        var usageChunk = Sse.Json(second[^2]);
        var debug = usageChunk.GetProperty("extra_fields").GetProperty("cache_debug");
        Assert.Equal("semantic", debug.GetProperty("hit_type").GetString());
        Assert.Equal(0.8934, debug.GetProperty("similarity").GetDouble(), 3);
        Assert.Equal(0, usageChunk.GetProperty("extra_fields").GetProperty("cost").GetDouble());

        // A whole-answer paraphrase does not get the stream's entry.
        var (_, whole) = await PostAsync(host, Body(FranceParaphrase));
        Assert.Equal("answer-2", Content(whole));
    }

    private static async Task<(string Status, IReadOnlyList<string> Events)> StreamAsync(GatewayHost host, JsonObject body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add("x-bf-cache-key", "k");
        using var response = await host.Client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return (response.Headers.TryGetValues("x-bf-cache-status", out var values) ? values.Single() : "(none)", Sse.ParseData(text));
    }

    [Fact]
    public async Task A_failing_embedding_call_lets_the_request_go_on_without_the_semantic_cache_logged_and_counted()
    {
        await using var upstream = await NumberedUpstreamAsync();
        // 5000 dimensions: the local provider refuses (at most 3072), so every embedding call fails with a 400.
        await using var host = await StartAsync(upstream, o => o.Cache.Semantic.Dimensions = 5000);
        using var errors = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), "Bifrost.Middleware", ResponseCacheMetrics.SemanticErrors);

        var (_, first) = await PostAsync(host, Body(France));
        var (_, second) = await PostAsync(host, Body(FranceParaphrase));
        var (exactStatus, exact) = await PostAsync(host, Body(France));

        Assert.Equal(("answer-1", "answer-2"), (Content(first), Content(second)));
        Assert.Equal(("hit", "direct"), (exactStatus, Debug(exact).GetProperty("hit_type").GetString())); // the exact cache still works
        Assert.False(Debug(first).TryGetProperty("provider_used", out _));
        var measurements = errors.GetMeasurementSnapshot();
        Assert.Equal(2, measurements.Count);
        Assert.All(measurements, m => Assert.Equal("embedding", m.Tags[ResponseCacheMetrics.StageTag]));
        Assert.Equal(2, upstream.ChatCalls);
        Assert.Equal(0, ((InMemorySemanticCacheCollection)host.Services.GetRequiredService<VectorStoreCollection<string, SemanticCacheEntry>>()).Count);
    }

    [Fact]
    public async Task The_cache_type_header_picks_direct_or_semantic_only()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream);
        await PostAsync(host, Body(France));

        var (_, direct) = await PostAsync(host, Body(FranceParaphrase), "k", ("x-bf-cache-type", "direct"));
        Assert.Equal("answer-2", Content(direct));
        Assert.False(Debug(direct).TryGetProperty("provider_used", out _)); // no embedding call was made

        var (_, semanticOnly) = await PostAsync(host, Body(France), "k", ("x-bf-cache-type", "semantic"));
        Assert.Equal("semantic", Debug(semanticOnly).GetProperty("hit_type").GetString()); // the identical text found by meaning (similarity 1)
        Assert.Equal(1.0, Debug(semanticOnly).GetProperty("similarity").GetDouble(), 6);
        Assert.Equal(2, upstream.ChatCalls);
    }

    [Fact]
    public async Task A_rule_turns_semantic_lookups_on_for_one_model_with_its_own_threshold()
    {
        await using var upstream = await NumberedUpstreamAsync();
        await using var host = await StartAsync(upstream, o =>
        {
            o.Cache.Semantic.Enabled = false;
            o.Cache.Rules = [new ResponseCacheRule { Match = "up/gpt-4o", Semantic = true, SemanticThreshold = 0.7 }];
        });

        await PostAsync(host, Body(France, model: "up/gpt-4o"));
        var (_, germany) = await PostAsync(host, Body(Germany, model: "up/gpt-4o")); // 0.755 >= 0.7
        await PostAsync(host, Body(France));
        var (_, other) = await PostAsync(host, Body(FranceParaphrase));

        Assert.Equal(("answer-1", "semantic"), (Content(germany), Debug(germany).GetProperty("hit_type").GetString()));
        Assert.Equal("answer-3", Content(other)); // gpt-4o-mini: no rule, semantic off
        Assert.Equal(3, upstream.ChatCalls);
    }

    [Fact]
    public async Task Semantic_entries_expire_with_the_ttl_by_the_injected_clock()
    {
        await using var upstream = await NumberedUpstreamAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var host = await StartAsync(upstream, o => o.Cache.Ttl = TimeSpan.FromMinutes(5), s => s.AddSingleton<TimeProvider>(clock));

        await PostAsync(host, Body(France));
        clock.Advance(TimeSpan.FromMinutes(4));
        var (_, within) = await PostAsync(host, Body(FranceParaphrase));
        clock.Advance(TimeSpan.FromMinutes(1));
        var (_, after) = await PostAsync(host, Body("What's the capital of France"));

        Assert.Equal(("answer-1", "answer-2"), (Content(within), Content(after)));
    }

    [Fact]
    public async Task The_in_memory_collection_evicts_by_ttl_and_by_size_and_filters_by_partition()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        using var collection = new InMemorySemanticCacheCollection(clock, maxEntries: 2);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        float[] x = [1, 0], y = [0.6f, 0.8f];
        await collection.UpsertAsync(new SemanticCacheEntry { Key = "a", Partition = "p", ExpiresAt = now + 1000, Payload = [1], Embedding = x }, Ct);
        await collection.UpsertAsync(new SemanticCacheEntry { Key = "b", Partition = "q", ExpiresAt = now + 5000, Payload = [2], Embedding = x }, Ct);

        var inP = await collection.SearchAsync(new ReadOnlyMemory<float>(y), 5, new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Partition == "p" }, Ct).ToListAsync(Ct);
        Assert.Equal("a", Assert.Single(inP).Record.Key);
        Assert.Equal(0.6, inP[0].Score!.Value, 5);

        await collection.UpsertAsync(new SemanticCacheEntry { Key = "c", Partition = "p", ExpiresAt = now + 3000, Payload = [3], Embedding = y }, Ct);
        Assert.Equal(2, collection.Count); // over 2: "a" expires first and goes
        Assert.Null(await collection.GetAsync("a", cancellationToken: Ct));

        clock.Advance(TimeSpan.FromSeconds(4));
        var afterTtl = await collection.SearchAsync(new ReadOnlyMemory<float>(y), 5, cancellationToken: Ct).ToListAsync(Ct);
        Assert.Equal("b", Assert.Single(afterTtl).Record.Key); // "c" expired
    }

    [Fact]
    public async Task Turning_the_semantic_cache_on_without_an_embedding_model_stops_the_host()
    {
        var error = await Assert.ThrowsAnyAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => GatewayHost.StartAsync(o =>
        {
            o.Cache.Enabled = true;
            o.Cache.Semantic.Enabled = true;
        }));

        Assert.Contains("Bifrost:Cache:Semantic:EmbeddingModel", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0.9", 0.9)]
    [InlineData("1.5", 1.0)]
    [InlineData("-1", 0.0)]
    public void Threshold_headers_are_clamped_as_bifrost_takes_them(string value, double expected) =>
        Assert.Equal(expected, Bifrost.Middleware.Endpoints.CacheHeaders.ParseThreshold(value));

    [Fact]
    public void Only_the_text_of_the_last_user_message_is_left_out_of_the_partition()
    {
        using var a = JsonDocument.Parse("""{"model":"m","temperature":0,"messages":[{"role":"system","content":"s"},{"role":"user","content":"one"},{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"text","text":"two"},{"type":"text","text":"three"}]}]}""");
        var split = SemanticCacheRequestText.Split("chat_completion", a.RootElement, SemanticCacheText.LastUserMessage)!.Value;
        Assert.Equal("two\nthree", split.Text);
        Assert.Equal("""{"messages":[{"content":"s","role":"system"},{"content":"one","role":"user"},{"content":"x","role":"assistant"},{"role":"user"}],"temperature":0}""", CacheKeys.Canonical(split.Others));

        using var image = JsonDocument.Parse("""{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}""");
        Assert.Null(SemanticCacheRequestText.Split("chat_completion", image.RootElement, SemanticCacheText.LastUserMessage));
    }
}
