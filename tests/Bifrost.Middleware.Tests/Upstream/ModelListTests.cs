using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary><c>GET models</c> on OpenAI-compatible providers.</summary>
public sealed class ModelListTests
{
    private const string UpstreamModels = """
        {"object":"list","data":[
          {"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"},
          {"id":"text-embedding-3-small","object":"model","created":1705948997,"owned_by":"system","context_window":8191}]}
        """;

    [Fact]
    public async Task Models_are_fetched_from_the_upstream_and_prefixed_and_a_failing_provider_is_left_out()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Handler = FakeResponses.Json(200, UpstreamModels);
        await using var broken = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(500, "models unavailable"));
        await using var host = await StartAsync(upstream, more: o => o.Providers["broken"] = Provider(broken));

        using var response = await host.Client.GetAsync("/openai/v1/models", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("list", json.GetProperty("object").GetString());
        var models = json.GetProperty("data").EnumerateArray().ToDictionary(static m => m.GetProperty("id").GetString()!);
        Assert.Contains("openai/gpt-4o-mini", models.Keys);
        Assert.Contains("openai/text-embedding-3-small", models.Keys);
        Assert.Equal(1721172741, models["openai/gpt-4o-mini"].GetProperty("created").GetInt64());
        Assert.Equal(8191, models["openai/text-embedding-3-small"].GetProperty("context_window").GetInt32());
        Assert.DoesNotContain(models.Keys, static id => id.StartsWith("broken/", StringComparison.Ordinal));
        Assert.Contains(models.Keys, static id => id.StartsWith("local/", StringComparison.Ordinal));

        var received = Assert.Single(upstream.Requests);
        Assert.Equal("GET", received.Method);
        Assert.Equal("/v1/models", received.Path);
        Assert.Equal("Bearer sk-test", received.Header("Authorization"));
        Assert.Single(broken.Requests);
    }

    [Fact]
    public async Task Configured_models_are_listed_without_asking_the_upstream()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream, p => p.Models = ["gpt-4o", "gpt-4o-mini"]);

        using var response = await host.Client.GetAsync("/openai/models", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var ids = (await GatewayHost.ReadJsonAsync(response)).GetProperty("data").EnumerateArray().Select(static m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains("openai/gpt-4o", ids);
        Assert.Contains("openai/gpt-4o-mini", ids);
        Assert.Empty(upstream.Requests);
    }

    [Fact]
    public async Task Hanging_provider_is_left_out_after_its_timeout()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var hanging = await FakeOpenAIUpstream.StartAsync(FakeResponses.Hang());
        await using var host = await StartAsync(upstream, more: o => o.Providers["slow"] = Provider(hanging, p => p.Timeout = TimeSpan.FromMilliseconds(300)));

        using var response = await host.Client.GetAsync("/openai/v1/models", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var ids = (await GatewayHost.ReadJsonAsync(response)).GetProperty("data").EnumerateArray().Select(static m => m.GetProperty("id").GetString()!).ToList();
        Assert.Contains("openai/gpt-4o-mini", ids);
        Assert.DoesNotContain(ids, static id => id.StartsWith("slow/", StringComparison.Ordinal));
        await Assert.Single(hanging.Requests).Aborted.WaitAsync(TimeSpan.FromSeconds(5), Ct);
    }

    [Fact]
    public async Task Unreachable_provider_is_left_out_of_the_list()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream, more: o => o.Providers["down"] = new ProviderOptions { Type = "openai", BaseUrl = $"http://127.0.0.1:{TimeoutTests.FreePort()}/v1" });

        using var response = await host.Client.GetAsync("/openai/v1/models", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var ids = (await GatewayHost.ReadJsonAsync(response)).GetProperty("data").EnumerateArray().Select(static m => m.GetProperty("id").GetString()!).ToList();
        Assert.Contains("openai/gpt-4o-mini", ids);
        Assert.DoesNotContain(ids, static id => id.StartsWith("down/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Provider_whose_keys_are_all_restricted_to_models_still_lists_upstream_models()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Handler = FakeResponses.Json(200, UpstreamModels);
        await using var host = await StartAsync(upstream, p => p.Keys =
        [
            new ProviderKeyOptions { Value = "sk-mini", Models = ["gpt-4o-mini"] },
            new ProviderKeyOptions { Value = "sk-embed", Models = ["text-embedding-3-small"] },
        ]);

        using var response = await host.Client.GetAsync("/openai/v1/models", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var ids = (await GatewayHost.ReadJsonAsync(response)).GetProperty("data").EnumerateArray().Select(static m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains("openai/gpt-4o-mini", ids);
        Assert.Contains("openai/text-embedding-3-small", ids);
        Assert.Contains(Assert.Single(upstream.Requests).Header("Authorization"), new[] { "Bearer sk-mini", "Bearer sk-embed" });
    }
}
