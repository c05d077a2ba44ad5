using System.Diagnostics;
using System.Text;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Sqlite.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>What the SQLite governance store adds to the shared contract: registration, restart, atomic batches, exact costs, several stores (processes) on one file.</summary>
public sealed class SqliteGovernanceStoreTests : IDisposable
{
    private readonly TempDirectory _directory = new("bifrost-sqlite-governance");
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string DatabasePath => Path.Combine(_directory.Path, "governance.db");

    public void Dispose() => _directory.Dispose();

    private static GovernanceEntity Entity(GovernanceEntityKind kind, string id, string definition) =>
        new() { Kind = kind, Id = id, Definition = Encoding.UTF8.GetBytes(definition) };

    private static UsageRecord Record(DateTimeOffset time, string key, decimal? cost, string? provider = "local") => new()
    {
        Time = time,
        RequestId = $"req-{time.UtcTicks}",
        VirtualKeyId = key,
        Team = "team-a",
        Provider = provider!,
        Model = "echo",
        Operation = "chat_completion",
        Source = "sync",
        InputTokens = 12,
        OutputTokens = 34,
        CostUsd = cost,
        Status = 200,
        Duration = TimeSpan.FromMilliseconds(7),
    };

    [Fact]
    public async Task UseSqliteGovernanceStore_replaces_the_default_store_and_resolves_a_relative_path_against_the_content_root()
    {
        await using var host = await InProcessHost.StartAsync(_directory.Path, b => b.UseSqliteGovernanceStore("App_Data/bifrost/governance.db"));

        var store = Assert.IsType<SqliteGovernanceStore>(host.Services.GetRequiredService<IGovernanceStore>());
        Assert.Same(store, host.Services.GetRequiredService<SqliteGovernanceStore>());
        Assert.Equal(Path.Combine(_directory.Path, "App_Data", "bifrost", "governance.db"), store.DatabasePath);
        Assert.True(File.Exists(store.DatabasePath));
    }

    [Fact]
    public void A_later_AddBifrost_keeps_the_sqlite_governance_store()
    {
        var services = new ServiceCollection();
        services.AddBifrost().UseSqliteGovernanceStore(DatabasePath);
        services.AddBifrost();

        using var provider = services.BuildServiceProvider();
        var store = Assert.IsType<SqliteGovernanceStore>(provider.GetRequiredService<IGovernanceStore>());
        Assert.Equal(DatabasePath, store.DatabasePath);
        Assert.Single(services, d => d.ServiceType == typeof(IGovernanceStore));
    }

    [Theory]
    [InlineData(":memory:")]
    [InlineData("Data Source=gov;Mode=Memory;Cache=Shared")]
    [InlineData("Data Source=gov.db;Mode=ReadOnly")]
    public void Databases_that_cannot_keep_governance_data_are_refused(string connectionString)
    {
        var services = new ServiceCollection();
        Assert.Throws<ArgumentException>(() => services.AddBifrost().UseSqliteGovernanceStore(connectionString));
        Assert.Throws<ArgumentException>(() => new SqliteGovernanceStore(connectionString, TimeProvider.System));
    }

    [Fact]
    public async Task One_file_holds_the_job_store_and_the_governance_store()
    {
        await using var host = await InProcessHost.StartAsync(_directory.Path, b => b.UseSqliteJobStore("App_Data/bifrost.db").UseSqliteGovernanceStore("App_Data/bifrost.db"));

        var jobs = host.Services.GetRequiredService<SqliteJobStore>();
        var governance = host.Services.GetRequiredService<SqliteGovernanceStore>();
        Assert.Equal(jobs.DatabasePath, governance.DatabasePath);
        await jobs.EnqueueAsync(new NewJob { Id = "j", Kind = "chat_completion", Owner = "o", Payload = "{}"u8.ToArray(), ResultTtl = TimeSpan.FromMinutes(1), MaxAttempts = 1 }, Ct);
        Assert.True(await governance.CreateEntityAsync(Entity(GovernanceEntityKind.Team, "t", "{}"), Ct));
        await governance.AppendUsageAsync([Record(DateTimeOffset.UtcNow, "vk", 0.5m)], Ct);
        Assert.NotNull(await jobs.GetAsync("j", Ct));
        Assert.Equal(1, (await governance.SumUsageAsync(new UsageQuery(), Ct)).Requests);
    }

    [Fact]
    public async Task After_a_restart_a_new_store_over_the_same_file_reads_the_entities_the_revision_and_the_ledger()
    {
        var t0 = _time.GetUtcNow();
        long revision;
        await using (var store = new SqliteGovernanceStore(DatabasePath, _time))
        {
            Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.VirtualKey, "vk-1", "{\"hash\":\"abc\",\"name\":\"Größe\"}"), Ct));
            Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.Customer, "cust", "{}"), Ct));
            _time.Advance(TimeSpan.FromMinutes(1));
            Assert.NotNull(await store.UpdateEntityAsync(Entity(GovernanceEntityKind.VirtualKey, "vk-1", "{\"hash\":\"def\"}"), 1, Ct));
            await store.AppendUsageAsync([.. Enumerable.Range(0, 50).Select(i => Record(t0 + TimeSpan.FromSeconds(i), i % 2 == 0 ? "vk-1" : "vk-2", i == 0 ? null : 0.000000123m * i))], Ct);
            revision = await store.GetRevisionAsync(Ct);
        }

        await using (var reopened = new SqliteGovernanceStore(DatabasePath, _time))
        {
            Assert.Equal(revision, await reopened.GetRevisionAsync(Ct));
            var key = await reopened.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Ct);
            Assert.Equal("{\"hash\":\"def\"}", Encoding.UTF8.GetString(key!.Definition.Span));
            Assert.Equal(2, key.Version);
            Assert.Equal(t0, key.CreatedAt);
            Assert.Equal(t0 + TimeSpan.FromMinutes(1), key.UpdatedAt);
            Assert.Equal(2, (await reopened.ListEntitiesAsync(Ct)).Count);

            var totals = await reopened.SumUsageAsync(new UsageQuery(), Ct);
            Assert.Equal(50, totals.Requests);
            Assert.Equal(50 * 12, totals.InputTokens);
            Assert.Equal(0.000000123m * Enumerable.Range(1, 49).Sum(), totals.CostUsd);
            Assert.Equal(1, totals.UnknownCostRequests);
            var newest = await reopened.ListUsageAsync(new UsageQuery { VirtualKeyId = "vk-2", Limit = 1 }, Ct);
            Assert.Equal(t0 + TimeSpan.FromSeconds(49), Assert.Single(newest).Time);

            // The store keeps working after the restart: the revision goes on growing.
            Assert.True(await reopened.DeleteEntityAsync(GovernanceEntityKind.Customer, "cust", Ct));
            Assert.True(await reopened.GetRevisionAsync(Ct) > revision);
        }

        using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT group_concat(version) FROM bifrost_schema_version;";
        Assert.Equal("1,2,3,4,5", command.ExecuteScalar());
    }

    [Fact]
    public async Task A_job_store_file_of_schema_version_2_is_migrated_and_keeps_its_jobs()
    {
        await using (var jobs = new SqliteJobStore(DatabasePath, TimeProvider.System))
        {
            await jobs.EnqueueAsync(new NewJob { Id = "old-job", Kind = "chat_completion", Owner = "o", Payload = "{}"u8.ToArray(), ResultTtl = TimeSpan.FromMinutes(1), MaxAttempts = 1 }, Ct);
        }

        // Make the file what a version 2 package left: no governance tables, no trace column, no later migration recorded.
        using (var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                DROP TABLE bifrost_governance_entities; DROP TABLE bifrost_governance_revision; DROP TABLE bifrost_usage;
                DROP TABLE bifrost_request_log;
                ALTER TABLE bifrost_jobs DROP COLUMN trace_parent;
                DELETE FROM bifrost_schema_version WHERE version >= 3;
                """;
            command.ExecuteNonQuery();
        }

        await using (var store = new SqliteGovernanceStore(DatabasePath, _time))
        {
            Assert.Equal(0, await store.GetRevisionAsync(Ct));
            Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.VirtualKey, "vk", "{}"), Ct));
            Assert.Equal(1, await store.GetRevisionAsync(Ct));
            await store.AppendUsageAsync([Record(_time.GetUtcNow(), "vk", 0.25m)], Ct);
            Assert.Equal(0.25m, (await store.SumUsageAsync(new UsageQuery { VirtualKeyId = "vk" }, Ct)).CostUsd);
        }

        await using var reopened = new SqliteJobStore(DatabasePath, TimeProvider.System);
        Assert.NotNull(await reopened.GetAsync("old-job", Ct));
    }

    [Fact]
    public async Task Records_of_the_same_time_list_the_last_appended_first()
    {
        await using var store = new SqliteGovernanceStore(DatabasePath, _time);
        var time = _time.GetUtcNow();
        UsageRecord Named(DateTimeOffset at, string id) => new() { Time = at, RequestId = id, Provider = "local", Model = "echo", Operation = "chat_completion", Source = "sync" };
        await store.AppendUsageAsync([.. Enumerable.Range(0, 3).Select(i => Named(time, $"r{i}"))], Ct);
        await store.AppendUsageAsync([Named(time, "r3"), Named(time - TimeSpan.FromSeconds(1), "older")], Ct);

        var listed = await store.ListUsageAsync(new UsageQuery(), Ct);
        Assert.Equal(["r3", "r2", "r1", "r0", "older"], listed.Select(r => r.RequestId));
    }

    [Fact]
    public async Task A_batch_is_appended_whole_or_not_at_all()
    {
        await using var store = new SqliteGovernanceStore(DatabasePath, _time);
        var t0 = _time.GetUtcNow();
        await store.AppendUsageAsync([Record(t0, "vk", 1m)], Ct);

        // The third record breaks a NOT NULL column: the first two must not stay behind.
        UsageRecord[] batch = [Record(t0 + TimeSpan.FromSeconds(1), "vk", 1m), Record(t0 + TimeSpan.FromSeconds(2), "vk", 1m), Record(t0 + TimeSpan.FromSeconds(3), "vk", 1m, provider: null)];
        await Assert.ThrowsAsync<SqliteException>(async () => await store.AppendUsageAsync(batch, Ct));
        Assert.Equal(1, (await store.SumUsageAsync(new UsageQuery(), Ct)).Requests);

        // Failed batches among concurrent good ones (one group commit) fail alone.
        var writes = Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
        {
            try
            {
                await store.AppendUsageAsync(i % 4 == 0 ? batch : [Record(t0 + TimeSpan.FromMinutes(i), "vk", 1m), Record(t0 + TimeSpan.FromMinutes(i) + TimeSpan.FromSeconds(1), "vk", 1m)], Ct);
                return true;
            }
            catch (SqliteException)
            {
                return false;
            }
        }));
        var results = await Task.WhenAll(writes);
        Assert.Equal(5, results.Count(ok => !ok));
        Assert.Equal(1 + (15 * 2), (await store.SumUsageAsync(new UsageQuery(), Ct)).Requests);
        Assert.Equal(31m, (await store.SumUsageAsync(new UsageQuery(), Ct)).CostUsd);
    }

    [Theory]
    [InlineData("0.000000001", 1L)]
    [InlineData("0.0000000014", 1L)]
    [InlineData("0.0000000015", 2L)]
    [InlineData("-0.0000000015", -2L)]
    [InlineData("123456.123456789", 123456123456789L)]
    [InlineData("9999999999", long.MaxValue)]
    public void Costs_are_stored_as_nano_usd_rounded_to_the_nearest(string usd, long nanos)
    {
        var value = decimal.Parse(usd, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(nanos, SqliteGovernanceStore.ToNanos(value));
        if (nanos != long.MaxValue && decimal.Round(value, 9) == value)
        {
            Assert.Equal(value, SqliteGovernanceStore.FromNanos(nanos));
        }
    }

    [Fact]
    public async Task Two_stores_on_one_file_like_two_processes_see_each_others_changes()
    {
        await using var a = new SqliteGovernanceStore(DatabasePath, _time);
        await using var b = new SqliteGovernanceStore(DatabasePath, _time);

        var before = await b.GetRevisionAsync(Ct);
        Assert.True(await a.CreateEntityAsync(Entity(GovernanceEntityKind.VirtualKey, "vk", "{}"), Ct));
        Assert.True(await b.GetRevisionAsync(Ct) > before);
        Assert.False(await b.CreateEntityAsync(Entity(GovernanceEntityKind.VirtualKey, "vk", "{\"other\":1}"), Ct));
        Assert.NotNull(await b.UpdateEntityAsync(Entity(GovernanceEntityKind.VirtualKey, "vk", "{\"v\":2}"), 1, Ct));
        Assert.Null(await a.UpdateEntityAsync(Entity(GovernanceEntityKind.VirtualKey, "vk", "{\"v\":\"stale\"}"), 1, Ct));

        // Concurrent creates of one id from both "processes": one winner.
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
            await (i % 2 == 0 ? a : b).CreateEntityAsync(Entity(GovernanceEntityKind.Team, "race", $"{{\"i\":{i}}}"), Ct))));
        Assert.Single(results, created => created);

        await Task.WhenAll(
            a.AppendUsageAsync([.. Enumerable.Range(0, 100).Select(i => Record(_time.GetUtcNow() + TimeSpan.FromMilliseconds(i), "a", 0.01m))], Ct).AsTask(),
            b.AppendUsageAsync([.. Enumerable.Range(0, 100).Select(i => Record(_time.GetUtcNow() + TimeSpan.FromMilliseconds(i), "b", 0.01m))], Ct).AsTask());
        Assert.Equal(2m, (await a.SumUsageAsync(new UsageQuery(), Ct)).CostUsd);
        Assert.Equal(200, (await b.SumUsageAsync(new UsageQuery(), Ct)).Requests);
    }

    /// <summary>10,000 records appended in the ledger writer's batches (500); the time is reported, not asserted.</summary>
    [Fact]
    public async Task Appending_ten_thousand_records_in_batches()
    {
        await using var store = new SqliteGovernanceStore(DatabasePath, TimeProvider.System);
        var t0 = DateTimeOffset.UtcNow;
        var records = Enumerable.Range(0, 10_000).Select(i => Record(t0 + TimeSpan.FromMilliseconds(i), $"vk-{i % 50}", 0.000123m)).ToArray();

        var watch = Stopwatch.StartNew();
        foreach (var batch in records.Chunk(500))
        {
            await store.AppendUsageAsync(batch, Ct);
        }

        watch.Stop();
        TestContext.Current.TestOutputHelper?.WriteLine($"10,000 usage records in batches of 500: {watch.Elapsed.TotalMilliseconds:F0} ms ({10_000 / watch.Elapsed.TotalSeconds:F0} records/s)");
        var totals = await store.SumUsageAsync(new UsageQuery(), Ct);
        Assert.Equal(10_000, totals.Requests);
        Assert.Equal(1.23m, totals.CostUsd);
        Assert.Equal(200, (await store.SumUsageAsync(new UsageQuery { VirtualKeyId = "vk-7" }, Ct)).Requests);
    }
}
