using System.Text;
using Bifrost.Middleware.Packaging.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>
/// A gateway host configured by one of README's appsettings snippets (<c>&lt;!-- snippet: name --&gt;</c>) as a reader
/// would paste it, with only the provider's BaseUrl pointed at a fake upstream: proves the README's example starts and answers.
/// </summary>
internal sealed class ReadmeConfigurationHost(WebApplication app) : IAsyncDisposable
{
    /// <summary>A client of the started host.</summary>
    public HttpClient Client { get; } = app.GetTestServer().CreateClient();

    /// <summary>Starts the host.</summary>
    /// <param name="snippet">The snippet's name in README.md.</param>
    /// <param name="provider">The provider whose BaseUrl is replaced.</param>
    /// <param name="baseUrl">The fake upstream's base URL.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    public static async Task<ReadmeConfigurationHost> StartAsync(string snippet, string provider, string baseUrl, CancellationToken cancellationToken)
    {
        var json = ReadmeSnippets.Get(Repository.PathOf("README.md"), snippet);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        builder.Configuration.AddInMemoryCollection([new($"Bifrost:Providers:{provider}:BaseUrl", baseUrl)]); // the fake instead of the cloud
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));
        var app = builder.Build();
        app.MapBifrost();
        await app.StartAsync(cancellationToken);
        return new ReadmeConfigurationHost(app);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await app.DisposeAsync();
    }
}
