using System.Text;
using Bifrost.Middleware.RequestLog;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bifrost.Middleware.Sqlite;

/// <summary>
/// A durable <see cref="IRequestLogStore"/> in one SQLite database file (may be the job or governance store's file):
/// the request log survives restarts. Register it with <c>UseSqliteRequestLog(path)</c>.
/// </summary>
/// <remarks>
/// Same database rules as the other SQLite stores: WAL, one writer connection with group commit, a pool of read-only
/// connections, the schema created or migrated on start (<c>bifrost_schema_version</c>, shared). One row per entry in
/// <c>bifrost_request_log</c>, indexed by time and by provider, model, status, owner, key and batch over time; a batch of
/// entries is appended in one transaction with <c>synchronous = NORMAL</c>. Costs are integers of nano-USD.
/// </remarks>
internal sealed partial class SqliteRequestLogStore : IRequestLogStore, IDisposable, IAsyncDisposable
{
    private const string Columns =
        "id, time, owner, virtual_key_id, operation, source, provider, model, status, error_code, latency_ms, ttfc_ms, " +
        "input_tokens, output_tokens, cost_nano_usd, job_id, batch_id, custom_id, request_id, response_id, request_content, response_content";

    private const string InsertSql =
        "INSERT INTO bifrost_request_log (" + Columns + ") VALUES ($id, $time, $owner, $virtual_key_id, $operation, $source, $provider, " +
        "$model, $status, $error_code, $latency_ms, $ttfc_ms, $input_tokens, $output_tokens, $cost, $job_id, $batch_id, $custom_id, " +
        "$request_id, $response_id, $request_content, $response_content) ON CONFLICT (id) DO NOTHING;";

    private static readonly string[] InsertParameters =
    [
        "$id", "$time", "$owner", "$virtual_key_id", "$operation", "$source", "$provider", "$model", "$status", "$error_code",
        "$latency_ms", "$ttfc_ms", "$input_tokens", "$output_tokens", "$cost", "$job_id", "$batch_id", "$custom_id", "$request_id",
        "$response_id", "$request_content", "$response_content",
    ];

    private readonly SqliteWriter _writer;
    private readonly SqliteReaderPool _readers;
    private volatile bool _disposed;

    /// <summary>Opens (or creates) the database, switches it to WAL and creates or migrates the schema.</summary>
    /// <param name="connectionStringOrPath">A file path or a Microsoft.Data.Sqlite connection string (in-memory databases are refused).</param>
    /// <param name="timeProvider">The clock of the schema's migration records.</param>
    /// <param name="logger">Logs the database opened and migrations; null for none.</param>
    public SqliteRequestLogStore(string connectionStringOrPath, TimeProvider timeProvider, ILogger<SqliteRequestLogStore>? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionStringOrPath);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ILogger log = logger ?? (ILogger)NullLogger.Instance;

        (DatabasePath, _writer, _readers) = SqliteStoreFile.Open(
            connectionStringOrPath,
            timeProvider,
            (path, from, to) => LogMigrated(log, path, from, to),
            (path, version, journal) => LogOpened(log, path, version, journal));
    }

    /// <summary>The full path of the database file.</summary>
    public string DatabasePath { get; }

    public async ValueTask AppendAsync(IReadOnlyList<RequestLogEntry> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            return;
        }

        foreach (var entry in entries)
        {
            ArgumentNullException.ThrowIfNull(entry);
        }

        ObjectDisposedException.ThrowIf(_disposed, this);
        await _writer.WriteAsync(
            durable: false,
            writer =>
            {
                // A savepoint: the whole batch or none of it, whether it runs alone or in a group commit.
                writer.Execute("SAVEPOINT bifrost_request_log_append;");
                try
                {
                    var command = writer.Prepared(InsertSql, InsertParameters);
                    var p = command.Parameters;
                    foreach (var e in entries)
                    {
                        p[0].Value = e.Id;
                        p[1].Value = e.Time.UtcTicks;
                        p[2].Value = Db(e.Owner);
                        p[3].Value = Db(e.VirtualKeyId);
                        p[4].Value = e.Operation;
                        p[5].Value = e.Source;
                        p[6].Value = Db(e.Provider);
                        p[7].Value = Db(e.Model);
                        p[8].Value = e.Status;
                        p[9].Value = Db(e.ErrorCode);
                        p[10].Value = e.LatencyMs;
                        p[11].Value = e.TimeToFirstChunkMs is { } ttfc ? ttfc : DBNull.Value;
                        p[12].Value = e.InputTokens is { } input ? input : DBNull.Value;
                        p[13].Value = e.OutputTokens is { } output ? output : DBNull.Value;
                        p[14].Value = e.CostUsd is { } cost ? SqliteGovernanceStore.ToNanos(cost) : DBNull.Value;
                        p[15].Value = Db(e.JobId);
                        p[16].Value = Db(e.BatchId);
                        p[17].Value = Db(e.CustomId);
                        p[18].Value = Db(e.RequestId);
                        p[19].Value = Db(e.ResponseId);
                        p[20].Value = Db(e.RequestContent);
                        p[21].Value = Db(e.ResponseContent);
                        command.ExecuteNonQuery();
                    }

                    writer.Execute("RELEASE bifrost_request_log_append;");
                }
                catch
                {
                    writer.Execute("ROLLBACK TO bifrost_request_log_append;");
                    writer.Execute("RELEASE bifrost_request_log_append;");
                    throw;
                }

                return entries.Count;
            },
            cancellationToken).ConfigureAwait(false);
    }

    public ValueTask<RequestLogPage> QueryAsync(RequestLogQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        cancellationToken.ThrowIfCancellationRequested();
        var limit = Math.Max(1, query.Limit);
        var sql = "SELECT " + Columns + " FROM bifrost_request_log" + Where(query) + " ORDER BY time DESC, id DESC LIMIT $limit;";
        var listed = Read(reader =>
        {
            var command = reader.Command(sql);
            Bind(command, query);
            command.Parameters.AddWithValue("$limit", limit + 1);
            var entries = new List<RequestLogEntry>(Math.Min(limit + 1, 1024));
            using var rows = command.ExecuteReader();
            while (rows.Read())
            {
                entries.Add(Map(rows));
            }

            return entries;
        });
        return ValueTask.FromResult(RequestLogPage.Of(query, listed));
    }

    public ValueTask<RequestLogEntry?> GetAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(reader =>
        {
            var command = reader.Command("SELECT " + Columns + " FROM bifrost_request_log WHERE id = $id;");
            command.Parameters.AddWithValue("$id", id);
            using var rows = command.ExecuteReader();
            return rows.Read() ? Map(rows) : null;
        }));
    }

    public async ValueTask<long> PruneAsync(DateTimeOffset olderThan, long maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return await _writer.WriteAsync(
            durable: false,
            writer =>
            {
                var byAge = writer.Command("DELETE FROM bifrost_request_log WHERE time < $cutoff;");
                byAge.Parameters.AddWithValue("$cutoff", olderThan.UtcTicks);
                long removed = byAge.ExecuteNonQuery();

                // Beyond the newest maxCount: everything older than the (maxCount + 1)-th entry in listing order.
                var byCount = writer.Command(
                    "DELETE FROM bifrost_request_log WHERE seq IN (SELECT seq FROM bifrost_request_log ORDER BY time DESC, id DESC LIMIT -1 OFFSET $max);");
                byCount.Parameters.AddWithValue("$max", maxCount);
                removed += byCount.ExecuteNonQuery();
                return removed;
            },
            cancellationToken).ConfigureAwait(false);
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

    private static object Db(string? value) => (object?)value ?? DBNull.Value;

    /// <summary>The WHERE clause: one term per filter set (each distinct shape is one statement) and the cursor.</summary>
    private static string Where(RequestLogQuery query)
    {
        var terms = new StringBuilder();
        void Term(bool on, string term)
        {
            if (on)
            {
                terms.Append(terms.Length == 0 ? " WHERE " : " AND ").Append(term);
            }
        }

        Term(query.Provider is not null, "provider = $provider COLLATE NOCASE");
        Term(query.Model is not null, "model = $model");
        Term(query.Status is not null, "status = $status");
        Term(query.StatusClass is not null, "status >= $status_low AND status < $status_high");
        Term(query.Owner is not null, "owner = $owner");
        Term(query.VirtualKeyId is not null, "virtual_key_id = $virtual_key_id");
        Term(query.Operation is not null, "operation = $operation");
        Term(query.Source is not null, "source = $source");
        Term(query.BatchId is not null, "batch_id = $batch_id");
        Term(query.From is not null, "time >= $from");
        Term(query.To is not null, "time < $to");
        Term(query.CursorTime is not null, query.CursorId is null ? "time < $cursor_time" : "(time < $cursor_time OR (time = $cursor_time AND id < $cursor_id))");
        return terms.ToString();
    }

    private static void Bind(SqliteCommand command, RequestLogQuery query)
    {
        void Add(string name, object? value)
        {
            if (value is not null)
            {
                command.Parameters.AddWithValue(name, value);
            }
        }

        Add("$provider", query.Provider);
        Add("$model", query.Model);
        Add("$status", query.Status);
        Add("$status_low", query.StatusClass * 100);
        Add("$status_high", (query.StatusClass + 1) * 100);
        Add("$owner", query.Owner);
        Add("$virtual_key_id", query.VirtualKeyId);
        Add("$operation", query.Operation);
        Add("$source", query.Source);
        Add("$batch_id", query.BatchId);
        Add("$from", query.From?.UtcTicks);
        Add("$to", query.To?.UtcTicks);
        Add("$cursor_time", query.CursorTime?.UtcTicks);
        Add("$cursor_id", query.CursorId);
    }

    private static RequestLogEntry Map(SqliteDataReader row) => RequestLogRows.Map(row, static (r, i) => RequestLogRows.Number(r, i) is { } nanos ? SqliteGovernanceStore.FromNanos(nanos) : null);



    private T Read<T>(Func<SqliteConnectionSlot, T> read)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _readers.Read(read);
    }

    [LoggerMessage(EventId = 930, Level = LogLevel.Information, Message = "SQLite request log {Path}: schema version {Version}, journal mode {JournalMode}.")]
    private static partial void LogOpened(ILogger logger, string path, int version, string journalMode);

    [LoggerMessage(EventId = 931, Level = LogLevel.Information, Message = "SQLite request log {Path}: schema migrated from version {From} to {To}.")]
    private static partial void LogMigrated(ILogger logger, string path, int from, int to);
}
