using Bifrost.Middleware.Governance;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>The default in-process <see cref="IGovernanceCounterStore"/>: atomic admission, settlement, seeding from the ledger, expiry.</summary>
public sealed class LocalCounterTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset End = Start.AddHours(1);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Concurrent_admissions_never_exceed_the_limit_and_a_refusal_changes_no_window()
    {
        var time = new FakeTimeProvider(Start);
        var counters = new LocalGovernanceCounters(new InMemoryGovernanceStore(time), time);
        GovernanceCounterCheck[] checks =
        [
            new("rate:vk:a", Start, End, MaxRequests: 100, MaxTokens: null, MaxCostUsd: null, ReservedTokens: 3),
            new("budget:team:t", Start, End, null, null, MaxCostUsd: 1000m, ReservedCostUsd: 0.5m),
        ];

        var admitted = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, 400), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = Ct }, async (_, ct) =>
        {
            if ((await counters.TryAdmitAsync(checks, ct)).Admitted)
            {
                Interlocked.Increment(ref admitted);
            }
        });

        Assert.Equal(100, admitted);
        Assert.Equal(new GovernanceCounts(100, 300, 0m), await counters.GetCountsAsync("rate:vk:a", Start, End, Ct));
        Assert.Equal(new GovernanceCounts(100, 0, 50m), await counters.GetCountsAsync("budget:team:t", Start, End, Ct)); // refused calls added nothing

        var refused = await counters.TryAdmitAsync(checks, Ct);
        Assert.False(refused.Admitted);
        Assert.Equal(0, refused.RefusedIndex);
        Assert.Equal(100, refused.Counts.Requests);
    }

    [Fact]
    public async Task A_budget_window_is_seeded_from_the_ledger_and_settlement_adds_the_difference()
    {
        var time = new FakeTimeProvider(Start.AddMinutes(30));
        var store = new InMemoryGovernanceStore(time);
        await store.AppendUsageAsync(
            [
                new UsageRecord { Time = Start.AddMinutes(5), VirtualKeyId = "a", Team = "t", Provider = "openai", Model = "m", Operation = "chat_completion", Source = "sync", CostUsd = 2m },
                new UsageRecord { Time = Start.AddMinutes(6), VirtualKeyId = "a", Provider = "anthropic", Model = "m", Operation = "chat_completion", Source = "sync", CostUsd = 3m },
                new UsageRecord { Time = Start.AddMinutes(-5), VirtualKeyId = "a", Provider = "openai", Model = "m", Operation = "chat_completion", Source = "sync", CostUsd = 100m }, // an earlier window
            ],
            Ct);
        var counters = new LocalGovernanceCounters(store, time);

        Assert.True((await counters.TryAdmitAsync([new("budget:vk:a", Start, End, null, null, 10m, 0, 1m)], Ct)).Admitted);
        Assert.Equal(6m, (await counters.GetCountsAsync("budget:vk:a", Start, End, Ct)).CostUsd); // 2 + 3 seeded + 1 reserved
        Assert.True((await counters.TryAdmitAsync([new("budget:vk:a:provider:openai", Start, End, null, null, 10m)], Ct)).Admitted);
        Assert.Equal(2m, (await counters.GetCountsAsync("budget:vk:a:provider:openai", Start, End, Ct)).CostUsd);
        Assert.True((await counters.TryAdmitAsync([new("budget:team:t", Start, End, null, null, 10m)], Ct)).Admitted);
        Assert.Equal(2m, (await counters.GetCountsAsync("budget:team:t", Start, End, Ct)).CostUsd);
        Assert.True((await counters.TryAdmitAsync([new("rate:vk:a", Start, End, 10, null, null)], Ct)).Admitted);
        Assert.Equal(new GovernanceCounts(1, 0, 0m), await counters.GetCountsAsync("rate:vk:a", Start, End, Ct)); // not seeded

        await counters.SettleAsync([new GovernanceCounterCharge("budget:vk:a", Start, End, 7, 4m - 1m)], Ct);
        Assert.Equal(new GovernanceCounts(1, 7, 9m), await counters.GetCountsAsync("budget:vk:a", Start, End, Ct)); // 5 seeded + 4 real
    }

    [Fact]
    public async Task Windows_are_dropped_once_their_end_passed()
    {
        var time = new FakeTimeProvider(Start);
        var counters = new LocalGovernanceCounters(new InMemoryGovernanceStore(time), time);
        Assert.True((await counters.TryAdmitAsync([new("rate:vk:a", Start, End, 10, null, null)], Ct)).Admitted);
        Assert.True((await counters.TryAdmitAsync([new("rate:vk:a", Start, DateTimeOffset.MaxValue, 10, null, null)], Ct)).Admitted);
        Assert.Equal(2, counters.WindowCount);

        time.Advance(TimeSpan.FromHours(1));
        Assert.True((await counters.TryAdmitAsync([new("rate:vk:a", End, End.AddHours(1), 10, null, null)], Ct)).Admitted);
        Assert.Equal(2, counters.WindowCount); // the first window went, the lifetime one and the new one stay
        Assert.Equal(default, await counters.GetCountsAsync("rate:vk:a", Start, End, Ct));
    }
}
