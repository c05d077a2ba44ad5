using System.Net;
using System.Text.Json;
using Bifrost.Middleware.RequestLog;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>
/// Issue 18, target 2: a streamed chat call through the OpenAI-compatible adapter relays each chunk as the provider's
/// <c>data:</c> bytes with the gateway's <c>extra_fields</c> spliced in as the last member, when nothing but the built-in
/// layers reads the chunks; typed chunks (parsed and serialized again) wherever something may read or change them.
/// </summary>
public sealed class StreamRelayTests
{
    // Chunks as an OpenAI-compatible server sends them (https://platform.openai.com/docs/api-reference/chat-streaming/streaming):
    // nulls the typed model drops when it writes, a vendor field, members in the server's order, a non-ASCII letter.
    private const string First = """{"id":"chatcmpl-r1","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hé"},"logprobs":null,"finish_reason":null}],"x_vendor":{"region":"eu"}}""";
    private const string Second = """{"choices":[{"index":0,"delta":{"content":"llo"},"logprobs":null,"finish_reason":"stop"}],"id":"chatcmpl-r1","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18"}""";
    private const string Usage = """{"id":"chatcmpl-r1","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}""";

    private static string StreamRequest => Chat(stream: true, extra: "\"stream_options\":{\"include_usage\":true}");

    [Fact]
    public async Task Chunks_are_the_providers_bytes_with_extra_fields_as_the_last_member()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Sse(First, Second, Usage));
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(StreamRequest, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await ReadSseDataAsync(response);
        Assert.Equal(4, events.Count);
        Assert.Equal("[DONE]", events[^1]);
        string[] sent = [First, Second, Usage];
        for (var i = 0; i < sent.Length; i++)
        {
            var prefix = sent[i][..^1] + ",\"extra_fields\":";
            Assert.StartsWith(prefix, events[i], StringComparison.Ordinal);
            Assert.EndsWith("}", events[i], StringComparison.Ordinal);
            var extra = JsonDocument.Parse(events[i]).RootElement.GetProperty("extra_fields");
            Assert.Equal(i, extra.GetProperty("chunk_index").GetInt32());
            Assert.Equal("openai", extra.GetProperty("provider").GetString());
            Assert.Equal("gpt-4o-mini", extra.GetProperty("model_requested").GetString());
            Assert.Equal("chat_completion_stream", extra.GetProperty("request_type").GetString());
            Assert.Equal(JsonValueKind.Number, extra.GetProperty("latency").ValueKind);
            Assert.Single(JsonDocument.Parse(events[i]).RootElement.EnumerateObject(), p => p.Name == "extra_fields");
        }

        // The last chunk's usage was read from the bytes: it is priced (gpt-4o-mini is in the catalog).
        var last = JsonDocument.Parse(events[2]).RootElement.GetProperty("extra_fields");
        Assert.True(last.GetProperty("cost").GetDouble() > 0);
        Assert.False(JsonDocument.Parse(events[0]).RootElement.GetProperty("extra_fields").TryGetProperty("cost", out _));
    }

    [Fact]
    public async Task The_request_log_and_metrics_read_id_usage_and_cost_from_relayed_chunks()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Sse(First, Second, Usage));
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(StreamRequest, Ct);
        var events = await ReadSseDataAsync(response);
        Assert.StartsWith(First[..^1], events[0], StringComparison.Ordinal); // relayed

        var log = host.Services.GetRequiredService<IBifrostRequestLog>();
        await log.FlushAsync(Ct);
        var entry = Assert.Single((await log.QueryAsync(new RequestLogQuery(), Ct)).Entries);
        Assert.Equal(200, entry.Status);
        Assert.Equal("chatcmpl-r1", entry.ResponseId);
        Assert.Equal("openai", entry.Provider);
        Assert.Equal(8, entry.InputTokens);
        Assert.Equal(2, entry.OutputTokens);
        Assert.True(entry.CostUsd > 0);
        Assert.NotNull(entry.TimeToFirstChunkMs);
    }

    [Fact]
    public async Task A_plugin_gets_typed_chunks_and_its_change_is_written()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Sse(First, Second, Usage));
        await using var host = await GatewayHost.StartAsync(
            options => options.Providers["openai"] = Provider(upstream),
            bifrost: b => b.AddPlugin(new Upper()));

        using var response = await host.SendStreamingAsync(StreamRequest, Ct);
        var events = await ReadSseDataAsync(response);

        Assert.Equal(4, events.Count);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal("HÉ", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("LLO", chunks[1].GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("eu", chunks[0].GetProperty("x_vendor").GetProperty("region").GetString());
        Assert.False(chunks[0].TryGetProperty("system_fingerprint", out _)); // written from the typed chunk: nulls dropped
        Assert.Equal(1, chunks[1].GetProperty("extra_fields").GetProperty("chunk_index").GetInt32());
        Assert.Equal(10, chunks[2].GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task With_content_capture_the_chunks_are_typed_and_the_answer_is_captured()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Sse(First, Second, Usage));
        await using var host = await StartAsync(upstream, more: o => o.RequestLog.CaptureContent = true);

        using var response = await host.SendStreamingAsync(StreamRequest, Ct);
        var events = await ReadSseDataAsync(response);
        Assert.DoesNotContain("\"logprobs\":null", events[0], StringComparison.Ordinal); // typed

        var log = host.Services.GetRequiredService<IBifrostRequestLog>();
        await log.FlushAsync(Ct);
        var entry = Assert.Single((await log.QueryAsync(new RequestLogQuery(), Ct)).Entries);
        Assert.Contains("Hé", entry.ResponseContent, StringComparison.Ordinal);
        Assert.Contains("llo", entry.ResponseContent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_providers_own_extra_fields_are_replaced_not_repeated()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        var withExtra = First[..^1] + ",\"extra_fields\":{\"provider\":\"upstream-gateway\",\"chunk_index\":7}}";
        upstream.Enqueue(FakeResponses.Sse(withExtra, Second));
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);
        var events = await ReadSseDataAsync(response);

        Assert.Equal(3, events.Count);
        Assert.Equal(1, CountOf(events[0], "\"extra_fields\""));
        var extra = JsonDocument.Parse(events[0]).RootElement.GetProperty("extra_fields");
        Assert.Equal("openai", extra.GetProperty("provider").GetString());
        Assert.Equal(0, extra.GetProperty("chunk_index").GetInt32());
        Assert.StartsWith(Second[..^1], events[1], StringComparison.Ordinal); // the next chunk is relayed again
    }

    [Fact]
    public async Task Data_over_several_lines_and_odd_chunks_are_parsed_and_written_typed()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        var raw = "data: {\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\",\n"
            + "data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"},\"finish_reason\":null}]}\n\n"
            + "data: {\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"B\"},\"finish_reason\":\"stop\"}]}\n\n"
            + "data: [DONE]\n\n";
        upstream.Enqueue(FakeResponses.Body(200, "text/event-stream", raw));
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);
        var events = await ReadSseDataAsync(response);

        Assert.Equal(3, events.Count);
        Assert.DoesNotContain('\n', events[0]);
        Assert.Equal("A", JsonDocument.Parse(events[0]).RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal(0, JsonDocument.Parse(events[0]).RootElement.GetProperty("extra_fields").GetProperty("chunk_index").GetInt32());
        Assert.StartsWith("{\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"B\"},\"finish_reason\":\"stop\"}],\"extra_fields\":", events[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_chunk_whose_choices_is_not_an_array_ends_the_stream_with_an_error_event()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Sse(First, """{"id":"chatcmpl-r1","object":"chat.completion.chunk","choices":"oops"}"""));
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(Chat(stream: true), Ct);
        var events = await ReadSseDataAsync(response);

        Assert.Equal(2, events.Count); // the first chunk, then the error (no [DONE])
        var error = JsonDocument.Parse(events[1]).RootElement.GetProperty("error");
        Assert.Equal("invalid_provider_response", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task The_official_OpenAI_SDK_reads_relayed_chunks_text_finish_reason_and_usage()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Sse(First, Second, Usage));
        await using var host = await StartAsync(upstream);
        var chat = new global::OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential("sk-test"), new global::OpenAI.OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(host.Server.CreateClient()),
            RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0),
        }).GetChatClient("openai/gpt-4o-mini");

        var text = new System.Text.StringBuilder();
        var updates = new List<global::OpenAI.Chat.StreamingChatCompletionUpdate>();
        await foreach (var update in chat.CompleteChatStreamingAsync([new global::OpenAI.Chat.UserChatMessage("hello")], cancellationToken: Ct))
        {
            updates.Add(update);
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        // The SDK asked for include_usage and got the provider's chunks as sent (nulls, a vendor field, extra_fields last).
        Assert.Equal("Héllo", text.ToString());
        Assert.Equal(3, updates.Count);
        Assert.All(updates, u => Assert.Equal("chatcmpl-r1", u.CompletionId));
        Assert.Equal("gpt-4o-mini-2024-07-18", updates[0].Model);
        Assert.Equal(global::OpenAI.Chat.ChatMessageRole.Assistant, updates[0].Role);
        Assert.Equal(global::OpenAI.Chat.ChatFinishReason.Stop, Assert.Single(updates, u => u.FinishReason is not null).FinishReason);
        var usage = updates[^1].Usage;
        Assert.NotNull(usage);
        Assert.Equal(8, usage.InputTokenCount);
        Assert.Equal(2, usage.OutputTokenCount);
        Assert.Equal(10, usage.TotalTokenCount);

        var sent = Assert.Single(upstream.Requests).Body!.Value;
        Assert.True(sent.GetProperty("stream").GetBoolean());
        Assert.Equal("gpt-4o-mini", sent.GetProperty("model").GetString());
    }

    private static int CountOf(string text, string value)
    {
        var count = 0;
        for (var i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + 1, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>A post-hook that upper-cases each chunk's content.</summary>
    private sealed class Upper : IBifrostPlugin
    {
        public string Name => "upper";

        public ValueTask PreHookAsync(BifrostPluginContext context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask PostHookAsync(BifrostPluginContext context, CancellationToken cancellationToken)
        {
            if (context.Response is ChatCompletionChunk { Choices: [{ Delta.Content: { } text } choice, ..] })
            {
                choice.Delta.Content = text.ToUpperInvariant();
            }

            return ValueTask.CompletedTask;
        }
    }
}
