using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// Two gateway hosts on one PostgreSQL schema (UsePostgreSqlGovernanceStore): a key created through the admin API of one
/// works on the other after its refresh, its rate limit is enforced by both together, and its deactivation reaches both.
/// </summary>
public sealed class TwoInstanceAdminTests : IAsyncDisposable
{
    private const string Admin = "/bifrost/admin";
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private readonly List<WebApplication> _apps = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        if (PostgresTestDatabase.ConnectionString is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_schema);
        }
    }

    private async Task<HttpClient> StartHostAsync()
    {
        var connectionString = PostgresTestDatabase.Require();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "local";
            o.Providers["local"] = new ProviderOptions { Type = "local" };
            o.Governance.Mode = GovernanceMode.Required;
            o.Governance.RefreshInterval = TimeSpan.FromMilliseconds(200);
        })
            .UsePostgreSqlGovernanceStore(o =>
            {
                o.ConnectionString = connectionString;
                o.Schema = _schema;
            });
        var app = builder.Build();
        app.MapBifrost("/openai");
        app.MapBifrostAdmin(Admin);
        _apps.Add(app);
        await app.StartAsync(Ct);
        return app.GetTestClient();
    }

    private static async Task<HttpStatusCode> ChatAsync(HttpClient client, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("x-bf-vk", key);
        using var response = await client.SendAsync(request, Ct);
        return response.StatusCode;
    }

    private static async Task<HttpStatusCode> WaitForAsync(HttpClient client, string key, HttpStatusCode expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var status = await ChatAsync(client, key);
            if (status == expected || DateTime.UtcNow > deadline)
            {
                return status;
            }

            await Task.Delay(50, Ct);
        }
    }

    [Fact]
    public async Task A_key_created_on_one_host_works_on_the_other_with_one_shared_limit_and_its_deactivation_reaches_both()
    {
        const int Limit = 10;
        var a = await StartHostAsync();
        var b = await StartHostAsync();

        using var created = await a.PostAsync($"{Admin}/virtual-keys", new StringContent($$$"""{"name":"shared","rate_limits":{"requests":{{{Limit}}},"period":"1d"}}""", Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var json = JsonDocument.Parse(await created.Content.ReadAsStringAsync(Ct));
        var id = json.RootElement.GetProperty("id").GetString();
        var secret = json.RootElement.GetProperty("value").GetString()!;

        // B loads it from the store at its next refresh (401 until then; a 401 counts nothing)
        Assert.Equal(HttpStatusCode.OK, await WaitForAsync(b, secret, HttpStatusCode.OK));

        var answered = 1;
        var refused = 0;
        var next = 0;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) <= 40)
            {
                var status = await ChatAsync(c % 2 == 0 ? a : b, secret);
                Interlocked.Increment(ref status == HttpStatusCode.OK ? ref answered : ref refused);
                Assert.True(status is HttpStatusCode.OK or HttpStatusCode.TooManyRequests, $"{status}");
            }
        }, Ct)));
        Assert.Equal(Limit, answered);
        Assert.Equal(40 - (Limit - 1), refused);

        using var deactivated = await a.PostAsync($"{Admin}/virtual-keys/{id}/deactivate", null, Ct);
        Assert.Equal(HttpStatusCode.OK, deactivated.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(a, secret));
        Assert.Equal(HttpStatusCode.Unauthorized, await WaitForAsync(b, secret, HttpStatusCode.Unauthorized));
    }
}
