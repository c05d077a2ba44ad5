using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>The data source and options of the stores registered by <c>UsePostgreSqlJobStore</c>; disposed with the container.</summary>
internal sealed class PostgreSqlStoreResources(PostgreSqlStoreOptions options, ILoggerFactory? loggerFactory) : IAsyncDisposable, IDisposable
{
    public PostgreSqlStoreOptions Options { get; } = options;

    public NpgsqlDataSource DataSource { get; } = Build(options, loggerFactory);

    public ValueTask DisposeAsync() => DataSource.DisposeAsync();

    public void Dispose() => DataSource.Dispose();

    /// <summary>Statements kept prepared per connection when the connection string does not say (Npgsql's Max Auto Prepare).</summary>
    internal const int AutoPreparedStatements = 64;

    /// <summary>Whether the connection string sets a keyword itself (read as written: Npgsql's builder knows every keyword).</summary>
    private static bool Sets(string? connectionString, string keyword, string synonym)
    {
        var written = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        return written.ContainsKey(keyword) || written.ContainsKey(synonym);
    }

    private static NpgsqlDataSource Build(PostgreSqlStoreOptions options, ILoggerFactory? loggerFactory)
    {
        var builder = new NpgsqlDataSourceBuilder(options.ConnectionString);
        if (!Sets(options.ConnectionString, "Max Auto Prepare", "MaxAutoPrepare"))
        {
            // The stores send a few statements over and over (a claim, a completion, an append): prepared on each
            // connection after their second use, they are parsed and planned once per connection instead of on every
            // call (the fair claim's planning cost twice its execution). A connection string that sets Max Auto Prepare wins.
            builder.ConnectionStringBuilder.MaxAutoPrepare = AutoPreparedStatements;
            builder.ConnectionStringBuilder.AutoPrepareMinUsages = 2;
        }

        if (!Sets(options.ConnectionString, "No Reset On Close", "NoResetOnClose"))
        {
            // A connection handed back to the pool is not reset: with prepared statements on it the reset is seven
            // statements (CLOSE ALL, SET SESSION AUTHORIZATION DEFAULT, RESET ALL, UNLISTEN *, ...) on its next use, several
            // times per job. The stores set no session state: their settings and advisory locks are transaction-local.
            builder.ConnectionStringBuilder.NoResetOnClose = true;
        }

        if (loggerFactory is not null)
        {
            builder.UseLoggerFactory(loggerFactory);
        }

        return builder.Build();
    }
}

/// <summary>
/// The data source of a store registered beside the job store: the job store's when it uses the same connection string
/// (and, when the subclass asks, the same schema) — one pool — else one of its own (disposed with the container).
/// </summary>
internal abstract class PostgreSqlSharedDataSource : IAsyncDisposable, IDisposable
{
    private readonly PostgreSqlStoreResources? _owned;

    protected PostgreSqlSharedDataSource(PostgreSqlStoreOptions options, PostgreSqlStoreResources? jobs, ILoggerFactory? loggerFactory, bool sameSchema)
    {
        Schema = options.Schema;
        if (jobs is not null && string.Equals(jobs.Options.ConnectionString, options.ConnectionString, StringComparison.Ordinal)
            && (!sameSchema || string.Equals(jobs.Options.Schema, options.Schema, StringComparison.Ordinal)))
        {
            DataSource = jobs.DataSource;
        }
        else
        {
            _owned = new PostgreSqlStoreResources(options, loggerFactory);
            DataSource = _owned.DataSource;
        }
    }

    public string Schema { get; }

    public NpgsqlDataSource DataSource { get; }

    public ValueTask DisposeAsync() => _owned?.DisposeAsync() ?? ValueTask.CompletedTask;

    public void Dispose() => _owned?.Dispose();
}

/// <summary>The data source of the governance stores registered by <c>UsePostgreSqlGovernanceStore</c> (shared with the job store's for the same connection string and schema).</summary>
internal sealed class PostgreSqlGovernanceResources(PostgreSqlStoreOptions options, PostgreSqlStoreResources? jobs, ILoggerFactory? loggerFactory)
    : PostgreSqlSharedDataSource(options, jobs, loggerFactory, sameSchema: true);

/// <summary>The data source of the request log registered by <c>UsePostgreSqlRequestLog</c> (shared with the job store's for the same connection string, whatever the schemas).</summary>
internal sealed class PostgreSqlRequestLogResources(PostgreSqlStoreOptions options, PostgreSqlStoreResources? jobs, ILoggerFactory? loggerFactory)
    : PostgreSqlSharedDataSource(options, jobs, loggerFactory, sameSchema: false);

/// <summary>A store whose tables are created or migrated when the host starts.</summary>
internal interface IPostgreSqlMigrated
{
    Task InitializeAsync(CancellationToken cancellationToken);
}

/// <summary>Creates or migrates a store's tables before any hosted service starts (a database that cannot be reached stops the host with the error).</summary>
internal sealed class PostgreSqlMigrationStartup<TStore>(TStore store) : IHostedLifecycleService
    where TStore : IPostgreSqlMigrated
{
    public Task StartingAsync(CancellationToken cancellationToken) => store.InitializeAsync(cancellationToken);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Deletes the expired budget and rate-limit windows every <see cref="Interval"/>; a failure is logged and retried at the next run.</summary>
internal sealed class PostgreSqlGovernanceSweeper(PostgreSqlGovernanceCounterStore counters, TimeProvider time, ILogger<PostgreSqlGovernanceSweeper> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Interval, time, stoppingToken).ConfigureAwait(false);
                await counters.DeleteExpiredAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                PostgreSqlLog.SweepFailed(logger, ex);
            }
        }
    }
}

/// <summary>Creates or migrates the schema before any hosted service starts (so the job workers never see a missing table); a database that cannot be reached stops the host with the error.</summary>
internal sealed class PostgreSqlStartup(PostgreSqlJobStore jobs, IServiceProvider services) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        await jobs.InitializeAsync(cancellationToken).ConfigureAwait(false);
        if (services.GetService<IFileStore>() is PostgreSqlFileStore files)
        {
            await files.InitializeAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Keeps one connection listening on the job queue's channel and rings this instance's <see cref="IJobDoorbell"/> on
/// each notification (a job was enqueued or released by any instance), or, for a cancel request recorded by any
/// instance, signals this instance's <see cref="IJobCancellationSignal"/> so a run of that job here stops at once. Reconnects with a growing delay after a failure
/// and rings once after each (re)connect, since notifications sent while disconnected are lost. Only a hint: the
/// workers poll the store anyway, so a lost connection delays work by at most the poll interval. The rings of this
/// instance's own store are left out: it rang its workers when it stored the job.
/// </summary>
internal sealed class PostgreSqlJobListener(PostgreSqlStoreResources resources, IJobDoorbell doorbell, TimeProvider time, ILogger<PostgreSqlJobListener> logger, IJobCancellationSignal? cancellations = null, PostgreSqlJobStore? jobs = null) : BackgroundService
{
    /// <summary>Notifications left out because this instance's own store sent them (for tests).</summary>
    public int OwnRingsSkipped => Volatile.Read(ref _ownRingsSkipped);

    private int _ownRingsSkipped;

    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(30);

    /// <summary>(Re)connections so far (for tests).</summary>
    public int Connections => Volatile.Read(ref _connections);

    private int _connections;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var channel = PostgreSqlSchema.Channel(resources.Options.Schema);
        var delay = TimeSpan.FromMilliseconds(500);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await resources.DataSource.OpenConnectionAsync(stoppingToken).ConfigureAwait(false);
                connection.Notification += (_, e) =>
                {
                    if (e.Payload.StartsWith(PostgreSqlSchema.CancelPrefix, StringComparison.Ordinal))
                    {
                        cancellations?.CancellationRequested(e.Payload[PostgreSqlSchema.CancelPrefix.Length..]);
                    }
                    else if (jobs is not null && e.Payload == jobs.NotifyTag)
                    {
                        Interlocked.Increment(ref _ownRingsSkipped);
                    }
                    else
                    {
                        doorbell.Ring();
                    }
                };
                await using (var listen = new NpgsqlCommand($"LISTEN \"{channel}\"", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken).ConfigureAwait(false);
                }

                Interlocked.Increment(ref _connections);
                PostgreSqlLog.Listening(logger, channel);
                delay = TimeSpan.FromMilliseconds(500);
                doorbell.Ring();
                while (true)
                {
                    if (!await connection.WaitAsync(KeepAlive, stoppingToken).ConfigureAwait(false))
                    {
                        // Quiet for a while: make sure the connection is still alive (a dead one throws here).
                        await using var ping = new NpgsqlCommand("SELECT 1", connection);
                        await ping.ExecuteNonQueryAsync(stoppingToken).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                PostgreSqlLog.ListenFailed(logger, (long)delay.TotalMilliseconds, ex);
                try
                {
                    await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                delay = delay * 2 < MaxDelay ? delay * 2 : MaxDelay;
            }
        }
    }
}
