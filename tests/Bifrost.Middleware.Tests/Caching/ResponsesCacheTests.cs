#pragma warning disable OPENAI001 // the Responses client is experimental in the SDK
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Caching;
using Bifrost.Middleware.Tests.Infrastructure;
using OpenAI;
using OpenAI.Responses;

namespace Bifrost.Middleware.Tests.Caching;

/// <summary>
/// The response cache on the Responses API: streams (<c>stream: true</c>) stored once they end with
/// <c>response.completed</c> and replayed as the same <c>event:</c>/<c>data:</c> sequence, and semantic lookups on the
/// <c>input</c> text (whole and stream). The upstream is a fake native OpenAI Responses API speaking its documented wire
/// format (https://platform.openai.com/docs/api-reference/responses/create and the streaming events of
/// https://platform.openai.com/docs/api-reference/responses-streaming: <c>event: type</c> + <c>data: {...}</c>, ending with
/// <c>response.completed</c>) that numbers its answers (<c>resp_n</c>, text <c>answer-n</c>), so a replayed answer is told
/// from a new one. Embeddings come from the local provider (hashed character 3-grams, as <see cref="SemanticCacheTests"/>).
/// </summary>
public sealed class ResponsesCacheTests
{
    private const string Path = "/openai/v1/responses";
    private const string Model = "up/gpt-4o-mini";
    private const string France = "What is the capital of France?";
    private const string FranceParaphrase = "what's the capital of france";
    private const string Bread = "How do I bake sourdough bread at home?";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>How the fake ends its next streams (in order; then complete): complete, cut (the connection closes before <c>response.completed</c>), failed (<c>response.failed</c>), hang (after the first delta, until the caller goes away).</summary>
    private sealed class Upstream : IAsyncDisposable
    {
        private int _calls;

        private Upstream(FakeOpenAIUpstream fake) => Fake = fake;

        public FakeOpenAIUpstream Fake { get; }

        public ConcurrentQueue<string> Endings { get; } = new();

        public int Calls => Fake.Requests.Count(static r => r.Path.EndsWith("/responses", StringComparison.Ordinal));

        public static async Task<Upstream> StartAsync()
        {
            Upstream? upstream = null;
            var fake = await FakeOpenAIUpstream.StartAsync((context, request, ct) => upstream!.AnswerAsync(context, request, ct));
            upstream = new Upstream(fake);
            return upstream;
        }

        public ValueTask DisposeAsync() => Fake.DisposeAsync();

        private async Task AnswerAsync(HttpContext context, RecordedRequest request, CancellationToken ct)
        {
            var n = Interlocked.Increment(ref _calls);
            var model = request.Body!.Value.GetProperty("model").GetString()!;
            var text = $"answer-{n}";
            var item = new JsonObject
            {
                ["id"] = $"msg_{n}",
                ["type"] = "message",
                ["status"] = "completed",
                ["role"] = "assistant",
                ["content"] = new JsonArray(new JsonObject { ["type"] = "output_text", ["text"] = text, ["annotations"] = new JsonArray() }),
            };
            JsonObject Response(string status, bool done) => new()
            {
                ["id"] = $"resp_{n}",
                ["object"] = "response",
                ["created_at"] = 1_700_000_000 + n,
                ["status"] = status,
                ["model"] = model,
                ["output"] = done ? new JsonArray(item.DeepClone()) : new JsonArray(),
                ["usage"] = done ? new JsonObject { ["input_tokens"] = 5, ["output_tokens"] = 2, ["total_tokens"] = 7 } : null,
            };

            if (!(request.Body!.Value.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True))
            {
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(Response("completed", done: true).ToJsonString(), ct);
                return;
            }

            var ending = Endings.TryDequeue(out var scripted) ? scripted : "complete";
            context.Response.ContentType = "text/event-stream";
            var sequence = 0;
            async Task Event(string type, JsonObject data)
            {
                var payload = new JsonObject { ["type"] = type, ["sequence_number"] = sequence++ };
                foreach (var (name, value) in data)
                {
                    payload[name] = value?.DeepClone();
                }

                await context.Response.WriteAsync($"event: {type}\ndata: {payload.ToJsonString()}\n\n", ct);
                await context.Response.Body.FlushAsync(ct);
            }

            var inProgress = new JsonObject { ["id"] = $"msg_{n}", ["type"] = "message", ["status"] = "in_progress", ["role"] = "assistant", ["content"] = new JsonArray() };
            await Event("response.created", new JsonObject { ["response"] = Response("in_progress", done: false) });
            await Event("response.in_progress", new JsonObject { ["response"] = Response("in_progress", done: false) });
            await Event("response.output_item.added", new JsonObject { ["output_index"] = 0, ["item"] = inProgress });
            await Event("response.content_part.added", new JsonObject { ["item_id"] = $"msg_{n}", ["output_index"] = 0, ["content_index"] = 0, ["part"] = new JsonObject { ["type"] = "output_text", ["text"] = string.Empty, ["annotations"] = new JsonArray() } });
            await Event("response.output_text.delta", new JsonObject { ["item_id"] = $"msg_{n}", ["output_index"] = 0, ["content_index"] = 0, ["delta"] = "answer-" });
            if (ending == "hang")
            {
                await Task.Delay(Timeout.Infinite, ct);
            }

            await Event("response.output_text.delta", new JsonObject { ["item_id"] = $"msg_{n}", ["output_index"] = 0, ["content_index"] = 0, ["delta"] = n.ToString(CultureInfo.InvariantCulture) });
            await Event("response.output_text.done", new JsonObject { ["item_id"] = $"msg_{n}", ["output_index"] = 0, ["content_index"] = 0, ["text"] = text });
            await Event("response.content_part.done", new JsonObject { ["item_id"] = $"msg_{n}", ["output_index"] = 0, ["content_index"] = 0, ["part"] = item["content"]![0]!.DeepClone() });
            await Event("response.output_item.done", new JsonObject { ["output_index"] = 0, ["item"] = item.DeepClone() });
            switch (ending)
            {
                case "cut":
                    return; // the connection closes cleanly without the terminal event
                case "failed":
                    var failed = Response("failed", done: false);
                    failed["error"] = new JsonObject { ["code"] = "server_error", ["message"] = "The model failed." };
                    await Event("response.failed", new JsonObject { ["response"] = failed });
                    return;
                default:
                    await Event("response.completed", new JsonObject { ["response"] = Response("completed", done: true) });
                    return;
            }
        }
    }

    private static Task<GatewayHost> StartAsync(Upstream upstream, Action<BifrostOptions>? configure = null) =>
        GatewayHost.StartAsync(options =>
        {
            options.Providers["up"] = new ProviderOptions { Type = "openai", BaseUrl = upstream.Fake.BaseUrl, NativeResponses = true, MaxRetries = 0, Keys = [new ProviderKeyOptions { Value = "sk-upstream" }] };
            options.Cache.Enabled = true;
            configure?.Invoke(options);
        });

    private static Action<BifrostOptions> SemanticOn => o =>
    {
        o.Cache.Semantic.Enabled = true;
        o.Cache.Semantic.EmbeddingModel = "local/hash-embed";
        o.Cache.Semantic.Threshold = 0.85;
    };

    private static JsonObject Body(JsonNode input, bool stream = false, string? instructions = null)
    {
        var body = new JsonObject { ["model"] = Model, ["input"] = input };
        if (instructions is not null)
        {
            body["instructions"] = instructions;
        }

        if (stream)
        {
            body["stream"] = true;
        }

        return body;
    }

    private static JsonArray UserItem(params JsonObject[] parts) =>
        new(new JsonObject { ["type"] = "message", ["role"] = "user", ["content"] = new JsonArray([.. parts]) });

    private static JsonObject InputText(string text) => new() { ["type"] = "input_text", ["text"] = text };

    private static HttpRequestMessage Request(JsonObject body, string cacheKey, (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Path) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add("x-bf-cache-key", cacheKey);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return request;
    }

    private static string Status(HttpResponseMessage response) => response.Headers.TryGetValues("x-bf-cache-status", out var values) ? values.Single() : "(none)";

    private static async Task<(string Status, JsonElement Json)> PostAsync(GatewayHost host, JsonObject body, string cacheKey = "k", params (string Name, string Value)[] headers)
    {
        using var request = Request(body, cacheKey, headers);
        using var response = await host.Client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        return (Status(response), JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>One SSE event as the client read it: its <c>event:</c> name and <c>data:</c> object.</summary>
    private sealed record Event(string Name, JsonObject Data)
    {
        public JsonObject? Extra => Data["extra_fields"] as JsonObject;
    }

    private static async Task<(string Status, List<Event> Events)> StreamAsync(GatewayHost host, JsonObject body, string cacheKey = "k", params (string Name, string Value)[] headers)
    {
        using var request = Request(body, cacheKey, headers);
        using var response = await host.Client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        return (Status(response), ParseEvents(text));
    }

    private static List<Event> ParseEvents(string text)
    {
        Assert.EndsWith("\n\n", text, StringComparison.Ordinal);
        var events = new List<Event>();
        foreach (var block in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            Assert.Equal(2, lines.Length);
            Assert.StartsWith("event: ", lines[0], StringComparison.Ordinal);
            Assert.StartsWith("data: ", lines[1], StringComparison.Ordinal);
            events.Add(new Event(lines[0]["event: ".Length..], JsonNode.Parse(lines[1]["data: ".Length..])!.AsObject()));
        }

        return events;
    }

    /// <summary>The events as (name, data) with what a replay legitimately changes removed: <c>extra_fields.cost</c> (0 on a hit) and <c>cache_debug</c>.</summary>
    private static List<(string, string)> Normalize(IEnumerable<Event> events) =>
        [.. events.Select(e =>
        {
            var data = e.Data.DeepClone().AsObject();
            if (data["extra_fields"] is JsonObject extra)
            {
                extra.Remove("cost");
                extra.Remove("cache_debug");
            }

            return (e.Name, data.ToJsonString());
        })];

    private static string Text(IEnumerable<Event> events) => string.Concat(events.Where(e => e.Name == "response.output_text.delta").Select(e => e.Data["delta"]!.GetValue<string>()));

    private static string Text(JsonElement response) => response.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString()!;

    [Fact]
    public async Task A_completed_responses_stream_is_replayed_as_the_same_events_with_cost_0_and_cache_debug_on_response_completed()
    {
        await using var upstream = await Upstream.StartAsync();
        await using var host = await StartAsync(upstream);

        var (firstStatus, first) = await StreamAsync(host, Body(France, stream: true));
        var (secondStatus, second) = await StreamAsync(host, Body(France, stream: true));

        Assert.Equal(1, upstream.Calls);
        Assert.Equal(("miss", "hit"), (firstStatus, secondStatus));
        Assert.Equal(10, first.Count);
        Assert.Equal(
            ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"],
            second.Select(e => e.Name));
        Assert.Equal(Normalize(first), Normalize(second));
        Assert.Equal("answer-1", Text(second));
        Assert.Equal("resp_1", second[^1].Data["response"]!["id"]!.GetValue<string>());

        var original = first[^1].Extra!;
        var replayed = second[^1].Extra!;
        Assert.True(original["cost"]!.GetValue<double>() > 0, "gpt-4o-mini is priced by the catalog");
        Assert.Equal(0, replayed["cost"]!.GetValue<double>());
        Assert.Null(original["cache_debug"]);
        var debug = replayed["cache_debug"]!.AsObject();
        Assert.True(debug["cache_hit"]!.GetValue<bool>());
        Assert.Equal("direct", debug["hit_type"]!.GetValue<string>());
        Assert.Equal(32, debug["cache_id"]!.GetValue<string>().Length);
        Assert.All(second.SkipLast(1), e => Assert.Null(e.Extra?["cache_debug"]));
        Assert.Equal("up", replayed["provider"]!.GetValue<string>());

        // The whole answer does not get the stream's entry.
        var (wholeStatus, whole) = await PostAsync(host, Body(France));
        Assert.Equal(("miss", "answer-2"), (wholeStatus, Text(whole)));
        Assert.Equal(2, upstream.Calls);
    }

    [Fact]
    public async Task A_responses_stream_converted_from_a_chat_only_provider_is_cached_too()
    {
        // A provider without the Responses API: the gateway converts its chat stream (OpenAI's chat completions wire
        // format, https://platform.openai.com/docs/api-reference/chat-streaming) into Responses events ending with response.completed.
        var calls = 0;
        await using var chat = await FakeOpenAIUpstream.StartAsync((context, request, ct) =>
        {
            var n = Interlocked.Increment(ref calls);
            var model = request.Body?.GetProperty("model").GetString();
            return FakeResponses.Sse(
                FakeResponses.Chunk(model, role: "assistant", content: "answer-", id: $"chatcmpl-{n}"),
                FakeResponses.Chunk(model, content: n.ToString(CultureInfo.InvariantCulture), id: $"chatcmpl-{n}"),
                FakeResponses.Chunk(model, finishReason: "stop", id: $"chatcmpl-{n}"),
                FakeResponses.UsageChunk(model, 5, 2, id: $"chatcmpl-{n}"))(context, request, ct);
        });
        await using var host = await GatewayHost.StartAsync(options =>
        {
            options.Providers["chatonly"] = new ProviderOptions { Type = "openai", BaseUrl = chat.BaseUrl, NativeResponses = false, MaxRetries = 0, Keys = [new ProviderKeyOptions { Value = "sk-upstream" }] };
            options.Cache.Enabled = true;
        });
        var body = new JsonObject { ["model"] = "chatonly/gpt-4o-mini", ["input"] = France, ["stream"] = true };

        var (firstStatus, first) = await StreamAsync(host, body);
        var (secondStatus, second) = await StreamAsync(host, body);

        Assert.Equal(("miss", "hit"), (firstStatus, secondStatus));
        Assert.Equal(1, chat.ChatCalls);
        Assert.Equal("response.completed", first[^1].Name);
        Assert.Equal(Normalize(first), Normalize(second));
        Assert.Equal("answer-1", Text(second));
        Assert.True(second[^1].Extra!["cache_debug"]!["cache_hit"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_responses_stream_cut_failed_or_left_by_the_caller_stores_nothing()
    {
        await using var upstream = await Upstream.StartAsync();
        upstream.Endings.Enqueue("cut");
        upstream.Endings.Enqueue("failed");
        upstream.Endings.Enqueue("hang");
        await using var host = await StartAsync(upstream);
        var body = Body(France, stream: true);

        // 1: the upstream closes the stream before response.completed; 2: it ends with response.failed.
        var (cutStatus, cut) = await StreamAsync(host, body);
        var (failedStatus, failed) = await StreamAsync(host, body);
        Assert.Equal(("miss", "miss"), (cutStatus, failedStatus));
        Assert.Equal("response.output_item.done", cut[^1].Name);
        Assert.Equal("response.failed", failed[^1].Name);

        // 3: the caller reads the first event and goes away.
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            using var request = Request(body, "k", []);
            using var response = await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
            Assert.Equal("event: response.created", await reader.ReadLineAsync(cts.Token));
            await cts.CancelAsync();
        }

        var left = upstream.Fake.Requests[^1];
        await left.Aborted.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        // 4 and 5: each of those reached the upstream; a complete stream is stored and replayed.
        var (fourth, events) = await StreamAsync(host, body);
        var (fifth, replay) = await StreamAsync(host, body);

        Assert.Equal(4, upstream.Calls);
        Assert.Equal(("miss", "hit"), (fourth, fifth));
        Assert.Equal(("answer-4", "answer-4"), (Text(events), Text(replay)));
        Assert.Equal(Normalize(events), Normalize(replay));
    }

    [Fact]
    public async Task Tenants_never_share_a_cached_responses_stream()
    {
        await using var upstream = await Upstream.StartAsync();
        await using var host = await StartAsync(upstream);

        var (_, a1) = await StreamAsync(host, Body(France, stream: true), "k", ("Authorization", "Bearer tenant-a"));
        var (_, b1) = await StreamAsync(host, Body(France, stream: true), "k", ("Authorization", "Bearer tenant-b"));
        var (a2Status, a2) = await StreamAsync(host, Body(France, stream: true), "k", ("Authorization", "Bearer tenant-a"));
        var (b2Status, b2) = await StreamAsync(host, Body(France, stream: true), "k", ("Authorization", "Bearer tenant-b"));

        Assert.Equal(2, upstream.Calls);
        Assert.Equal(("answer-1", "answer-2", "answer-1", "answer-2"), (Text(a1), Text(b1), Text(a2), Text(b2)));
        Assert.Equal(("hit", "hit"), (a2Status, b2Status));
    }

    [Fact]
    public async Task A_paraphrased_responses_input_is_a_semantic_hit_whole_and_streamed_and_an_unrelated_one_misses()
    {
        await using var upstream = await Upstream.StartAsync();
        await using var host = await StartAsync(upstream, SemanticOn);

        // Whole answers: the input string.
        var (firstStatus, first) = await PostAsync(host, Body(France));
        var (nearStatus, near) = await PostAsync(host, Body(FranceParaphrase));
        var (farStatus, far) = await PostAsync(host, Body(Bread));

        Assert.Equal(("miss", "hit", "miss"), (firstStatus, nearStatus, farStatus));
        Assert.Equal(("answer-1", "answer-1", "answer-2"), (Text(first), Text(near), Text(far)));
        Assert.Equal("resp_1", near.GetProperty("id").GetString());
        var debug = near.GetProperty("extra_fields").GetProperty("cache_debug");
        Assert.Equal("semantic", debug.GetProperty("hit_type").GetString());
        Assert.Equal(0.8934, debug.GetProperty("similarity").GetDouble(), 3);
        Assert.Equal("hash-embed", debug.GetProperty("model_used").GetString());
        Assert.Equal(0, near.GetProperty("extra_fields").GetProperty("cost").GetDouble());
        Assert.Equal("local", first.GetProperty("extra_fields").GetProperty("cache_debug").GetProperty("provider_used").GetString()); // the miss embedded its text

        // Streams: the last user message item's input_text parts.
        var (streamFirstStatus, streamFirst) = await StreamAsync(host, Body(UserItem(InputText(France)), stream: true));
        var (streamNearStatus, streamNear) = await StreamAsync(host, Body(UserItem(InputText(FranceParaphrase)), stream: true));
        var (streamFarStatus, streamFar) = await StreamAsync(host, Body(UserItem(InputText(Bread)), stream: true));

        Assert.Equal(("miss", "hit", "miss"), (streamFirstStatus, streamNearStatus, streamFarStatus));
        Assert.Equal(("answer-3", "answer-3", "answer-4"), (Text(streamFirst), Text(streamNear), Text(streamFar)));
        Assert.Equal(Normalize(streamFirst), Normalize(streamNear));
        var streamDebug = streamNear[^1].Extra!["cache_debug"]!;
        Assert.Equal("response.completed", streamNear[^1].Name);
        Assert.Equal("semantic", streamDebug["hit_type"]!.GetValue<string>());
        Assert.Equal(0, streamNear[^1].Extra!["cost"]!.GetValue<double>());
        Assert.Equal(4, upstream.Calls);
    }

    [Fact]
    public async Task Instructions_must_match_exactly_and_a_non_text_part_gets_no_semantic_lookup()
    {
        await using var upstream = await Upstream.StartAsync();
        await using var host = await StartAsync(upstream, SemanticOn);

        await PostAsync(host, Body(France, instructions: "Answer briefly."));
        var (otherStatus, other) = await PostAsync(host, Body(FranceParaphrase, instructions: "Answer at length."));
        var (sameStatus, same) = await PostAsync(host, Body(FranceParaphrase, instructions: "Answer briefly."));

        Assert.Equal(("miss", "answer-2"), (otherStatus, Text(other)));
        Assert.Equal(("hit", "answer-1"), (sameStatus, Text(same)));

        var image = new JsonObject { ["type"] = "input_image", ["image_url"] = "https://example.com/paris.png" };
        await PostAsync(host, Body(UserItem(InputText(France), image)));
        var (imageStatus, withImage) = await PostAsync(host, Body(UserItem(InputText(FranceParaphrase), (JsonObject)image.DeepClone())));

        Assert.Equal(("miss", "answer-4"), (imageStatus, Text(withImage)));
        Assert.False(withImage.GetProperty("extra_fields").GetProperty("cache_debug").TryGetProperty("provider_used", out _)); // nothing was embedded
        Assert.Equal(4, upstream.Calls);
    }

    [Fact]
    public async Task The_official_sdk_streams_a_cached_response_with_its_typed_updates()
    {
        await using var upstream = await Upstream.StartAsync();
        await using var host = await StartAsync(upstream, o => o.Cache.DefaultCacheKey = "sdk");
        var statuses = new ConcurrentQueue<string>();
        var client = new OpenAIClient(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(new HttpClient(new StatusRecorder(host.Server.CreateHandler(), statuses))),
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetResponsesClient();

        async Task<List<StreamingResponseUpdate>> ReadAsync()
        {
            var options = new CreateResponseOptions(Model, [ResponseItem.CreateUserMessageItem(France)]) { StreamingEnabled = true };
            var updates = new List<StreamingResponseUpdate>();
            await foreach (var update in await client.CreateResponseStreamingAsync(options, Ct))
            {
                updates.Add(update);
            }

            return updates;
        }

        var first = await ReadAsync();
        var second = await ReadAsync();

        Assert.Equal(1, upstream.Calls);
        Assert.Equal(["miss", "hit"], statuses);
        Assert.Equal(first.Select(u => u.GetType()), second.Select(u => u.GetType()));
        Assert.Equal(first.Select(u => u.SequenceNumber), second.Select(u => u.SequenceNumber));
        Assert.Equal("answer-1", string.Concat(second.OfType<StreamingResponseOutputTextDeltaUpdate>().Select(u => u.Delta)));
        var completed = second.OfType<StreamingResponseCompletedUpdate>().Single().Response;
        Assert.Equal("resp_1", completed.Id);
        Assert.Equal(7, completed.Usage.TotalTokenCount);
    }

    [Fact]
    public void The_responses_input_text_is_split_from_the_partition()
    {
        using var items = JsonDocument.Parse("""{"model":"m","instructions":"i","input":[{"role":"user","content":"one"},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"x"}]},{"type":"message","role":"user","content":[{"type":"input_text","text":"two"},{"type":"input_text","text":"three"}]}]}""");
        var last = SemanticCacheRequestText.Split("responses", items.RootElement, SemanticCacheText.LastUserMessage)!.Value;
        Assert.Equal("two\nthree", last.Text);
        Assert.Equal("""{"input":[{"content":"one","role":"user"},{"content":[{"text":"x","type":"output_text"}],"role":"assistant","type":"message"},{"role":"user","type":"message"}],"instructions":"i"}""", CacheKeys.Canonical(last.Others));

        var all = SemanticCacheRequestText.Split("responses", items.RootElement, SemanticCacheText.AllMessages)!.Value;
        Assert.Equal("user: one\nassistant: x\nuser: two\nthree\n", all.Text);
        Assert.Equal("""{"instructions":"i"}""", CacheKeys.Canonical(all.Others));

        using var text = JsonDocument.Parse("""{"model":"m","input":"hello","temperature":0}""");
        var plain = SemanticCacheRequestText.Split("responses", text.RootElement, SemanticCacheText.LastUserMessage)!.Value;
        Assert.Equal(("hello", """{"temperature":0}"""), (plain.Text, CacheKeys.Canonical(plain.Others)));

        using var call = JsonDocument.Parse("""{"model":"m","input":[{"role":"user","content":"q"},{"type":"function_call_output","call_id":"c","output":"42"}]}""");
        Assert.Equal("q", SemanticCacheRequestText.Split("responses", call.RootElement, SemanticCacheText.LastUserMessage)!.Value.Text);
        Assert.Null(SemanticCacheRequestText.Split("responses", call.RootElement, SemanticCacheText.AllMessages)); // a function call output is not a text message

        using var file = JsonDocument.Parse("""{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"q"},{"type":"input_file","file_id":"f"}]}]}""");
        Assert.Null(SemanticCacheRequestText.Split("responses", file.RootElement, SemanticCacheText.LastUserMessage));
    }

    /// <summary>Records the <c>x-bf-cache-status</c> of every answer the SDK gets.</summary>
    private sealed class StatusRecorder(HttpMessageHandler inner, ConcurrentQueue<string> statuses) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            statuses.Enqueue(response.Headers.TryGetValues("x-bf-cache-status", out var values) ? values.Single() : "(none)");
            return response;
        }
    }
}
