using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Sqlite.Tests.Infrastructure;

/// <summary>An in-process host (TestServer) with the gateway at /openai and the local provider as default.</summary>
internal sealed class InProcessHost : IAsyncDisposable
{
    private InProcessHost(WebApplication app)
    {
        App = app;
        Client = app.GetTestServer().CreateClient();
        Client.BaseAddress = new Uri(Client.BaseAddress!, "/openai/");
    }

    public WebApplication App { get; }

    public HttpClient Client { get; }

    public IServiceProvider Services => App.Services;

    /// <param name="contentRoot">The content root (relative store paths resolve against it).</param>
    /// <param name="bifrost">Configures the gateway builder, e.g. <c>UseSqliteJobStore</c>.</param>
    /// <param name="configure">Configures the options.</param>
    public static async Task<InProcessHost> StartAsync(string contentRoot, Action<IBifrostBuilder>? bifrost = null, Action<BifrostOptions>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production, ContentRootPath = contentRoot });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        var gateway = builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            options.Files.Directory = Path.Combine(contentRoot, "files");
            configure?.Invoke(options);
        });
        bifrost?.Invoke(gateway);
        var app = builder.Build();
        app.MapBifrost("/openai");
        await app.StartAsync();
        return new InProcessHost(app);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
