using System.Globalization;
using System.Text;
using Bifrost.Middleware.RequestLog;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// The request log in PostgreSQL (<c>UsePostgreSqlRequestLog</c>): durable, and shared by every instance that uses the
/// same database and schema, so one query lists the calls of all of them.
/// </summary>
/// <remarks>
/// <para>One row per entry in <c>request_log</c> (schema migration 5). Times are .NET UTC ticks in a <c>bigint</c>, so an
/// entry reads back exactly and the admin API's cursor (ticks + id) is the row's key; costs are <c>numeric</c>; ids sort in
/// <c>"C"</c> order (the listing's tie-break is ordinal). Indexed by time (listing, cursor, range, retention) and by
/// provider (lower-cased), model, status, owner, key and batch, each over time.</para>
/// <para>A batch of entries is one <c>INSERT ... SELECT FROM unnest(arrays)</c>: one statement, one round trip, all or none
/// (an id already stored is skipped, as in the SQLite store). Measured against binary <c>COPY</c> on 500-entry batches
/// (bench/README): <c>COPY</c> was 12-15 % faster (≈ 4 ms per batch, ≈ 8 µs per entry, on a loaded 2-core machine), but it
/// cannot skip a duplicate id: one would fail the whole batch. At 5,000 entries/s the difference is ≈ 40 ms of database
/// time per second, so the store keeps the statement that never loses 499 entries for one.</para>
/// <para>Retention (<see cref="PruneAsync"/>, run every minute by the request-log writer of each instance) deletes by age,
/// then every entry at or after the (<c>maxCount</c> + 1)-th in listing order. With several instances on one schema the
/// count bound holds approximately: never fewer than the newest <c>maxCount</c> are kept (unless older than the age
/// cut-off), and between sweeps the table grows by what all instances write in a minute.</para>
/// </remarks>
internal sealed partial class PostgreSqlRequestLogStore : IRequestLogStore, IPostgreSqlMigrated
{
    private const string Columns =
        "id, time, owner, virtual_key_id, operation, source, provider, model, status, error_code, latency_ms, ttfc_ms, " +
        "input_tokens, output_tokens, cost_usd, job_id, batch_id, custom_id, request_id, response_id, request_content, response_content";

    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgreSqlInitializer _initializer;
    private readonly ILogger _logger;
    private readonly string _q;
    private readonly string _appendSql;
    private readonly string _getSql;
    private readonly string _pruneByAgeSql;
    private readonly string _pruneByCountSql;

    /// <summary>Creates a store on <paramref name="dataSource"/> (not disposed by the store) in <paramref name="schema"/>.</summary>
    /// <param name="dataSource">Where the database is.</param>
    /// <param name="schema">The schema holding the table (see <see cref="PostgreSqlStoreOptions.Schema"/>).</param>
    /// <param name="logger">Logs migrations; optional.</param>
    public PostgreSqlRequestLogStore(NpgsqlDataSource dataSource, string schema, ILogger<PostgreSqlRequestLogStore>? logger = null)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        PostgreSqlStoreOptions.ValidateSchema(schema);
        Schema = schema;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _initializer = new PostgreSqlInitializer(dataSource, schema, _logger);

        var q = _q = PostgreSqlSchema.Quote(schema);
        _appendSql = $"""
            INSERT INTO {q}.request_log ({Columns})
            SELECT * FROM unnest(@id, @time, @owner, @virtual_key_id, @operation, @source, @provider, @model, @status, @error_code,
                @latency_ms, @ttfc_ms, @input_tokens, @output_tokens, @cost_usd, @job_id, @batch_id, @custom_id, @request_id,
                @response_id, @request_content, @response_content)
            ON CONFLICT (id) DO NOTHING
            """;
        _getSql = $"SELECT {Columns} FROM {q}.request_log WHERE id = @id";
        _pruneByAgeSql = $"DELETE FROM {q}.request_log WHERE time < @cutoff";

        // Beyond the newest maxCount: the (maxCount + 1)-th entry in listing order and everything after it.
        _pruneByCountSql = $"""
            DELETE FROM {q}.request_log
            WHERE (time, id) <= (SELECT time, id FROM {q}.request_log ORDER BY time DESC, id DESC OFFSET @max LIMIT 1)
            """;
    }

    /// <summary>The schema holding the table.</summary>
    public string Schema { get; }

    /// <summary>Creates or migrates the schema now (otherwise done on first use). Safe to call from several instances at once.</summary>
    /// <param name="cancellationToken">Cancels the wait (a migration already started still completes or rolls back).</param>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        LogReady(_logger, Schema);
    }

    public async ValueTask AppendAsync(IReadOnlyList<RequestLogEntry> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0)
        {
            return;
        }

        var n = entries.Count;
        var id = new string[n];
        var time = new long[n];
        var owner = new string?[n];
        var key = new string?[n];
        var operation = new string[n];
        var source = new string[n];
        var provider = new string?[n];
        var model = new string?[n];
        var status = new int[n];
        var errorCode = new string?[n];
        var latency = new long[n];
        var ttfc = new long?[n];
        var input = new long?[n];
        var output = new long?[n];
        var cost = new decimal?[n];
        var job = new string?[n];
        var batch = new string?[n];
        var customId = new string?[n];
        var requestId = new string?[n];
        var responseId = new string?[n];
        var requestContent = new string?[n];
        var responseContent = new string?[n];
        for (var i = 0; i < n; i++)
        {
            var e = entries[i] ?? throw new ArgumentException("A request-log entry is null.", nameof(entries));
            id[i] = e.Id;
            time[i] = e.Time.UtcTicks;
            owner[i] = e.Owner;
            key[i] = e.VirtualKeyId;
            operation[i] = e.Operation;
            source[i] = e.Source;
            provider[i] = e.Provider;
            model[i] = e.Model;
            status[i] = e.Status;
            errorCode[i] = e.ErrorCode;
            latency[i] = e.LatencyMs;
            ttfc[i] = e.TimeToFirstChunkMs;
            input[i] = e.InputTokens;
            output[i] = e.OutputTokens;
            cost[i] = e.CostUsd;
            job[i] = e.JobId;
            batch[i] = e.BatchId;
            customId[i] = e.CustomId;
            requestId[i] = e.RequestId;
            responseId[i] = e.ResponseId;
            requestContent[i] = e.RequestContent;
            responseContent[i] = e.ResponseContent;
        }

        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_appendSql);
        var p = command.Parameters;
        p.Add(Column("id", NpgsqlDbType.Text, id));
        p.Add(Column("time", NpgsqlDbType.Bigint, time));
        p.Add(Column("owner", NpgsqlDbType.Text, owner));
        p.Add(Column("virtual_key_id", NpgsqlDbType.Text, key));
        p.Add(Column("operation", NpgsqlDbType.Text, operation));
        p.Add(Column("source", NpgsqlDbType.Text, source));
        p.Add(Column("provider", NpgsqlDbType.Text, provider));
        p.Add(Column("model", NpgsqlDbType.Text, model));
        p.Add(Column("status", NpgsqlDbType.Integer, status));
        p.Add(Column("error_code", NpgsqlDbType.Text, errorCode));
        p.Add(Column("latency_ms", NpgsqlDbType.Bigint, latency));
        p.Add(Column("ttfc_ms", NpgsqlDbType.Bigint, ttfc));
        p.Add(Column("input_tokens", NpgsqlDbType.Bigint, input));
        p.Add(Column("output_tokens", NpgsqlDbType.Bigint, output));
        p.Add(Column("cost_usd", NpgsqlDbType.Numeric, cost));
        p.Add(Column("job_id", NpgsqlDbType.Text, job));
        p.Add(Column("batch_id", NpgsqlDbType.Text, batch));
        p.Add(Column("custom_id", NpgsqlDbType.Text, customId));
        p.Add(Column("request_id", NpgsqlDbType.Text, requestId));
        p.Add(Column("response_id", NpgsqlDbType.Text, responseId));
        p.Add(Column("request_content", NpgsqlDbType.Text, requestContent));
        p.Add(Column("response_content", NpgsqlDbType.Text, responseContent));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<RequestLogPage> QueryAsync(RequestLogQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var limit = Math.Max(1, query.Limit);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand();
        var where = Where(command, query);
#pragma warning disable CA2100 // the SQL is ours: fixed terms per filter set and the validated, quoted schema name; values are parameters
        command.CommandText = $"SELECT {Columns} FROM {_q}.request_log{where} ORDER BY time DESC, id DESC LIMIT @limit";
#pragma warning restore CA2100
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit + 1));
        var listed = new List<RequestLogEntry>(Math.Min(limit + 1, 1024));
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                listed.Add(Map(reader));
            }
        }

        return RequestLogPage.Of(query, listed);
    }

    public async ValueTask<RequestLogEntry?> GetAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_getSql);
        command.Parameters.Add(new NpgsqlParameter<string>("id", id));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? Map(reader) : null;
    }

    public async ValueTask<long> PruneAsync(DateTimeOffset olderThan, long maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);

        // Two statements, one round trip; the second sees the first's deletions.
        await using var batch = _dataSource.CreateBatch();
        var byAge = new NpgsqlBatchCommand(_pruneByAgeSql);
        byAge.Parameters.Add(new NpgsqlParameter<long>("cutoff", olderThan.UtcTicks));
        var byCount = new NpgsqlBatchCommand(_pruneByCountSql);
        byCount.Parameters.Add(new NpgsqlParameter<long>("max", maxCount));
        batch.BatchCommands.Add(byAge);
        batch.BatchCommands.Add(byCount);
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        var removed = byAge.RecordsAffected + byCount.RecordsAffected;
        if (removed > 0)
        {
            LogPruned(_logger, Schema, byAge.RecordsAffected, byCount.RecordsAffected);
        }

        return removed;
    }

    private static NpgsqlParameter Column(string name, NpgsqlDbType type, object values) =>
        new(name, NpgsqlDbType.Array | type) { Value = values };

    /// <summary>The WHERE clause (one term per filter set: each distinct shape is one statement) with its parameters, and the cursor.</summary>
    private static string Where(NpgsqlCommand command, RequestLogQuery query)
    {
        var terms = new StringBuilder();
        void Term(string term)
        {
            terms.Append(terms.Length == 0 ? " WHERE " : " AND ").Append(term);
        }

        void Equal(string column, string? value)
        {
            if (value is not null)
            {
                Term(string.Create(CultureInfo.InvariantCulture, $"{column} = @{column}"));
                command.Parameters.Add(new NpgsqlParameter<string>(column, value));
            }
        }

        void Number(string name, long value) => command.Parameters.Add(new NpgsqlParameter<long>(name, value));

        if (query.Provider is { } provider)
        {
            Term("lower(provider) = lower(@provider)");
            command.Parameters.Add(new NpgsqlParameter<string>("provider", provider));
        }

        Equal("model", query.Model);
        if (query.Status is { } status)
        {
            Term("status = @status");
            command.Parameters.Add(new NpgsqlParameter<int>("status", status));
        }

        if (query.StatusClass is { } statusClass)
        {
            Term("status >= @status_low AND status < @status_high");
            command.Parameters.Add(new NpgsqlParameter<int>("status_low", statusClass * 100));
            command.Parameters.Add(new NpgsqlParameter<int>("status_high", (statusClass + 1) * 100));
        }

        Equal("owner", query.Owner);
        Equal("virtual_key_id", query.VirtualKeyId);
        Equal("operation", query.Operation);
        Equal("source", query.Source);
        Equal("batch_id", query.BatchId);
        if (query.From is { } from)
        {
            Term("time >= @from");
            Number("from", from.UtcTicks);
        }

        if (query.To is { } to)
        {
            Term("time < @to");
            Number("to", to.UtcTicks);
        }

        if (query.CursorTime is { } cursorTime)
        {
            Number("cursor_time", cursorTime.UtcTicks);
            if (query.CursorId is { } cursorId)
            {
                Term("(time, id) < (@cursor_time, @cursor_id)");
                command.Parameters.Add(new NpgsqlParameter<string>("cursor_id", cursorId));
            }
            else
            {
                Term("time < @cursor_time");
            }
        }

        return terms.ToString();
    }

    private static RequestLogEntry Map(NpgsqlDataReader row) => RequestLogRows.Map(row, static (r, i) => r.IsDBNull(i) ? null : r.GetDecimal(i));



    [LoggerMessage(EventId = 950, Level = LogLevel.Information, Message = "PostgreSQL request log ready in schema {Schema} (table request_log).")]
    private static partial void LogReady(ILogger logger, string schema);

    [LoggerMessage(EventId = 951, Level = LogLevel.Debug, Message = "PostgreSQL request log in schema {Schema}: retention removed {ByAge} entries by age and {ByCount} by count.")]
    private static partial void LogPruned(ILogger logger, string schema, int byAge, int byCount);
}
