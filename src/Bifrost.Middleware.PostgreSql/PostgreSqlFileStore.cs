using System.Buffers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// An <see cref="IFileStore"/> in PostgreSQL, so batch input and output files are reachable from every instance that
/// shares the database: a batch created on one instance can run on another, and its results can be downloaded from any.
/// </summary>
/// <remarks>
/// <para>Layout: a <c>files</c> row per file (metadata) and its content as rows of <c>file_chunks(file_id, start, length, data bytea)</c>,
/// where <c>start</c> is the row's byte offset. Contents are streamed both ways, one row at a time: memory per upload or
/// download is about one chunk (<see cref="PostgreSqlStoreOptions.FileChunkSize"/>, 1 MiB by default), never the file.
/// Chunked <c>bytea</c> rather than large objects: plain rows are covered by the ordinary backups, replication and
/// <c>ON DELETE CASCADE</c>, need no <c>lo_unlink</c> bookkeeping, and need no open transaction while being read.</para>
/// <para>An upload is one transaction: a failed, cancelled or too large upload leaves nothing behind.</para>
/// <para>A file written line by line (<see cref="OpenAppendAsync"/>, batch outputs) gets one row per line, each committed
/// before <see cref="IAppendableFile.AppendLineAsync"/> returns (without waiting for the server's WAL flush: a line is as
/// safe as in the file-system store, where it is handed to the operating system). A row is a whole line or nothing, so a crash can never
/// leave half a line: on reopen the file holds exactly the lines appended before (content not ending with a newline,
/// which only other writers could leave, is cut back to its last newline, as the file-system store does).</para>
/// </remarks>
public sealed class PostgreSqlFileStore : IFileStore
{
    private const string FileColumns = "id, bytes, created_at, filename, purpose, owner";

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly int _chunkSize;
    private readonly PostgreSqlInitializer _initializer;
    private readonly string _q;
    private readonly string _appendSql;

    /// <summary>Creates a store on <paramref name="dataSource"/> (not disposed by the store) in <paramref name="schema"/>.</summary>
    /// <param name="dataSource">Where the database is.</param>
    /// <param name="schema">The schema holding the tables (see <see cref="PostgreSqlStoreOptions.Schema"/>).</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="chunkSize">Bytes per content row of an uploaded file (64 KiB to 64 MiB).</param>
    /// <param name="logger">Logs migrations; optional.</param>
    public PostgreSqlFileStore(NpgsqlDataSource dataSource, string schema, TimeProvider timeProvider, int chunkSize = 1024 * 1024, ILogger<PostgreSqlFileStore>? logger = null)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        _time = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        PostgreSqlStoreOptions.ValidateSchema(schema);
        PostgreSqlStoreOptions.ValidateChunkSize(chunkSize);
        _chunkSize = chunkSize;
        _initializer = new PostgreSqlInitializer(dataSource, schema, (ILogger?)logger ?? NullLogger.Instance);
        _q = PostgreSqlSchema.Quote(schema);

        // A line is committed without waiting for the WAL flush (synchronous_commit off, for this transaction only): it
        // is safe in the database server once the call returns, as the file-system store's lines are safe in the
        // operating system; only a crash of the database server itself may lose the last moment's lines, which a
        // resumed batch then runs again. About 25 times faster per line than a flushed commit.
        _appendSql = $"WITH c AS (SELECT set_config('synchronous_commit', 'off', true)) INSERT INTO {_q}.file_chunks (file_id, start, length, data) SELECT @id, @start, @length, @data FROM c";
    }

    /// <summary>Creates or migrates the schema now (otherwise done on first use).</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public Task InitializeAsync(CancellationToken cancellationToken) => _initializer.EnsureAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask<StoredFile> SaveAsync(NewFile file, Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(content);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var createdAt = _time.GetUtcNow().ToUnixTimeSeconds();

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var create = new NpgsqlCommand($"DELETE FROM {_q}.files WHERE id = @id; INSERT INTO {_q}.files (id, filename, purpose, owner, bytes, created_at, visible) VALUES (@id, @filename, @purpose, @owner, 0, @created_at, false)", connection, transaction))
        {
            Add(create, "id", file.Id);
            Add(create, "filename", file.Filename);
            Add(create, "purpose", file.Purpose);
            Add(create, "owner", file.Owner);
            Add(create, "created_at", createdAt);
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        long total = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(_chunkSize);
        try
        {
            await using var insert = new NpgsqlCommand($"INSERT INTO {_q}.file_chunks (file_id, start, length, data) VALUES (@id, @start, @length, @data)", connection, transaction);
            Add(insert, "id", file.Id);
            var start = new NpgsqlParameter<long> { ParameterName = "start" };
            var length = new NpgsqlParameter<int> { ParameterName = "length" };
            var data = new NpgsqlParameter<ReadOnlyMemory<byte>>("data", NpgsqlDbType.Bytea);
            insert.Parameters.Add(start);
            insert.Parameters.Add(length);
            insert.Parameters.Add(data);
            await insert.PrepareAsync(cancellationToken).ConfigureAwait(false);
            while (true)
            {
                var filled = await content.ReadAtLeastAsync(buffer.AsMemory(0, _chunkSize), _chunkSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                if (filled == 0)
                {
                    break;
                }

                if (total + filled > maxBytes)
                {
                    throw TooLarge(maxBytes); // the transaction is rolled back: nothing is kept
                }

                start.TypedValue = total;
                length.TypedValue = filled;
                data.TypedValue = buffer.AsMemory(0, filled);
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                total += filled;
                if (filled < _chunkSize)
                {
                    break;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        await using (var publish = new NpgsqlCommand($"UPDATE {_q}.files SET bytes = @bytes, visible = true WHERE id = @id", connection, transaction))
        {
            Add(publish, "id", file.Id);
            Add(publish, "bytes", total);
            await publish.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new StoredFile { Id = file.Id, Bytes = total, CreatedAt = createdAt, Filename = file.Filename, Purpose = file.Purpose, Owner = file.Owner };
    }

    /// <inheritdoc />
    public async ValueTask<StoredFile?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand($"SELECT {FileColumns} FROM {_q}.files WHERE id = @id AND visible");
        Add(command, "id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadFile(reader) : null;
    }

    /// <inheritdoc />
    public async ValueTask<Stream?> OpenReadAsync(string id, CancellationToken cancellationToken)
    {
        var file = await GetAsync(id, cancellationToken).ConfigureAwait(false);
        return file is null ? null : new ChunkReadStream(this, id, file.Bytes);
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand($"DELETE FROM {_q}.files WHERE id = @id AND visible");
        Add(command, "id", id);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <inheritdoc />
    public async ValueTask<long> GetOwnerBytesAsync(string owner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(owner);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand($"SELECT COALESCE(sum(bytes), 0)::bigint FROM {_q}.files WHERE owner = @owner AND visible");
        Add(command, "owner", owner);
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StoredFile>> ListAsync(string owner, string? purpose, int limit, string? after, bool ascending, CancellationToken cancellationToken)
    {
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var (compare, order) = ascending ? (">", "ASC") : ("<", "DESC");
        const string Filter = "owner = @owner AND visible AND (@purpose IS NULL OR purpose = @purpose)";
        await using var command = _dataSource.CreateCommand($"""
            SELECT {FileColumns} FROM {_q}.files
            WHERE {Filter}
              AND (@after IS NULL OR (created_at, id COLLATE "C") {compare} (SELECT created_at, id COLLATE "C" FROM {_q}.files WHERE id = @after AND {Filter}))
            ORDER BY created_at {order}, id COLLATE "C" {order}
            LIMIT @limit
            """);
        Add(command, "owner", owner);
        command.Parameters.Add(new NpgsqlParameter("purpose", NpgsqlDbType.Text) { Value = (object?)purpose ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("after", NpgsqlDbType.Text) { Value = (object?)after ?? DBNull.Value });
        Add(command, "limit", Math.Max(0, limit));
        var files = new List<StoredFile>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            files.Add(ReadFile(reader));
        }

        return files;
    }

    /// <inheritdoc />
    public async ValueTask<IAppendableFile> OpenAppendAsync(NewFile file, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using (var create = _dataSource.CreateCommand($"INSERT INTO {_q}.files (id, filename, purpose, owner, bytes, created_at, visible) VALUES (@id, @filename, @purpose, @owner, 0, @created_at, false) ON CONFLICT (id) DO NOTHING"))
        {
            Add(create, "id", file.Id);
            Add(create, "filename", file.Filename);
            Add(create, "purpose", file.Purpose);
            Add(create, "owner", file.Owner);
            Add(create, "created_at", _time.GetUtcNow().ToUnixTimeSeconds());
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var length = await CutPartialLineAsync(file.Id, cancellationToken).ConfigureAwait(false);
        return new AppendableFile(this, file, length);
    }

    internal static BifrostException TooLarge(long maxBytes) =>
        BifrostException.Gateway(413, "invalid_request_error", "file_too_large", $"The file is larger than the limit of {maxBytes} bytes.", "file");

    /// <summary>Reads the rows starting in [<paramref name="position"/>, position + one chunk), in order.</summary>
    internal async Task<List<byte[]>> ReadRowsAsync(string id, long position, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand($"SELECT start, data FROM {_q}.file_chunks WHERE file_id = @id AND start >= @position AND start < @end ORDER BY start");
        Add(command, "id", id);
        Add(command, "position", position);
        Add(command, "end", position + _chunkSize);
        var rows = new List<byte[]>();
        var expected = position;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (reader.GetInt64(0) != expected)
            {
                throw new IOException($"The content of file '{id}' has a gap at byte {expected} (was it deleted or rewritten while being read?).");
            }

            var data = reader.GetFieldValue<byte[]>(1);
            rows.Add(data);
            expected += data.Length;
        }

        return rows;
    }

    /// <summary>
    /// Cuts anything after the file's last newline, as the file-system store does after a crash. Rows appended line by
    /// line always end with one, so this only trims content that was not written by <see cref="IAppendableFile.AppendLineAsync"/>.
    /// </summary>
    /// <returns>The length of the content that remains.</returns>
    private async Task<long> CutPartialLineAsync(string id, CancellationToken cancellationToken)
    {
        while (true)
        {
            long start;
            byte[] data;
            await using (var last = _dataSource.CreateCommand($"SELECT start, data FROM {_q}.file_chunks WHERE file_id = @id ORDER BY start DESC LIMIT 1"))
            {
                Add(last, "id", id);
                await using var reader = await last.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return 0;
                }

                start = reader.GetInt64(0);
                data = reader.GetFieldValue<byte[]>(1);
            }

            if (data.Length > 0 && data[^1] == (byte)'\n')
            {
                return start + data.Length;
            }

            var newline = Array.LastIndexOf(data, (byte)'\n');
            await using var cut = _dataSource.CreateCommand(newline >= 0
                ? $"UPDATE {_q}.file_chunks SET data = @data, length = @length WHERE file_id = @id AND start = @start"
                : $"DELETE FROM {_q}.file_chunks WHERE file_id = @id AND start = @start");
            Add(cut, "id", id);
            Add(cut, "start", start);
            if (newline >= 0)
            {
                cut.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>("data", NpgsqlDbType.Bytea) { TypedValue = data.AsMemory(0, newline + 1) });
                Add(cut, "length", newline + 1);
            }

            await cut.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            if (newline >= 0)
            {
                return start + newline + 1;
            }
        }
    }

    private async Task<long> ContentLengthAsync(string id, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand($"SELECT COALESCE(max(start + length), 0) FROM {_q}.file_chunks WHERE file_id = @id");
        Add(command, "id", id);
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private static StoredFile ReadFile(NpgsqlDataReader reader) => new()
    {
        Id = reader.GetString(0),
        Bytes = reader.GetInt64(1),
        CreatedAt = reader.GetInt64(2),
        Filename = reader.GetString(3),
        Purpose = reader.GetString(4),
        Owner = reader.GetString(5),
    };

    private static void Add<T>(NpgsqlCommand command, string name, T value) =>
        command.Parameters.Add(new NpgsqlParameter<T>(name, value));

    private sealed class AppendableFile(PostgreSqlFileStore store, NewFile file, long length) : IAppendableFile
    {
        private long _length = length;
        private bool _committed;

        public string Id => file.Id;

        public long Length => Volatile.Read(ref _length);

        public ValueTask<Stream> OpenReadAsync(CancellationToken cancellationToken) =>
            ValueTask.FromResult<Stream>(new ChunkReadStream(store, file.Id, limit: null));

        public async ValueTask AppendLineAsync(ReadOnlyMemory<byte> line, CancellationToken cancellationToken)
        {
            var buffer = LineJoin.Rent(line, out var rowLength);
            try
            {
                await AppendRowAsync(buffer.AsMemory(0, rowLength), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>Several lines in one row (a row holds whole lines): one round trip instead of one per line.</summary>
        public async ValueTask AppendLinesAsync(IReadOnlyList<ReadOnlyMemory<byte>> lines, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(lines);
            if (lines.Count == 0)
            {
                return;
            }

            var buffer = LineJoin.Rent(lines, out var rowLength);
            try
            {
                await AppendRowAsync(buffer.AsMemory(0, rowLength), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        private async Task AppendRowAsync(ReadOnlyMemory<byte> row, CancellationToken cancellationToken)
        {
            while (true)
            {
                var start = Length;
                await using var command = store._dataSource.CreateCommand(store._appendSql);
                Add(command, "id", file.Id);
                Add(command, "start", start);
                Add(command, "length", row.Length);
                command.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>("data", NpgsqlDbType.Bytea) { TypedValue = row });
                try
                {
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    Volatile.Write(ref _length, start + row.Length);
                    return;
                }
                catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
                {
                    // Another writer (a worker whose lease was taken over) appended meanwhile: append after its line.
                    Volatile.Write(ref _length, await store.ContentLengthAsync(file.Id, cancellationToken).ConfigureAwait(false));
                }
            }
        }

        public async ValueTask<StoredFile> CommitAsync(CancellationToken cancellationToken)
        {
            var createdAt = store._time.GetUtcNow().ToUnixTimeSeconds();
            await using var command = store._dataSource.CreateCommand($"""
                UPDATE {store._q}.files
                SET bytes = (SELECT COALESCE(max(start + length), 0) FROM {store._q}.file_chunks WHERE file_id = @id), created_at = @created_at, visible = true
                WHERE id = @id
                RETURNING bytes
                """);
            Add(command, "id", file.Id);
            Add(command, "created_at", createdAt);
            var bytes = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new IOException($"The file '{file.Id}' was deleted while it was written."));
            Volatile.Write(ref _length, bytes);
            _committed = true;
            return new StoredFile { Id = file.Id, Bytes = bytes, CreatedAt = createdAt, Filename = file.Filename, Purpose = file.Purpose, Owner = file.Owner };
        }

        /// <summary>A file closed empty and never committed leaves nothing behind (no row for an error file without errors).</summary>
        public async ValueTask DisposeAsync()
        {
            if (_committed || Length != 0)
            {
                return;
            }

            try
            {
                await using var command = store._dataSource.CreateCommand($"DELETE FROM {store._q}.files WHERE id = @id AND NOT visible AND NOT EXISTS (SELECT 1 FROM {store._q}.file_chunks WHERE file_id = @id)");
                Add(command, "id", file.Id);
                await command.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (NpgsqlException)
            {
                // Only tidiness: an invisible empty row is never listed or served.
            }
        }
    }
}
