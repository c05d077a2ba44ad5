using Bifrost.Middleware.Governance;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// An <see cref="IGovernanceCounterStore"/> in PostgreSQL: the budget and rate-limit windows are rows of
/// <c>gov_counters</c> (scope, window start, window end, requests, tokens, cost as <c>numeric</c>), so every instance
/// sharing the database and schema enforces one limit together.
/// </summary>
/// <remarks>
/// <para><see cref="TryAdmitAsync"/> is <b>one round trip</b>: a call of the function <c>gov_admit</c> that, in one
/// transaction, creates the missing windows, locks all the request's windows in key order (so concurrent admissions and
/// settlements over overlapping windows queue behind each other and never deadlock), finds the first check that refuses,
/// and otherwise adds the request and its reservations. Admissions of one scope are therefore serialized by the
/// database: no two instances both see the last free slot.</para>
/// <para><see cref="SettleAsync"/> is one statement for all its charges (an upsert that adds the deltas, in key order).</para>
/// <para>Admissions and settlements commit without waiting for the WAL flush (their own transactions only), so the row
/// locks of a hot window are held for microseconds, not for a disk flush: a crash of the database server may lose the
/// last fraction of a second of counts (a small under-count until the window ends), never an entity or a ledger row.</para>
/// <para>Windows that ended more than <see cref="ExpiryGrace"/> ago are deleted by <see cref="DeleteExpiredAsync"/> (run
/// every minute by the host when registered with <c>UsePostgreSqlGovernanceStore</c>), skipping rows in use.</para>
/// </remarks>
public sealed class PostgreSqlGovernanceCounterStore : IGovernanceCounterStore
{
    /// <summary>How long after its end a window is kept (a late settlement still lands in it).</summary>
    public static readonly TimeSpan ExpiryGrace = TimeSpan.FromMinutes(5);

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly PostgreSqlInitializer _initializer;
    private readonly string _admitSql;
    private readonly string _settleSql;
    private readonly string _countsSql;
    private readonly string _expireSql;

    /// <summary>Creates a store on <paramref name="dataSource"/> (not disposed by the store) in <paramref name="schema"/>.</summary>
    /// <param name="dataSource">Where the database is.</param>
    /// <param name="schema">The schema holding the tables (see <see cref="PostgreSqlStoreOptions.Schema"/>).</param>
    /// <param name="timeProvider">The clock deciding which windows expired.</param>
    /// <param name="logger">Logs migrations; optional.</param>
    public PostgreSqlGovernanceCounterStore(NpgsqlDataSource dataSource, string schema, TimeProvider timeProvider, ILogger<PostgreSqlGovernanceCounterStore>? logger = null)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        _time = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        PostgreSqlStoreOptions.ValidateSchema(schema);
        Schema = schema;
        _initializer = new PostgreSqlInitializer(dataSource, schema, (ILogger?)logger ?? NullLogger.Instance);

        var q = PostgreSqlSchema.Quote(schema);
        _admitSql = $"SELECT r_index, r_requests, r_tokens, r_cost FROM {q}.gov_admit(@scope, @start, @end, @max_requests, @max_tokens, @max_cost, @tokens, @cost)";
        _settleSql = $"""
            WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true))
            INSERT INTO {q}.gov_counters AS g (scope, window_start, window_end, tokens, cost_usd)
            SELECT u.s COLLATE "C", u.ws, u.we, sum(u.t)::bigint, sum(u.c)
            FROM unnest(@scope, @start, @end, @tokens, @cost) AS u(s, ws, we, t, c), no_flush
            GROUP BY 1, 2, 3
            ORDER BY 1, 2, 3
            ON CONFLICT (scope, window_start, window_end) DO UPDATE SET tokens = g.tokens + excluded.tokens, cost_usd = g.cost_usd + excluded.cost_usd
            """;
        _countsSql = $"SELECT requests, tokens, cost_usd FROM {q}.gov_counters WHERE scope = @scope AND window_start = @start AND window_end = @end";
        _expireSql = $"""
            DELETE FROM {q}.gov_counters g USING (
                SELECT scope, window_start, window_end FROM {q}.gov_counters WHERE window_end < @cutoff
                ORDER BY scope, window_start, window_end FOR UPDATE SKIP LOCKED) e
            WHERE g.scope = e.scope AND g.window_start = e.window_start AND g.window_end = e.window_end
            """;
    }

    /// <summary>The schema holding the tables.</summary>
    public string Schema { get; }

    /// <summary>Creates or migrates the schema now (otherwise done on first use). Safe to call from several instances at once.</summary>
    /// <param name="cancellationToken">Cancels the wait (a migration already started still completes or rolls back).</param>
    public Task InitializeAsync(CancellationToken cancellationToken) => _initializer.EnsureAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask<GovernanceAdmission> TryAdmitAsync(IReadOnlyList<GovernanceCounterCheck> checks, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checks);
        if (checks.Count == 0)
        {
            return GovernanceAdmission.Allowed;
        }

        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var n = checks.Count;
        var scope = new string[n];
        var start = new DateTimeOffset[n];
        var end = new DateTimeOffset[n];
        var maxRequests = new long?[n];
        var maxTokens = new long?[n];
        var maxCost = new decimal?[n];
        var tokens = new long[n];
        var cost = new decimal[n];
        for (var i = 0; i < n; i++)
        {
            var check = checks[i];
            scope[i] = check.Scope ?? throw new ArgumentException("A check has no scope.", nameof(checks));
            start[i] = PostgreSqlGovernanceStore.Truncate(check.WindowStart);
            end[i] = PostgreSqlGovernanceStore.Truncate(check.WindowEnd);
            maxRequests[i] = check.MaxRequests;
            maxTokens[i] = check.MaxTokens;
            maxCost[i] = check.MaxCostUsd;
            tokens[i] = check.ReservedTokens;
            cost[i] = check.ReservedCostUsd;
        }

        await using var command = _dataSource.CreateCommand(_admitSql);
        AddWindows(command, scope, start, end);
        command.Parameters.Add(new NpgsqlParameter("max_requests", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = maxRequests });
        command.Parameters.Add(new NpgsqlParameter("max_tokens", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = maxTokens });
        command.Parameters.Add(new NpgsqlParameter("max_cost", NpgsqlDbType.Array | NpgsqlDbType.Numeric) { Value = maxCost });
        command.Parameters.Add(new NpgsqlParameter("tokens", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = tokens });
        command.Parameters.Add(new NpgsqlParameter("cost", NpgsqlDbType.Array | NpgsqlDbType.Numeric) { Value = cost });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException("gov_admit returned no row.");
        }

        var index = reader.GetInt32(0);
        return index < 0
            ? GovernanceAdmission.Allowed
            : new GovernanceAdmission(false, index, new GovernanceCounts(reader.GetInt64(1), reader.GetInt64(2), reader.GetDecimal(3)));
    }

    /// <inheritdoc />
    public async ValueTask SettleAsync(IReadOnlyList<GovernanceCounterCharge> charges, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(charges);
        if (charges.Count == 0)
        {
            return;
        }

        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var n = charges.Count;
        var scope = new string[n];
        var start = new DateTimeOffset[n];
        var end = new DateTimeOffset[n];
        var tokens = new long[n];
        var cost = new decimal[n];
        for (var i = 0; i < n; i++)
        {
            var charge = charges[i];
            scope[i] = charge.Scope ?? throw new ArgumentException("A charge has no scope.", nameof(charges));
            start[i] = PostgreSqlGovernanceStore.Truncate(charge.WindowStart);
            end[i] = PostgreSqlGovernanceStore.Truncate(charge.WindowEnd);
            tokens[i] = charge.Tokens;
            cost[i] = charge.CostUsd;
        }

        await using var command = _dataSource.CreateCommand(_settleSql);
        AddWindows(command, scope, start, end);
        command.Parameters.Add(new NpgsqlParameter("tokens", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = tokens });
        command.Parameters.Add(new NpgsqlParameter("cost", NpgsqlDbType.Array | NpgsqlDbType.Numeric) { Value = cost });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<GovernanceCounts> GetCountsAsync(string scope, DateTimeOffset windowStart, DateTimeOffset windowEnd, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_countsSql);
        command.Parameters.Add(new NpgsqlParameter<string>("scope", scope));
        command.Parameters.Add(new NpgsqlParameter("start", NpgsqlDbType.TimestampTz) { Value = PostgreSqlGovernanceStore.Truncate(windowStart) });
        command.Parameters.Add(new NpgsqlParameter("end", NpgsqlDbType.TimestampTz) { Value = PostgreSqlGovernanceStore.Truncate(windowEnd) });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new GovernanceCounts(reader.GetInt64(0), reader.GetInt64(1), reader.GetDecimal(2))
            : default;
    }

    /// <summary>Deletes the windows that ended more than <see cref="ExpiryGrace"/> ago (rows locked by a running admission or settlement are left for the next run).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many windows were deleted.</returns>
    public async ValueTask<int> DeleteExpiredAsync(CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_expireSql);
        command.Parameters.Add(new NpgsqlParameter("cutoff", NpgsqlDbType.TimestampTz) { Value = PostgreSqlGovernanceStore.Truncate(_time.GetUtcNow() - ExpiryGrace) });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static void AddWindows(NpgsqlCommand command, string[] scope, DateTimeOffset[] start, DateTimeOffset[] end)
    {
        command.Parameters.Add(new NpgsqlParameter("scope", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = scope });
        command.Parameters.Add(new NpgsqlParameter("start", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = start });
        command.Parameters.Add(new NpgsqlParameter("end", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = end });
    }
}
