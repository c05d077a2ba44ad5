using System.Net;
using System.Text.Json;
using static Bifrost.Middleware.Tests.Anthropic.AnthropicInboundTests;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>
/// The caller's <c>anthropic-beta</c> and <c>anthropic-version</c> headers on the <c>/anthropic</c> routes reach an Anthropic
/// provider on the native path (sync, stream, async job, count_tokens), merged with the provider's configured betas; the
/// caller's key never does; a converted request ignores them. Header semantics:
/// https://docs.anthropic.com/en/api/versioning and https://docs.anthropic.com/en/api/beta-headers.
/// </summary>
public sealed class AnthropicHeaderForwardingTests : AnthropicTestBase
{
    private const string MessagesPath = "/anthropic/v1/messages";
    private const string ClaudeCodeBetas = "prompt-caching-2024-07-31, interleaved-thinking-2025-05-14";
    private const string Body = """{"model":"anthropic/claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""";

    [Fact]
    public async Task A_sync_call_carries_the_callers_betas_after_the_providers_configured_ones_and_the_callers_version()
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl, o => o.Providers["anthropic"].Headers["anthropic-beta"] = "interleaved-thinking-2025-05-14,files-api-2025-04-14");

        using var response = await host.SendAsync(MessagesPath, Body, ("anthropic-beta", ClaudeCodeBetas), ("anthropic-version", "2024-10-22"), ("x-api-key", "sk-ant-callers-own"));
        await Json(response, HttpStatusCode.OK);

        var sent = Upstream.MessageRequests.Single();
        Assert.Equal("interleaved-thinking-2025-05-14,files-api-2025-04-14,prompt-caching-2024-07-31", sent.Headers["anthropic-beta"]);
        Assert.Equal("2024-10-22", sent.Headers["anthropic-version"]);
        Assert.Equal("sk-ant-test", sent.Headers["x-api-key"]); // the gateway's key, never the caller's
        Assert.False(sent.Body!.ContainsKey("x-bf-anthropic-headers"));
        Assert.Equal(["model", "max_tokens", "messages"], sent.Body.Select(p => p.Key));
    }

    [Fact]
    public async Task Without_the_callers_headers_the_adapters_version_is_sent_and_no_beta()
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.SendAsync(MessagesPath, Body);
        await Json(response, HttpStatusCode.OK);

        var sent = Upstream.MessageRequests.Single();
        Assert.Equal("2023-06-01", sent.Headers["anthropic-version"]);
        Assert.False(sent.Headers.ContainsKey("anthropic-beta"));
    }

    [Fact]
    public async Task A_stream_carries_the_callers_betas_repeated_header_lines_merged_and_de_duplicated()
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.SendAsync(
            MessagesPath,
            """{"model":"anthropic/claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}""",
            ("anthropic-beta", ClaudeCodeBetas),
            ("anthropic-beta", "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("message_stop", ParseEvents(await response.Content.ReadAsStringAsync(Ct))[^1].Name);

        var sent = Upstream.MessageRequests.Single();
        Assert.Equal("prompt-caching-2024-07-31,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14", sent.Headers["anthropic-beta"]);
        Assert.Equal("2023-06-01", sent.Headers["anthropic-version"]);
    }

    [Fact]
    public async Task An_async_job_keeps_the_headers_through_the_job_store_and_the_upstream_sees_them()
    {
        Upstream.RawMessage = _ => """{"id":"msg_async","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Later."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}""";
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var submit = await host.SendAsync(MessagesPath, Body, ("x-bf-async", "true"), ("anthropic-beta", ClaudeCodeBetas), ("anthropic-version", "2024-10-22"));
        var id = (await Json(submit, HttpStatusCode.OK)).GetProperty("id").GetString()!;
        var result = await PollAsync(host, id);

        Assert.Equal("msg_async", result.GetProperty("id").GetString());
        var sent = Upstream.MessageRequests.Single();
        Assert.Equal("prompt-caching-2024-07-31,interleaved-thinking-2025-05-14", sent.Headers["anthropic-beta"]);
        Assert.Equal("2024-10-22", sent.Headers["anthropic-version"]);
        Assert.False(sent.Body!.ContainsKey("x-bf-anthropic-headers"));
        Assert.Equal("claude-sonnet-4-5", sent.Body["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task Count_tokens_forwards_the_callers_betas()
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.SendAsync(MessagesPath + "/count_tokens", """{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}""", ("anthropic-beta", "token-counting-2024-11-01"));
        await Json(response, HttpStatusCode.OK);

        Assert.Equal("token-counting-2024-11-01", Upstream.Requests.Single(r => r.Path == "/v1/messages/count_tokens").Headers["anthropic-beta"]);
    }

    [Fact]
    public async Task A_converted_request_ignores_the_headers()
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var viaChat = await host.SendAsync(MessagesPath, """{"model":"viachat/claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""", ("anthropic-beta", ClaudeCodeBetas), ("anthropic-version", "2024-10-22"));
        await Json(viaChat, HttpStatusCode.OK);
        using var local = await host.SendAsync(MessagesPath, """{"model":"local/echo","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}""", ("anthropic-beta", ClaudeCodeBetas));
        Assert.Equal(HttpStatusCode.OK, local.StatusCode);
        Assert.Equal("message_stop", ParseEvents(await local.Content.ReadAsStringAsync(Ct))[^1].Name);

        var sent = Upstream.MessageRequests.Single(); // the chat translation's own call
        Assert.False(sent.Headers.ContainsKey("anthropic-beta"));
        Assert.Equal("2023-06-01", sent.Headers["anthropic-version"]);
        Assert.False(sent.Body!.ContainsKey("x-bf-anthropic-headers"));
    }

    [Theory]
    [InlineData("anthropic-beta", "prompt caching")]
    [InlineData("anthropic-beta", "a;b")]
    [InlineData("anthropic-version", "2023/06/01")]
    public async Task A_header_value_that_is_not_a_token_is_a_400_in_Anthropics_shape(string name, string value)
    {
        await using var host = await InboundHost.StartAsync(Upstream.BaseUrl);

        using var response = await host.SendAsync(MessagesPath, Body, (name, value));
        var json = await Json(response, HttpStatusCode.BadRequest);

        Assert.Equal("invalid_request_error", json.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains(name, json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.MessageRequests);
    }

    private static async Task<JsonElement> PollAsync(InboundHost host, string id)
    {
        for (var i = 0; i < 200; i++)
        {
            using var poll = await host.SendAsync(MessagesPath, "{}", ("x-bf-async-id", id));
            var json = await Json(poll, HttpStatusCode.OK);
            if (json.GetProperty("content").GetArrayLength() > 0)
            {
                return json;
            }

            await Task.Delay(20, Ct);
        }

        throw new TimeoutException("The async job did not finish.");
    }
}
