using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// Two gateway hosts (each with its own container and connection pool, as two app instances) on one PostgreSQL schema with
/// <c>UsePostgreSqlGovernanceStore</c>: one virtual key limited to 20 requests per minute, concurrent clients on both
/// hosts — 20 answers in total, every other one 429 <c>request_limited</c>.
/// </summary>
public sealed class TwoInstanceGovernanceTests : IAsyncDisposable
{
    private const string Key = "sk-bf-shared-0001";
    private const int Limit = 20;
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private readonly List<WebApplication> _apps = [];

    // Both hosts read one fixed clock: every request falls in the same minute window.
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 1, 12, 0, 10, TimeSpan.Zero));

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
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<TimeProvider>(_time);
        builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "local";
            o.Providers["local"] = new ProviderOptions { Type = "local" };
            o.Governance.Mode = GovernanceMode.Required;
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "shared", Value = Key, RateLimits = new GovernanceRateLimitOptions { Requests = Limit, Period = "1m" } });
        })
            .UsePostgreSqlGovernanceStore(o =>
            {
                o.ConnectionString = connectionString;
                o.Schema = _schema;
            });
        var app = builder.Build();
        app.MapBifrost("/openai");
        _apps.Add(app);
        await app.StartAsync(Ct);
        return app.GetTestClient();
    }

    [Fact(Skip = "needs h/budgets counters in the layer")]
    public async Task Two_hosts_on_one_database_enforce_one_request_limit_together()
    {
        var hosts = new[] { await StartHostAsync(), await StartHostAsync() };
        var statuses = new List<(HttpStatusCode Status, string? Type)>();
        var next = 0;
        var clients = Enumerable.Range(0, 16).Select(c => Task.Run(async () =>
        {
            var client = hosts[c % 2];
            while (Interlocked.Increment(ref next) <= 100)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions")
                {
                    Content = new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
                };
                request.Headers.TryAddWithoutValidation("x-bf-vk", Key);
                using var response = await client.SendAsync(request, Ct);
                string? type = null;
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
                    type = json.RootElement.GetProperty("error").GetProperty("type").GetString();
                }

                lock (statuses)
                {
                    statuses.Add((response.StatusCode, type));
                }
            }
        }, Ct)).ToArray();
        await Task.WhenAll(clients);

        Assert.Equal(100, statuses.Count);
        Assert.Equal(Limit, statuses.Count(s => s.Status == HttpStatusCode.OK));
        Assert.All(statuses.Where(s => s.Status != HttpStatusCode.OK), s => Assert.Equal((HttpStatusCode.TooManyRequests, "request_limited"), s));
    }
}
