using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.AspNetCore.TestHost;
using OpenAI;

namespace Bifrost.Middleware.Compatibility.Tests;

/// <summary>The gateway on a TestServer, and an official <see cref="OpenAIClient"/> pointed at it.</summary>
public sealed class SdkHost : IAsyncDisposable
{
    private readonly HttpClient _http;

    private SdkHost(WebApplication app)
    {
        App = app;
        var server = app.GetTestServer();
        _http = server.CreateClient();
        Client = new OpenAIClient(
            new ApiKeyCredential("sk-test"),
            new OpenAIClientOptions
            {
                Endpoint = new Uri(server.BaseAddress, "/openai/v1"),
                Transport = new HttpClientPipelineTransport(_http),
                RetryPolicy = new ClientRetryPolicy(0),
            });
    }

    public WebApplication App { get; }

    public OpenAIClient Client { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>Starts a host with the local provider as the default (models: echo), plus whatever the test adds.</summary>
    public static async Task<SdkHost> StartAsync(Action<IBifrostBuilder>? bifrost = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        var gateway = builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"], MaxRetries = 0 };
        });
        bifrost?.Invoke(gateway);
        var app = builder.Build();
        app.MapBifrost("/openai");
        await app.StartAsync();
        return new SdkHost(app);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
