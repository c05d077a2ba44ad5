using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Caching;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.VectorData;
using Npgsql;
using NpgsqlTypes;
using Pgvector;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// The semantic cache's vector collection in PostgreSQL with pgvector (<c>UsePostgreSqlSemanticCache</c>): the table
/// <c>{schema}.semantic_cache</c> (key, partition, expires_at, payload, <c>embedding vector(N)</c>), created with its own
/// code when the host starts (<c>CREATE EXTENSION IF NOT EXISTS vector</c>, under an advisory lock so that instances
/// starting together do not race), with a B-tree index on (partition, expires_at) and, up to 2,000 dimensions, an HNSW index
/// (<c>vector_cosine_ops</c>). Every instance on the same database and schema sees every other's entries.
/// <para>
/// Searches with a filter (the cache layer's: one partition, unexpired) are exact within the rows the filter selects — the
/// rows are selected first (a materialized CTE, by the B-tree index) and ordered by cosine distance — because an
/// approximate HNSW scan filtered afterwards can miss a partition's only near entry; searches without a filter use the HNSW
/// index. Scores are cosine similarities (1 − pgvector's <c>&lt;=&gt;</c> distance). Filters: <c>==</c> on
/// <see cref="SemanticCacheEntry.Key"/> and <see cref="SemanticCacheEntry.Partition"/>, comparisons on
/// <see cref="SemanticCacheEntry.ExpiresAt"/>, joined by <c>&amp;&amp;</c>; anything else is refused.
/// </para>
/// <para>
/// Pruning: at most once per <see cref="PostgreSqlSemanticCacheOptions.PruneInterval"/> per instance, a write deletes the
/// expired rows and the rows past <c>MaxEntries</c> (those expiring first).
/// </para>
/// </summary>
internal sealed partial class PostgreSqlSemanticCacheCollection : VectorStoreCollection<string, SemanticCacheEntry>, IPostgreSqlMigrated, IAsyncDisposable
{
    private const string Columns = "key, partition, expires_at, payload, embedding";
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgreSqlSemanticCacheOptions _options;
    private readonly TimeProvider _time;
    private readonly int _maxEntries;
    private readonly ILogger _logger;
    private readonly string _table;
    private long _nextPruneTicks;
    private volatile bool _initialized;

    public PostgreSqlSemanticCacheCollection(PostgreSqlSemanticCacheOptions options, TimeProvider time, int maxEntries, ILoggerFactory? loggerFactory)
    {
        _options = options;
        _time = time;
        _maxEntries = maxEntries;
        _logger = (ILogger?)loggerFactory?.CreateLogger<PostgreSqlSemanticCacheCollection>() ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        var builder = new NpgsqlDataSourceBuilder(options.ConnectionString);
        builder.UseVector();
        if (loggerFactory is not null)
        {
            builder.UseLoggerFactory(loggerFactory);
        }

        _dataSource = builder.Build();
        _table = $"\"{options.Schema}\".semantic_cache";
    }

    public override string Name => "semantic_cache";

    /// <summary>Creates the extension, schema, table and indexes if missing (the host's start; also on first use).</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await using (var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            var schema = _options.Schema;
            await ExecuteAsync(connection, transaction, "SELECT pg_advisory_xact_lock(hashtext('bifrost.semantic_cache'))", cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, "CREATE EXTENSION IF NOT EXISTS vector", cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, $"CREATE SCHEMA IF NOT EXISTS \"{schema}\"", cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(
                connection,
                transaction,
                $"""
                CREATE TABLE IF NOT EXISTS {_table} (
                    key text PRIMARY KEY,
                    partition text NOT NULL,
                    expires_at bigint NOT NULL,
                    payload bytea NOT NULL,
                    embedding vector({_options.Dimensions}) NOT NULL)
                """,
                cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, $"CREATE INDEX IF NOT EXISTS semantic_cache_partition ON {_table} (partition, expires_at)", cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, $"CREATE INDEX IF NOT EXISTS semantic_cache_expires ON {_table} (expires_at)", cancellationToken).ConfigureAwait(false);
            if (_options.Dimensions <= 2000 && await HasHnswAsync(connection, transaction, cancellationToken).ConfigureAwait(false))
            {
                await ExecuteAsync(connection, transaction, $"CREATE INDEX IF NOT EXISTS semantic_cache_embedding ON {_table} USING hnsw (embedding vector_cosine_ops)", cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        await _dataSource.ReloadTypesAsync(cancellationToken).ConfigureAwait(false); // the vector type may be new to this pool
        _initialized = true;
        Log.Ready(_logger, _options.Schema, _options.Dimensions);
    }

    public override async Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT to_regclass($1) IS NOT NULL");
        command.Parameters.AddWithValue(_table);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true;
    }

    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) => InitializeAsync(cancellationToken);

    public override async Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"DROP TABLE IF EXISTS {_table}");
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        _initialized = false;
    }

    public override async Task<SemanticCacheEntry?> GetAsync(string key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand($"SELECT {Columns} FROM {_table} WHERE key = $1 AND expires_at > $2");
        command.Parameters.AddWithValue(key);
        command.Parameters.AddWithValue(Now);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(reader) : null;
    }

    public override async IAsyncEnumerable<SemanticCacheEntry> GetAsync(Expression<Func<SemanticCacheEntry, bool>> filter, int top, FilteredRecordRetrievalOptions<SemanticCacheEntry>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand();
        var where = Where(filter.Body, filter.Parameters[0], command);
        command.Parameters.AddWithValue(Now);
        command.Parameters.AddWithValue(top);
        command.Parameters.AddWithValue(options?.Skip ?? 0);
        var n = command.Parameters.Count;
        command.CommandText = $"SELECT {Columns} FROM {_table} WHERE ({where}) AND expires_at > ${n - 2} ORDER BY key LIMIT ${n - 1} OFFSET ${n}";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return Read(reader);
        }
    }

    public override async Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand($"DELETE FROM {_table} WHERE key = $1");
        command.Parameters.AddWithValue(key);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public override async Task UpsertAsync(SemanticCacheEntry record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        await using (var command = _dataSource.CreateCommand(
            $"INSERT INTO {_table} ({Columns}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET partition = excluded.partition, expires_at = excluded.expires_at, payload = excluded.payload, embedding = excluded.embedding"))
        {
            command.Parameters.AddWithValue(record.Key);
            command.Parameters.AddWithValue(record.Partition);
            command.Parameters.AddWithValue(record.ExpiresAt);
            command.Parameters.AddWithValue(record.Payload);
            command.Parameters.AddWithValue(new Vector(record.Embedding));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var now = _time.GetUtcNow().UtcTicks;
        var due = Interlocked.Read(ref _nextPruneTicks);
        if (now >= due && Interlocked.CompareExchange(ref _nextPruneTicks, now + _options.PruneInterval.Ticks, due) == due)
        {
            try
            {
                await PruneAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
            {
                Log.PruneFailed(_logger, ex);
            }
        }
    }

    public override async Task UpsertAsync(IEnumerable<SemanticCacheEntry> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        foreach (var record in records)
        {
            await UpsertAsync(record, cancellationToken).ConfigureAwait(false);
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<SemanticCacheEntry>> SearchAsync<TInput>(TInput searchValue, int top, VectorSearchOptions<SemanticCacheEntry>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        ReadOnlyMemory<float> query = searchValue switch
        {
            ReadOnlyMemory<float> memory => memory,
            float[] array => array,
            Microsoft.Extensions.AI.Embedding<float> embedding => embedding.Vector,
            _ => throw new NotSupportedException($"The PostgreSQL semantic cache searches with ReadOnlyMemory<float>, float[] or Embedding<float>, not {typeof(TInput).Name}."),
        };
        await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand();
        command.Parameters.AddWithValue(new Vector(query));
        var where = options?.Filter is { } filter ? Where(filter.Body, filter.Parameters[0], command) : "true";
        command.Parameters.AddWithValue(Now);
        command.Parameters.AddWithValue(top);
        command.Parameters.AddWithValue(options?.Skip ?? 0);
        var n = command.Parameters.Count;
        var minScore = options?.ScoreThreshold is { } threshold ? $" WHERE 1 - distance >= {threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}" : string.Empty;
        command.CommandText = options?.Filter is null
            ? $"SELECT * FROM (SELECT {Columns}, embedding <=> $1 AS distance FROM {_table} WHERE expires_at > ${n - 2} ORDER BY embedding <=> $1 LIMIT ${n - 1} + ${n}) ranked{minScore} ORDER BY distance OFFSET ${n}"
            : $"""
              WITH candidates AS MATERIALIZED (SELECT {Columns} FROM {_table} WHERE ({where}) AND expires_at > ${n - 2})
              SELECT * FROM (SELECT {Columns}, embedding <=> $1 AS distance FROM candidates) ranked{minScore}
              ORDER BY distance, key LIMIT ${n - 1} OFFSET ${n}
              """;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var distance = reader.GetDouble(5);
            yield return new VectorSearchResult<SemanticCacheEntry>(Read(reader), 1 - distance);
        }
    }

    public override object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : serviceKey is null && serviceType == typeof(NpgsqlDataSource) ? _dataSource : null;

    /// <summary>Deletes the expired rows, then the rows past <c>MaxEntries</c> (the ones expiring first); returns how many went.</summary>
    internal async Task<int> PruneAsync(CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH expired AS (DELETE FROM {_table} WHERE expires_at <= $1 RETURNING 1),
                 surplus AS (DELETE FROM {_table} WHERE key IN (SELECT key FROM {_table} WHERE expires_at > $1 ORDER BY expires_at DESC, key OFFSET $2) RETURNING 1)
            SELECT (SELECT count(*) FROM expired) + (SELECT count(*) FROM surplus)
            """);
        command.Parameters.AddWithValue(Now);
        command.Parameters.AddWithValue(_maxEntries);
        var removed = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        if (removed > 0)
        {
            Log.Pruned(_logger, removed, _options.Schema);
        }

        return removed;
    }

    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return _dataSource.DisposeAsync();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _dataSource.Dispose();
        }

        base.Dispose(disposing);
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private async Task EnsureInitializedAsync(CancellationToken cancellationToken)
    {
        if (!_initialized)
        {
            await InitializeAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static SemanticCacheEntry Read(NpgsqlDataReader reader) => new()
    {
        Key = reader.GetString(0),
        Partition = reader.GetString(1),
        ExpiresAt = reader.GetInt64(2),
        Payload = reader.GetFieldValue<byte[]>(3),
        Embedding = reader.GetFieldValue<Vector>(4).Memory,
    };

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether the installed pgvector has HNSW (0.5.0 and later).</summary>
    private static async Task<bool> HasHnswAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT 1 FROM pg_am WHERE amname = 'hnsw'", connection, transaction);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
    }

    /// <summary>Translates the supported filters to SQL, adding their values as parameters.</summary>
    private static string Where(Expression expression, ParameterExpression record, NpgsqlCommand command)
    {
        switch (expression)
        {
            case BinaryExpression { NodeType: ExpressionType.AndAlso } and:
                return $"({Where(and.Left, record, command)}) AND ({Where(and.Right, record, command)})";
            case BinaryExpression binary when binary.NodeType is ExpressionType.Equal or ExpressionType.GreaterThan or ExpressionType.GreaterThanOrEqual or ExpressionType.LessThan or ExpressionType.LessThanOrEqual:
                var (member, value, flipped) = binary.Left is MemberExpression left && left.Expression == record
                    ? (left, binary.Right, false)
                    : binary.Right is MemberExpression right && right.Expression == record ? (right, binary.Left, true) : throw Unsupported(expression);
                var column = member.Member.Name switch
                {
                    nameof(SemanticCacheEntry.Key) when binary.NodeType == ExpressionType.Equal => "key",
                    nameof(SemanticCacheEntry.Partition) when binary.NodeType == ExpressionType.Equal => "partition",
                    nameof(SemanticCacheEntry.ExpiresAt) => "expires_at",
                    _ => throw Unsupported(expression),
                };
                var op = (binary.NodeType, flipped) switch
                {
                    (ExpressionType.Equal, _) => "=",
                    (ExpressionType.GreaterThan, false) or (ExpressionType.LessThan, true) => ">",
                    (ExpressionType.GreaterThanOrEqual, false) or (ExpressionType.LessThanOrEqual, true) => ">=",
                    (ExpressionType.LessThan, false) or (ExpressionType.GreaterThan, true) => "<",
                    _ => "<=",
                };
                var constant = Expression.Lambda(value).Compile(preferInterpretation: true).DynamicInvoke();
                command.Parameters.Add(new NpgsqlParameter { Value = constant ?? DBNull.Value, NpgsqlDbType = column == "expires_at" ? NpgsqlDbType.Bigint : NpgsqlDbType.Text });
                return $"{column} {op} ${command.Parameters.Count}";
            default:
                throw Unsupported(expression);
        }
    }

    private static NotSupportedException Unsupported(Expression expression) =>
        new($"The PostgreSQL semantic cache supports filters of == on Key and Partition and comparisons on ExpiresAt joined by &&, not '{expression}'.");

    private static partial class Log
    {
        [LoggerMessage(EventId = 1560, Level = LogLevel.Information, Message = "PostgreSQL semantic cache ready: schema {Schema}, vector({Dimensions}).")]
        public static partial void Ready(ILogger logger, string schema, int dimensions);

        [LoggerMessage(EventId = 1561, Level = LogLevel.Debug, Message = "PostgreSQL semantic cache: {Count} expired or surplus entries deleted from schema {Schema}.")]
        public static partial void Pruned(ILogger logger, int count, string schema);

        [LoggerMessage(EventId = 1562, Level = LogLevel.Warning, Message = "PostgreSQL semantic cache: pruning failed; retried after the next interval.")]
        public static partial void PruneFailed(ILogger logger, Exception exception);
    }
}
