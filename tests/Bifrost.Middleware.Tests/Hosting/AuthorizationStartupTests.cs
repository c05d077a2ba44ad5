using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.TestHost;
using TestAuthHandler = Bifrost.Middleware.Tests.Hosting.MapBifrostTests.TestAuthHandler;

namespace Bifrost.Middleware.Tests.Hosting;

/// <summary>
/// <c>MapBifrost(...).RequireAuthorization()</c> in a host that cannot run authorization never answers an empty 500:
/// the host fails to start saying what to add, or — where the missing piece is middleware no start-time check can see —
/// the request is answered in the Bifrost error shape.
/// </summary>
public sealed class AuthorizationStartupTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Without_AddAuthorization_the_host_does_not_start()
    {
        await using var app = Build(services => { }, endpoints => endpoints.MapBifrost().RequireAuthorization());

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync(Ct));

        Assert.Contains("AddAuthorization()", ex.Message, StringComparison.Ordinal);
        Assert.Contains("RequireAuthorization", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_AddAuthorization_but_no_authentication_the_host_does_not_start()
    {
        await using var app = Build(services => services.AddAuthorization(), endpoints => endpoints.MapBifrost().RequireAuthorization());

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync(Ct));

        Assert.Contains("AddAuthentication", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_schemes_and_no_default_fail_the_start_unless_the_policy_names_one()
    {
        static void TwoSchemes(IServiceCollection services)
        {
            services.AddAuthorization();
            services.AddAuthentication()
                .AddScheme<AuthenticationSchemeOptions, TestAuthHandler>("A", null)
                .AddScheme<AuthenticationSchemeOptions, TestAuthHandler>("B", null);
        }

        await using (var unnamed = Build(TwoSchemes, endpoints => endpoints.MapBifrost().RequireAuthorization()))
        {
            var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => unnamed.StartAsync(Ct));
            Assert.Contains("default authentication scheme", ex.Message, StringComparison.Ordinal);
        }

        await using var named = Build(TwoSchemes, endpoints => endpoints.MapBifrost().RequireAuthorization(new AuthorizeAttribute { AuthenticationSchemes = "A" }));
        await AssertStartsAndProtectsAsync(named);
    }

    [Fact]
    public async Task An_unknown_policy_name_fails_the_start()
    {
        await using var app = Build(
            services => services.AddAuthorization().AddAuthentication(TestAuthHandler.SchemeName).AddScheme<AuthenticationSchemeOptions, TestAuthHandler>(TestAuthHandler.SchemeName, null),
            endpoints => endpoints.MapBifrost().RequireAuthorization("no-such-policy"));

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync(Ct));

        Assert.Contains("no-such-policy", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_authorization_and_authentication_the_WebApplication_adds_the_middleware_and_it_works()
    {
        await using var app = Build(
            services => services.AddAuthorization().AddAuthentication(TestAuthHandler.SchemeName).AddScheme<AuthenticationSchemeOptions, TestAuthHandler>(TestAuthHandler.SchemeName, null),
            endpoints => endpoints.MapBifrost().RequireAuthorization());
        await AssertStartsAndProtectsAsync(app);
    }

    [Fact]
    public async Task Without_UseAuthorization_in_a_routing_pipeline_a_request_gets_a_Bifrost_error_not_an_empty_500()
    {
        // A host built without WebApplication: the services are all there, but Configure forgets app.UseAuthorization(),
        // which no start-time check can see. ASP.NET Core's endpoint middleware then throws on every request.
        var logs = new LogSink();
        using var host = await new HostBuilder()
            .ConfigureWebHost(web => web
                .UseTestServer()
                .ConfigureServices(services =>
                {
                    services.AddSingleton<ILoggerProvider>(logs);
                    services.AddRouting();
                    services.AddAuthorization();
                    services.AddAuthentication(TestAuthHandler.SchemeName).AddScheme<AuthenticationSchemeOptions, TestAuthHandler>(TestAuthHandler.SchemeName, null);
                    AddLocalBifrost(services);
                })
                .Configure(app =>
                {
                    app.UseRouting();
                    app.UseAuthentication();
                    app.UseEndpoints(endpoints => endpoints.MapBifrost().RequireAuthorization());
                }))
            .StartAsync(Ct);
        using var client = host.GetTestClient();

        using var response = await PostChatAsync(client, "alice");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync(Ct);
        using var json = JsonDocument.Parse(text);
        var error = json.RootElement.GetProperty("error");
        Assert.Equal("host_error", error.GetProperty("code").GetString());
        Assert.True(json.RootElement.GetProperty("is_bifrost_error").GetBoolean());
        var requestId = Assert.Single(response.Headers.GetValues("x-request-id"));
        Assert.Contains(requestId, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        var logged = Assert.Single(logs.Entries, static e => e.EventId == 43);
        Assert.Contains("UseAuthorization", logged.Exception!.Message, StringComparison.Ordinal);
        await host.StopAsync(Ct);
    }

    /// <summary>Starts the app and checks that an anonymous caller gets 401 and an authenticated one an answer.</summary>
    private static async Task AssertStartsAndProtectsAsync(WebApplication app)
    {
        await app.StartAsync(Ct);
        using var client = app.GetTestClient();
        using var anonymous = await PostChatAsync(client, null);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var alice = await PostChatAsync(client, "alice");
        Assert.Equal(HttpStatusCode.OK, alice.StatusCode);
    }

    private static WebApplication Build(Action<IServiceCollection> services, Action<WebApplication> map)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        AddLocalBifrost(builder.Services);
        services(builder.Services);
        var app = builder.Build();
        map(app);
        return app;
    }

    private static void AddLocalBifrost(IServiceCollection services) => services.AddBifrost(options =>
    {
        options.DefaultProvider = "local";
        options.Providers["local"] = new ProviderOptions { Type = "local" };
    });

    private static async Task<HttpResponseMessage> PostChatAsync(HttpClient client, string? user)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json"),
        };
        if (user is not null)
        {
            request.Headers.Add(TestAuthHandler.Header, user);
        }

        return await client.SendAsync(request, Ct);
    }
}
