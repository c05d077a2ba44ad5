using Microsoft.Data.Sqlite;

namespace Bifrost.Middleware.Sqlite;

/// <summary>
/// The store's tables, created and migrated on start. <c>bifrost_schema_version</c> records every migration applied;
/// a database written by a newer version of the library (a higher version than <see cref="Latest"/>) is refused rather
/// than misread.
/// </summary>
internal static class SqliteSchema
{
    /// <summary>The schema version this code reads and writes.</summary>
    public static int Latest => Migrations[^1].Version;

    /// <summary>Ordered migrations; never edit one that shipped, add the next.</summary>
    private static readonly (int Version, string Description, string Sql)[] Migrations =
    [
        (1, "jobs table with claim, lease, owner and expiry indexes", """
            CREATE TABLE bifrost_jobs (
                seq                    INTEGER PRIMARY KEY AUTOINCREMENT, -- insertion order: listing order and FIFO tie-break
                id                     TEXT    NOT NULL UNIQUE,
                kind                   TEXT    NOT NULL,
                owner                  TEXT    NOT NULL,
                payload                BLOB    NOT NULL,
                status                 INTEGER NOT NULL,                  -- JobStatus: 0 pending, 1 processing, 2 completed, 3 failed, 4 cancelled
                version                INTEGER NOT NULL DEFAULT 0,        -- fencing token, +1 per claim
                attempts               INTEGER NOT NULL DEFAULT 0,
                max_attempts           INTEGER NOT NULL,
                created_at             INTEGER NOT NULL,                  -- all times: unix milliseconds from the store's TimeProvider
                started_at             INTEGER,
                completed_at           INTEGER,
                expires_at             INTEGER,                           -- set when the job finishes
                result_ttl_ms          INTEGER NOT NULL,
                ready_at               INTEGER NOT NULL,                  -- queue position of a pending job: enqueue time, or the end of its backoff
                not_before             INTEGER,
                lease_owner            TEXT,
                lease_expires_at       INTEGER,
                cancellation_requested INTEGER NOT NULL DEFAULT 0,
                progress               BLOB,
                status_code            INTEGER,
                result                 BLOB
            );
            -- claim: the oldest due pending job, and the processing jobs whose lease ran out
            CREATE INDEX ix_bifrost_jobs_ready ON bifrost_jobs (ready_at, seq) WHERE status = 0;
            CREATE INDEX ix_bifrost_jobs_lease ON bifrost_jobs (lease_expires_at, seq) WHERE status = 1;
            -- listing an owner's jobs of a kind, newest first
            CREATE INDEX ix_bifrost_jobs_owner ON bifrost_jobs (owner, kind, seq);
            -- expiry of finished jobs
            CREATE INDEX ix_bifrost_jobs_expiry ON bifrost_jobs (expires_at) WHERE expires_at IS NOT NULL;
            """),
        (2, "owner indexes for fair claims and per-owner quotas", """
            -- fair claims: each owner's oldest pending job (and the distinct owners with pending work, by a loose index scan)
            CREATE INDEX ix_bifrost_jobs_owner_ready ON bifrost_jobs (owner, ready_at, seq) WHERE status = 0;
            -- running jobs per owner (the per-owner cap)
            CREATE INDEX ix_bifrost_jobs_owner_running ON bifrost_jobs (owner, lease_expires_at) WHERE status = 1;
            """),
        (3, "governance: entities (virtual keys, teams, customers) with a revision, and the usage ledger", """
            CREATE TABLE bifrost_governance_entities (
                kind       INTEGER NOT NULL,                          -- GovernanceEntityKind: 0 virtual key, 1 team, 2 customer
                id         TEXT    NOT NULL,                          -- compared ordinally (BINARY collation)
                definition BLOB    NOT NULL,                          -- the admin API's JSON, byte for byte
                version    INTEGER NOT NULL,                          -- 1 when created, + 1 per update (compare-and-set)
                created_at INTEGER NOT NULL,                          -- entity times: .NET UTC ticks from the store's TimeProvider
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (kind, id)
            ) WITHOUT ROWID;
            -- one row: grows with every change of the entities, in the changing statement's transaction (triggers)
            CREATE TABLE bifrost_governance_revision (
                id       INTEGER PRIMARY KEY CHECK (id = 1),
                revision INTEGER NOT NULL
            );
            INSERT INTO bifrost_governance_revision (id, revision) VALUES (1, 0);
            CREATE TRIGGER tr_bifrost_governance_insert AFTER INSERT ON bifrost_governance_entities
                BEGIN UPDATE bifrost_governance_revision SET revision = revision + 1 WHERE id = 1; END;
            CREATE TRIGGER tr_bifrost_governance_update AFTER UPDATE ON bifrost_governance_entities
                BEGIN UPDATE bifrost_governance_revision SET revision = revision + 1 WHERE id = 1; END;
            CREATE TRIGGER tr_bifrost_governance_delete AFTER DELETE ON bifrost_governance_entities
                BEGIN UPDATE bifrost_governance_revision SET revision = revision + 1 WHERE id = 1; END;
            CREATE TABLE bifrost_usage (
                seq                 INTEGER PRIMARY KEY,              -- append order: tie-break of equal times
                time                INTEGER NOT NULL,                 -- .NET UTC ticks
                request_id          TEXT,
                virtual_key_id      TEXT,
                team                TEXT,
                customer            TEXT,
                provider            TEXT    NOT NULL,
                model               TEXT    NOT NULL,
                operation           TEXT    NOT NULL,
                source              TEXT    NOT NULL,
                input_tokens        INTEGER NOT NULL,
                output_tokens       INTEGER NOT NULL,
                cached_input_tokens INTEGER NOT NULL,
                reasoning_tokens    INTEGER NOT NULL,
                cost_nano_usd       INTEGER,                          -- exact: USD x 10^9 (nano-USD), NULL when the price is unknown
                status              INTEGER NOT NULL,
                duration_ticks      INTEGER NOT NULL
            );
            -- the ledger read by time, and by key, team or customer over time (newest first, sums over a window)
            CREATE INDEX ix_bifrost_usage_time ON bifrost_usage (time);
            CREATE INDEX ix_bifrost_usage_key ON bifrost_usage (virtual_key_id, time) WHERE virtual_key_id IS NOT NULL;
            CREATE INDEX ix_bifrost_usage_team ON bifrost_usage (team, time) WHERE team IS NOT NULL;
            CREATE INDEX ix_bifrost_usage_customer ON bifrost_usage (customer, time) WHERE customer IS NOT NULL;
            """),
        (4, "request log: one row per gateway call, indexed by time, provider, model, status and owner", """
            CREATE TABLE bifrost_request_log (
                seq                   INTEGER PRIMARY KEY,            -- append order
                id                    TEXT    NOT NULL UNIQUE,
                time                  INTEGER NOT NULL,               -- .NET UTC ticks of the call's start
                owner                 TEXT,
                virtual_key_id        TEXT,
                operation             TEXT    NOT NULL,
                source                TEXT    NOT NULL,
                provider              TEXT,
                model                 TEXT,
                status                INTEGER NOT NULL,
                error_code            TEXT,
                latency_ms            INTEGER NOT NULL,
                ttfc_ms               INTEGER,
                input_tokens          INTEGER,
                output_tokens         INTEGER,
                cost_nano_usd         INTEGER,                        -- exact: USD x 10^9, NULL when unknown
                job_id                TEXT,
                batch_id              TEXT,
                custom_id             TEXT,
                request_id            TEXT,
                response_id           TEXT,
                request_content       TEXT,
                response_content      TEXT
            );
            -- listing order (newest first, ties by id) and retention by age; each filter over time
            CREATE INDEX ix_bifrost_request_log_time ON bifrost_request_log (time, id);
            CREATE INDEX ix_bifrost_request_log_provider ON bifrost_request_log (provider COLLATE NOCASE, time);
            CREATE INDEX ix_bifrost_request_log_model ON bifrost_request_log (model, time);
            CREATE INDEX ix_bifrost_request_log_status ON bifrost_request_log (status, time);
            CREATE INDEX ix_bifrost_request_log_owner ON bifrost_request_log (owner, time) WHERE owner IS NOT NULL;
            CREATE INDEX ix_bifrost_request_log_key ON bifrost_request_log (virtual_key_id, time) WHERE virtual_key_id IS NOT NULL;
            CREATE INDEX ix_bifrost_request_log_batch ON bifrost_request_log (batch_id, time) WHERE batch_id IS NOT NULL;
            """),
        (5, "jobs: the W3C traceparent of the span that submitted the job (its run span links to it)", """
            ALTER TABLE bifrost_jobs ADD COLUMN trace_parent TEXT;
            """),
    ];

    /// <summary>Creates the tables or brings them to <see cref="Latest"/>, in one write transaction. Returns (from, to).</summary>
    public static (int From, int To) Migrate(SqliteConnection connection, long nowMs)
    {
        using var transaction = connection.BeginTransaction(deferred: false); // BEGIN IMMEDIATE: one migrator at a time
        Execute(connection, transaction, """
            CREATE TABLE IF NOT EXISTS bifrost_schema_version (
                version     INTEGER PRIMARY KEY,
                applied_at  INTEGER NOT NULL,
                description TEXT    NOT NULL
            );
            """);

        long current;
        using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = "SELECT COALESCE(MAX(version), 0) FROM bifrost_schema_version;";
            current = (long)command.ExecuteScalar()!;
        }

        if (current > Latest)
        {
            throw new InvalidOperationException(
                $"The SQLite database '{connection.DataSource}' has schema version {current}, newer than this version of Bifrost.Middleware.Sqlite supports ({Latest}). Upgrade the package or use another database file.");
        }

        foreach (var (version, description, sql) in Migrations)
        {
            if (version <= current)
            {
                continue;
            }

            Execute(connection, transaction, sql);
            using var record = connection.CreateCommand();
            record.Transaction = transaction;
            record.CommandText = "INSERT INTO bifrost_schema_version (version, applied_at, description) VALUES ($version, $now, $description);";
            record.Parameters.AddWithValue("$version", version);
            record.Parameters.AddWithValue("$now", nowMs);
            record.Parameters.AddWithValue("$description", description);
            record.ExecuteNonQuery();
        }

        transaction.Commit();
        return ((int)current, Latest);
    }

    private static void Execute(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
