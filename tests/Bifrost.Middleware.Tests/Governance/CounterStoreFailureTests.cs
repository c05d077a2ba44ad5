using System.Net;
using System.Text;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>
/// A counter store that fails (e.g. PostgreSQL unreachable): a call with limits is refused with 503
/// <c>governance_unavailable</c> in the Bifrost shape, logged, and never sent to the provider — sync and stream.
/// </summary>
public sealed class CounterStoreFailureTests
{
    private const string Key = "sk-bf-store-down";
    private const string Chat = "/openai/v1/chat/completions";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class ThrowingCounters : IGovernanceCounterStore
    {
        public int Admits;

        public ValueTask<GovernanceAdmission> TryAdmitAsync(IReadOnlyList<GovernanceCounterCheck> checks, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Admits);
            throw new InvalidOperationException("connection refused");
        }

        public ValueTask SettleAsync(IReadOnlyList<GovernanceCounterCharge> charges, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("connection refused");

        public ValueTask<GovernanceCounts> GetCountsAsync(string scope, DateTimeOffset windowStart, DateTimeOffset windowEnd, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("connection refused");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_failing_counter_store_answers_503_governance_unavailable_and_nothing_reaches_the_provider(bool stream)
    {
        var counters = new ThrowingCounters();
        var logs = new LogSink();
        var adapter = new ScriptedAdapter { OnChat = (c, _, _) => Task.FromResult(BudgetTests.Priced(c)), OnStream = (c, _, ct) => BudgetTests.PricedStream(c, ct) };
        await using var host = await GatewayHost.StartAsync(
            options =>
            {
                options.Governance.Mode = GovernanceMode.Required;
                BudgetTests.Price(options);
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = Key, Budget = new() { MaxUsd = 100, Reset = "1d" } });
            },
            b => b.AddProvider("acme", _ => adapter),
            s =>
            {
                s.AddSingleton<IGovernanceCounterStore>(counters);
                s.AddSingleton<ILoggerProvider>(logs);
            });

        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(BudgetTests.Body(stream: stream), Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("x-bf-vk", Key);
        using var response = await host.Client.SendAsync(request, Ct);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(503, json.GetProperty("status_code").GetInt32());
        var error = json.GetProperty("error");
        Assert.Equal("governance_unavailable", error.GetProperty("type").GetString());
        Assert.Equal("governance_store_unavailable", error.GetProperty("code").GetString());
        var extra = json.GetProperty("extra_fields");
        Assert.Equal(stream ? "chat_completion_stream" : "chat_completion", extra.GetProperty("request_type").GetString());
        Assert.Equal("m1", extra.GetProperty("model_requested").GetString());

        Assert.Equal(1, counters.Admits);
        Assert.Empty(adapter.Calls);
        var logged = Assert.Single(logs.Entries, e => e.EventId == 66);
        Assert.Equal(LogLevel.Error, logged.Level);
        Assert.IsType<InvalidOperationException>(logged.Exception);
        Assert.Contains("virtual key a", logged.Message, StringComparison.Ordinal);
    }
}
