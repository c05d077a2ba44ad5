using System.Text.Json;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Sqlite.Tests.Infrastructure;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>Requests through HTTP land in the SQLite usage ledger (through the background <see cref="UsageLedger"/>).</summary>
public sealed class SqliteGovernanceLedgerHttpTests : IDisposable
{
    private const string Key = "sk-bf-ledger-0001";

    private readonly TempDirectory _directory = new("bifrost-sqlite-ledger-http");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Every_call_of_a_key_is_in_the_sqlite_ledger_with_its_tokens_and_cost()
    {
        const int calls = 5;
        await using var host = await InProcessHost.StartAsync(
            _directory.Path,
            b => b.UseSqliteGovernanceStore("App_Data/governance.db"),
            options =>
            {
                options.Governance.Mode = GovernanceMode.Required;
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "vk-ledger", Value = Key });
                options.Pricing["local/echo"] = new ModelPriceOptions { InputPerMillion = 1.0, OutputPerMillion = 2.0 };
            });

        long input = 0, output = 0;
        var cost = 0.0;
        for (var i = 0; i < calls; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
            {
                Content = JsonContent.Create(new { model = "local/echo", messages = new[] { new { role = "user", content = $"call number {i} of the ledger test" } } }),
            };
            request.Headers.Add("x-bf-vk", Key);
            using var response = await host.Client.SendAsync(request, Ct);
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Ct));
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
            var usage = json.RootElement.GetProperty("usage");
            input += usage.GetProperty("prompt_tokens").GetInt64();
            output += usage.GetProperty("completion_tokens").GetInt64();
            cost += json.RootElement.GetProperty("extra_fields").GetProperty("cost").GetDouble();
        }

        await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        var store = host.Services.GetRequiredService<IGovernanceStore>();
        Assert.IsType<SqliteGovernanceStore>(store);

        var records = await store.ListUsageAsync(new UsageQuery { VirtualKeyId = "vk-ledger" }, Ct);
        Assert.Equal(calls, records.Count);
        Assert.All(records, r =>
        {
            Assert.Equal("vk-ledger", r.VirtualKeyId);
            Assert.Equal("local", r.Provider);
            Assert.Equal("echo", r.Model);
            Assert.Equal(200, r.Status);
            Assert.True(r.InputTokens > 0);
            Assert.True(r.OutputTokens > 0);
            Assert.NotNull(r.CostUsd);
        });
        Assert.Equal(input, records.Sum(r => r.InputTokens));
        Assert.Equal(output, records.Sum(r => r.OutputTokens));
        Assert.Equal(cost, (double)records.Sum(r => r.CostUsd!.Value), 9);

        var totals = await store.SumUsageAsync(new UsageQuery { VirtualKeyId = "vk-ledger" }, Ct);
        Assert.Equal(calls, totals.Requests);
        Assert.Equal(input, totals.InputTokens);
        Assert.Equal(0, totals.UnknownCostRequests);
    }

    [Fact]
    public async Task A_budget_spent_before_a_restart_stays_spent_with_the_sqlite_store()
    {
        // A budget the first priced call overspends: admitted while the spend is below it, then refused (402).
        static Task<InProcessHost> StartAsync(string root) => InProcessHost.StartAsync(
            root,
            b => b.UseSqliteGovernanceStore("App_Data/governance.db"),
            options =>
            {
                options.Governance.Mode = GovernanceMode.Required;
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "vk-spent", Value = Key, Budget = new GovernanceBudgetOptions { MaxUsd = 0.000001m } });
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "vk-fresh", Value = "sk-bf-ledger-0002", Budget = new GovernanceBudgetOptions { MaxUsd = 0.000001m } });
                options.Pricing["local/echo"] = new ModelPriceOptions { InputPerMillion = 1.0, OutputPerMillion = 2.0 };
            });

        static async Task<(int Status, string Body)> CallAsync(InProcessHost host, string key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
            {
                Content = JsonContent.Create(new { model = "local/echo", messages = new[] { new { role = "user", content = "spend a little" } } }),
            };
            request.Headers.Add("x-bf-vk", key);
            using var response = await host.Client.SendAsync(request, Ct);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
        }

        await using (var host = await StartAsync(_directory.Path))
        {
            Assert.Equal(200, (await CallAsync(host, Key)).Status);
            await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
            var refused = await CallAsync(host, Key);
            Assert.Equal(402, refused.Status);
            Assert.Contains("budget_exceeded", refused.Body, StringComparison.Ordinal);
            await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        }

        // A new process over the same file: the key's spend is read back from the ledger, the other key is untouched.
        await using (var restarted = await StartAsync(_directory.Path))
        {
            var refused = await CallAsync(restarted, Key);
            Assert.Equal(402, refused.Status);
            Assert.Contains("budget_exceeded", refused.Body, StringComparison.Ordinal);
            Assert.Equal(200, (await CallAsync(restarted, "sk-bf-ledger-0002")).Status);
        }
    }
}
