using System.Text.Json;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>An in-process host (TestServer) with the gateway mapped at /openai; configure options and services per test.</summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private GatewayHost(WebApplication app)
    {
        App = app;
        Server = app.GetTestServer();
        Client = Server.CreateClient();
    }

    public WebApplication App { get; }

    public TestServer Server { get; }

    public HttpClient Client { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>Starts a host. By default it has the local provider as the default provider; <paramref name="dashboard"/> maps the dashboard at /bifrost too.</summary>
    public static async Task<GatewayHost> StartAsync(
        Action<BifrostOptions>? configure = null,
        Action<IBifrostBuilder>? bifrost = null,
        Action<IServiceCollection>? services = null,
        string prefix = "/openai",
        bool dashboard = false)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        var gateway = builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            configure?.Invoke(options);
        });
        bifrost?.Invoke(gateway);
        services?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapBifrost(prefix);
        if (dashboard)
        {
            app.MapBifrostDashboard(); // at /bifrost
        }

        await app.StartAsync();
        return new GatewayHost(app);
    }

    public Task<HttpResponseMessage> PostJsonAsync(string path, string json, CancellationToken cancellationToken = default) =>
        Client.PostAsync(path, new StringContent(json, System.Text.Encoding.UTF8, "application/json"), cancellationToken);

    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>())!;

    /// <summary>Wraps a host the test built and started itself (e.g. with other Map* calls).</summary>
    public static GatewayHost ForStarted(WebApplication app) => new(app);

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
