using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// An <see cref="IJobStore"/> in PostgreSQL, shared by every instance of the app that uses the same database and schema:
/// any instance can answer a poll, workers of all instances take jobs from one queue, and a job whose instance died is
/// taken over when its lease expires.
/// </summary>
/// <remarks>
/// <para>A claim is one statement: <c>UPDATE jobs SET status = processing, version = version + 1, lease... WHERE id =
/// (SELECT id ... ORDER BY ready_seq FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING ...</c>, so concurrent claimers never
/// wait for each other and never get the same job. Every later write of a worker is fenced: it changes the row only
/// while the job is processing under the worker's version and its lease has not run out.</para>
/// <para>Enqueueing a job and releasing one for a retry send <c>NOTIFY bifrost_jobs_&lt;schema&gt;</c> once committed
/// (in a statement of their own: a notifying transaction would serialize the commits); instances listening (see
/// <see cref="PostgreSqlStoreOptions.Listen"/>) wake their idle workers.</para>
/// <para>Enqueues and finishing writes (complete, fail, cancelled) of concurrent callers are grouped: one statement and one
/// flushed commit for what was handed over while the previous group was written, each row under its own fence (see
/// <c>GroupedCommits</c>). Every call still returns only once its own row is committed, so an acknowledged job or result
/// survives a crash of the database server as before; the group shares the round trip, the statement and the WAL flush.</para>
/// <para>All times come from the <see cref="TimeProvider"/> given (never the database clock), at microsecond precision.</para>
/// <para>The schema is created or migrated on first use (or by <see cref="InitializeAsync"/>).</para>
/// </remarks>
public sealed partial class PostgreSqlJobStore : IJobStore
{
    private const string Columns = "id, kind, owner, payload, status, version, attempts, max_attempts, created_at, started_at, completed_at, expires_at, result_ttl_us, not_before, lease_owner, lease_expires_at, cancellation_requested, progress, status_code, result, trace_parent";
    // The worker is part of the fence, not only the version: a claim commits without waiting for the WAL flush (see the
    // claims below), so after a crash of the database server a claim may be lost and the job claimed again under the same
    // version by another worker; the lost claim's worker must not write then. (Versions come from the claims.)
    private const string Fence = "id = @id AND version = @version AND status = 1 AND lease_owner = @worker AND lease_expires_at > @now";
    /// <summary>At most this many writes per grouped statement.</summary>
    private const int MaxGroup = 256;

    /// <summary>At most about this many bytes of payloads or results per grouped statement (a larger one is written alone).</summary>
    private const long MaxGroupBytes = 4 * 1024 * 1024;

    /// <summary>
    /// At most this many grouped statements of a kind in flight at once: up to this many concurrent calls each write at once
    /// (as without grouping); the calls beyond share statements and WAL flushes.
    /// </summary>
    internal const int MaxGroupsInFlight = 4;
    private const string NotExpired = "NOT (status >= 2 AND expires_at <= @now)";

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly PostgreSqlInitializer _initializer;
    private readonly PostgreSqlNotifier _notifier;
    private readonly string _enqueueSql;
    private readonly string _getSql;
    private readonly string _claimSql;
    private readonly string _pickSql;
    private readonly string _fairClaimSql;
    private readonly string _usageSql;
    private readonly string _renewSql;
    private readonly string _progressSql;
    private readonly string _finishSql;
    private readonly string _releaseSql;
    private readonly string _cancelSql;
    private readonly string _listSql;
    private readonly string _listEveryOwnerSql;
    private readonly string _expireSql;
    private readonly string _countSql;
    private readonly GroupedCommits<Enqueue, JobRecord> _enqueues;
    private readonly GroupedCommits<Finish, bool> _finishes;

    /// <summary>The payload of this store's NOTIFY rings (its own listener leaves them out: the instance rang its workers already).</summary>
    internal string NotifyTag => _notifier.Tag;

    /// <summary>Creates a store on <paramref name="dataSource"/> (not disposed by the store) in <paramref name="schema"/>.</summary>
    /// <param name="dataSource">Where the database is.</param>
    /// <param name="schema">The schema holding the tables (see <see cref="PostgreSqlStoreOptions.Schema"/>).</param>
    /// <param name="timeProvider">The clock (tests pass a fake one).</param>
    /// <param name="logger">Logs migrations; optional.</param>
    public PostgreSqlJobStore(NpgsqlDataSource dataSource, string schema, TimeProvider timeProvider, ILogger<PostgreSqlJobStore>? logger = null)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        _time = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        PostgreSqlStoreOptions.ValidateSchema(schema);
        Schema = schema;
        var log = (ILogger?)logger ?? NullLogger.Instance;
        _initializer = new PostgreSqlInitializer(dataSource, schema, log);
        _notifier = new PostgreSqlNotifier(dataSource, PostgreSqlSchema.Channel(schema), log);

        var q = PostgreSqlSchema.Quote(schema);
        var nextSeq = $"nextval('{q}.job_seq')";
        // Enqueues are written in groups (see GroupedCommits): the rows of concurrent calls in one statement and one flushed
        // commit, in the order they were handed over (seq from the sequence row by row). A duplicate id stores nothing and is
        // told apart by its missing row in RETURNING, so it fails its own call only.
        _enqueueSql = $"""
            INSERT INTO {q}.jobs (id, seq, ready_seq, kind, owner, payload, status, max_attempts, created_at, result_ttl_us, trace_parent)
            SELECT n.id, n.seq, n.seq, n.kind, n.owner, n.payload, 0, n.max_attempts, n.now, n.ttl, n.trace_parent
            FROM (SELECT u.*, {nextSeq} AS seq
                  FROM unnest(@ids::text[], @kinds::text[], @owners::text[], @payloads::bytea[], @max_attempts::integer[], @nows::timestamptz[], @ttls::bigint[], @trace_parents::text[])
                       WITH ORDINALITY AS u(id, kind, owner, payload, max_attempts, now, ttl, trace_parent, ord)
                  ORDER BY u.ord) n
            ORDER BY n.ord
            ON CONFLICT (id) DO NOTHING
            RETURNING {Columns}
            """;
        _getSql = $"SELECT {Columns} FROM {q}.jobs WHERE id = @id AND {NotExpired}";
        // Claims commit without waiting for the WAL flush (for their own transaction only). The commit of a transaction
        // releases its locks only after its WAL is flushed, so a flushed claim would hold the owner's advisory lock (below)
        // for a disk flush, and one owner's claims would run one per flush. Losing a claim in a crash of the database server
        // costs a run again (at least once, as a lease taken over), never a result: the completion is flushed, and with it
        // every earlier WAL record, the claim's included; the fence's worker check keeps the lost claim's worker from
        // writing if the job is claimed again under the same version.
        const string NoFlushClaim = "set_config('synchronous_commit', 'off', true)";
        _claimSql = $"""
            WITH c AS (SELECT {NoFlushClaim})
            UPDATE {q}.jobs
            SET status = 1, version = version + 1, lease_owner = @worker, lease_expires_at = @lease_expires,
                started_at = COALESCE(started_at, @now), not_before = NULL
            FROM c
            WHERE id = (
                SELECT id FROM {q}.jobs
                WHERE status IN (0, 1)
                  AND ((status = 0 AND (not_before IS NULL OR not_before <= @now)) OR (status = 1 AND lease_expires_at <= @now))
                ORDER BY ready_seq
                FOR UPDATE SKIP LOCKED
                LIMIT 1)
            RETURNING {Columns}
            """;
        // A fair claim is one round trip: two statements sent as one batch, which PostgreSQL runs as one implicit transaction.
        // (1) Pick the oldest claimable job of the owner with the fewest running jobs among those under the cap, locking that
        // row (SKIP LOCKED: claimers never wait for each other's rows), note its id in a transaction-local setting, and take a
        // transaction-scoped advisory lock on the owner, so claims for one owner queue here (and only here) until the previous
        // one committed; (2) claim the noted row only if the owner is still under the cap, counted by a statement that starts
        // after the lock was granted and so sees every claim committed before. Two instances on one database serialize per
        // owner alike; the lock is held for the server's work only (no client round trip happens while it is held).
        // The pick never sorts the queue: it walks the owners that have unfinished jobs (a recursive skip scan of
        // jobs_owner_ready, one probe per owner), drops those at the cap, takes the head of each other owner's queue from the
        // same index (locking it; the heads not chosen are let go at the commit), and orders those few heads.
        const string Claimable = "((j.status = 0 AND (j.not_before IS NULL OR j.not_before <= @now)) OR (j.status = 1 AND j.lease_expires_at <= @now))";
        _pickSql = $"""
            WITH RECURSIVE owners AS (
                (SELECT owner FROM {q}.jobs WHERE status IN (0, 1) ORDER BY owner LIMIT 1)
                UNION ALL
                SELECT (SELECT o2.owner FROM {q}.jobs o2 WHERE o2.status IN (0, 1) AND o2.owner > o.owner ORDER BY o2.owner LIMIT 1)
                FROM owners o WHERE o.owner IS NOT NULL),
            running AS (SELECT owner, count(*) AS n FROM {q}.jobs WHERE status = 1 AND lease_expires_at > @now GROUP BY owner)
            , picked AS (
            SELECT h.id, o.owner FROM owners o
            LEFT JOIN running r ON r.owner = o.owner
            CROSS JOIN LATERAL (
                SELECT j.id, j.ready_seq FROM {q}.jobs j
                WHERE j.owner = o.owner AND j.status IN (0, 1) AND {Claimable}
                ORDER BY j.ready_seq
                LIMIT 1
                FOR UPDATE SKIP LOCKED) h
            WHERE o.owner IS NOT NULL AND COALESCE(r.n, 0) < @cap
            ORDER BY COALESCE(r.n, 0), h.ready_seq
            LIMIT 1)
            SELECT set_config('bifrost.claim', p.id, true), {NoFlushClaim}, pg_advisory_xact_lock(hashtextextended(@lock_prefix || p.owner, 0)) FROM picked p
            """;
        _fairClaimSql = $"""
            UPDATE {q}.jobs j
            SET status = 1, version = version + 1, lease_owner = @worker, lease_expires_at = @lease_expires,
                started_at = COALESCE(started_at, @now), not_before = NULL
            WHERE j.id = NULLIF(current_setting('bifrost.claim', true), '') AND {Claimable}
              AND (SELECT count(*) FROM {q}.jobs r WHERE r.owner = j.owner AND r.status = 1 AND r.lease_expires_at > @now) < @cap
            RETURNING {Columns}
            """;
        _usageSql = $"""
            SELECT (SELECT count(*) FROM {q}.jobs WHERE owner = @owner AND status IN (0, 1)),
                   (SELECT count(*) FROM {q}.jobs WHERE owner = @owner AND status = 1 AND lease_expires_at > @now),
                   (SELECT COALESCE(sum(octet_length(payload)::bigint + COALESCE(octet_length(result), 0)), 0)::bigint FROM {q}.jobs
                    WHERE owner = @owner AND {NotExpired})
            """;

        // Renewals and progress are committed without waiting for the WAL flush (for their own transaction only): losing
        // the last one in a crash of the database server costs an earlier takeover or an older progress document, never a
        // wrong result, since the versions that fence the writes come from the flushed claims.
        const string NoFlush = "WITH c AS (SELECT set_config('synchronous_commit', 'off', true))";
        _renewSql = $"{NoFlush} UPDATE {q}.jobs SET lease_expires_at = @lease_expires FROM c WHERE {Fence}";
        _progressSql = $"{NoFlush} UPDATE {q}.jobs SET progress = @progress FROM c WHERE {Fence}";
        // Completions, failures and cancellations are written in groups (see GroupedCommits): one statement and one flushed
        // commit for the calls handed over together, each row under its own fence; RETURNING tells which fences held.
        _finishSql = $"""
            UPDATE {q}.jobs j
            SET status = CASE WHEN j.cancellation_requested AND u.status IN (2, 3) THEN 4 ELSE u.status END, status_code = u.status_code,
                result = u.result, completed_at = u.now, expires_at = u.now + j.result_ttl_us * interval '1 microsecond',
                lease_owner = NULL, lease_expires_at = NULL
            FROM unnest(@ids::text[], @versions::bigint[], @workers::text[], @statuses::integer[], @status_codes::integer[], @results::bytea[], @nows::timestamptz[])
                 WITH ORDINALITY AS u(id, version, worker, status, status_code, result, now, ord)
            WHERE j.id = u.id AND j.version = u.version AND j.status = 1 AND j.lease_owner = u.worker AND j.lease_expires_at > u.now
            RETURNING u.ord
            """;
        _releaseSql = $"""
            UPDATE {q}.jobs
            SET status = 0, lease_owner = NULL, lease_expires_at = NULL, not_before = @not_before,
                attempts = attempts + @attempt, ready_seq = {nextSeq}
            WHERE {Fence}
            """;
        // A pending job that never ran is cancelled at once; a running one, or a pending one that saved progress (it ran
        // before and waits to resume), is flagged so its handler finishes the cancellation.
        _cancelSql = $"""
            UPDATE {q}.jobs
            SET status = CASE WHEN status = 0 AND progress IS NULL THEN 4 ELSE status END,
                completed_at = CASE WHEN status = 0 AND progress IS NULL THEN @now ELSE completed_at END,
                expires_at = CASE WHEN status = 0 AND progress IS NULL THEN @now + result_ttl_us * interval '1 microsecond' ELSE expires_at END,
                status_code = CASE WHEN status = 0 AND progress IS NULL THEN 499 ELSE status_code END,
                cancellation_requested = cancellation_requested OR status = 1 OR (status = 0 AND progress IS NOT NULL)
            WHERE id = @id AND {NotExpired}
            RETURNING {Columns}
            """;
        _listSql = $"""
            SELECT {Columns} FROM {q}.jobs
            WHERE owner = @owner AND (@kind IS NULL OR kind = @kind) AND {NotExpired}
              AND seq < COALESCE((SELECT seq FROM {q}.jobs WHERE id = @after), 9223372036854775807)
            ORDER BY seq DESC
            LIMIT @limit
            """;
        // Every owner's jobs (the dashboard): an index scan of jobs_seq newest first, filters on the way, stops at the page.
        // Bodies over IJobStore.ListAllBodyLimit left out (octet_length reads a TOASTed value's size, not its content).
        var listColumns = Columns
            .Replace("payload,", "CASE WHEN octet_length(payload) <= 65536 THEN payload ELSE ''::bytea END AS payload,", StringComparison.Ordinal)
            .Replace("progress,", "CASE WHEN octet_length(progress) <= 65536 THEN progress END AS progress,", StringComparison.Ordinal)
            .Replace("result,", "CASE WHEN octet_length(result) <= 65536 THEN result END AS result,", StringComparison.Ordinal);
        _listEveryOwnerSql = $"""
            SELECT {listColumns} FROM {q}.jobs
            WHERE (@kind IS NULL OR kind = @kind) AND (@except IS NULL OR kind <> @except)
              AND (@unfinished IS NULL OR (@unfinished AND status < 2) OR (NOT @unfinished AND status >= 2))
              AND {NotExpired}
              AND seq < COALESCE((SELECT seq FROM {q}.jobs WHERE id = @after), 9223372036854775807)
            ORDER BY seq DESC
            LIMIT @limit
            """;
        _expireSql = $"DELETE FROM {q}.jobs WHERE status >= 2 AND expires_at <= @now";
        _countSql = $"SELECT count(*) FROM {q}.jobs WHERE status IN (0, 1)";
        _enqueues = new(WriteEnqueuesAsync, static e => e.Job.Id, static e => e.Job.Payload.Length, MaxGroup, MaxGroupBytes, MaxGroupsInFlight);
        _finishes = new(WriteFinishesAsync, static f => f.Lease.JobId, static f => f.Outcome.Body.Length, MaxGroup, MaxGroupBytes, MaxGroupsInFlight);
    }

    /// <summary>The schema holding the tables.</summary>
    public string Schema { get; }

    /// <summary>Creates or migrates the schema now (otherwise done on first use). Safe to call from several instances at once.</summary>
    /// <param name="cancellationToken">Cancels the wait (a migration already started still completes or rolls back).</param>
    public Task InitializeAsync(CancellationToken cancellationToken) => _initializer.EnsureAsync(cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// Concurrent calls are written together (one multi-row <c>INSERT</c>, one flushed commit, one <c>NOTIFY</c>); each call
    /// returns once its own row is committed. A duplicate id fails its own call only.
    /// </remarks>
    public async ValueTask<JobRecord> EnqueueAsync(NewJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        return await _enqueues.WriteAsync(new Enqueue(job, Now()), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Enqueues written so far as groups (tests).</summary>
    internal int EnqueueGroups => _enqueues.Groups;

    /// <summary>Completions, failures and cancellations written so far as groups (tests).</summary>
    internal int FinishGroups => _finishes.Groups;

    private async Task WriteEnqueuesAsync(IReadOnlyList<GroupedCommits<Enqueue, JobRecord>.Entry> group)
    {
        var count = group.Count;
        var ids = new string[count];
        var kinds = new string[count];
        var owners = new string[count];
        var payloads = new byte[count][];
        var maxAttempts = new int[count];
        var nows = new DateTimeOffset[count];
        var ttls = new long[count];
        var traceParents = new string?[count];
        for (var i = 0; i < count; i++)
        {
            var (job, now) = group[i].Item;
            ids[i] = job.Id;
            kinds[i] = job.Kind;
            owners[i] = job.Owner;
            payloads[i] = job.Payload.ToArray();
            maxAttempts[i] = Math.Max(1, job.MaxAttempts);
            nows[i] = now;
            ttls[i] = Microseconds(job.ResultTtl);
            traceParents[i] = job.TraceParent;
        }

        await using var command = _dataSource.CreateCommand(_enqueueSql);
        command.Parameters.Add(new NpgsqlParameter<string[]>("ids", ids));
        command.Parameters.Add(new NpgsqlParameter<string[]>("kinds", kinds));
        command.Parameters.Add(new NpgsqlParameter<string[]>("owners", owners));
        command.Parameters.Add(new NpgsqlParameter<byte[][]>("payloads", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { TypedValue = payloads });
        command.Parameters.Add(new NpgsqlParameter<int[]>("max_attempts", maxAttempts));
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset[]>("nows", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { TypedValue = nows });
        command.Parameters.Add(new NpgsqlParameter<long[]>("ttls", ttls));
        command.Parameters.Add(new NpgsqlParameter<string?[]>("trace_parents", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = traceParents });
        var stored = new Dictionary<string, JobRecord>(count, StringComparer.Ordinal);
        await using (var reader = await command.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                var record = Read(reader);
                stored[record.Id] = record;
            }
        }

        if (stored.Count > 0)
        {
            _notifier.Request(); // once per group, after its commit
        }

        foreach (var entry in group)
        {
            if (stored.TryGetValue(entry.Item.Job.Id, out var record))
            {
                entry.Done.TrySetResult(record);
            }
            else
            {
                entry.Fail(new InvalidOperationException($"A job with id '{entry.Item.Job.Id}' already exists."));
            }
        }
    }

    private async Task WriteFinishesAsync(IReadOnlyList<GroupedCommits<Finish, bool>.Entry> group)
    {
        var count = group.Count;
        var ids = new string[count];
        var versions = new long[count];
        var workers = new string[count];
        var statuses = new int[count];
        var codes = new int[count];
        var results = new byte[count][];
        var nows = new DateTimeOffset[count];
        for (var i = 0; i < count; i++)
        {
            var (lease, status, outcome, now) = group[i].Item;
            ids[i] = lease.JobId;
            versions[i] = lease.Version;
            workers[i] = lease.WorkerId;
            statuses[i] = (int)status;
            codes[i] = outcome.StatusCode;
            results[i] = outcome.Body.ToArray();
            nows[i] = now;
        }

        await using var command = _dataSource.CreateCommand(_finishSql);
        command.Parameters.Add(new NpgsqlParameter<string[]>("ids", ids));
        command.Parameters.Add(new NpgsqlParameter<long[]>("versions", versions));
        command.Parameters.Add(new NpgsqlParameter<string[]>("workers", workers));
        command.Parameters.Add(new NpgsqlParameter<int[]>("statuses", statuses));
        command.Parameters.Add(new NpgsqlParameter<int[]>("status_codes", codes));
        command.Parameters.Add(new NpgsqlParameter<byte[][]>("results", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { TypedValue = results });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset[]>("nows", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { TypedValue = nows });
        var held = new bool[count];
        await using (var reader = await command.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                held[reader.GetInt64(0) - 1] = true;
            }
        }

        for (var i = 0; i < count; i++)
        {
            group[i].Done.TrySetResult(held[i]);
        }
    }

    private readonly record struct Enqueue(NewJob Job, DateTimeOffset Now);

    private readonly record struct Finish(JobLease Lease, JobStatus Status, JobOutcome Outcome, DateTimeOffset Now);

    /// <inheritdoc />
    public async ValueTask<JobRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_getSql);
        Add(command, "id", id);
        Add(command, "now", Now());
        return await ReadOneAsync(command, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workerId);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var now = Now();
        await using var command = _dataSource.CreateCommand(_claimSql);
        Add(command, "worker", workerId);
        Add(command, "now", now);
        Add(command, "lease_expires", Truncate(now + leaseDuration));
        var job = await ReadOneAsync(command, cancellationToken).ConfigureAwait(false);
        return job is null ? null : new JobLease(job, workerId);
    }

    /// <inheritdoc />
    public async ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, int maxRunningPerOwner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workerId);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRunningPerOwner, 1);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        // A claim that lost the race for an owner's last slot tries again: the next pick sees that claim and passes the owner by.
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var now = Now();
            await using var batch = _dataSource.CreateBatch(); // no explicit transaction: the batch is one implicit transaction
            var pick = new NpgsqlBatchCommand(_pickSql);
            pick.Parameters.Add(new NpgsqlParameter("now", NpgsqlDbType.TimestampTz) { Value = now });
            pick.Parameters.Add(new NpgsqlParameter<long>("cap", maxRunningPerOwner));
            pick.Parameters.Add(new NpgsqlParameter<string>("lock_prefix", "bifrost.owner:" + Schema + ":"));
            batch.BatchCommands.Add(pick);
            var claim = new NpgsqlBatchCommand(_fairClaimSql);
            claim.Parameters.Add(new NpgsqlParameter<string>("worker", workerId));
            claim.Parameters.Add(new NpgsqlParameter("now", NpgsqlDbType.TimestampTz) { Value = now });
            claim.Parameters.Add(new NpgsqlParameter("lease_expires", NpgsqlDbType.TimestampTz) { Value = Truncate(now + leaseDuration) });
            claim.Parameters.Add(new NpgsqlParameter<long>("cap", maxRunningPerOwner));
            batch.BatchCommands.Add(claim);

            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null; // nothing claimable (the claim statement found no noted row and changed nothing)
            }

            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return new JobLease(Read(reader), workerId);
            }
        }

        return null;
    }

    /// <inheritdoc />
    public async ValueTask<JobOwnerUsage> GetOwnerUsageAsync(string owner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(owner);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_usageSql);
        Add(command, "owner", owner);
        Add(command, "now", Now());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return new JobOwnerUsage(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    /// <inheritdoc />
    public async ValueTask<bool> RenewLeaseAsync(JobLease lease, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var now = Now();
        await using var command = FencedCommand(_renewSql, lease, now);
        Add(command, "lease_expires", Truncate(now + leaseDuration));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async ValueTask<bool> SaveProgressAsync(JobLease lease, ReadOnlyMemory<byte> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = FencedCommand(_progressSql, lease, Now());
        command.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>("progress", NpgsqlDbType.Bytea) { TypedValue = progress });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
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
    public async ValueTask<bool> ReleaseAsync(JobLease lease, DateTimeOffset? notBefore, bool countAttempt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var now = Now();
        DateTimeOffset? due = notBefore is { } nb ? Truncate(nb.ToUniversalTime()) : null;
        await using var command = FencedCommand(_releaseSql, lease, now);
        Add(command, "not_before", due);
        Add(command, "attempt", countAttempt ? 1 : 0);
        if (await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
        {
            return false;
        }

        if (due is null || due <= now)
        {
            _notifier.Request(); // a job due later is found by polling when due
        }

        return true;
    }

    /// <inheritdoc />
    public async ValueTask<JobRecord?> RequestCancellationAsync(string id, CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        JobRecord? job;
        await using (var command = _dataSource.CreateCommand(_cancelSql))
        {
            Add(command, "id", id);
            Add(command, "now", Now());
            job = await ReadOneAsync(command, cancellationToken).ConfigureAwait(false);
        }

        if (job is { IsFinished: false, CancellationRequested: true })
        {
            // Tell the instance running it (after the commit above), so it stops starting new work at once.
            await _notifier.SendAsync(PostgreSqlSchema.CancelPrefix + id).ConfigureAwait(false);
        }

        return job;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<JobRecord>> ListAsync(string owner, string? kind, int limit, string? after, CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_listSql);
        Add(command, "owner", owner);
        command.Parameters.Add(new NpgsqlParameter("kind", NpgsqlDbType.Text) { Value = (object?)kind ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("after", NpgsqlDbType.Text) { Value = (object?)after ?? DBNull.Value });
        Add(command, "now", Now());
        Add(command, "limit", Math.Max(0, limit));
        var jobs = new List<JobRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            jobs.Add(Read(reader));
        }

        return jobs;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<JobRecord>> ListAllAsync(string? kind, string? exceptKind, bool? unfinished, int limit, string? after, CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_listEveryOwnerSql);
        command.Parameters.Add(new NpgsqlParameter("kind", NpgsqlDbType.Text) { Value = (object?)kind ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("except", NpgsqlDbType.Text) { Value = (object?)exceptKind ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("unfinished", NpgsqlDbType.Boolean) { Value = unfinished is { } u ? u : DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("after", NpgsqlDbType.Text) { Value = (object?)after ?? DBNull.Value });
        Add(command, "now", Now());
        Add(command, "limit", Math.Max(0, limit));
        var jobs = new List<JobRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            jobs.Add(Read(reader));
        }

        return jobs;
    }

    /// <inheritdoc />
    public async ValueTask<int> ExpireAsync(CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_expireSql);
        Add(command, "now", Now());
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<long> CountUnfinishedAsync(CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_countSql);
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private async ValueTask<bool> FinishAsync(JobLease lease, JobStatus status, JobOutcome outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        return await _finishes.WriteAsync(new Finish(lease, status, outcome, Now()), cancellationToken).ConfigureAwait(false);
    }

    private NpgsqlCommand FencedCommand(string sql, JobLease lease, DateTimeOffset now)
    {
        var command = _dataSource.CreateCommand(sql);
        Add(command, "id", lease.JobId);
        Add(command, "version", lease.Version);
        Add(command, "worker", lease.WorkerId);
        Add(command, "now", now);
        return command;
    }

    private static async Task<JobRecord?> ReadOneAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(reader) : null;
    }

    private static JobRecord Read(NpgsqlDataReader reader) => new()
    {
        Id = reader.GetString(0),
        Kind = reader.GetString(1),
        Owner = reader.GetString(2),
        Payload = reader.GetFieldValue<byte[]>(3),
        Status = (JobStatus)reader.GetInt32(4),
        Version = reader.GetInt64(5),
        Attempts = reader.GetInt32(6),
        MaxAttempts = reader.GetInt32(7),
        CreatedAt = reader.GetFieldValue<DateTimeOffset>(8),
        StartedAt = NullableTime(reader, 9),
        CompletedAt = NullableTime(reader, 10),
        ExpiresAt = NullableTime(reader, 11),
        ResultTtl = TimeSpan.FromMicroseconds(reader.GetInt64(12)),
        NotBefore = NullableTime(reader, 13),
        LeaseOwner = reader.IsDBNull(14) ? null : reader.GetString(14),
        LeaseExpiresAt = NullableTime(reader, 15),
        CancellationRequested = reader.GetBoolean(16),
        Progress = reader.IsDBNull(17) ? (ReadOnlyMemory<byte>?)null : new ReadOnlyMemory<byte>(reader.GetFieldValue<byte[]>(17)),
        StatusCode = reader.IsDBNull(18) ? null : reader.GetInt32(18),
        Result = reader.IsDBNull(19) ? (ReadOnlyMemory<byte>?)null : new ReadOnlyMemory<byte>(reader.GetFieldValue<byte[]>(19)),
        TraceParent = reader.IsDBNull(20) ? null : reader.GetString(20),
    };

    private static DateTimeOffset? NullableTime(NpgsqlDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : reader.GetFieldValue<DateTimeOffset>(ordinal);

    private static void Add<T>(NpgsqlCommand command, string name, T value) =>
        command.Parameters.Add(new NpgsqlParameter<T>(name, value));

    private static void Add(NpgsqlCommand command, string name, DateTimeOffset? value) =>
        command.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.TimestampTz) { Value = value is { } v ? v : DBNull.Value });

    private DateTimeOffset Now() => Truncate(_time.GetUtcNow());

    /// <summary>PostgreSQL keeps microseconds: every time the store hands out is cut to them, so it reads back equal.</summary>
    private static DateTimeOffset Truncate(DateTimeOffset time) => new(time.UtcTicks - (time.UtcTicks % 10), TimeSpan.Zero);

    private static long Microseconds(TimeSpan span) => span.Ticks / 10;
}
