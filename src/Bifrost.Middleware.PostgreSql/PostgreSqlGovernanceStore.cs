using System.Text;
using Bifrost.Middleware.Governance;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// An <see cref="IGovernanceStore"/> in PostgreSQL, shared by every instance of the app that uses the same database and
/// schema: the virtual keys, teams and customers created through the admin API, the revision that tells instances to
/// reload them, and the usage ledger.
/// </summary>
/// <remarks>
/// <para>Entities are rows of <c>gov_entities</c> with their definition as opaque bytes (kept byte for byte) and a version;
/// an update is a compare-and-set on the version. Every create, update and delete bumps the one-row <c>gov_revision</c>
/// in the same statement (a data-modifying CTE), so the new revision is never visible without the change. The ledger is
/// <c>gov_usage</c> (cost as <c>numeric</c>, indexes on key, team and customer with time); a batch of records is one
/// statement, and totals are summed by the database.</para>
/// <para>Entity times come from the <see cref="TimeProvider"/> given, at microsecond precision. The schema is created or
/// migrated on first use (or by <see cref="InitializeAsync"/>).</para>
/// </remarks>
public sealed class PostgreSqlGovernanceStore : IGovernanceStore, IPostgreSqlMigrated
{
    private const string EntityColumns = "kind, id, definition, version, created_at, updated_at";
    private const string UsageColumns = "time, request_id, virtual_key_id, team, customer, provider, model, operation, source, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, status, duration";

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly PostgreSqlInitializer _initializer;
    private readonly string _q;
    private readonly string _revisionSql;
    private readonly string _listSql;
    private readonly string _getSql;
    private readonly string _createSql;
    private readonly string _updateSql;
    private readonly string _deleteSql;
    private readonly string _appendSql;

    /// <summary>Creates a store on <paramref name="dataSource"/> (not disposed by the store) in <paramref name="schema"/>.</summary>
    /// <param name="dataSource">Where the database is.</param>
    /// <param name="schema">The schema holding the tables (see <see cref="PostgreSqlStoreOptions.Schema"/>).</param>
    /// <param name="timeProvider">The clock (tests pass a fake one).</param>
    /// <param name="logger">Logs migrations; optional.</param>
    public PostgreSqlGovernanceStore(NpgsqlDataSource dataSource, string schema, TimeProvider timeProvider, ILogger<PostgreSqlGovernanceStore>? logger = null)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        _time = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        PostgreSqlStoreOptions.ValidateSchema(schema);
        Schema = schema;
        _initializer = new PostgreSqlInitializer(dataSource, schema, (ILogger?)logger ?? NullLogger.Instance);

        var q = _q = PostgreSqlSchema.Quote(schema);
        const string Bump = "bump AS (UPDATE {0}.gov_revision SET revision = revision + 1 WHERE one AND EXISTS (SELECT 1 FROM changed))";
        var bump = string.Format(System.Globalization.CultureInfo.InvariantCulture, Bump, q);
        _revisionSql = $"SELECT revision FROM {q}.gov_revision";
        _listSql = $"SELECT {EntityColumns} FROM {q}.gov_entities ORDER BY kind, id";
        _getSql = $"SELECT {EntityColumns} FROM {q}.gov_entities WHERE kind = @kind AND id = @id";
        _createSql = $"""
            WITH changed AS (
                INSERT INTO {q}.gov_entities ({EntityColumns}) VALUES (@kind, @id, @definition, 1, @now, @now)
                ON CONFLICT DO NOTHING RETURNING 1),
            {bump}
            SELECT count(*) FROM changed
            """;
        _updateSql = $"""
            WITH changed AS (
                UPDATE {q}.gov_entities SET definition = @definition, version = version + 1, updated_at = @now
                WHERE kind = @kind AND id = @id AND version = @version
                RETURNING {EntityColumns}),
            {bump}
            SELECT {EntityColumns} FROM changed
            """;
        _deleteSql = $"""
            WITH changed AS (DELETE FROM {q}.gov_entities WHERE kind = @kind AND id = @id RETURNING 1),
            {bump}
            SELECT count(*) FROM changed
            """;
        _appendSql = $"""
            INSERT INTO {q}.gov_usage ({UsageColumns})
            SELECT * FROM unnest(@time, @request_id, @virtual_key_id, @team, @customer, @provider, @model, @operation, @source,
                @input_tokens, @output_tokens, @cached_input_tokens, @reasoning_tokens, @cost_usd, @status, @duration)
            """;
    }

    /// <summary>The schema holding the tables.</summary>
    public string Schema { get; }

    /// <summary>Creates or migrates the schema now (otherwise done on first use). Safe to call from several instances at once.</summary>
    /// <param name="cancellationToken">Cancels the wait (a migration already started still completes or rolls back).</param>
    public Task InitializeAsync(CancellationToken cancellationToken) => _initializer.EnsureAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_revisionSql);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<GovernanceEntity>> ListEntitiesAsync(CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_listSql);
        return await ReadEntitiesAsync(command, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<GovernanceEntity?> GetEntityAsync(GovernanceEntityKind kind, string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_getSql);
        AddKey(command, kind, id);
        var found = await ReadEntitiesAsync(command, cancellationToken).ConfigureAwait(false);
        return found.Count == 0 ? null : found[0];
    }

    /// <inheritdoc />
    public async ValueTask<bool> CreateEntityAsync(GovernanceEntity entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_createSql);
        AddKey(command, entity.Kind, entity.Id);
        command.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>("definition", NpgsqlDbType.Bytea) { TypedValue = entity.Definition });
        AddTime(command, "now", Now());
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) == 1;
    }

    /// <inheritdoc />
    public async ValueTask<GovernanceEntity?> UpdateEntityAsync(GovernanceEntity entity, long expectedVersion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_updateSql);
        AddKey(command, entity.Kind, entity.Id);
        command.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>("definition", NpgsqlDbType.Bytea) { TypedValue = entity.Definition });
        command.Parameters.Add(new NpgsqlParameter<long>("version", expectedVersion));
        AddTime(command, "now", Now());
        var updated = await ReadEntitiesAsync(command, cancellationToken).ConfigureAwait(false);
        return updated.Count == 0 ? null : updated[0];
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteEntityAsync(GovernanceEntityKind kind, string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_deleteSql);
        AddKey(command, kind, id);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) == 1;
    }

    /// <inheritdoc />
    public async ValueTask AppendUsageAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count == 0)
        {
            return;
        }

        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var n = records.Count;
        var time = new DateTimeOffset[n];
        var requestId = new string?[n];
        var key = new string?[n];
        var team = new string?[n];
        var customer = new string?[n];
        var provider = new string[n];
        var model = new string[n];
        var operation = new string[n];
        var source = new string[n];
        var input = new long[n];
        var output = new long[n];
        var cached = new long[n];
        var reasoning = new long[n];
        var cost = new decimal?[n];
        var status = new int[n];
        var duration = new TimeSpan[n];
        for (var i = 0; i < n; i++)
        {
            var r = records[i] ?? throw new ArgumentException("A usage record is null.", nameof(records));
            time[i] = Truncate(r.Time);
            requestId[i] = r.RequestId;
            key[i] = r.VirtualKeyId;
            team[i] = r.Team;
            customer[i] = r.Customer;
            provider[i] = r.Provider;
            model[i] = r.Model;
            operation[i] = r.Operation;
            source[i] = r.Source;
            input[i] = r.InputTokens;
            output[i] = r.OutputTokens;
            cached[i] = r.CachedInputTokens;
            reasoning[i] = r.ReasoningTokens;
            cost[i] = r.CostUsd;
            status[i] = r.Status;
            duration[i] = r.Duration;
        }

        await using var command = _dataSource.CreateCommand(_appendSql);
        command.Parameters.Add(new NpgsqlParameter("time", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = time });
        AddTexts(command, "request_id", requestId);
        AddTexts(command, "virtual_key_id", key);
        AddTexts(command, "team", team);
        AddTexts(command, "customer", customer);
        AddTexts(command, "provider", provider);
        AddTexts(command, "model", model);
        AddTexts(command, "operation", operation);
        AddTexts(command, "source", source);
        AddBigints(command, "input_tokens", input);
        AddBigints(command, "output_tokens", output);
        AddBigints(command, "cached_input_tokens", cached);
        AddBigints(command, "reasoning_tokens", reasoning);
        command.Parameters.Add(new NpgsqlParameter("cost_usd", NpgsqlDbType.Array | NpgsqlDbType.Numeric) { Value = cost });
        command.Parameters.Add(new NpgsqlParameter("status", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = status });
        command.Parameters.Add(new NpgsqlParameter("duration", NpgsqlDbType.Array | NpgsqlDbType.Interval) { Value = duration });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<UsageRecord>> ListUsageAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var limit = Math.Max(0, query.Limit);
        if (limit == 0)
        {
            return [];
        }

        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand();
        var where = Filter(command, query, includeBefore: true);
        command.Parameters.Add(new NpgsqlParameter<int>("limit", limit));
        command.CommandText = $"SELECT {UsageColumns} FROM {_q}.gov_usage{where} ORDER BY time DESC, seq DESC LIMIT @limit";
        var records = new List<UsageRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            records.Add(new UsageRecord
            {
                Time = reader.GetFieldValue<DateTimeOffset>(0),
                RequestId = NullableText(reader, 1),
                VirtualKeyId = NullableText(reader, 2),
                Team = NullableText(reader, 3),
                Customer = NullableText(reader, 4),
                Provider = reader.GetString(5),
                Model = reader.GetString(6),
                Operation = reader.GetString(7),
                Source = reader.GetString(8),
                InputTokens = reader.GetInt64(9),
                OutputTokens = reader.GetInt64(10),
                CachedInputTokens = reader.GetInt64(11),
                ReasoningTokens = reader.GetInt64(12),
                CostUsd = reader.IsDBNull(13) ? null : reader.GetDecimal(13),
                Status = reader.GetInt32(14),
                Duration = reader.GetFieldValue<TimeSpan>(15),
            });
        }

        return records;
    }

    /// <inheritdoc />
    public async ValueTask<UsageTotals> SumUsageAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand();
        var where = Filter(command, query, includeBefore: false);
        command.CommandText = $"""
            SELECT count(*), COALESCE(sum(input_tokens), 0)::bigint, COALESCE(sum(output_tokens), 0)::bigint,
                   COALESCE(sum(cached_input_tokens), 0)::bigint, COALESCE(sum(reasoning_tokens), 0)::bigint,
                   COALESCE(sum(cost_usd), 0), count(*) FILTER (WHERE cost_usd IS NULL)
            FROM {_q}.gov_usage{where}
            """;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return new UsageTotals(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetDecimal(5), reader.GetInt64(6));
    }

    /// <summary>The WHERE clause of a usage query (only the filters set, so the planner can use the indexes), adding its parameters.</summary>
    private static string Filter(NpgsqlCommand command, UsageQuery query, bool includeBefore)
    {
        var where = new StringBuilder();
        void Add(string condition)
        {
            where.Append(where.Length == 0 ? " WHERE " : " AND ").Append(condition);
        }

        if (query.VirtualKeyId is { } key)
        {
            Add("virtual_key_id = @key");
            command.Parameters.Add(new NpgsqlParameter<string>("key", key));
        }

        if (query.Team is { } team)
        {
            Add("team = @team");
            command.Parameters.Add(new NpgsqlParameter<string>("team", team));
        }

        if (query.Customer is { } customer)
        {
            Add("customer = @customer");
            command.Parameters.Add(new NpgsqlParameter<string>("customer", customer));
        }

        if (query.Provider is { } provider)
        {
            // providers are matched ignoring case, like the in-memory store
            Add("lower(provider) = lower(@provider)");
            command.Parameters.Add(new NpgsqlParameter<string>("provider", provider));
        }

        if (query.Model is { } model)
        {
            Add("model = @model");
            command.Parameters.Add(new NpgsqlParameter<string>("model", model));
        }

        if (query.From is { } from)
        {
            Add("time >= @from");
            AddTime(command, "from", Truncate(from));
        }

        if (query.To is { } to)
        {
            Add("time < @to");
            AddTime(command, "to", Truncate(to));
        }

        if (includeBefore && query.Before is { } before)
        {
            Add("time < @before");
            AddTime(command, "before", Truncate(before));
        }

        return where.ToString();
    }

    private static async Task<List<GovernanceEntity>> ReadEntitiesAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var entities = new List<GovernanceEntity>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            entities.Add(new GovernanceEntity
            {
                Kind = (GovernanceEntityKind)reader.GetInt16(0),
                Id = reader.GetString(1),
                Definition = reader.GetFieldValue<byte[]>(2),
                Version = reader.GetInt64(3),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(4),
                UpdatedAt = reader.GetFieldValue<DateTimeOffset>(5),
            });
        }

        return entities;
    }

    private static void AddKey(NpgsqlCommand command, GovernanceEntityKind kind, string id)
    {
        command.Parameters.Add(new NpgsqlParameter<short>("kind", (short)kind));
        command.Parameters.Add(new NpgsqlParameter<string>("id", id));
    }

    private static void AddTexts(NpgsqlCommand command, string name, string?[] values) =>
        command.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = values });

    private static void AddBigints(NpgsqlCommand command, string name, long[] values) =>
        command.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = values });

    private static void AddTime(NpgsqlCommand command, string name, DateTimeOffset value) =>
        command.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.TimestampTz) { Value = value });

    private static string? NullableText(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private DateTimeOffset Now() => Truncate(_time.GetUtcNow());

    /// <summary>PostgreSQL keeps microseconds: every time the store writes is cut to them, so it reads back equal.</summary>
    internal static DateTimeOffset Truncate(DateTimeOffset time) => new(time.UtcTicks - (time.UtcTicks % 10), TimeSpan.Zero);
}
