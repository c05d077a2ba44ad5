using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Hosting;

/// <summary>Everything can come from configuration (appsettings.json, environment variables, ...).</summary>
public sealed class ConfigurationBindingTests
{
    [Fact]
    public async Task Providers_keys_weights_and_models_bind_from_configuration()
    {
        var variable = "BIFROST_TEST_KEY_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "sk-from-env");
        try
        {
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
            builder.WebHost.UseTestServer();
            builder.Logging.ClearProviders();
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Bifrost:DefaultProvider"] = "local",
                ["Bifrost:MaxRequestBodySize"] = "4096",
                ["Bifrost:Providers:openai:BaseUrl"] = "http://127.0.0.1:9/v1",
                ["Bifrost:Providers:openai:Keys:0:Value"] = "sk-one",
                ["Bifrost:Providers:openai:Keys:0:Weight"] = "3",
                ["Bifrost:Providers:openai:Keys:1:Value"] = "sk-two",
                ["Bifrost:Providers:openai:Keys:1:Weight"] = "0.5",
                ["Bifrost:Providers:openai:Keys:1:Models:0"] = "gpt-4o",
                ["Bifrost:Providers:openai:Models:0"] = "gpt-4o-mini",
                ["Bifrost:Providers:openai:Models:1"] = "gpt-4o",
                ["Bifrost:Providers:openai:MaxRetries"] = "1",
                ["Bifrost:Providers:openai:RetryBaseDelay"] = "00:00:00.250",
                ["Bifrost:Providers:openai:Timeout"] = "00:00:30",
                ["Bifrost:Providers:openai:Headers:OpenAI-Organization"] = "org-1",
                ["Bifrost:Providers:local:Type"] = "local",
                ["Bifrost:Providers:local:Models:0"] = "echo",
                ["Bifrost:Providers:acme:Keys:0:Value"] = "env:" + variable,
                ["Bifrost:Providers:acme:Models:0"] = "acme-1",
            });
            builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost")).AddProvider<CapturingAdapter>("acme");
            await using var app = builder.Build();
            app.MapBifrost();
            await app.StartAsync(TestContext.Current.CancellationToken);
            using var client = app.GetTestClient();
            var ct = TestContext.Current.CancellationToken;

            var options = app.Services.GetRequiredService<IOptions<BifrostOptions>>().Value;
            Assert.Equal("local", options.DefaultProvider);
            Assert.Equal(4096, options.MaxRequestBodySize);
            var openai = options.Providers["OpenAI"]; // provider names are case-insensitive after binding too
            Assert.Equal("http://127.0.0.1:9/v1", openai.BaseUrl);
            Assert.Equal(["sk-one", "sk-two"], openai.Keys.Select(k => k.Value));
            Assert.Equal([3, 0.5], openai.Keys.Select(k => k.Weight));
            Assert.Equal(["gpt-4o"], openai.Keys[1].Models);
            Assert.Empty(openai.Keys[0].Models);
            Assert.Equal(["gpt-4o-mini", "gpt-4o"], openai.Models);
            Assert.Equal(1, openai.MaxRetries);
            Assert.Equal(TimeSpan.FromMilliseconds(250), openai.RetryBaseDelay);
            Assert.Equal(TimeSpan.FromSeconds(30), openai.Timeout);
            Assert.Equal("org-1", openai.Headers["OpenAI-Organization"]);

            var models = await GatewayHost.ReadJsonAsync(await client.GetAsync("/openai/v1/models", ct));
            Assert.Equal(
                ["acme/acme-1", "local/echo", "openai/gpt-4o", "openai/gpt-4o-mini"],
                models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Order(StringComparer.Ordinal));

            // The configured model list is enforced.
            using var notListed = await client.PostAsync("/openai/v1/chat/completions", Json("""{"model":"openai/gpt-3.5-turbo","messages":[{"role":"user","content":"x"}]}"""), ct);
            Assert.Equal(HttpStatusCode.BadRequest, notListed.StatusCode);
            Assert.Equal("model_not_found", (await GatewayHost.ReadJsonAsync(notListed)).GetProperty("error").GetProperty("code").GetString());

            // The key bound from configuration (env: resolved) reaches the adapter.
            using var served = await client.PostAsync("/openai/v1/chat/completions", Json("""{"model":"acme/acme-1","messages":[{"role":"user","content":"x"}]}"""), ct);
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
            var (context, _) = Assert.Single(app.Services.GetRequiredService<CapturingAdapter>().Calls);
            Assert.Equal("sk-from-env", context.ApiKey);

            await app.StopAsync(ct);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public async Task A_bad_value_in_configuration_fails_the_start_naming_the_setting()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bifrost:Providers:openai:BaseUrl"] = "https://api.example.com/v1",
            ["Bifrost:Providers:openai:Keys:0:Value"] = "",
            ["Bifrost:Providers:openai:Keys:0:Weight"] = "1",
        });
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));
        await using var app = builder.Build();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("Bifrost:Providers:openai:Keys:0:Value", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfigureProvider_applies_after_configuration_binding()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Providers:local:Type"] = "local",
            ["Providers:local:Models:0"] = "echo",
            ["Providers:local:MaxRetries"] = "4",
        }).Build();
        var services = new ServiceCollection();
        services.AddBifrost(configuration).ConfigureProvider("local", p => p.MaxRetries = 1);
        await using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<BifrostOptions>>().Value;
        Assert.Equal(1, options.Providers["local"].MaxRetries);
        Assert.Equal(["echo"], options.Providers["local"].Models);
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
