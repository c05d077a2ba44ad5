using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Hosting;

public sealed class MapBifrostTests
{
    [Fact]
    public async Task MapBifrost_without_AddBifrost_throws_a_clear_InvalidOperationException()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        await using var app = builder.Build();

        var ex = Assert.Throws<InvalidOperationException>(() => app.MapBifrost());

        Assert.Contains("AddBifrost", ex.Message, StringComparison.Ordinal);
        Assert.Contains("MapBifrost", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequireAuthorization_on_MapBifrost_protects_every_Bifrost_route()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddAuthentication(TestAuthHandler.SchemeName).AddScheme<AuthenticationSchemeOptions, TestAuthHandler>(TestAuthHandler.SchemeName, null);
        builder.Services.AddAuthorization();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
        });
        await using var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        var conventions = app.MapBifrost();
        Assert.IsAssignableFrom<IEndpointConventionBuilder>(conventions);
        conventions.RequireAuthorization();
        app.MapGet("/public", () => "open");
        await app.StartAsync(TestContext.Current.CancellationToken);
        using var client = app.GetTestClient();
        var ct = TestContext.Current.CancellationToken;
        const string body = """{"model":"local/echo","messages":[{"role":"user","content":"secret"}]}""";

        foreach (var (method, path) in new[] { ("POST", "/openai/v1/chat/completions"), ("POST", "/openai/chat/completions"), ("GET", "/openai/v1/models"), ("GET", "/openai/models"), ("GET", "/openai/v1/unknown") })
        {
            using var anonymous = new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "POST" ? new StringContent(body, System.Text.Encoding.UTF8, "application/json") : null };
            using var denied = await client.SendAsync(anonymous, ct);
            Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
        }

        using (var open = await client.GetAsync("/public", ct))
        {
            Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        }

        using var authenticated = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        authenticated.Headers.Add(TestAuthHandler.Header, "alice");
        using var allowed = await client.SendAsync(authenticated, ct);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);

        using var models = new HttpRequestMessage(HttpMethod.Get, "/openai/models");
        models.Headers.Add(TestAuthHandler.Header, "alice");
        using var listed = await client.SendAsync(models, ct);
        Assert.Equal(HttpStatusCode.OK, listed.StatusCode);

        await app.StopAsync(ct);
    }

    [Fact]
    public async Task The_host_routes_outside_the_prefix_are_untouched()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options => options.Providers["local"] = new ProviderOptions { Type = "local" });
        await using var app = builder.Build();
        app.MapGet("/health", () => "ok");
        app.MapBifrost("/openai");
        await app.StartAsync(TestContext.Current.CancellationToken);
        using var client = app.GetTestClient();

        Assert.Equal("ok", await client.GetStringAsync("/health", TestContext.Current.CancellationToken));
        using var missing = await client.GetAsync("/elsewhere", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(0, missing.Content.Headers.ContentLength ?? 0);
        await app.StopAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>Authenticates a request that carries the X-Test-User header; challenges with 401 otherwise.</summary>
    internal sealed class TestAuthHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string SchemeName = "Test";
        public const string Header = "X-Test-User";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (!Request.Headers.TryGetValue(Header, out var user) || string.IsNullOrEmpty(user))
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user.ToString())], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
        }
    }
}
