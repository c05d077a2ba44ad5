using System.Text;
using Bifrost.Middleware.Governance;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bifrost.Middleware.Sqlite;

/// <summary>
/// A durable <see cref="IGovernanceStore"/> in one SQLite database file (may be the job store's file): the virtual keys,
/// teams and customers created through the admin API, and the usage ledger, survive restarts. Register it with
/// <c>UseSqliteGovernanceStore(path)</c>.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Same database rules as the SQLite job store: WAL, one writer connection with group commit, a pool of read-only
/// connections, the schema created or migrated on start (<c>bifrost_schema_version</c>, shared with the job store).</item>
/// <item>Entities are rows keyed by (kind, id) with the definition as a BLOB, byte for byte. Create is an
/// <c>INSERT ... ON CONFLICT DO NOTHING</c>, update a compare-and-set <c>UPDATE ... WHERE version = $expected</c>; triggers
/// grow the revision row in the changing statement's own transaction, so it moves with every change, from any process
/// on the file, and never without one.</item>
/// <item>The ledger: one row per record, indexed by time and by key, team and customer over time. A batch is appended in
/// one transaction (all or nothing). Costs are exact integers of nano-USD (USD x 10^9; a cost with more decimals is
/// rounded to the nearest nano-USD), summed in SQL; times and durations are .NET ticks.</item>
/// <item>Entity writes are committed with <c>synchronous = FULL</c> (the admin API answered them); ledger batches with
/// <c>NORMAL</c> (a crash of the process loses nothing committed; a power loss may lose the last moments).</item>
/// </list>
/// </remarks>
internal sealed partial class SqliteGovernanceStore : IGovernanceStore, IDisposable, IAsyncDisposable
{
    private const string EntityColumns = "kind, id, definition, version, created_at, updated_at";

    private const string UsageColumns =
        "time, request_id, virtual_key_id, team, customer, provider, model, operation, source, input_tokens, output_tokens, " +
        "cached_input_tokens, reasoning_tokens, cost_nano_usd, status, duration_ticks";

    private const string RevisionSql = "SELECT revision FROM bifrost_governance_revision WHERE id = 1;";

    private const string ListEntitiesSql = "SELECT " + EntityColumns + " FROM bifrost_governance_entities ORDER BY kind, id;";

    private const string GetEntitySql = "SELECT " + EntityColumns + " FROM bifrost_governance_entities WHERE kind = $kind AND id = $id;";

    private const string CreateEntitySql =
        "INSERT INTO bifrost_governance_entities (" + EntityColumns + ") VALUES ($kind, $id, $definition, 1, $now, $now) " +
        "ON CONFLICT (kind, id) DO NOTHING;";

    private const string UpdateEntitySql =
        "UPDATE bifrost_governance_entities SET definition = $definition, version = version + 1, updated_at = $now " +
        "WHERE kind = $kind AND id = $id AND version = $expected RETURNING " + EntityColumns + ";";

    private const string DeleteEntitySql = "DELETE FROM bifrost_governance_entities WHERE kind = $kind AND id = $id;";

    private const string InsertUsageSql =
        "INSERT INTO bifrost_usage (" + UsageColumns + ") VALUES ($time, $request_id, $virtual_key_id, $team, $customer, $provider, " +
        "$model, $operation, $source, $input_tokens, $output_tokens, $cached_input_tokens, $reasoning_tokens, $cost, $status, $duration);";

    private const decimal NanosPerUsd = 1_000_000_000m;

    private static readonly string[] InsertUsageParameters =
    [
        "$time", "$request_id", "$virtual_key_id", "$team", "$customer", "$provider", "$model", "$operation", "$source",
        "$input_tokens", "$output_tokens", "$cached_input_tokens", "$reasoning_tokens", "$cost", "$status", "$duration",
    ];

    private readonly TimeProvider _time;
    private readonly SqliteWriter _writer;
    private readonly SqliteReaderPool _readers;
    private volatile bool _disposed;

    /// <summary>Opens (or creates) the database, switches it to WAL and creates or migrates the schema.</summary>
    /// <param name="connectionStringOrPath">A file path or a Microsoft.Data.Sqlite connection string (the job store's rules; in-memory databases are refused).</param>
    /// <param name="timeProvider">The clock of every stored entity time.</param>
    /// <param name="logger">Logs the database opened and migrations; null for none.</param>
    public SqliteGovernanceStore(string connectionStringOrPath, TimeProvider timeProvider, ILogger<SqliteGovernanceStore>? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionStringOrPath);
        _time = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        ILogger log = logger ?? (ILogger)NullLogger.Instance;

        (DatabasePath, _writer, _readers) = SqliteStoreFile.Open(
            connectionStringOrPath,
            _time,
            (path, from, to) => LogMigrated(log, path, from, to),
            (path, version, journal) => LogOpened(log, path, version, journal));
    }

    /// <summary>The full path of the database file.</summary>
    public string DatabasePath { get; }

    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(reader => (long)reader.Scalar(RevisionSql)!));
    }

    public ValueTask<IReadOnlyList<GovernanceEntity>> ListEntitiesAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<IReadOnlyList<GovernanceEntity>>(Read(reader =>
        {
            var entities = new List<GovernanceEntity>();
            using var rows = reader.Command(ListEntitiesSql).ExecuteReader();
            while (rows.Read())
            {
                entities.Add(MapEntity(rows));
            }

            return entities;
        }));
    }

    public ValueTask<GovernanceEntity?> GetEntityAsync(GovernanceEntityKind kind, string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(reader =>
        {
            var command = reader.Command(GetEntitySql);
            Add(command, "$kind", (int)kind);
            Add(command, "$id", id);
            using var rows = command.ExecuteReader();
            return rows.Read() ? MapEntity(rows) : null;
        }));
    }

    public async ValueTask<bool> CreateEntityAsync(GovernanceEntity entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        ArgumentNullException.ThrowIfNull(entity.Id);
        var definition = entity.Definition.ToArray(); // a copy: the caller may reuse its buffer
        var inserted = await WriteAsync(
            durable: true,
            writer =>
            {
                var command = writer.Command(CreateEntitySql);
                Add(command, "$kind", (int)entity.Kind);
                Add(command, "$id", entity.Id);
                Add(command, "$definition", definition);
                Add(command, "$now", Now());
                return command.ExecuteNonQuery();
            },
            cancellationToken).ConfigureAwait(false);
        return inserted == 1;
    }

    public ValueTask<GovernanceEntity?> UpdateEntityAsync(GovernanceEntity entity, long expectedVersion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        ArgumentNullException.ThrowIfNull(entity.Id);
        var definition = entity.Definition.ToArray();
        return WriteAsync(
            durable: true,
            writer =>
            {
                var command = writer.Command(UpdateEntitySql);
                Add(command, "$kind", (int)entity.Kind);
                Add(command, "$id", entity.Id);
                Add(command, "$definition", definition);
                Add(command, "$expected", expectedVersion);
                Add(command, "$now", Now());
                using var rows = command.ExecuteReader();
                return rows.Read() ? MapEntity(rows) : null;
            },
            cancellationToken);
    }

    public async ValueTask<bool> DeleteEntityAsync(GovernanceEntityKind kind, string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        var deleted = await WriteAsync(
            durable: true,
            writer =>
            {
                var command = writer.Command(DeleteEntitySql);
                Add(command, "$kind", (int)kind);
                Add(command, "$id", id);
                return command.ExecuteNonQuery();
            },
            cancellationToken).ConfigureAwait(false);
        return deleted == 1;
    }

    public async ValueTask AppendUsageAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count == 0)
        {
            return;
        }

        foreach (var record in records)
        {
            ArgumentNullException.ThrowIfNull(record);
        }

        await WriteAsync(
            durable: false,
            writer =>
            {
                // A savepoint: the whole batch or none of it, whether it runs alone or in a group commit.
                writer.Execute("SAVEPOINT bifrost_usage_append;");
                try
                {
                    var command = writer.Prepared(InsertUsageSql, InsertUsageParameters);
                    var p = command.Parameters;
                    foreach (var record in records)
                    {
                        p[0].Value = record.Time.UtcTicks;
                        p[1].Value = (object?)record.RequestId ?? DBNull.Value;
                        p[2].Value = (object?)record.VirtualKeyId ?? DBNull.Value;
                        p[3].Value = (object?)record.Team ?? DBNull.Value;
                        p[4].Value = (object?)record.Customer ?? DBNull.Value;
                        p[5].Value = (object?)record.Provider ?? DBNull.Value;
                        p[6].Value = (object?)record.Model ?? DBNull.Value;
                        p[7].Value = (object?)record.Operation ?? DBNull.Value;
                        p[8].Value = (object?)record.Source ?? DBNull.Value;
                        p[9].Value = record.InputTokens;
                        p[10].Value = record.OutputTokens;
                        p[11].Value = record.CachedInputTokens;
                        p[12].Value = record.ReasoningTokens;
                        p[13].Value = record.CostUsd is { } cost ? ToNanos(cost) : DBNull.Value;
                        p[14].Value = record.Status;
                        p[15].Value = record.Duration.Ticks;
                        command.ExecuteNonQuery();
                    }

                    writer.Execute("RELEASE bifrost_usage_append;");
                }
                catch
                {
                    writer.Execute("ROLLBACK TO bifrost_usage_append;");
                    writer.Execute("RELEASE bifrost_usage_append;");
                    throw;
                }

                return records.Count;
            },
            cancellationToken).ConfigureAwait(false);
    }

    public ValueTask<IReadOnlyList<UsageRecord>> ListUsageAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        cancellationToken.ThrowIfCancellationRequested();
        var limit = Math.Max(0, query.Limit);
        if (limit == 0)
        {
            return ValueTask.FromResult<IReadOnlyList<UsageRecord>>([]);
        }

        var sql = "SELECT " + UsageColumns + " FROM bifrost_usage" + Where(query, paged: true) + " ORDER BY time DESC, seq DESC LIMIT $limit;";
        return ValueTask.FromResult<IReadOnlyList<UsageRecord>>(Read(reader =>
        {
            var command = reader.Command(sql);
            Bind(command, query, paged: true);
            Add(command, "$limit", limit);
            var records = new List<UsageRecord>(Math.Min(limit, 1024));
            using var rows = command.ExecuteReader();
            while (rows.Read())
            {
                records.Add(MapUsage(rows));
            }

            return records;
        }));
    }

    public ValueTask<UsageTotals> SumUsageAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        cancellationToken.ThrowIfCancellationRequested();
        var sql =
            "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cached_input_tokens), 0), " +
            "COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_nano_usd), 0), COUNT(*) - COUNT(cost_nano_usd) FROM bifrost_usage" +
            Where(query, paged: false) + ";";
        return ValueTask.FromResult(Read(reader =>
        {
            var command = reader.Command(sql);
            Bind(command, query, paged: false);
            using var rows = command.ExecuteReader();
            rows.Read();
            return new UsageTotals(
                rows.GetInt64(0),
                rows.GetInt64(1),
                rows.GetInt64(2),
                rows.GetInt64(3),
                rows.GetInt64(4),
                FromNanos(rows.GetInt64(5)),
                rows.GetInt64(6));
        }));
    }

    /// <summary>Closes the database connections (what was queued for the writer is written first).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _writer.Dispose();
        _readers.Dispose();
    }

    /// <summary>Closes the database connections.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>USD to nano-USD, rounded to the nearest (half away from zero); beyond ±9.2 billion USD it is clamped.</summary>
    internal static long ToNanos(decimal usd)
    {
        var nanos = decimal.Round(usd * NanosPerUsd, MidpointRounding.AwayFromZero);
        return nanos >= long.MaxValue ? long.MaxValue : nanos <= long.MinValue ? long.MinValue : (long)nanos;
    }

    internal static decimal FromNanos(long nanos) => nanos / NanosPerUsd;

    /// <summary>
    /// The WHERE clause of a query: one term per filter set, so each distinct shape is one prepared statement and the
    /// key, team and customer terms can use their (partial) indexes.
    /// </summary>
    private static string Where(UsageQuery query, bool paged)
    {
        var terms = new StringBuilder();
        void Term(bool on, string term)
        {
            if (on)
            {
                terms.Append(terms.Length == 0 ? " WHERE " : " AND ").Append(term);
            }
        }

        Term(query.VirtualKeyId is not null, "virtual_key_id = $virtual_key_id");
        Term(query.Team is not null, "team = $team");
        Term(query.Customer is not null, "customer = $customer");
        Term(query.Provider is not null, "provider = $provider COLLATE NOCASE");
        Term(query.Model is not null, "model = $model");
        Term(query.From is not null, "time >= $from");
        Term(query.To is not null, "time < $to");
        Term(paged && query.Before is not null, "time < $before");
        return terms.ToString();
    }

    private static void Bind(SqliteCommand command, UsageQuery query, bool paged)
    {
        if (query.VirtualKeyId is { } key)
        {
            Add(command, "$virtual_key_id", key);
        }

        if (query.Team is { } team)
        {
            Add(command, "$team", team);
        }

        if (query.Customer is { } customer)
        {
            Add(command, "$customer", customer);
        }

        if (query.Provider is { } provider)
        {
            Add(command, "$provider", provider);
        }

        if (query.Model is { } model)
        {
            Add(command, "$model", model);
        }

        if (query.From is { } from)
        {
            Add(command, "$from", from.UtcTicks);
        }

        if (query.To is { } to)
        {
            Add(command, "$to", to.UtcTicks);
        }

        if (paged && query.Before is { } before)
        {
            Add(command, "$before", before.UtcTicks);
        }
    }

    private static GovernanceEntity MapEntity(SqliteDataReader row) => new()
    {
        Kind = (GovernanceEntityKind)row.GetInt32(0),
        Id = row.GetString(1),
        Definition = row.GetFieldValue<byte[]>(2),
        Version = row.GetInt64(3),
        CreatedAt = FromTicks(row.GetInt64(4)),
        UpdatedAt = FromTicks(row.GetInt64(5)),
    };

    private static UsageRecord MapUsage(SqliteDataReader row) => new()
    {
        Time = FromTicks(row.GetInt64(0)),
        RequestId = Text(row, 1),
        VirtualKeyId = Text(row, 2),
        Team = Text(row, 3),
        Customer = Text(row, 4),
        Provider = row.GetString(5),
        Model = row.GetString(6),
        Operation = row.GetString(7),
        Source = row.GetString(8),
        InputTokens = row.GetInt64(9),
        OutputTokens = row.GetInt64(10),
        CachedInputTokens = row.GetInt64(11),
        ReasoningTokens = row.GetInt64(12),
        CostUsd = row.IsDBNull(13) ? null : FromNanos(row.GetInt64(13)),
        Status = row.GetInt32(14),
        Duration = TimeSpan.FromTicks(row.GetInt64(15)),
    };

    private static string? Text(SqliteDataReader row, int ordinal) => row.IsDBNull(ordinal) ? null : row.GetString(ordinal);

    private static DateTimeOffset FromTicks(long ticks) =>
        new(Math.Clamp(ticks, DateTimeOffset.MinValue.UtcTicks, DateTimeOffset.MaxValue.UtcTicks), TimeSpan.Zero);

    private long Now() => _time.GetUtcNow().UtcTicks;

    private static void Add(SqliteCommand command, string name, object? value) => command.Parameters.AddWithValue(name, value ?? DBNull.Value);

    private ValueTask<T> WriteAsync<T>(bool durable, Func<SqliteConnectionSlot, T> write, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _writer.WriteAsync(durable, write, cancellationToken);
    }

    private T Read<T>(Func<SqliteConnectionSlot, T> read)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _readers.Read(read);
    }

    [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "SQLite governance store {Path}: schema version {Version}, journal mode {JournalMode}.")]
    private static partial void LogOpened(ILogger logger, string path, int version, string journalMode);

    [LoggerMessage(EventId = 121, Level = LogLevel.Information, Message = "SQLite governance store {Path}: schema migrated from version {From} to {To}.")]
    private static partial void LogMigrated(ILogger logger, string path, int from, int to);
}
