using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// What the throughput work (issue 18) must keep or provide: a claim commits without waiting for the WAL flush, so a
/// claim lost in a crash of the database server can be made again under the same version by another worker, and the fence
/// then tells the two workers apart by the lease's worker; the registered data source prepares the stores' statements and does not reset connections between uses.
/// </summary>
public sealed class PostgreSqlThroughputTests : IAsyncDisposable
{
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private NpgsqlDataSource? _dataSource;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private NpgsqlDataSource DataSource => _dataSource ??= PostgresTestDatabase.CreateDataSource();

    [Fact]
    public async Task A_lease_of_the_same_version_held_by_another_worker_writes_nothing()
    {
        var store = new PostgreSqlJobStore(DataSource, _schema, TimeProvider.System);
        await store.EnqueueAsync(NewJob("j1"), Ct);
        var current = await store.TryClaimAsync("worker-b", TimeSpan.FromMinutes(1), 2, Ct);
        Assert.NotNull(current);
        Assert.Equal(1, current.Version);

        // The lease a worker would still hold if its claim of version 1 had been lost in a crash and "worker-b" had claimed
        // the job again under version 1.
        var lost = new JobLease(current.Job, "worker-a");
        Assert.False(await store.RenewLeaseAsync(lost, TimeSpan.FromMinutes(5), Ct));
        Assert.False(await store.SaveProgressAsync(lost, "{\"n\":1}"u8.ToArray(), Ct));
        Assert.False(await store.CompleteAsync(lost, new JobOutcome(200, "{\"from\":\"a\"}"u8.ToArray()), Ct));
        Assert.False(await store.FailAsync(lost, new JobOutcome(500, "{}"u8.ToArray()), Ct));
        Assert.False(await store.ReleaseAsync(lost, null, countAttempt: true, Ct));

        var job = await store.GetAsync("j1", Ct);
        Assert.NotNull(job);
        Assert.Equal(JobStatus.Processing, job.Status);
        Assert.Equal("worker-b", job.LeaseOwner);
        Assert.Null(job.Progress);
        Assert.Equal(0, job.Attempts);
        Assert.Equal(current.Job.LeaseExpiresAt, job.LeaseExpiresAt);

        // The current worker's writes go through.
        Assert.True(await store.SaveProgressAsync(current, "{\"n\":2}"u8.ToArray(), Ct));
        Assert.True(await store.CompleteAsync(current, new JobOutcome(200, "{\"from\":\"b\"}"u8.ToArray()), Ct));
        job = await store.GetAsync("j1", Ct);
        Assert.Equal(JobStatus.Completed, job!.Status);
        Assert.Equal("{\"from\":\"b\"}", System.Text.Encoding.UTF8.GetString(job.Result!.Value.Span));
    }

    [Fact]
    public async Task The_registered_data_source_prepares_repeated_statements_unless_the_connection_string_says_otherwise()
    {
        var connectionString = PostgresTestDatabase.Require() + ";Maximum Pool Size=1";
        Assert.Equal(1, await PreparedAfterRepeatedReadsAsync(connectionString));
        Assert.Equal(0, await PreparedAfterRepeatedReadsAsync(connectionString + ";Max Auto Prepare=0"));
    }

    [Fact]
    public async Task The_registered_data_source_does_not_reset_a_pooled_connection_unless_the_connection_string_says_so()
    {
        var connectionString = PostgresTestDatabase.Require() + ";Maximum Pool Size=1";
        Assert.Equal("kept", await ApplicationNameAfterReuseAsync(connectionString));
        Assert.NotEqual("kept", await ApplicationNameAfterReuseAsync(connectionString + ";No Reset On Close=false"));
    }

    /// <summary>Sets a session setting through one command of the data source <c>UsePostgreSqlJobStore</c> registers, reads it through the next (same connection).</summary>
    private async Task<string> ApplicationNameAfterReuseAsync(string connectionString)
    {
        await using var resources = new PostgreSqlStoreResources(new PostgreSqlStoreOptions { ConnectionString = connectionString, Schema = _schema }, null);
        await using (var set = resources.DataSource.CreateCommand("SET application_name = 'kept'"))
        {
            await set.ExecuteNonQueryAsync(Ct);
        }

        await using var show = resources.DataSource.CreateCommand("SHOW application_name");
        return (string)(await show.ExecuteScalarAsync(Ct))!;
    }

    /// <summary>Reads a job four times through a store on the data source <c>UsePostgreSqlJobStore</c> registers; counts the statements prepared on its one connection.</summary>
    private async Task<long> PreparedAfterRepeatedReadsAsync(string connectionString)
    {
        await using var resources = new PostgreSqlStoreResources(new PostgreSqlStoreOptions { ConnectionString = connectionString, Schema = _schema }, null);
        var store = new PostgreSqlJobStore(resources.DataSource, _schema, TimeProvider.System);
        await store.InitializeAsync(Ct);
        for (var i = 0; i < 4; i++)
        {
            Assert.Null(await store.GetAsync("missing", Ct));
        }

        await using var command = resources.DataSource.CreateCommand("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%jobs WHERE id = $1%'");
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static NewJob NewJob(string id, string owner = "o") =>
        new() { Id = id, Kind = "chat_completion", Owner = owner, Payload = "{}"u8.ToArray(), ResultTtl = TimeSpan.FromMinutes(1) };

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_dataSource, _schema);
            await _dataSource.DisposeAsync();
        }
    }
}
