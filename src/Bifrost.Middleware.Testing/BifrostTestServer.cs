using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bifrost.Middleware.Testing;

/// <summary>
/// An in-memory gateway for tests without an app of their own: a minimal host with <c>AddBifrost</c>, the scripted
/// providers of <see cref="Scripts"/> and <c>MapBifrost("/openai")</c> on a TestHost server. Point an
/// <see cref="HttpClient"/> or the OpenAI SDK at it:
/// <code>
/// await using var server = await BifrostTestServer.StartAsync(scripts);
/// var client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions
/// {
///     Endpoint = server.BaseAddress,
///     Transport = new HttpClientPipelineTransport(server.CreateClient()),
/// });
/// </code>
/// </summary>
public sealed class BifrostTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly DirectoryInfo _files;

    private BifrostTestServer(WebApplication app, DirectoryInfo files, BifrostScripts scripts)
    {
        _app = app;
        _files = files;
        Scripts = scripts;
        Server = app.GetTestServer();
    }

    /// <summary>The scripts serving the providers.</summary>
    public BifrostScripts Scripts { get; }

    /// <summary>The TestHost server.</summary>
    public TestServer Server { get; }

    /// <summary>The host's services (e.g. <c>IBifrostClient</c>).</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>The OpenAI-compatible base address, <c>http://localhost/openai/v1/</c>: the OpenAI SDK's <c>Endpoint</c>.</summary>
    public Uri BaseAddress { get; } = new("http://localhost/openai/v1/");

    /// <summary>
    /// Starts a gateway serving the providers named in <paramref name="scripts"/> (with the testing defaults of
    /// <c>AddBifrostScripts</c>), files in a temp folder deleted on dispose.
    /// </summary>
    /// <param name="scripts">The scripts; name their providers before starting.</param>
    /// <param name="configure">Further options (e.g. <c>DefaultProvider</c>, a provider's <c>Models</c>); applied before the testing defaults.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The started server; dispose it.</returns>
    public static async Task<BifrostTestServer> StartAsync(BifrostScripts scripts, Action<BifrostOptions>? configure = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scripts);
        var files = Directory.CreateTempSubdirectory("bifrost-test-server-");
        try
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseTestServer();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddBifrost(options =>
            {
                options.Files.Directory = files.FullName;
                configure?.Invoke(options);
            });
            builder.Services.AddBifrostScripts(scripts);
            var app = builder.Build();
            app.MapBifrost("/openai");
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            return new BifrostTestServer(app, files, scripts);
        }
        catch
        {
            files.Delete(recursive: true);
            throw;
        }
    }

    /// <summary>An <see cref="HttpClient"/> to the server, its base address <see cref="BaseAddress"/> (<c>chat/completions</c> is a relative path).</summary>
    public HttpClient CreateClient()
    {
        var client = Server.CreateClient();
        client.BaseAddress = BaseAddress;
        return client;
    }

    /// <summary>Stops the host and deletes its files.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        try
        {
            _files.Delete(recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp folder
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
