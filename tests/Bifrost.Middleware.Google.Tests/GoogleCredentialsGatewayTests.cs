using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Google.Apis.Auth.OAuth2;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Google.Tests;

/// <summary>
/// <c>UseGoogleCredentials</c> end to end: the gateway, a <c>vertex</c> provider without keys, a service-account key whose
/// token_uri is a fake token endpoint, and a fake Vertex AI model endpoint.
/// </summary>
public sealed class GoogleCredentialsGatewayTests : IAsyncLifetime
{
    private const string Body = """{"model":"vertex/gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}""";

    private readonly ConcurrentQueue<string> _logs = new();
    private FakeGoogleCloud _google = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _google = await FakeGoogleCloud.StartAsync();

    public async ValueTask DisposeAsync() => await _google.DisposeAsync();

    [Fact]
    public async Task A_service_account_key_gets_a_token_by_the_JWT_bearer_grant_and_reuses_it_while_valid()
    {
        await using var app = await StartAsync(b => b.UseGoogleCredentials("vertex", o => o.CredentialsJson = _google.ServiceAccountJson()));
        using var client = app.GetTestClient();

        var first = await PostAsync(client);
        var second = await PostAsync(client);

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal("hello from vertex", JsonDocument.Parse(first.Text).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(HttpStatusCode.OK, second.Status);
        var grant = Assert.Single(_google.Grants); // one token for both calls
        Assert.Equal(FakeGoogleCloud.ClientEmail, grant["iss"]!.GetValue<string>());
        Assert.Equal(GoogleCredentialOptions.CloudPlatformScope, grant["scope"]!.GetValue<string>());
        Assert.Equal("https://oauth2.googleapis.com/token", grant["aud"]!.GetValue<string>()); // Google.Apis.Auth names Google's token endpoint, wherever token_uri points
        Assert.True(grant["exp"]!.GetValue<long>() > grant["iat"]!.GetValue<long>());
        Assert.Equal(["Bearer ya29.fake-1", "Bearer ya29.fake-1"], _google.VertexRequests.Select(static r => r.Authorization));
        AssertNoSecretLogged();
        Assert.Contains(_logs, l => l.Contains("Google credentials for provider 'vertex' loaded (ServiceAccountCredential)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_model_garden_listing_of_both_publishers_uses_the_service_accounts_token()
    {
        await using var app = await StartAsync(b => b.UseGoogleCredentials("vertex", o => o.CredentialsJson = _google.ServiceAccountJson()));
        using var client = app.GetTestClient();

        using var response = await client.GetAsync("/openai/v1/models", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var ids = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Equal(["vertex/gemini-2.5-flash", "vertex/claude-sonnet-4-5"], ids);
        Assert.Equal([("google", "Bearer ya29.fake-1"), ("anthropic", "Bearer ya29.fake-1")], _google.ModelGardenRequests.Select(r => (r.Publisher, r.Authorization)));
        Assert.Single(_google.Grants);
        AssertNoSecretLogged();
    }

    [Fact]
    public async Task A_token_about_to_expire_is_replaced_before_it_is_used_again()
    {
        _google.ExpiresInSeconds = 30; // inside Google.Apis.Auth's refresh window: stale at once
        await using var app = await StartAsync(b => b.UseGoogleCredentials("vertex", o => o.CredentialsJson = _google.ServiceAccountJson()));
        using var client = app.GetTestClient();

        Assert.Equal(HttpStatusCode.OK, (await PostAsync(client)).Status);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(client)).Status);

        Assert.Equal(2, _google.Grants.Count);
        Assert.Equal(["Bearer ya29.fake-1", "Bearer ya29.fake-2"], _google.VertexRequests.Select(static r => r.Authorization));
    }

    [Fact]
    public async Task A_token_refused_with_401_is_replaced_at_once_and_the_request_sent_again()
    {
        await using var app = await StartAsync(b => b.UseGoogleCredentials("vertex", o => o.CredentialsJson = _google.ServiceAccountJson()));
        using var client = app.GetTestClient();
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(client)).Status);

        _google.RevokedTokens["ya29.fake-1"] = true;
        var answer = await PostAsync(client);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal(["Bearer ya29.fake-1", "Bearer ya29.fake-1", "Bearer ya29.fake-2"], _google.VertexRequests.Select(static r => r.Authorization));
        Assert.Equal(2, _google.Grants.Count);
        AssertNoSecretLogged();
    }

    [Fact]
    public async Task A_key_file_works_like_the_JSON_and_its_quota_project_is_sent()
    {
        var path = Path.Combine(Path.GetTempPath(), "bifrost-sa-" + Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllTextAsync(path, _google.ServiceAccountJson(quotaProject: "billing-project"), Ct);
        try
        {
            await using var app = await StartAsync(b => b.UseGoogleCredentials("vertex", o => o.CredentialsFile = path));
            using var client = app.GetTestClient();

            Assert.Equal(HttpStatusCode.OK, (await PostAsync(client)).Status);

            Assert.Equal([("Bearer ya29.fake-1", "billing-project")], _google.VertexRequests);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Application_Default_Credentials_come_from_GOOGLE_APPLICATION_CREDENTIALS_by_default()
    {
        var path = Path.Combine(Path.GetTempPath(), "bifrost-adc-" + Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllTextAsync(path, _google.ServiceAccountJson(), Ct);
        Environment.SetEnvironmentVariable("GOOGLE_APPLICATION_CREDENTIALS", path); // only this test of the assembly reads it
        try
        {
            await using var app = await StartAsync(b => b.UseGoogleCredentials("vertex"));
            using var client = app.GetTestClient();

            Assert.Equal(HttpStatusCode.OK, (await PostAsync(client)).Status);

            Assert.Equal(GoogleCredentialOptions.CloudPlatformScope, Assert.Single(_google.Grants)["scope"]!.GetValue<string>());
            Assert.Equal(["Bearer ya29.fake-1"], _google.VertexRequests.Select(static r => r.Authorization));
        }
        finally
        {
            Environment.SetEnvironmentVariable("GOOGLE_APPLICATION_CREDENTIALS", null);
            File.Delete(path);
        }
    }

    [Fact]
    public async Task A_credential_given_by_the_host_is_scoped_and_used()
    {
        var credential = CredentialFactory.FromJson(_google.ServiceAccountJson(), JsonCredentialParameters.ServiceAccountCredentialType);
        await using var app = await StartAsync(b => b.UseGoogleCredentials("vertex", credential, o => o.Scopes = ["https://www.googleapis.com/auth/cloud-platform.read-only", GoogleCredentialOptions.CloudPlatformScope]));
        using var client = app.GetTestClient();

        Assert.Equal(HttpStatusCode.OK, (await PostAsync(client)).Status);

        Assert.Equal("https://www.googleapis.com/auth/cloud-platform.read-only https://www.googleapis.com/auth/cloud-platform", Assert.Single(_google.Grants)["scope"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_token_endpoint_failure_is_a_502_upstream_auth_failed_without_the_private_key()
    {
        _google.FailGrants = true;
        await using var app = await StartAsync(b => b.UseGoogleCredentials("vertex", o => o.CredentialsJson = _google.ServiceAccountJson()));
        using var client = app.GetTestClient();

        var (status, text) = await PostAsync(client);

        Assert.Equal(HttpStatusCode.BadGateway, status);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal("upstream_auth_failed", error.GetProperty("code").GetString());
        Assert.Contains("invalid_grant", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", text, StringComparison.Ordinal);
        Assert.Empty(_google.VertexRequests);
        AssertNoSecretLogged();
    }

    [Fact]
    public async Task A_key_of_another_type_than_declared_is_refused_as_upstream_auth_failed()
    {
        await using var app = await StartAsync(b => b.UseGoogleCredentials("vertex", o => o.CredentialsJson = _google.ServiceAccountJson(type: "authorized_user")));
        using var client = app.GetTestClient();

        var (status, text) = await PostAsync(client);

        Assert.Equal(HttpStatusCode.BadGateway, status);
        Assert.Equal("upstream_auth_failed", JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain("PRIVATE KEY", text, StringComparison.Ordinal);
        Assert.Empty(_google.Grants);
        Assert.Empty(_google.VertexRequests);
    }

    [Fact]
    public void Arguments_are_checked()
    {
        var builder = new ServiceCollection().AddBifrost();
        var credential = CredentialFactory.FromJson(_google.ServiceAccountJson(), JsonCredentialParameters.ServiceAccountCredentialType);

        Assert.Throws<ArgumentException>(() => builder.UseGoogleCredentials(" "));
        Assert.Throws<ArgumentNullException>(() => builder.UseGoogleCredentials("vertex", credential: null!));
        Assert.Throws<ArgumentException>(() => builder.UseGoogleCredentials("vertex", o => { o.CredentialsFile = "a.json"; o.CredentialsJson = "{}"; }));
        Assert.Throws<ArgumentException>(() => builder.UseGoogleCredentials("vertex", o => o.Scopes = []));
        Assert.Throws<ArgumentException>(() => builder.UseGoogleCredentials("vertex", o => o.CredentialType = ""));
        Assert.Throws<ArgumentException>(() => builder.UseGoogleCredentials("vertex", credential, o => o.CredentialsFile = "a.json"));
    }

    private void AssertNoSecretLogged()
    {
        Assert.DoesNotContain(_logs, l => l.Contains("ya29.", StringComparison.Ordinal));
        Assert.DoesNotContain(_logs, l => l.Contains("PRIVATE KEY", StringComparison.Ordinal) || l.Contains(_google.PrivateKeyPem.Split('\n')[1], StringComparison.Ordinal));
    }

    private static async Task<(HttpStatusCode Status, string Text)> PostAsync(HttpClient client)
    {
        using var response = await client.PostAsync("/openai/v1/chat/completions", new StringContent(Body, System.Text.Encoding.UTF8, "application/json"), Ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
    }

    private async Task<WebApplication> StartAsync(Action<IBifrostBuilder> configure)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddProvider(new ListLoggerProvider(_logs));
        configure(builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "vertex";
            o.Providers["vertex"] = new ProviderOptions { Type = "vertex", BaseUrl = _google.VertexBaseUrl, ProjectId = "my-project", MaxRetries = 0 };
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
                logs.Enqueue(formatter(state, exception) + (exception is null ? string.Empty : " " + exception));
        }
    }
}
