using System.Runtime.InteropServices;
using Bifrost.Middleware.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bifrost.Middleware;

/// <summary>
/// A durable <see cref="IJobStore"/> in one SQLite database file: async inference jobs and batches survive restarts
/// and crashes (<c>kill -9</c>) of the process. Register it with <c>UseSqliteJobStore(path)</c>.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>The database runs in WAL mode (readers never block the writer) with a busy timeout, so several processes may
/// open the same file; the schema is created or migrated on start and versioned in <c>bifrost_schema_version</c>.</item>
/// <item>Writes go through one writer connection (SQLite has one writer at a time anyway: writers queue in memory
/// instead of sleeping in SQLite's busy handler) with group commit: the writes that queued up while the previous
/// commit ran share the next transaction, and every caller is answered after its COMMIT. Reads use a small pool of
/// read-only connections.</item>
/// <item>A claim is a single <c>UPDATE ... RETURNING</c> picking, among the owners under the per-owner cap of running jobs,
/// the owner with the fewest running jobs and its job that has been due longest (a pending job, or a processing job whose
/// lease ran out); every later write of the worker is fenced by
/// <c>id</c>, <c>version</c>, <c>status = processing</c> and an unexpired lease.</item>
/// <item>Durability: <c>synchronous = FULL</c> for the writes a client is told about (a job accepted, a cancellation
/// accepted), <c>NORMAL</c> for the workers' lease traffic (claims, renewals, progress, results). Both survive a crash
/// of the process; on a power loss or OS crash the NORMAL writes of the last moments may be lost, which only makes a
/// job run again (at-least-once), never loses an accepted one.</item>
/// <item>All times come from the <see cref="TimeProvider"/> and are stored as unix milliseconds.</item>
/// </list>
/// </remarks>
public sealed partial class SqliteJobStore : IJobStore, IDisposable, IAsyncDisposable
{
    private const string Columns =
        "id, kind, owner, payload, status, version, attempts, max_attempts, created_at, started_at, completed_at, expires_at, " +
        "result_ttl_ms, not_before, lease_owner, lease_expires_at, cancellation_requested, progress, status_code, result, trace_parent";

    /// <summary>Longest duration stored (100 years), so <c>now + duration</c> never overflows.</summary>
    private const long MaxDurationMs = 100L * 366 * 24 * 3600 * 1000;

    private const int ExpireChunk = 500;

    private const string InsertSql =
        "INSERT INTO bifrost_jobs (id, kind, owner, payload, status, max_attempts, created_at, result_ttl_ms, ready_at, trace_parent) " +
        "VALUES ($id, $kind, $owner, $payload, 0, $max_attempts, $now, $ttl, $now, $trace_parent);";

    private const string GetSql =
        "SELECT " + Columns + " FROM bifrost_jobs WHERE id = $id AND NOT (status >= 2 AND expires_at <= $now);";

    // The one statement that hands out work, fairly across owners. Candidates: each owner's oldest pending job that is due
    // (owners found by a loose index scan: one index probe per owner, however many jobs wait) and the processing jobs whose
    // worker stopped renewing (lease ran out). Owners holding $cap running jobs (live leases) are skipped; of the rest, the
    // owner with the fewest running jobs goes first, then the job that has been due longest (ready_at, seq). One statement on
    // the single writer: the count and the claim cannot interleave with another claim.
    private const string ClaimSql =
        "WITH RECURSIVE " +
        "running(owner, n) AS (SELECT owner, COUNT(*) FROM bifrost_jobs WHERE status = 1 AND lease_expires_at > $now GROUP BY owner), " +
        "owners(owner) AS (SELECT (SELECT MIN(owner) FROM bifrost_jobs WHERE status = 0) " +
        "UNION ALL SELECT (SELECT MIN(owner) FROM bifrost_jobs WHERE status = 0 AND owner > owners.owner) FROM owners WHERE owners.owner IS NOT NULL), " +
        "candidates(seq, owner, ready_at) AS (" +
        "SELECT h.seq, h.owner, h.ready_at FROM owners o JOIN bifrost_jobs h " +
        "ON h.seq = (SELECT seq FROM bifrost_jobs WHERE owner = o.owner AND status = 0 ORDER BY ready_at, seq LIMIT 1) WHERE h.ready_at <= $now " +
        "UNION ALL SELECT seq, owner, ready_at FROM bifrost_jobs WHERE status = 1 AND lease_expires_at <= $now) " +
        "UPDATE bifrost_jobs SET status = 1, version = version + 1, lease_owner = $worker, lease_expires_at = $now + $lease, " +
        "started_at = COALESCE(started_at, $now), not_before = NULL " +
        "WHERE seq = (SELECT c.seq FROM candidates c LEFT JOIN running r ON r.owner = c.owner WHERE COALESCE(r.n, 0) < $cap " +
        "ORDER BY COALESCE(r.n, 0), c.ready_at, c.seq LIMIT 1) " +
        "RETURNING " + Columns + ";";

    private const string OwnerUsageSql =
        "SELECT (SELECT COUNT(*) FROM bifrost_jobs WHERE owner = $owner AND status = 0) + (SELECT COUNT(*) FROM bifrost_jobs WHERE owner = $owner AND status = 1), " +
        "(SELECT COUNT(*) FROM bifrost_jobs WHERE owner = $owner AND status = 1 AND lease_expires_at > $now), " +
        "(SELECT COALESCE(SUM(length(payload) + COALESCE(length(result), 0)), 0) FROM bifrost_jobs WHERE owner = $owner AND NOT (status >= 2 AND expires_at <= $now));";

    /// <summary>The fence of every write by a lease holder: same job, same claim, still processing, lease not run out.</summary>
    private const string Fence = " WHERE id = $id AND version = $version AND status = 1 AND lease_expires_at > $now;";

    private const string RenewSql = "UPDATE bifrost_jobs SET lease_expires_at = $now + $lease" + Fence;

    private const string ProgressSql = "UPDATE bifrost_jobs SET progress = $progress" + Fence;

    private const string FinishSql =
        "UPDATE bifrost_jobs SET status = CASE WHEN cancellation_requested <> 0 AND $status IN (2, 3) THEN 4 ELSE $status END, status_code = $status_code, result = $result, completed_at = $now, " +
        "expires_at = $now + result_ttl_ms, lease_owner = NULL, lease_expires_at = NULL" + Fence;

    private const string ReleaseSql =
        "UPDATE bifrost_jobs SET status = 0, lease_owner = NULL, lease_expires_at = NULL, not_before = $not_before, " +
        "ready_at = COALESCE($not_before, $now), attempts = attempts + $attempt" + Fence;

    // A pending job that never ran is cancelled at once; a running one, or a pending one that saved progress (it ran
    // before and waits to resume), is flagged so its handler finishes the cancellation.
    private const string CancelSql =
        "UPDATE bifrost_jobs SET " +
        "status = CASE WHEN status = 0 AND progress IS NULL THEN 4 ELSE status END, " +
        "completed_at = CASE WHEN status = 0 AND progress IS NULL THEN $now ELSE completed_at END, " +
        "expires_at = CASE WHEN status = 0 AND progress IS NULL THEN $now + result_ttl_ms ELSE expires_at END, " +
        "status_code = CASE WHEN status = 0 AND progress IS NULL THEN 499 ELSE status_code END, " +
        "cancellation_requested = CASE WHEN status = 1 OR progress IS NOT NULL THEN 1 ELSE cancellation_requested END " +
        "WHERE id = $id AND status IN (0, 1) RETURNING " + Columns + ";";

    private const string ListByKindSql =
        "SELECT " + Columns + " FROM bifrost_jobs WHERE owner = $owner AND kind = $kind " +
        "AND seq < COALESCE((SELECT seq FROM bifrost_jobs WHERE id = $after), 9223372036854775807) " +
        "AND NOT (status >= 2 AND expires_at <= $now) ORDER BY seq DESC LIMIT $limit;";

    // Every owner's jobs (the dashboard): walks the primary key newest first, so a page reads about as many rows as it answers
    // unless the filters skip many (no index serves the kind/state filters better than seq order).
    // The listing's columns: bodies over IJobStore.ListAllBodyLimit left out (length() of a blob reads no content).
    private static readonly string ListEveryOwnerSql =
        "SELECT " + System.Text.RegularExpressions.Regex.Replace(
            System.Text.RegularExpressions.Regex.Replace(Columns, @"\b(progress|result)\b", "CASE WHEN length($1) <= 65536 THEN $1 END"),
            @"\bpayload\b",
            "CASE WHEN length(payload) <= 65536 THEN payload ELSE X'' END") + " FROM bifrost_jobs WHERE ($kind IS NULL OR kind = $kind) AND ($except IS NULL OR kind <> $except) " +
        "AND ($unfinished IS NULL OR ($unfinished = 1 AND status < 2) OR ($unfinished = 0 AND status >= 2)) " +
        "AND seq < COALESCE((SELECT seq FROM bifrost_jobs WHERE id = $after), 9223372036854775807) " +
        "AND NOT (status >= 2 AND expires_at <= $now) ORDER BY seq DESC LIMIT $limit;";

    private const string ListAllSql =
        "SELECT " + Columns + " FROM bifrost_jobs WHERE owner = $owner " +
        "AND seq < COALESCE((SELECT seq FROM bifrost_jobs WHERE id = $after), 9223372036854775807) " +
        "AND NOT (status >= 2 AND expires_at <= $now) ORDER BY seq DESC LIMIT $limit;";

    private const string ExpireSql =
        "DELETE FROM bifrost_jobs WHERE seq IN (SELECT seq FROM bifrost_jobs WHERE expires_at <= $now AND status >= 2 LIMIT $limit);";

    // Each half counts a partial index (status = 0 / status = 1): no table scan, no extra index to maintain.
    private const string CountSql =
        "SELECT (SELECT COUNT(*) FROM bifrost_jobs WHERE status = 0) + (SELECT COUNT(*) FROM bifrost_jobs WHERE status = 1);";

    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _connectionString;
    private readonly int _busyTimeoutMs;
    private readonly SqliteWriter _writer;
    private readonly SqliteReaderPool _readers;
    private volatile bool _disposed;

    /// <summary>
    /// Opens (or creates) the database, switches it to WAL and creates or migrates the schema. The directory of the file
    /// is created when missing.
    /// </summary>
    /// <param name="connectionStringOrPath">
    /// A file path (<c>App_Data/bifrost/jobs.db</c>) or a Microsoft.Data.Sqlite connection string (<c>Data Source=...;</c>,
    /// recognized by its <c>=</c>). A relative path is taken relative to the current directory; <c>UseSqliteJobStore</c>
    /// resolves it against the content root first. In-memory databases are refused: they are not durable.
    /// </param>
    /// <param name="timeProvider">The clock of every stored time.</param>
    /// <param name="logger">Logs the database opened and migrations; null for none.</param>
    public SqliteJobStore(string connectionStringOrPath, TimeProvider timeProvider, ILogger<SqliteJobStore>? logger = null)
        : this(connectionStringOrPath, timeProvider, logger, SqliteDurability.Acknowledged, SqliteWriterMode.GroupCommit)
    {
    }

    internal SqliteJobStore(string connectionStringOrPath, TimeProvider timeProvider, ILogger? logger, SqliteDurability durability, SqliteWriterMode writerMode)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionStringOrPath);
        _time = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        _logger = logger ?? NullLogger.Instance;

        var builder = Normalize(connectionStringOrPath, baseDirectory: null);
        DatabasePath = builder.DataSource;
        _busyTimeoutMs = (int)Math.Clamp(builder.DefaultTimeout * 1000L, 1000, int.MaxValue);
        _connectionString = builder.ToString();
        _readers = new SqliteReaderPool(_connectionString, _busyTimeoutMs);
        Directory.CreateDirectory(Path.GetDirectoryName(DatabasePath)!);

        var connection = SqliteConnectionSlot.Open(_connectionString, _busyTimeoutMs, readOnly: false);
        try
        {
            var journal = Convert.ToString(connection.Scalar("PRAGMA journal_mode = WAL;"), System.Globalization.CultureInfo.InvariantCulture);
            if (!string.Equals(journal, "wal", StringComparison.OrdinalIgnoreCase))
            {
                Log.NotWal(_logger, DatabasePath, journal ?? "unknown");
            }

            var (from, to) = SqliteSchema.Migrate(connection.Connection, Now());
            if (from != to)
            {
                Log.Migrated(_logger, DatabasePath, from, to);
            }

            Log.Opened(_logger, DatabasePath, to, journal ?? "unknown");
            _writer = new SqliteWriter(connection, durability, writerMode);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>The writer (tests read its group-commit counters).</summary>
    internal SqliteWriter Writer => _writer;

    /// <summary>The full path of the database file.</summary>
    public string DatabasePath { get; }

    /// <inheritdoc />
    public async ValueTask<JobRecord> EnqueueAsync(NewJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var payload = Bytes(job.Payload);
        var maxAttempts = Math.Max(1, job.MaxAttempts);
        var ttl = Milliseconds(job.ResultTtl);
        var createdAt = await WriteAsync(
            durable: true,
            writer =>
            {
                var now = Now();
                var command = writer.Command(InsertSql);
                Add(command, "$id", job.Id);
                Add(command, "$kind", job.Kind);
                Add(command, "$owner", job.Owner);
                Add(command, "$payload", payload);
                Add(command, "$max_attempts", maxAttempts);
                Add(command, "$now", now);
                Add(command, "$ttl", ttl);
                Add(command, "$trace_parent", (object?)job.TraceParent ?? DBNull.Value);
                try
                {
                    command.ExecuteNonQuery();
                }
                catch (SqliteException ex) when (ex.SqliteErrorCode == 19) // SQLITE_CONSTRAINT: the id is taken
                {
                    throw new InvalidOperationException($"A job with id '{job.Id}' already exists.", ex);
                }

                return now;
            },
            cancellationToken).ConfigureAwait(false);

        // What the row now holds; built here rather than read back.
        return new JobRecord
        {
            Id = job.Id,
            Kind = job.Kind,
            Owner = job.Owner,
            Payload = payload,
            TraceParent = job.TraceParent,
            Status = JobStatus.Pending,
            MaxAttempts = maxAttempts,
            CreatedAt = FromMs(createdAt),
            ResultTtl = TimeSpan.FromMilliseconds(ttl),
        };
    }

    /// <inheritdoc />
    public ValueTask<JobRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(reader =>
        {
            var command = reader.Command(GetSql);
            Add(command, "$id", id);
            Add(command, "$now", Now());
            return ReadOne(command);
        }));
    }

    /// <inheritdoc />
    public ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken) =>
        TryClaimAsync(workerId, leaseDuration, int.MaxValue, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, int maxRunningPerOwner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workerId);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRunningPerOwner, 1);
        var lease = Milliseconds(leaseDuration);
        var job = await WriteAsync(
            durable: false,
            writer =>
            {
                var command = writer.Command(ClaimSql);
                Add(command, "$worker", workerId);
                Add(command, "$now", Now());
                Add(command, "$lease", lease);
                Add(command, "$cap", maxRunningPerOwner);
                return ReadOne(command);
            },
            cancellationToken).ConfigureAwait(false);
        return job is null ? null : new JobLease(job, workerId);
    }

    /// <inheritdoc />
    public ValueTask<JobOwnerUsage> GetOwnerUsageAsync(string owner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(owner);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(reader =>
        {
            var command = reader.Command(OwnerUsageSql);
            Add(command, "$owner", owner);
            Add(command, "$now", Now());
            using var row = command.ExecuteReader();
            row.Read();
            return new JobOwnerUsage(row.GetInt64(0), row.GetInt64(1), row.GetInt64(2));
        }));
    }

    /// <inheritdoc />
    public ValueTask<bool> RenewLeaseAsync(JobLease lease, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var duration = Milliseconds(leaseDuration);
        return FencedAsync(lease, RenewSql, command => Add(command, "$lease", duration), cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<bool> SaveProgressAsync(JobLease lease, ReadOnlyMemory<byte> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var bytes = Bytes(progress);
        return FencedAsync(lease, ProgressSql, command => Add(command, "$progress", bytes), cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<bool> CompleteAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken) =>
        FinishAsync(lease, JobStatus.Completed, outcome, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> FailAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken) =>
        FinishAsync(lease, JobStatus.Failed, outcome, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> MarkCancelledAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken) =>
        FinishAsync(lease, JobStatus.Cancelled, outcome, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> ReleaseAsync(JobLease lease, DateTimeOffset? notBefore, bool countAttempt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        object notBeforeMs = notBefore is { } time ? time.ToUnixTimeMilliseconds() : DBNull.Value;
        return FencedAsync(
            lease,
            ReleaseSql,
            command =>
            {
                Add(command, "$not_before", notBeforeMs);
                Add(command, "$attempt", countAttempt ? 1 : 0);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<JobRecord?> RequestCancellationAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        var job = await WriteAsync(
            durable: true,
            writer =>
            {
                var command = writer.Command(CancelSql);
                Add(command, "$id", id);
                Add(command, "$now", Now());
                return ReadOne(command);
            },
            cancellationToken).ConfigureAwait(false);

        // Not pending or processing: already finished (unchanged), expired or unknown.
        return job ?? await GetAsync(id, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<JobRecord>> ListAsync(string owner, string? kind, int limit, string? after, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(owner);
        cancellationToken.ThrowIfCancellationRequested();
        if (limit <= 0)
        {
            return ValueTask.FromResult<IReadOnlyList<JobRecord>>([]);
        }

        return ValueTask.FromResult<IReadOnlyList<JobRecord>>(Read(reader =>
        {
            var command = reader.Command(kind is null ? ListAllSql : ListByKindSql);
            Add(command, "$owner", owner);
            if (kind is not null)
            {
                Add(command, "$kind", kind);
            }

            Add(command, "$after", (object?)after ?? DBNull.Value);
            Add(command, "$now", Now());
            Add(command, "$limit", limit);
            var page = new List<JobRecord>();
            using var rows = command.ExecuteReader();
            while (rows.Read())
            {
                page.Add(Map(rows));
            }

            return page;
        }));
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<JobRecord>> ListAllAsync(string? kind, string? exceptKind, bool? unfinished, int limit, string? after, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (limit <= 0)
        {
            return ValueTask.FromResult<IReadOnlyList<JobRecord>>([]);
        }

        return ValueTask.FromResult<IReadOnlyList<JobRecord>>(Read(reader =>
        {
            var command = reader.Command(ListEveryOwnerSql);
            Add(command, "$kind", (object?)kind ?? DBNull.Value);
            Add(command, "$except", (object?)exceptKind ?? DBNull.Value);
            Add(command, "$unfinished", unfinished is { } u ? (u ? 1 : 0) : DBNull.Value);
            Add(command, "$after", (object?)after ?? DBNull.Value);
            Add(command, "$now", Now());
            Add(command, "$limit", limit);
            var page = new List<JobRecord>();
            using var rows = command.ExecuteReader();
            while (rows.Read())
            {
                page.Add(Map(rows));
            }

            return page;
        }));
    }

    /// <inheritdoc />
    public async ValueTask<int> ExpireAsync(CancellationToken cancellationToken)
    {
        // In chunks, giving the write lock back between them: a large sweep never holds up claims for long.
        var total = 0;
        while (true)
        {
            var removed = await WriteAsync(
                durable: false,
                writer =>
                {
                    var command = writer.Command(ExpireSql);
                    Add(command, "$now", Now());
                    Add(command, "$limit", ExpireChunk);
                    return command.ExecuteNonQuery();
                },
                cancellationToken).ConfigureAwait(false);
            total += removed;
            if (removed < ExpireChunk)
            {
                return total;
            }
        }
    }

    /// <inheritdoc />
    public ValueTask<long> CountUnfinishedAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(reader => (long)reader.Scalar(CountSql)!));
    }

    /// <summary>Closes the database connections.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _writer.Dispose(); // runs what was queued first
        _readers.Dispose();
    }

    /// <summary>Closes the database connections.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Turns a path or connection string into the store's connection string (absolute path, pooling off, read-write-create).</summary>
    internal static SqliteConnectionStringBuilder Normalize(string connectionStringOrPath, string? baseDirectory)
    {
        var builder = connectionStringOrPath.Contains('=', StringComparison.Ordinal)
            ? new SqliteConnectionStringBuilder(connectionStringOrPath)
            : new SqliteConnectionStringBuilder { DataSource = connectionStringOrPath };
        var source = builder.DataSource;
        if (string.IsNullOrWhiteSpace(source) || source == ":memory:" || builder.Mode == SqliteOpenMode.Memory)
        {
            throw new ArgumentException("The SQLite job store needs a database file; in-memory databases are not durable (use the default in-memory store instead).", nameof(connectionStringOrPath));
        }

        if (builder.Mode == SqliteOpenMode.ReadOnly)
        {
            throw new ArgumentException("The SQLite job store writes to its database; Mode=ReadOnly is not supported.", nameof(connectionStringOrPath));
        }

        if (baseDirectory is not null && !Path.IsPathRooted(source))
        {
            source = Path.Combine(baseDirectory, source);
        }

        builder.DataSource = Path.GetFullPath(source);
        builder.Mode = SqliteOpenMode.ReadWriteCreate;
        builder.Pooling = false; // the store keeps its own connections (and their prepared statements)
        return builder;
    }

    private ValueTask<bool> FinishAsync(JobLease lease, JobStatus status, JobOutcome outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var body = Bytes(outcome.Body);
        return FencedAsync(
            lease,
            FinishSql,
            command =>
            {
                Add(command, "$status", (int)status);
                Add(command, "$status_code", outcome.StatusCode);
                Add(command, "$result", body);
            },
            cancellationToken);
    }

    /// <summary>Runs one fenced statement; true when it changed the job (the lease was current).</summary>
    private async ValueTask<bool> FencedAsync(JobLease lease, string sql, Action<SqliteCommand> bind, CancellationToken cancellationToken)
    {
        var changed = await WriteAsync(
            durable: false,
            writer =>
            {
                var command = writer.Command(sql);
                Add(command, "$id", lease.JobId);
                Add(command, "$version", lease.Version);
                Add(command, "$now", Now());
                bind(command);
                return command.ExecuteNonQuery();
            },
            cancellationToken).ConfigureAwait(false);
        return changed == 1;
    }

    /// <summary>Runs <paramref name="write"/> on the writer connection; returns once it is committed.</summary>
    private ValueTask<T> WriteAsync<T>(bool durable, Func<SqliteConnectionSlot, T> write, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _writer.WriteAsync(durable, write, cancellationToken);
    }

    /// <summary>Runs <paramref name="read"/> on a pooled read-only connection (WAL: readers do not wait for the writer).</summary>
    private T Read<T>(Func<SqliteConnectionSlot, T> read)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _readers.Read(read);
    }

    private static JobRecord? ReadOne(SqliteCommand command)
    {
        using var rows = command.ExecuteReader();
        return rows.Read() ? Map(rows) : null;
    }

    private static JobRecord Map(SqliteDataReader row) => new()
    {
        Id = row.GetString(0),
        Kind = row.GetString(1),
        Owner = row.GetString(2),
        Payload = Blob(row, 3) ?? [],
        Status = (JobStatus)row.GetInt32(4),
        Version = row.GetInt64(5),
        Attempts = row.GetInt32(6),
        MaxAttempts = row.GetInt32(7),
        CreatedAt = FromMs(row.GetInt64(8)),
        StartedAt = Time(row, 9),
        CompletedAt = Time(row, 10),
        ExpiresAt = Time(row, 11),
        ResultTtl = TimeSpan.FromMilliseconds(row.GetInt64(12)),
        NotBefore = Time(row, 13),
        LeaseOwner = row.IsDBNull(14) ? null : row.GetString(14),
        LeaseExpiresAt = Time(row, 15),
        CancellationRequested = row.GetInt64(16) != 0,
        Progress = Blob(row, 17) is { } progress ? new ReadOnlyMemory<byte>(progress) : (ReadOnlyMemory<byte>?)null,
        StatusCode = row.IsDBNull(18) ? null : row.GetInt32(18),
        Result = Blob(row, 19) is { } result ? new ReadOnlyMemory<byte>(result) : (ReadOnlyMemory<byte>?)null,
        TraceParent = row.IsDBNull(20) ? null : row.GetString(20),
    };

    private static byte[]? Blob(SqliteDataReader row, int ordinal) => row.IsDBNull(ordinal) ? null : row.GetFieldValue<byte[]>(ordinal);

    private static DateTimeOffset? Time(SqliteDataReader row, int ordinal) => row.IsDBNull(ordinal) ? null : FromMs(row.GetInt64(ordinal));

    private static DateTimeOffset FromMs(long ms) =>
        DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(ms, DateTimeOffset.MinValue.ToUnixTimeMilliseconds(), DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()));

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static long Milliseconds(TimeSpan duration) => Math.Clamp((long)duration.TotalMilliseconds, 0, MaxDurationMs);

    /// <summary>The bytes as an array, without a copy when the memory is a whole array.</summary>
    private static byte[] Bytes(ReadOnlyMemory<byte> memory) =>
        MemoryMarshal.TryGetArray(memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length ? segment.Array : memory.ToArray();

    private static void Add(SqliteCommand command, string name, object value) => command.Parameters.AddWithValue(name, value);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "SQLite job store {Path}: schema version {Version}, journal mode {JournalMode}.")]
        public static partial void Opened(ILogger logger, string path, int version, string journalMode);

        [LoggerMessage(2, LogLevel.Information, "SQLite job store {Path}: schema migrated from version {From} to {To}.")]
        public static partial void Migrated(ILogger logger, string path, int from, int to);

        [LoggerMessage(3, LogLevel.Warning, "SQLite job store {Path}: WAL is not available (journal mode {JournalMode}); readers will wait for writers. Is the file on a network share?")]
        public static partial void NotWal(ILogger logger, string path, string journalMode);
    }
}

/// <summary>When the store fsyncs (<c>PRAGMA synchronous</c>); the public store always uses <see cref="Acknowledged"/>.</summary>
internal enum SqliteDurability
{
    /// <summary>FULL for enqueue and cancellation requests, NORMAL for worker writes.</summary>
    Acknowledged,

    /// <summary>FULL for every write (measured in the benchmark).</summary>
    Full,

    /// <summary>NORMAL for every write (measured in the benchmark).</summary>
    Normal,
}
