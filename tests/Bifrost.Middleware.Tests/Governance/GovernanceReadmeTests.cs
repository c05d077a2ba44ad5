using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Packaging.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>README "Governance and cost": its complete configuration starts a host and behaves as the section says.</summary>
public sealed class GovernanceReadmeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_READMEs_governance_configuration_starts_and_enforces_keys_models_and_prices()
    {
        var fragment = ReadmeSnippets.Get(Repository.PathOf("README.md"), "governance-appsettings");
        using var document = JsonDocument.Parse("{" + fragment + "}"); // the snippet is the "Bifrost" member of appsettings.json
        Environment.SetEnvironmentVariable("BIFROST_VK_CI", "sk-bf-ci-from-the-environment");

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(document.RootElement.GetRawText())));
        builder.Configuration.AddInMemoryCollection([new("Bifrost:Providers:local:Type", "local"), new("Bifrost:Providers:acme:Type", "local")]); // the app's providers
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));
        await using var app = builder.Build();
        app.MapBifrost();
        app.MapBifrostAdmin("/bifrost/admin");
        await app.StartAsync(Ct);
        using var client = app.GetTestServer().CreateClient();

        async Task<(HttpStatusCode Status, JsonElement Body)> ChatAsync(string? key, string model)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions")
            {
                Content = new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hello"}]}""", Encoding.UTF8, "application/json"),
            };
            if (key is not null)
            {
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            }

            using var response = await client.SendAsync(request, Ct);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
            return (response.StatusCode, json.RootElement.Clone());
        }

        var ok = await ChatAsync("sk-bf-team-a-0001", "local/echo");
        Assert.True(ok.Status == HttpStatusCode.OK, ok.Body.ToString());
        Assert.True(ok.Body.GetProperty("extra_fields").GetProperty("cost").GetDouble() > 0); // priced by its "Pricing" entry

        var anonymous = await ChatAsync(null, "local/echo");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.Status);
        Assert.Equal("virtual_key_required", anonymous.Body.GetProperty("error").GetProperty("code").GetString());

        var blocked = await ChatAsync("sk-bf-team-a-0001", "acme/echo");
        Assert.Equal(HttpStatusCode.Forbidden, blocked.Status);
        Assert.Equal("model_not_allowed", blocked.Body.GetProperty("error").GetProperty("code").GetString());

        var providerBlocked = await ChatAsync("sk-bf-ci-from-the-environment", "acme/echo");
        Assert.Equal(HttpStatusCode.Forbidden, providerBlocked.Status);
        Assert.Equal("provider_not_allowed", providerBlocked.Body.GetProperty("error").GetProperty("code").GetString());

        var fromEnvironment = await ChatAsync("sk-bf-ci-from-the-environment", "local/echo");
        Assert.Equal(HttpStatusCode.OK, fromEnvironment.Status);

        // The admin API lists the configured keys (read-only), never their secrets.
        var keys = await client.GetStringAsync("/bifrost/admin/virtual-keys", Ct);
        Assert.Contains("\"team-a\"", keys, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-bf-team-a-0001", keys, StringComparison.Ordinal);
        await app.StopAsync(Ct);
    }
}
