using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// Enqueues and finishing writes of concurrent callers go into one statement and one commit per group: each caller gets
/// its own answer (its record, a duplicate id's error, whether its fence held), and only once its row is committed.
/// The groups are made deterministic by holding a SHARE lock on the jobs table while the calls queue up behind the first.
/// </summary>
public sealed class PostgreSqlGroupedWriteTests : IAsyncDisposable
{
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private NpgsqlDataSource? _dataSource;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private NpgsqlDataSource DataSource => _dataSource ??= PostgresTestDatabase.CreateDataSource();

    [Fact]
    public async Task Concurrent_enqueues_share_a_statement_and_each_caller_gets_its_own_row_or_its_own_error()
    {
        var store = new PostgreSqlJobStore(DataSource, _schema, TimeProvider.System);
        await store.EnqueueAsync(Job("existing", "o0"), Ct);
        var groupsBefore = store.EnqueueGroups;

        Task<JobRecord>[] calls;
        await using (var blocker = await BlockWritesAsync())
        {
            // The first calls' statements (one per writer slot) wait for the lock; the others queue behind them: two ids
            // repeat inside the queue (the later one waits for the next group) and one repeats a stored job.
            var ids = Enumerable.Range(0, 40).Select(i => $"j{i}").Concat(["j20", "existing", "j30"]).ToArray();
            calls = ids.Select((id, i) => store.EnqueueAsync(Job(id, $"o{i % 3}"), Ct).AsTask()).ToArray();
            await WaitForBlockedWritesAsync(PostgreSqlJobStore.MaxGroupsInFlight);
            Assert.All(calls, call => Assert.False(call.IsCompleted)); // nothing acknowledged before its commit
            await blocker.CommitAsync(Ct);
        }

        await Task.WhenAll(calls.Select(c => c.ContinueWith(_ => { }, TaskScheduler.Default)));
        for (var i = 0; i < 40; i++)
        {
            if (i is 20 or 30)
            {
                continue;
            }

            var stored = await calls[i];
            Assert.Equal($"j{i}", stored.Id);
            Assert.Equal($"o{i % 3}", stored.Owner);
            Assert.Equal(JobStatus.Pending, stored.Status);
            Assert.Equal($"payload {i}", System.Text.Encoding.UTF8.GetString(stored.Payload.Span));
        }

        // Of two calls with one id, exactly one stores it; the other fails alone. A stored id fails.
        foreach (var (a, b) in new[] { (20, 40), (30, 42) })
        {
            Assert.Equal(1, new[] { calls[a], calls[b] }.Count(c => c.IsCompletedSuccessfully));
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => calls[a].IsCompletedSuccessfully ? calls[b] : calls[a]);
            Assert.Contains("already exists", error.Message);
        }

        Assert.Contains("already exists", (await Assert.ThrowsAsync<InvalidOperationException>(() => calls[41])).Message);

        // One group per writer slot, then the other 36 new ids (and the stored one) together, then the two repeats.
        Assert.Equal(PostgreSqlJobStore.MaxGroupsInFlight + 2, store.EnqueueGroups - groupsBefore);

        // Every acknowledged job is readable through another connection, and claimed after the one stored before.
        await using var other = PostgresTestDatabase.CreateDataSource();
        var reader = new PostgreSqlJobStore(other, _schema, TimeProvider.System);
        Assert.Equal(41, await reader.CountUnfinishedAsync(Ct));
        Assert.Equal("payload 39", System.Text.Encoding.UTF8.GetString((await reader.GetAsync("j39", Ct))!.Payload.Span));
        var order = new List<string>();
        while (await reader.TryClaimAsync("w", TimeSpan.FromMinutes(1), Ct) is { } lease)
        {
            order.Add(lease.JobId);
        }

        Assert.Equal("existing", order[0]);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"j{i}").Order(), order.Skip(1).Order());
    }

    [Fact]
    public async Task Concurrent_finishes_share_a_statement_and_each_fence_and_cancel_request_holds_per_row()
    {
        var store = new PostgreSqlJobStore(DataSource, _schema, TimeProvider.System);
        var leases = new List<JobLease>();
        for (var i = 0; i < 12; i++)
        {
            await store.EnqueueAsync(Job($"j{i}", "o"), Ct);
            leases.Add((await store.TryClaimAsync($"w{i}", TimeSpan.FromMinutes(1), Ct))!);
        }

        await store.RequestCancellationAsync("j4", Ct); // running: flagged, so its completion is stored cancelled
        await store.RequestCancellationAsync("j5", Ct); // its failure too
        var groupsBefore = store.FinishGroups;

        Task<bool>[] calls;
        await using (var blocker = await BlockWritesAsync())
        {
            calls =
            [
                store.CompleteAsync(leases[0], new JobOutcome(200, "done 0"u8.ToArray()), Ct).AsTask(),
                store.CompleteAsync(leases[1], new JobOutcome(200, "done 1"u8.ToArray()), Ct).AsTask(),
                store.FailAsync(leases[2], new JobOutcome(502, "failed 2"u8.ToArray()), Ct).AsTask(),
                store.MarkCancelledAsync(leases[3], new JobOutcome(499, "cancelled 3"u8.ToArray()), Ct).AsTask(),
                store.CompleteAsync(leases[4], new JobOutcome(200, "done 4"u8.ToArray()), Ct).AsTask(),
                store.FailAsync(leases[5], new JobOutcome(500, "failed 5"u8.ToArray()), Ct).AsTask(),
                // fenced out: another worker's lease of j6, then j6's own (same row: the next group)
                store.CompleteAsync(new JobLease(leases[6].Job, "intruder"), new JobOutcome(200, "intruder"u8.ToArray()), Ct).AsTask(),
                store.CompleteAsync(leases[6], new JobOutcome(200, "done 6"u8.ToArray()), Ct).AsTask(),
                // j7 twice with its own lease (the same row: the next group): one wins, the other finds it finished
                store.CompleteAsync(leases[7], new JobOutcome(200, "done 7"u8.ToArray()), Ct).AsTask(),
                store.FailAsync(leases[7], new JobOutcome(500, "late 7"u8.ToArray()), Ct).AsTask(),
            ];
            await WaitForBlockedWritesAsync(PostgreSqlJobStore.MaxGroupsInFlight);
            Assert.All(calls, call => Assert.False(call.IsCompleted));
            await blocker.CommitAsync(Ct);
        }

        var answers = await Task.WhenAll(calls);
        Assert.Equal(new[] { true, true, true, true, true, true, false, true }, answers[..8]);
        Assert.True(answers[8] ^ answers[9]);
        Assert.Equal(PostgreSqlJobStore.MaxGroupsInFlight + 2, store.FinishGroups - groupsBefore); // j0..j3 one each, the rest, the repeats of j6 and j7

        await using var other = PostgresTestDatabase.CreateDataSource();
        var reader = new PostgreSqlJobStore(other, _schema, TimeProvider.System);
        await AssertJobAsync(reader, "j0", JobStatus.Completed, 200, "done 0");
        await AssertJobAsync(reader, "j1", JobStatus.Completed, 200, "done 1");
        await AssertJobAsync(reader, "j2", JobStatus.Failed, 502, "failed 2");
        await AssertJobAsync(reader, "j3", JobStatus.Cancelled, 499, "cancelled 3");
        await AssertJobAsync(reader, "j4", JobStatus.Cancelled, 200, "done 4"); // the cancel request won, the outcome kept
        await AssertJobAsync(reader, "j5", JobStatus.Cancelled, 500, "failed 5");
        await AssertJobAsync(reader, "j6", JobStatus.Completed, 200, "done 6");
        if (answers[8])
        {
            await AssertJobAsync(reader, "j7", JobStatus.Completed, 200, "done 7");
        }
        else
        {
            await AssertJobAsync(reader, "j7", JobStatus.Failed, 500, "late 7");
        }
        Assert.Equal(JobStatus.Processing, (await reader.GetAsync("j8", Ct))!.Status); // untouched
        Assert.Equal(4, await reader.CountUnfinishedAsync(Ct)); // j8..j11
    }

    [Fact]
    public async Task An_enqueue_cancelled_while_it_waits_for_its_group_is_not_stored()
    {
        var store = new PostgreSqlJobStore(DataSource, _schema, TimeProvider.System);
        using var giveUp = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task<JobRecord>[] leaders;
        Task<JobRecord> second, third;
        await using (var blocker = await BlockWritesAsync())
        {
            // Every writer slot busy (blocked), so the next calls wait in the queue.
            leaders = Enumerable.Range(0, PostgreSqlJobStore.MaxGroupsInFlight).Select(i => store.EnqueueAsync(Job($"l{i}", "o"), Ct).AsTask()).ToArray();
            second = store.EnqueueAsync(Job("j2", "o"), giveUp.Token).AsTask();
            third = store.EnqueueAsync(Job("j3", "o"), Ct).AsTask();
            await WaitForBlockedWritesAsync(PostgreSqlJobStore.MaxGroupsInFlight);
            await giveUp.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second);
            await blocker.CommitAsync(Ct);
        }

        Assert.Equal(PostgreSqlJobStore.MaxGroupsInFlight, (await Task.WhenAll(leaders)).Length);
        Assert.Equal("j3", (await third).Id);
        Assert.Null(await store.GetAsync("j2", Ct));
        Assert.Equal(PostgreSqlJobStore.MaxGroupsInFlight + 1, await store.CountUnfinishedAsync(Ct));
    }

    [Fact]
    public async Task A_failed_group_fails_its_callers_and_the_next_call_starts_afresh()
    {
        var store = new PostgreSqlJobStore(DataSource, _schema, TimeProvider.System);
        await store.InitializeAsync(Ct);
        await using (var rename = DataSource.CreateCommand($"ALTER TABLE \"{_schema}\".jobs RENAME TO jobs_away"))
        {
            await rename.ExecuteNonQueryAsync(Ct);
        }

        await Assert.ThrowsAsync<PostgresException>(async () => await store.EnqueueAsync(Job("a", "o"), Ct));

        await using (var back = DataSource.CreateCommand($"ALTER TABLE \"{_schema}\".jobs_away RENAME TO jobs"))
        {
            await back.ExecuteNonQueryAsync(Ct);
        }

        Assert.Equal("a", (await store.EnqueueAsync(Job("a", "o"), Ct)).Id);
        Assert.Equal(1, await store.CountUnfinishedAsync(Ct));
    }

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_dataSource, _schema);
            await _dataSource.DisposeAsync();
        }
    }

    private static NewJob Job(string id, string owner) => new()
    {
        Id = id,
        Kind = "chat_completion",
        Owner = owner,
        Payload = System.Text.Encoding.UTF8.GetBytes($"payload {id[1..]}"),
        ResultTtl = TimeSpan.FromMinutes(5),
    };

    private static async Task AssertJobAsync(PostgreSqlJobStore reader, string id, JobStatus status, int statusCode, string result)
    {
        var job = await reader.GetAsync(id, Ct);
        Assert.NotNull(job);
        Assert.Equal(status, job.Status);
        Assert.Equal(statusCode, job.StatusCode);
        Assert.Equal(result, System.Text.Encoding.UTF8.GetString(job.Result!.Value.Span));
        Assert.Null(job.LeaseOwner);
    }

    /// <summary>Holds a SHARE lock on the jobs table (inserts and updates wait; reads do not) until committed.</summary>
    private async Task<Blocker> BlockWritesAsync()
    {
        await new PostgreSqlJobStore(DataSource, _schema, TimeProvider.System).InitializeAsync(Ct);
        var connection = await DataSource.OpenConnectionAsync(Ct);
        var transaction = await connection.BeginTransactionAsync(Ct);
        await using var command = new NpgsqlCommand($"LOCK TABLE \"{_schema}\".jobs IN SHARE MODE", connection, transaction);
        await command.ExecuteNonQueryAsync(Ct);
        return new Blocker(connection, transaction);
    }

    /// <summary>Waits until <paramref name="count"/> statements wait for the table lock (the groups in flight; the other calls queue behind them).</summary>
    private async Task WaitForBlockedWritesAsync(int count)
    {
        await using var command = DataSource.CreateCommand($"SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = '\"{_schema}\".jobs'::regclass");
        while ((long)(await command.ExecuteScalarAsync(Ct))! < count)
        {
            await Task.Delay(10, Ct);
        }
    }

    private sealed class Blocker(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
    {
        public Task CommitAsync(CancellationToken cancellationToken) => transaction.CommitAsync(cancellationToken);

        public async ValueTask DisposeAsync()
        {
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }
}
