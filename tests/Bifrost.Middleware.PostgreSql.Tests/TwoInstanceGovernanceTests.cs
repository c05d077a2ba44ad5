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

    private async Task<HttpClient> StartHostAsync(Action<BifrostOptions>? configure = null)
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
            if (configure is null)
            {
                o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "shared", Value = Key, RateLimits = new GovernanceRateLimitOptions { Requests = Limit, Period = "1m" } });
            }
            else
            {
                configure(o);
            }
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

    private static async Task<(HttpStatusCode Status, string? Type)> SendAsync(HttpClient client)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("x-bf-vk", Key);
        using var response = await client.SendAsync(request, Ct);
        if (response.StatusCode == HttpStatusCode.OK)
        {
            return (response.StatusCode, null);
        }

        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        return (response.StatusCode, json.RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    /// <summary>Sends <paramref name="calls"/> calls from <paramref name="clients"/> concurrent clients, alternating between the hosts.</summary>
    private static async Task<List<(HttpStatusCode Status, string? Type)>> SendConcurrentlyAsync(HttpClient[] hosts, int clients, int calls)
    {
        var statuses = new List<(HttpStatusCode Status, string? Type)>();
        var next = 0;
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) <= calls)
            {
                var outcome = await SendAsync(hosts[c % hosts.Length]);
                lock (statuses)
                {
                    statuses.Add(outcome);
                }
            }
        }, Ct)));
        return statuses;
    }

    /// <summary>The shared ledger's totals for the key, once both hosts' background writers wrote <paramref name="expected"/> records.</summary>
    private async Task<Governance.UsageTotals> LedgerTotalsAsync(long expected)
    {
        await using var dataSource = PostgresTestDatabase.CreateDataSource();
        var store = new PostgreSqlGovernanceStore(dataSource, _schema, TimeProvider.System);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var totals = await store.SumUsageAsync(new Governance.UsageQuery { VirtualKeyId = "shared" }, Ct);
            if (totals.Requests >= expected || DateTime.UtcNow > deadline)
            {
                return totals;
            }

            await Task.Delay(50, Ct);
        }
    }

    [Fact]
    public async Task Two_hosts_on_one_database_enforce_one_request_limit_together()
    {
        var hosts = new[] { await StartHostAsync(), await StartHostAsync() };
        var statuses = await SendConcurrentlyAsync(hosts, clients: 16, calls: 100);

        Assert.Equal(100, statuses.Count);
        Assert.Equal(Limit, statuses.Count(s => s.Status == HttpStatusCode.OK));
        Assert.All(statuses.Where(s => s.Status != HttpStatusCode.OK), s => Assert.Equal((HttpStatusCode.TooManyRequests, "request_limited"), s));

        // both hosts' answered calls are in the one ledger
        Assert.Equal(Limit, (await LedgerTotalsAsync(Limit)).Requests);
    }

    /// <summary>
    /// A key's budget of 3 USD, calls of about 0.1 USD (tokens priced at 0.01 USD), 8 concurrent clients on two hosts, 100
    /// calls: the answered ones stop at the budget for both hosts together — the spend ends at or above 3 USD but below
    /// 3 USD plus one call per client (the calls in flight when it was reached; per-instance budgets would let about 6 USD
    /// through) — and every other call is 402 budget_exceeded.
    /// </summary>
    [Fact]
    public async Task Two_hosts_on_one_database_share_one_budget()
    {
        const int Clients = 8;
        const decimal Budget = 3m;
        static void Configure(BifrostOptions o)
        {
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "shared", Value = Key, Budget = new GovernanceBudgetOptions { MaxUsd = Budget, Reset = "1d" } });
            o.Pricing["local/echo"] = new ModelPriceOptions { InputPerMillion = 10_000, OutputPerMillion = 10_000 };
        }

        var hosts = new[] { await StartHostAsync(Configure), await StartHostAsync(Configure) };
        var statuses = await SendConcurrentlyAsync(hosts, Clients, calls: 100);

        var answered = statuses.Count(s => s.Status == HttpStatusCode.OK);
        var totals = await LedgerTotalsAsync(answered);
        var perCall = totals.CostUsd / answered;
        TestContext.Current.TestOutputHelper?.WriteLine($"{answered} answered, spend {totals.CostUsd} USD of {Budget} USD ({perCall} USD per call)");
        Assert.Equal(answered, totals.Requests);
        Assert.InRange(perCall, 0.01m, 0.5m);
        Assert.InRange(totals.CostUsd, Budget, Budget + (Clients * perCall) - 0.000001m);
        Assert.All(statuses.Where(s => s.Status != HttpStatusCode.OK), s => Assert.Equal((HttpStatusCode.PaymentRequired, "budget_exceeded"), s));
    }
}
