using System.Collections.Concurrent;
using System.Net;
using Azure.Identity;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Azure.Tests;

/// <summary><c>UseAzureEntraId</c> end to end: the gateway, an <c>azure</c> provider without keys, the fake Azure resource.</summary>
public sealed class EntraIdGatewayTests : IAsyncLifetime
{
    private const string Body = """{"model":"azure/gpt-4o","messages":[{"role":"user","content":"hi"}]}""";

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero));
    private readonly ConcurrentQueue<string> _logs = new();
    private FakeAzureUpstream _upstream = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _upstream = await FakeAzureUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    [Fact]
    public async Task Requests_carry_the_bearer_token_and_no_api_key_and_a_refused_token_is_replaced_once()
    {
        var credential = new FakeTokenCredential(_time);
        _upstream.AcceptedTokens["token-1"] = true;
        await using var app = await StartAsync(b => b.UseAzureEntraId("azure", credential));
        using var client = app.GetTestClient();

        using (var first = await PostAsync(client))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        // the resource stops accepting token-1 (revoked): one 401, a new token, the same request again
        _upstream.AcceptedTokens.Clear();
        _upstream.AcceptedTokens["token-2"] = true;
        using (var second = await PostAsync(client))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        }

        var sent = _upstream.Requests.ToList();
        Assert.Equal(["Bearer token-1", "Bearer token-1", "Bearer token-2"], sent.Select(r => r.Authorization));
        Assert.All(sent, r => Assert.Null(r.ApiKey));
        Assert.Equal(2, credential.Calls);
        Assert.DoesNotContain(_logs, l => l.Contains("token-", StringComparison.Ordinal));
        Assert.Contains(_logs, l => l.Contains("Entra ID token for provider 'azure' acquired", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_token_that_is_still_refused_after_the_refresh_is_the_upstream_401()
    {
        var credential = new FakeTokenCredential(_time);
        await using var app = await StartAsync(b => b.UseAzureEntraId("azure", credential));
        using var client = app.GetTestClient();

        using var response = await PostAsync(client);
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("Access token is missing, invalid", text, StringComparison.Ordinal);
        Assert.DoesNotContain("token-", text, StringComparison.Ordinal);
        Assert.Equal(2, _upstream.Requests.Count); // one retry after the 401, not more
        Assert.Equal(2, credential.Calls);
    }

    [Fact]
    public async Task A_credential_that_cannot_give_a_token_is_a_502_upstream_auth_failed()
    {
        var credential = new FakeTokenCredential(_time) { Failure = new CredentialUnavailableException("ManagedIdentityCredential authentication unavailable.") };
        await using var app = await StartAsync(b => b.UseAzureEntraId("azure", credential));
        using var client = app.GetTestClient();

        using var response = await PostAsync(client);
        var json = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(Ct);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream_auth_failed", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("ManagedIdentityCredential authentication unavailable.", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public void Arguments_are_checked()
    {
        var builder = new ServiceCollection().AddBifrost();

        Assert.Throws<ArgumentException>(() => builder.UseAzureEntraId(" "));
        Assert.Throws<ArgumentNullException>(() => builder.UseAzureEntraId("azure", credential: null!));
        Assert.Throws<ArgumentException>(() => builder.UseAzureEntraId("azure", o => o.Scope = ""));
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient client) =>
        client.PostAsync("/openai/v1/chat/completions", new StringContent(Body, System.Text.Encoding.UTF8, "application/json"), Ct);

    private async Task<WebApplication> StartAsync(Action<IBifrostBuilder> configure)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddProvider(new ListLoggerProvider(_logs));
        builder.Services.AddSingleton<TimeProvider>(_time);
        configure(builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "azure";
            o.Providers["azure"] = new ProviderOptions { Type = "azure", BaseUrl = _upstream.Endpoint, MaxRetries = 0 };
        }));
        var app = builder.Build();
        app.MapBifrost("/openai");
        await app.StartAsync(Ct);
        return app;
    }

    private sealed class ListLoggerProvider(ConcurrentQueue<string> logs) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(logs);

        public void Dispose()
        {
        }

        private sealed class ListLogger(ConcurrentQueue<string> logs) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                logs.Enqueue(formatter(state, exception) + " " + exception);
        }
    }
}
