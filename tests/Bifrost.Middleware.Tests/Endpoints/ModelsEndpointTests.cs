using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Endpoints;

public sealed class ModelsEndpointTests
{
    [Fact]
    public async Task Models_lists_provider_slash_model_ids_of_every_configured_provider()
    {
        await using var host = await GatewayHost.StartAsync(
            options =>
            {
                options.Providers["local"].Models = ["echo", "parrot"];
                options.Providers["openai"] = new ProviderOptions { BaseUrl = "http://127.0.0.1:9/v1", Models = ["gpt-4o-mini", "text-embedding-3-small"] };
                options.Providers["acme"] = new ProviderOptions { Models = ["acme-large"] };
            },
            bifrost => bifrost.AddProvider<CapturingAdapter>("acme"));

        using var response = await host.Client.GetAsync("/openai/v1/models", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("list", json.GetProperty("object").GetString());
        var models = json.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(
            ["acme/acme-large", "local/echo", "local/parrot", "openai/gpt-4o-mini", "openai/text-embedding-3-small"],
            models.Select(m => m.GetProperty("id").GetString()).Order(StringComparer.Ordinal));
        Assert.All(models, m => Assert.Equal("model", m.GetProperty("object").GetString()));
        Assert.Equal("openai", models.Single(m => m.GetProperty("id").GetString() == "openai/gpt-4o-mini").GetProperty("owned_by").GetString());
        Assert.Equal("list_models", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task The_local_provider_without_models_lists_echo()
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.Client.GetAsync("/openai/models", TestContext.Current.CancellationToken);

        var json = await GatewayHost.ReadJsonAsync(response);
        var model = Assert.Single(json.GetProperty("data").EnumerateArray());
        Assert.Equal("local/echo", model.GetProperty("id").GetString());
        Assert.Equal("local", model.GetProperty("owned_by").GetString());
    }

    [Fact]
    public async Task A_provider_whose_listing_fails_is_left_out_and_the_others_are_listed()
    {
        var broken = new BrokenListAdapter();
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddProvider("broken", _ => broken));

        using var response = await host.Client.GetAsync("/openai/v1/models", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal(["local/echo"], json.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.True(broken.Listed);
    }

    private sealed class BrokenListAdapter : ScriptedAdapter, IProviderAdapter
    {
        public bool Listed { get; private set; }

        Task<IReadOnlyList<ModelInfo>> IProviderAdapter.ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
        {
            Listed = true;
            throw BifrostException.Provider(503, null, "down", "listing is down");
        }
    }
}
