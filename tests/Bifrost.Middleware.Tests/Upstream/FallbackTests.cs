using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>Fallbacks across two real upstreams: provider <c>openai</c> (A) and provider <c>other</c> (B).</summary>
public sealed class FallbackTests
{
    private const string WithFallback = "\"fallbacks\":[\"other/model-b\"]";

    private static Task<GatewayHost> StartAsync(FakeOpenAIUpstream a, FakeOpenAIUpstream b, int maxRetries = 0) =>
        UpstreamGateway.StartAsync(a, p => p.MaxRetries = maxRetries, o => o.Providers["other"] = Provider(b, p =>
        {
            p.MaxRetries = 0;
            p.Keys = [new ProviderKeyOptions { Value = "sk-other" }];
        }));

    [Fact]
    public async Task Primary_503_after_its_retries_falls_back_to_the_other_provider()
    {
        await using var a = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(503, "overloaded"));
        await using var b = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(a, b, maxRetries: 1);

        using var response = await host.PostChatAsync(Chat(extra: WithFallback));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var extra = (await GatewayHost.ReadJsonAsync(response)).GetProperty("extra_fields");
        Assert.Equal("other", extra.GetProperty("provider").GetString());
        Assert.Equal("model-b", extra.GetProperty("model_requested").GetString());
        Assert.Equal(2, a.ChatCalls);
        var fallback = Assert.Single(b.Requests);
        Assert.Equal("model-b", fallback.Body!.Value.GetProperty("model").GetString());
        Assert.False(fallback.Body!.Value.TryGetProperty("fallbacks", out _));
        Assert.Equal("Bearer sk-other", fallback.Header("Authorization"));
    }

    [Fact]
    public async Task Primary_400_is_returned_without_trying_the_fallback()
    {
        await using var a = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(400, "bad messages", "invalid_request_error", param: "messages"));
        await using var b = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(a, b);

        using var response = await host.PostChatAsync(Chat(extra: WithFallback));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("bad messages", AssertProviderError(json, 400).GetProperty("message").GetString());
        Assert.Equal("openai", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(1, a.ChatCalls);
        Assert.Equal(0, b.ChatCalls);
    }

    [Fact]
    public async Task When_every_target_fails_the_last_error_is_returned()
    {
        await using var a = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(503, "A is overloaded"));
        await using var b = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(500, "B is down", "server_error", "b_down"));
        await using var host = await StartAsync(a, b);

        using var response = await host.PostChatAsync(Chat(extra: WithFallback));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        var error = AssertProviderError(json, 500);
        Assert.Equal("B is down", error.GetProperty("message").GetString());
        Assert.Equal("b_down", error.GetProperty("code").GetString());
        Assert.Equal("other", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(1, a.ChatCalls);
        Assert.Equal(1, b.ChatCalls);
    }

    [Theory]
    [InlineData("nope/model-x", "provider_not_found")]
    [InlineData("other/", "model_not_found")]
    [InlineData("", "missing_required_parameter")]
    public async Task Invalid_fallback_is_a_400_naming_the_fallback_and_nothing_is_called(string fallback, string code)
    {
        await using var a = await FakeOpenAIUpstream.StartAsync();
        await using var b = await FakeOpenAIUpstream.StartAsync();

        // No default provider: with one, "nope/model-x" would be a model id (like "meta-llama/Llama-3.1-8B") on it.
        await using var host = await UpstreamGateway.StartAsync(a, more: o =>
        {
            o.DefaultProvider = null;
            o.Providers["other"] = Provider(b);
        });

        using var response = await host.PostChatAsync(Chat(extra: $"\"fallbacks\":[\"{fallback}\"]"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(400, json.GetProperty("status_code").GetInt32());
        Assert.Equal(code, json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("fallbacks[0]", json.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal(0, a.ChatCalls);
        Assert.Equal(0, b.ChatCalls);
    }
}
