using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Plugins;

public sealed class PluginTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Chat = """{"model":"local/echo","messages":[{"role":"user","content":"hello plugins"}]}""";

    /// <summary>Records the hook order into a shared log and optionally does something.</summary>
    private sealed class Recorder(string name, ConcurrentQueue<string> log, Action<BifrostPluginContext>? pre = null, Action<BifrostPluginContext>? post = null) : IBifrostPlugin
    {
        public string Name => name;

        public ValueTask PreHookAsync(BifrostPluginContext context, CancellationToken cancellationToken)
        {
            log.Enqueue($"{name}.pre:{context.RequestType}");
            pre?.Invoke(context);
            return ValueTask.CompletedTask;
        }

        public ValueTask PostHookAsync(BifrostPluginContext context, CancellationToken cancellationToken)
        {
            log.Enqueue($"{name}.post");
            post?.Invoke(context);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The typed view of a chat completion call's context.</summary>
    private static BifrostPluginContext<ChatCompletionRequest, ChatCompletionResponse, ChatCompletionChunk> ChatCall(BifrostPluginContext context) =>
        Assert.IsType<BifrostPluginContext<ChatCompletionRequest, ChatCompletionResponse, ChatCompletionChunk>>(context);

    [Fact]
    public async Task Pre_hooks_run_in_order_post_hooks_in_reverse_and_may_change_request_and_response()
    {
        var log = new ConcurrentQueue<string>();
        await using var host = await GatewayHost.StartAsync(bifrost: b => b
            .AddPlugin(new Recorder("a", log, pre: c => ((ChatCompletionRequest)c.Request).Messages![0].Content = new ChatCompletionContent("rewritten by a")))
            .AddPlugin(new Recorder("b", log, post: c => ((ChatCompletionResponse)c.Response!).Choices[0].Message!.Content += " +b")));

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", Chat, Ct);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("rewritten by a +b", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(["a.pre:chat_completion", "b.pre:chat_completion", "b.post", "a.post"], log.ToArray());
    }

    [Theory]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":[null]}]}""", "messages[0].content[0]", false)]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"n":0}""", "n", true)]
    [InlineData("completions", """{"model":"local/echo","prompt":"x","temperature":1e309}""", "temperature", true)]
    [InlineData("embeddings", """{"model":"local/echo","input":[""]}""", "input[0]", false)]
    [InlineData("responses", """{"model":"local/echo","input":[null]}""", "input[0]", true)]
    public async Task Plugins_see_only_valid_requests(string route, string body, string param, bool stream)
    {
        var log = new ConcurrentQueue<string>();
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddPlugin(new Recorder("p", log)));

        foreach (var payload in stream ? new[] { body, body[..^1] + ",\"stream\":true}" } : [body])
        {
            using var response = await host.PostJsonAsync("/openai/v1/" + route, payload, Ct);
            var json = await GatewayHost.ReadJsonAsync(response);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal(param, json.GetProperty("error").GetProperty("param").GetString());
        }

        Assert.Empty(log);
    }

    [Fact]
    public async Task A_pre_hook_can_answer_and_later_plugins_and_the_provider_are_skipped()
    {
        var log = new ConcurrentQueue<string>();
        var cached = new ChatCompletionResponse { Id = "chatcmpl-cache", Model = "cache", Choices = [new ChatChoice { Message = new ChatResponseMessage { Content = "from cache" }, FinishReason = "stop" }] };
        await using var host = await GatewayHost.StartAsync(bifrost: b => b
            .AddPlugin(new Recorder("first", log))
            .AddPlugin(new Recorder("cache", log, pre: c => ChatCall(c).Respond(cached)))
            .AddPlugin(new Recorder("never", log)));

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", Chat, Ct);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.Equal("from cache", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(["first.pre:chat_completion", "cache.pre:chat_completion", "cache.post", "first.post"], log.ToArray());
    }

    [Fact]
    public async Task A_pre_hook_can_reject_with_a_bifrost_error()
    {
        var log = new ConcurrentQueue<string>();
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddPlugin(new Recorder("guard", log, pre: c =>
        {
            if (((ChatCompletionRequest)c.Request).Messages![0].Content!.GetText().Contains("hello", StringComparison.Ordinal))
            {
                c.Reject(BifrostException.Gateway(403, "permission_error", "blocked_by_guardrail", "Greetings are not allowed here."));
            }
        })));

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", Chat, Ct);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("blocked_by_guardrail", json.GetProperty("error").GetProperty("code").GetString());
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
    }

    [Fact]
    public async Task A_post_hook_can_turn_an_error_into_an_answer()
    {
        var fallback = new ChatCompletionResponse { Id = "chatcmpl-recovered", Model = "recovery", Choices = [new ChatChoice { Message = new ChatResponseMessage { Content = "recovered" }, FinishReason = "stop" }] };
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddPlugin(new Recorder("recover", new ConcurrentQueue<string>(), post: c =>
        {
            if (c.Error is { StatusCode: 503 })
            {
                c.Error = null;
                ChatCall(c).Response = fallback;
            }
        })));

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"metadata":{"local_status":"503"}}""", Ct);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("recovered", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Post_hooks_see_every_stream_chunk_and_may_change_it()
    {
        var seen = 0;
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddPlugin(new Recorder("upper", new ConcurrentQueue<string>(), post: c =>
        {
            Interlocked.Increment(ref seen);
            if (c.Response is ChatCompletionChunk { Choices: [{ Delta.Content: { } text } choice, ..] })
            {
                choice.Delta.Content = text.ToUpperInvariant();
            }
        })));

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"loud words"}]}""", Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        var chunks = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e["data: ".Length..]).Where(d => d != "[DONE]").Select(d => JsonDocument.Parse(d).RootElement).ToList();
        var text = string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0].GetProperty("delta")).Where(d => d.TryGetProperty("content", out _)).Select(d => d.GetProperty("content").GetString()));

        Assert.Equal("LOUD WORDS", text);
        Assert.Equal(chunks.Count, seen);
        Assert.EndsWith("data: [DONE]", body.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pre_hook_answer_to_a_stream_is_streamed_as_chunks()
    {
        var cached = new ChatCompletionResponse { Id = "chatcmpl-cache", Model = "cache", Choices = [new ChatChoice { Message = new ChatResponseMessage { Content = "cached stream" }, FinishReason = "stop" }], Usage = new ChatUsage { PromptTokens = 1, CompletionTokens = 2, TotalTokens = 3 } };
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddPlugin(new Recorder("cache", new ConcurrentQueue<string>(), pre: c => ChatCall(c).Respond(cached))));

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","stream":true,"messages":[{"role":"user","content":"x"}]}""", Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("\"content\":\"cached stream\"", body, StringComparison.Ordinal);
        Assert.Contains("\"finish_reason\":\"stop\"", body, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]", body.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plugins_apply_to_async_jobs_and_embeddings_too()
    {
        var log = new ConcurrentQueue<string>();
        await using var host = await GatewayHost.StartAsync(
            configure: o => o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20),
            bifrost: b => b.AddPlugin(new Recorder("p", log)));

        var submit = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions") { Content = new StringContent(Chat, System.Text.Encoding.UTF8, "application/json") };
        submit.Headers.Add("x-bf-async", "true");
        using (var accepted = await host.Client.SendAsync(submit, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        }

        using (var embeddings = await host.PostJsonAsync("/openai/v1/embeddings", """{"model":"local/echo","input":"x"}""", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, embeddings.StatusCode);
        }

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!log.Contains("p.pre:chat_completion") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, Ct);
        }

        Assert.Contains("p.pre:chat_completion", log);
        Assert.Contains("p.pre:embedding", log);
    }
}
