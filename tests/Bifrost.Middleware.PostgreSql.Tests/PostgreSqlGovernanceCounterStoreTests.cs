using System.Diagnostics;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// The <see cref="IGovernanceCounterStore"/> contract against PostgreSQL (admission all-or-nothing with the first refusing
/// check, reservations, settlement deltas, independent windows), and the shared case: two store instances over two data
/// sources (two app instances) admitting concurrently on one scope stay within the limit.
/// </summary>
public sealed class PostgreSqlGovernanceCounterStoreTests : IAsyncDisposable
{
    private static readonly DateTimeOffset Start = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset End = Start.AddMinutes(1);

    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private readonly List<NpgsqlDataSource> _dataSources = [];
    private readonly FakeTimeProvider _time = new(Start);
    private readonly ITestOutputHelper? _output = TestContext.Current.TestOutputHelper;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        if (_dataSources.Count > 0)
        {
            await PostgresTestDatabase.DropSchemaAsync(_dataSources[0], _schema);
        }

        foreach (var dataSource in _dataSources)
        {
            await dataSource.DisposeAsync();
        }
    }

    /// <summary>A store over a data source of its own (= an app instance with its own connection pool).</summary>
    private async Task<PostgreSqlGovernanceCounterStore> NewStoreAsync()
    {
        var dataSource = PostgresTestDatabase.CreateDataSource();
        _dataSources.Add(dataSource);
        var store = new PostgreSqlGovernanceCounterStore(dataSource, _schema, _time);
        await store.InitializeAsync(Ct);
        return store;
    }

    private static GovernanceCounterCheck Check(string scope, long? maxRequests = null, long? maxTokens = null, decimal? maxCost = null, long reservedTokens = 0, decimal reservedCost = 0m, DateTimeOffset? start = null, DateTimeOffset? end = null) =>
        new(scope, start ?? Start, end ?? End, maxRequests, maxTokens, maxCost, reservedTokens, reservedCost);

    private static Task<GovernanceCounts> CountsAsync(PostgreSqlGovernanceCounterStore store, string scope, DateTimeOffset? start = null, DateTimeOffset? end = null) =>
        store.GetCountsAsync(scope, start ?? Start, end ?? End, Ct).AsTask();

    [Fact]
    public async Task Admits_under_the_limits_and_counts_each_request_with_its_reservations()
    {
        var store = await NewStoreAsync();
        Assert.Equal(default, await CountsAsync(store, "rl:a"));

        for (var i = 0; i < 3; i++)
        {
            var admission = await store.TryAdmitAsync([Check("rl:a", maxRequests: 3, reservedTokens: 10, reservedCost: 0.001m), Check("budget:a", maxCost: 5m, reservedCost: 0.25m)], Ct);
            Assert.True(admission.Admitted);
            Assert.Equal(-1, admission.RefusedIndex);
        }

        Assert.Equal(new GovernanceCounts(3, 30, 0.003m), await CountsAsync(store, "rl:a"));
        Assert.Equal(new GovernanceCounts(3, 0, 0.75m), await CountsAsync(store, "budget:a"));
    }

    [Fact]
    public async Task A_refusal_names_the_first_failing_check_with_its_counts_and_changes_nothing()
    {
        var store = await NewStoreAsync();
        Assert.True((await store.TryAdmitAsync([Check("b", maxRequests: 1, reservedTokens: 7)], Ct)).Admitted);

        // b is full (1 of 1), c is full too: the first failing one (index 1) is reported; a, before it, is not counted
        Assert.True((await store.TryAdmitAsync([Check("c", maxRequests: 1)], Ct)).Admitted);
        var refused = await store.TryAdmitAsync([Check("a", maxRequests: 10, reservedTokens: 5, reservedCost: 1m), Check("b", maxRequests: 1), Check("c", maxRequests: 1)], Ct);
        Assert.False(refused.Admitted);
        Assert.Equal(1, refused.RefusedIndex);
        Assert.Equal(new GovernanceCounts(1, 7, 0m), refused.Counts);

        Assert.Equal(default, await CountsAsync(store, "a"));
        Assert.Equal(new GovernanceCounts(1, 7, 0m), await CountsAsync(store, "b"));
        Assert.Equal(new GovernanceCounts(1, 0, 0m), await CountsAsync(store, "c"));
    }

    [Fact]
    public async Task Tokens_and_cost_limits_refuse_once_reached_and_settlement_adds_deltas_including_negative_ones()
    {
        var store = await NewStoreAsync();
        Assert.True((await store.TryAdmitAsync([Check("t", maxTokens: 100, reservedTokens: 60)], Ct)).Admitted);
        Assert.True((await store.TryAdmitAsync([Check("t", maxTokens: 100, reservedTokens: 60)], Ct)).Admitted); // 60 < 100 when checked
        var overTokens = await store.TryAdmitAsync([Check("t", maxTokens: 100, reservedTokens: 60)], Ct);
        Assert.Equal((false, 0, new GovernanceCounts(2, 120, 0m)), (overTokens.Admitted, overTokens.RefusedIndex, overTokens.Counts));

        // the real usage was lower: 120 reserved, 45 used → -75; the window frees again
        await store.SettleAsync([new GovernanceCounterCharge("t", Start, End, -75, 0m)], Ct);
        Assert.Equal(new GovernanceCounts(2, 45, 0m), await CountsAsync(store, "t"));
        Assert.True((await store.TryAdmitAsync([Check("t", maxTokens: 100)], Ct)).Admitted);

        Assert.True((await store.TryAdmitAsync([Check("$", maxCost: 0.5m, reservedCost: 0.3m)], Ct)).Admitted);
        await store.SettleAsync([new GovernanceCounterCharge("$", Start, End, 1000, 0.2000000001m)], Ct);
        var overCost = await store.TryAdmitAsync([Check("$", maxCost: 0.5m)], Ct);
        Assert.False(overCost.Admitted);
        Assert.Equal(new GovernanceCounts(1, 1000, 0.5000000001m), overCost.Counts);
    }

    [Fact]
    public async Task Settlement_is_batched_creates_missing_windows_and_merges_charges_of_one_window()
    {
        var store = await NewStoreAsync();
        var later = End.AddMinutes(1);
        await store.SettleAsync(
        [
            new GovernanceCounterCharge("x", Start, End, 10, 0.1m),
            new GovernanceCounterCharge("y", Start, End, 5, 0m),
            new GovernanceCounterCharge("x", Start, End, -3, 0.05m),
            new GovernanceCounterCharge("x", End, later, 1, 0.01m),
        ], Ct);

        Assert.Equal(new GovernanceCounts(0, 7, 0.15m), await CountsAsync(store, "x"));
        Assert.Equal(new GovernanceCounts(0, 5, 0m), await CountsAsync(store, "y"));
        Assert.Equal(new GovernanceCounts(0, 1, 0.01m), await CountsAsync(store, "x", End, later));
    }

    [Fact]
    public async Task Windows_are_independent_by_scope_start_and_end_and_a_lifetime_window_works()
    {
        var store = await NewStoreAsync();
        Assert.True((await store.TryAdmitAsync([Check("w", maxRequests: 1)], Ct)).Admitted);
        Assert.False((await store.TryAdmitAsync([Check("w", maxRequests: 1)], Ct)).Admitted);
        Assert.True((await store.TryAdmitAsync([Check("w", maxRequests: 1, start: End, end: End.AddMinutes(1))], Ct)).Admitted); // next window
        Assert.True((await store.TryAdmitAsync([Check("w", maxRequests: 1, end: Start.AddHours(1))], Ct)).Admitted); // same start, other end
        Assert.True((await store.TryAdmitAsync([Check("W", maxRequests: 1)], Ct)).Admitted); // scopes are ordinal

        Assert.True((await store.TryAdmitAsync([Check("life", maxCost: 1m, reservedCost: 0.75m, start: DateTimeOffset.MinValue, end: DateTimeOffset.MaxValue)], Ct)).Admitted);
        Assert.Equal(new GovernanceCounts(1, 0, 0.75m), await CountsAsync(store, "life", DateTimeOffset.MinValue, DateTimeOffset.MaxValue));
        Assert.Equal(new GovernanceCounts(1, 0, 0m), await CountsAsync(store, "w"));
    }

    [Fact]
    public async Task Expired_windows_are_deleted_after_the_grace_and_current_ones_kept()
    {
        var store = await NewStoreAsync();
        await store.TryAdmitAsync([Check("old", start: Start.AddMinutes(-10), end: Start.AddMinutes(-9))], Ct);
        await store.TryAdmitAsync([Check("recent", start: Start.AddMinutes(-2), end: Start.AddMinutes(-1))], Ct);
        await store.TryAdmitAsync([Check("current")], Ct);

        Assert.Equal(1, await store.DeleteExpiredAsync(Ct));
        Assert.Equal(default, await CountsAsync(store, "old", Start.AddMinutes(-10), Start.AddMinutes(-9)));
        Assert.Equal(1, (await CountsAsync(store, "recent", Start.AddMinutes(-2), Start.AddMinutes(-1))).Requests);
        Assert.Equal(1, (await CountsAsync(store, "current")).Requests);
    }

    /// <summary>
    /// Two instances (two data sources), 16 concurrent admitters each, on one scope limited to 50 requests, 400 attempts in
    /// all: exactly 50 admitted (overshoot 0: admissions of a window are serialized by the database).
    /// </summary>
    [Fact]
    public async Task Two_instances_admitting_concurrently_admit_exactly_the_request_limit()
    {
        const int Limit = 50;
        const int Attempts = 400;
        var stores = new[] { await NewStoreAsync(), await NewStoreAsync() };
        var admitted = new int[2];
        var attempts = 0;
        var stopwatch = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, 32).Select(w => Task.Run(async () =>
        {
            var instance = w % 2;
            while (Interlocked.Increment(ref attempts) <= Attempts)
            {
                // a key's request window and its per-provider window, as the governance layer checks them
                var admission = await stores[instance].TryAdmitAsync([Check("rl:vk:k", maxRequests: Limit), Check("rl:vk:k:openai", maxRequests: 1000)], Ct);
                if (admission.Admitted)
                {
                    Interlocked.Increment(ref admitted[instance]);
                }
                else
                {
                    Assert.Equal(0, admission.RefusedIndex);
                    Assert.Equal(Limit, admission.Counts.Requests);
                }
            }
        }, Ct)).ToArray();
        await Task.WhenAll(workers);
        stopwatch.Stop();

        _output?.WriteLine($"admitted {admitted[0]} + {admitted[1]} = {admitted.Sum()} of {Attempts} attempts (limit {Limit}) in {stopwatch.ElapsedMilliseconds} ms ({Attempts * 1000.0 / stopwatch.ElapsedMilliseconds:F0} admissions/s)");
        Assert.Equal(Limit, admitted.Sum());
        Assert.True(admitted[0] > 0 && admitted[1] > 0, $"both instances admit: {admitted[0]} + {admitted[1]}");
        Assert.Equal(new GovernanceCounts(Limit, 0, 0m), await CountsAsync(stores[0], "rl:vk:k"));
        Assert.Equal(new GovernanceCounts(Limit, 0, 0m), await CountsAsync(stores[1], "rl:vk:k:openai"));
    }

    /// <summary>
    /// A budget of 1 USD, each admission reserving 0.03 USD, two instances × 16 admitters: admissions stop once the reserved
    /// cost reaches the limit. A check passes while the spend is below the limit, so the last admission may cross it by less
    /// than one reservation: exactly 34 admitted (1.02 USD reserved), as in a single process.
    /// </summary>
    [Fact]
    public async Task Two_instances_stop_admitting_once_the_reserved_cost_reaches_the_budget()
    {
        const decimal Budget = 1m;
        const decimal Reservation = 0.03m;
        var stores = new[] { await NewStoreAsync(), await NewStoreAsync() };
        var admitted = 0;
        var attempts = 0;
        var workers = Enumerable.Range(0, 32).Select(w => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref attempts) <= 200)
            {
                var admission = await stores[w % 2].TryAdmitAsync([Check("budget:team:t", maxCost: 100m, reservedCost: Reservation), Check("budget:vk:k", maxCost: Budget, reservedCost: Reservation)], Ct);
                if (admission.Admitted)
                {
                    Interlocked.Increment(ref admitted);
                }
                else
                {
                    Assert.Equal(1, admission.RefusedIndex);
                }
            }
        }, Ct)).ToArray();
        await Task.WhenAll(workers);

        var counts = await CountsAsync(stores[0], "budget:vk:k");
        _output?.WriteLine($"admitted {admitted}; reserved {counts.CostUsd} USD against a budget of {Budget} USD (overshoot {counts.CostUsd - Budget} USD, one reservation = {Reservation} USD)");
        Assert.Equal(34, admitted);
        Assert.Equal(new GovernanceCounts(34, 0, 1.02m), counts);
        Assert.Equal(new GovernanceCounts(34, 0, 1.02m), await CountsAsync(stores[1], "budget:team:t"));
    }

    /// <summary>
    /// Admissions naming the same windows in opposite orders and settlements of them, concurrently from two instances: no
    /// deadlock (every call locks the windows in key order) and every count adds up.
    /// </summary>
    [Fact]
    public async Task Concurrent_admissions_and_settlements_over_shared_windows_in_any_order_never_deadlock()
    {
        var stores = new[] { await NewStoreAsync(), await NewStoreAsync() };
        var scopes = new[] { "s:a", "s:b", "s:c", "s:d" };
        var workers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            var store = stores[w % 2];
            var order = w % 4 < 2 ? scopes : [.. scopes.Reverse()];
            for (var i = 0; i < 25; i++)
            {
                Assert.True((await store.TryAdmitAsync([.. order.Select(s => Check(s, maxRequests: 10_000, reservedTokens: 2, reservedCost: 0.01m))], Ct)).Admitted);
                await store.SettleAsync([.. order.Select(s => new GovernanceCounterCharge(s, Start, End, -1, -0.005m))], Ct);
            }
        }, Ct)).ToArray();
        await Task.WhenAll(workers);

        foreach (var scope in scopes)
        {
            Assert.Equal(new GovernanceCounts(400, 400, 2m), await CountsAsync(stores[0], scope));
        }
    }
}
