using Microsoft.Extensions.Logging;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// Creates and migrates the stores' tables. Migrations are numbered and recorded in <c>bifrost_migrations</c>; each runs
/// once, in one transaction, under a transaction-scoped advisory lock on the schema, so instances starting together
/// wait for each other instead of racing (the first applies the migrations, the next ones find them applied).
/// </summary>
internal static class PostgreSqlSchema
{
    /// <summary>The migrations, in order; version = index + 1. Never edit a released one: append a new one.</summary>
    private static readonly (string Description, string Sql)[] Migrations =
    [
        ("jobs and files", """
            CREATE SEQUENCE {s}.job_seq;

            CREATE TABLE {s}.jobs (
                id text PRIMARY KEY,
                seq bigint NOT NULL,
                ready_seq bigint NOT NULL,
                kind text NOT NULL,
                owner text NOT NULL,
                payload bytea NOT NULL,
                status integer NOT NULL,
                version bigint NOT NULL DEFAULT 0,
                attempts integer NOT NULL DEFAULT 0,
                max_attempts integer NOT NULL,
                created_at timestamptz NOT NULL,
                started_at timestamptz,
                completed_at timestamptz,
                expires_at timestamptz,
                result_ttl_us bigint NOT NULL,
                not_before timestamptz,
                lease_owner text,
                lease_expires_at timestamptz,
                cancellation_requested boolean NOT NULL DEFAULT false,
                progress bytea,
                status_code integer,
                result bytea
            );
            -- claims scan unfinished jobs in queue order; the predicate is repeated verbatim in the claim query
            CREATE INDEX jobs_claimable ON {s}.jobs (ready_seq) WHERE status IN (0, 1);
            CREATE INDEX jobs_owner ON {s}.jobs (owner, seq DESC);
            CREATE INDEX jobs_expiry ON {s}.jobs (expires_at) WHERE status >= 2;

            CREATE TABLE {s}.files (
                id text PRIMARY KEY,
                filename text NOT NULL,
                purpose text NOT NULL,
                owner text NOT NULL,
                bytes bigint NOT NULL DEFAULT 0,
                created_at bigint NOT NULL,
                visible boolean NOT NULL
            );
            CREATE INDEX files_owner ON {s}.files (owner, created_at, id) WHERE visible;

            -- a file's content: rows in byte order; "start" is the row's offset in the file
            CREATE TABLE {s}.file_chunks (
                file_id text NOT NULL REFERENCES {s}.files (id) ON DELETE CASCADE,
                start bigint NOT NULL,
                length integer NOT NULL,
                data bytea NOT NULL,
                PRIMARY KEY (file_id, start)
            );
            """),
        ("running jobs per owner (fair claims, per-owner quotas)", """
            CREATE INDEX jobs_owner_running ON {s}.jobs (owner) WHERE status = 1;
            """),
        ("governance: entities, revision, usage ledger, shared counters", """
            -- virtual keys, teams and customers created through the admin API: opaque documents with a version (compare-and-set)
            CREATE TABLE {s}.gov_entities (
                kind smallint NOT NULL,
                id text NOT NULL,
                definition bytea NOT NULL,
                version bigint NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (kind, id)
            );

            -- one row: bumped in the statement that changes an entity, so a reader never sees the new revision without the change
            CREATE TABLE {s}.gov_revision (
                one boolean PRIMARY KEY DEFAULT true CHECK (one),
                revision bigint NOT NULL
            );
            INSERT INTO {s}.gov_revision (one, revision) VALUES (true, 0);

            CREATE TABLE {s}.gov_usage (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                time timestamptz NOT NULL,
                request_id text,
                virtual_key_id text,
                team text,
                customer text,
                provider text NOT NULL,
                model text NOT NULL,
                operation text NOT NULL,
                source text NOT NULL,
                input_tokens bigint NOT NULL,
                output_tokens bigint NOT NULL,
                cached_input_tokens bigint NOT NULL,
                reasoning_tokens bigint NOT NULL,
                cost_usd numeric,
                status integer NOT NULL,
                duration interval NOT NULL
            );
            CREATE INDEX gov_usage_time ON {s}.gov_usage (time DESC, seq DESC);
            CREATE INDEX gov_usage_key ON {s}.gov_usage (virtual_key_id, time DESC, seq DESC) WHERE virtual_key_id IS NOT NULL;
            CREATE INDEX gov_usage_team ON {s}.gov_usage (team, time DESC, seq DESC) WHERE team IS NOT NULL;
            CREATE INDEX gov_usage_customer ON {s}.gov_usage (customer, time DESC, seq DESC) WHERE customer IS NOT NULL;

            -- budget and rate-limit windows shared by every instance; rows are always locked in key order (scope in "C" order)
            CREATE TABLE {s}.gov_counters (
                scope text COLLATE "C" NOT NULL,
                window_start timestamptz NOT NULL,
                window_end timestamptz NOT NULL,
                requests bigint NOT NULL DEFAULT 0,
                tokens bigint NOT NULL DEFAULT 0,
                cost_usd numeric NOT NULL DEFAULT 0,
                PRIMARY KEY (scope, window_start, window_end)
            );
            CREATE INDEX gov_counters_end ON {s}.gov_counters (window_end);

            -- One admission in one call (one round trip, one transaction): create the missing windows, lock every window in
            -- key order (concurrent admissions and settlements over overlapping windows queue instead of deadlocking), find
            -- the first check that refuses (its 0-based index and counts), else add the request and its reservations.
            -- The commit does not wait for the WAL flush (this transaction only): the windows' row locks are released at
            -- once, so a hot key admits at the speed of the server, not of its disk; a crash of the database server may lose
            -- the last fraction of a second of counts (at most 3 x wal_writer_delay), never a committed entity or ledger row.
            CREATE FUNCTION {s}.gov_admit(p_scope text[], p_start timestamptz[], p_end timestamptz[], p_max_requests bigint[],
                p_max_tokens bigint[], p_max_cost numeric[], p_tokens bigint[], p_cost numeric[])
            RETURNS TABLE (r_index integer, r_requests bigint, r_tokens bigint, r_cost numeric)
            LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM set_config('synchronous_commit', 'off', true);

                INSERT INTO {s}.gov_counters (scope, window_start, window_end)
                SELECT DISTINCT u.s COLLATE "C", u.ws, u.we FROM unnest(p_scope, p_start, p_end) AS u(s, ws, we)
                ORDER BY 1, 2, 3
                ON CONFLICT DO NOTHING;

                PERFORM 1 FROM {s}.gov_counters g
                WHERE (g.scope, g.window_start, g.window_end) IN (SELECT u.s, u.ws, u.we FROM unnest(p_scope, p_start, p_end) AS u(s, ws, we))
                ORDER BY g.scope, g.window_start, g.window_end
                FOR UPDATE;

                RETURN QUERY
                SELECT (u.i - 1)::integer, g.requests, g.tokens, g.cost_usd
                FROM unnest(p_scope, p_start, p_end, p_max_requests, p_max_tokens, p_max_cost) WITH ORDINALITY AS u(s, ws, we, mr, mt, mc, i)
                JOIN {s}.gov_counters g ON g.scope = u.s AND g.window_start = u.ws AND g.window_end = u.we
                WHERE g.requests >= u.mr OR g.tokens >= u.mt OR g.cost_usd >= u.mc
                ORDER BY u.i
                LIMIT 1;
                IF FOUND THEN
                    RETURN;
                END IF;

                UPDATE {s}.gov_counters g
                SET requests = g.requests + a.n, tokens = g.tokens + a.t, cost_usd = g.cost_usd + a.c
                FROM (SELECT u.s, u.ws, u.we, count(*) AS n, sum(u.t)::bigint AS t, sum(u.c) AS c
                      FROM unnest(p_scope, p_start, p_end, p_tokens, p_cost) AS u(s, ws, we, t, c)
                      GROUP BY u.s, u.ws, u.we) a
                WHERE g.scope = a.s AND g.window_start = a.ws AND g.window_end = a.we;
                RETURN QUERY SELECT -1, 0::bigint, 0::bigint, 0::numeric;
            END
            $$;
            """),
        ("jobs: the W3C traceparent of the span that submitted the job", """
            ALTER TABLE {s}.jobs ADD COLUMN trace_parent text;
            """),
        ("request log", """
            -- one row per gateway call (PostgreSqlRequestLogStore); time in .NET UTC ticks (100 ns, exact round trip, and
            -- the admin API's cursor), cost as numeric; ids in "C" order (the listing's tie-break is ordinal)
            CREATE TABLE {s}.request_log (
                id text COLLATE "C" PRIMARY KEY,
                time bigint NOT NULL,
                owner text,
                virtual_key_id text,
                operation text NOT NULL,
                source text NOT NULL,
                provider text,
                model text,
                status integer NOT NULL,
                error_code text,
                latency_ms bigint NOT NULL,
                ttfc_ms bigint,
                input_tokens bigint,
                output_tokens bigint,
                cost_usd numeric,
                job_id text,
                batch_id text,
                custom_id text,
                request_id text,
                response_id text,
                request_content text,
                response_content text
            );
            -- listing order (newest first, then id), the cursor, the time range and both retention bounds
            CREATE INDEX request_log_time ON {s}.request_log (time DESC, id DESC);
            -- the common filters over time (the provider ignoring case, as the query compares it)
            CREATE INDEX request_log_provider ON {s}.request_log (lower(provider), time DESC);
            CREATE INDEX request_log_model ON {s}.request_log (model, time DESC);
            CREATE INDEX request_log_status ON {s}.request_log (status, time DESC);
            CREATE INDEX request_log_owner ON {s}.request_log (owner, time DESC) WHERE owner IS NOT NULL;
            CREATE INDEX request_log_key ON {s}.request_log (virtual_key_id, time DESC) WHERE virtual_key_id IS NOT NULL;
            CREATE INDEX request_log_batch ON {s}.request_log (batch_id, time DESC) WHERE batch_id IS NOT NULL;
            """),
        // Version 6.
        // Without it the cross-owner listing (IJobStore.ListAllAsync) sorts the whole table on every dashboard poll
        // (200,000 jobs: 38 ms, parallel seq scan + top-N sort); with it an index scan stops at the page (0.2 ms).
        ("jobs: every owner's jobs newest first (the dashboard's Jobs page)", """
            CREATE INDEX jobs_seq ON {s}.jobs (seq DESC);
            """),
        // Version 7.
        // The fair claim walks the owners that have unfinished jobs (a skip scan: one index probe per owner) and takes each
        // one's oldest claimable job from here, instead of sorting every unfinished job on every claim (5,000 queued:
        // 300 ms → 0.5 ms per claim on the CI machine under load).
        ("jobs: unfinished jobs per owner in queue order (fair claims)", """
            CREATE INDEX jobs_owner_ready ON {s}.jobs (owner, ready_seq) WHERE status IN (0, 1);
            """),
    ];

    /// <summary>The newest schema version this code knows.</summary>
    public static int LatestVersion => Migrations.Length;

    /// <summary>The schema name, quoted for SQL.</summary>
    public static string Quote(string schema) => "\"" + schema + "\"";

    /// <summary>The NOTIFY channel of a schema's job queue.</summary>
    public static string Channel(string schema) => "bifrost_jobs_" + schema;

    /// <summary>The payload prefix of a notification that announces a cancel request (followed by the job id); other payloads ring the doorbell.</summary>
    public const string CancelPrefix = "cancel:";

    /// <summary>Creates the schema and applies the migrations it lacks; returns the version now in place.</summary>
    public static async Task<int> MigrateAsync(NpgsqlDataSource dataSource, string schema, ILogger logger, CancellationToken cancellationToken)
    {
        PostgreSqlStoreOptions.ValidateSchema(schema);
        var q = Quote(schema);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended(@key, 0))", connection, transaction))
        {
            lockCommand.Parameters.AddWithValue("key", "bifrost.migrations:" + schema);
            await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await ExecuteAsync(connection, transaction, $"""
            CREATE SCHEMA IF NOT EXISTS {q};
            CREATE TABLE IF NOT EXISTS {q}.bifrost_migrations (
                version integer PRIMARY KEY,
                description text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """, cancellationToken).ConfigureAwait(false);

        int current;
        await using (var versionCommand = new NpgsqlCommand($"SELECT COALESCE(max(version), 0) FROM {q}.bifrost_migrations", connection, transaction))
        {
            current = Convert.ToInt32(await versionCommand.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }

        if (current > LatestVersion)
        {
            PostgreSqlLog.SchemaNewer(logger, schema, current, LatestVersion);
        }

        for (var version = current + 1; version <= LatestVersion; version++)
        {
            var (description, sql) = Migrations[version - 1];
            await ExecuteAsync(connection, transaction, sql.Replace("{s}", q, StringComparison.Ordinal), cancellationToken).ConfigureAwait(false);
            await using var record = new NpgsqlCommand($"INSERT INTO {q}.bifrost_migrations (version, description) VALUES (@version, @description)", connection, transaction);
            record.Parameters.AddWithValue("version", version);
            record.Parameters.AddWithValue("description", description);
            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            PostgreSqlLog.Migrated(logger, schema, version, description);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return Math.Max(current, LatestVersion);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
#pragma warning disable CA2100 // the SQL is ours; the only interpolated part is the validated, quoted schema name
        await using var command = new NpgsqlCommand(sql, connection, transaction);
#pragma warning restore CA2100
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
