using System.Security.Cryptography;
using System.Text;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>The PostgreSQL file store: streamed round trips, limits, append/reopen, listing, and sharing between store instances.</summary>
public sealed class PostgreSqlFileStoreTests : IAsyncDisposable
{
    private const int SmallChunk = 64 * 1024;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private NpgsqlDataSource? _dataSource;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private NpgsqlDataSource DataSource => _dataSource ??= PostgresTestDatabase.CreateDataSource();

    private PostgreSqlFileStore Store(int chunkSize = SmallChunk) => new(DataSource, _schema, _time, chunkSize);

    private static NewFile File(string id, string owner = "me", string purpose = "batch") => new() { Id = id, Filename = id + ".jsonl", Purpose = purpose, Owner = owner };

    [Fact]
    public async Task An_appendable_file_closed_empty_and_uncommitted_leaves_no_row_and_lines_appended_at_once_read_back_as_lines()
    {
        var store = Store();
        await using (await store.OpenAppendAsync(File("file-empty"), Ct))
        {
        }

        Assert.Equal(0L, await ScalarAsync<long>($"SELECT count(*) FROM \"{_schema}\".files WHERE id = 'file-empty'"));

        await using (var file = await store.OpenAppendAsync(File("file-bulk"), Ct))
        {
            await file.AppendLineAsync("{\"a\":1}"u8.ToArray(), Ct);
            await file.AppendLinesAsync(["{\"b\":2}"u8.ToArray(), "{\"c\":3}"u8.ToArray()], Ct);
            Assert.Equal(24, (await file.CommitAsync(Ct)).Bytes);
        }

        await using var content = await store.OpenReadAsync("file-bulk", Ct);
        using var reader = new StreamReader(content!);
        Assert.Equal("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n", await reader.ReadToEndAsync(Ct));
    }

    [Theory]
    [InlineData(SmallChunk, 5 * 1024 * 1024 + 12_345)]
    [InlineData(1024 * 1024, 3 * 1024 * 1024)]
    public async Task Multi_megabyte_file_round_trips_streamed_in_chunks(int chunkSize, int size)
    {
        var store = Store(chunkSize);
        var source = new PatternStream(size);
        var stored = await store.SaveAsync(File("file-big"), source, maxBytes: 100L * 1024 * 1024, Ct);

        Assert.Equal(size, stored.Bytes);
        Assert.True(source.LargestRead <= chunkSize, $"the upload read at most one chunk at a time (largest read {source.LargestRead})");
        Assert.Equal((size + chunkSize - 1) / chunkSize, await ScalarAsync<long>($"SELECT count(*) FROM \"{_schema}\".file_chunks WHERE file_id = 'file-big'"));

        // Read back through a second store instance (another app instance) with small reads, hashing as it goes.
        await using var content = await Store(chunkSize).OpenReadAsync("file-big", Ct);
        Assert.NotNull(content);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[7000];
        long total = 0;
        int read;
        while ((read = await content.ReadAsync(buffer, Ct)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            total += read;
        }

        Assert.Equal(size, total);
        Assert.Equal(PatternStream.Sha256(size), hash.GetHashAndReset());
        var meta = await Store().GetAsync("file-big", Ct);
        Assert.Equal(size, meta!.Bytes);
        Assert.Equal(_time.GetUtcNow().ToUnixTimeSeconds(), meta.CreatedAt);
    }

    [Fact]
    public async Task Upload_over_the_limit_keeps_nothing()
    {
        var store = Store();
        var error = await Assert.ThrowsAsync<BifrostException>(() => store.SaveAsync(File("file-huge"), new PatternStream(300_000), maxBytes: 200_000, Ct).AsTask());
        Assert.Equal(413, error.StatusCode);
        Assert.Null(await store.GetAsync("file-huge", Ct));
        Assert.Equal(0L, await ScalarAsync<long>($"SELECT count(*) FROM \"{_schema}\".file_chunks"));
        Assert.Equal(0L, await ScalarAsync<long>($"SELECT count(*) FROM \"{_schema}\".files"));
    }

    [Fact]
    public async Task Failed_upload_keeps_nothing()
    {
        var store = Store();
        await Assert.ThrowsAsync<IOException>(() => store.SaveAsync(File("file-broken"), new PatternStream(500_000, failAfter: 200_000), maxBytes: 10_000_000, Ct).AsTask());
        Assert.Null(await store.GetAsync("file-broken", Ct));
        Assert.Null(await store.OpenReadAsync("file-broken", Ct));
        Assert.Equal(0L, await ScalarAsync<long>($"SELECT count(*) FROM \"{_schema}\".file_chunks"));
    }

    [Fact]
    public async Task Appended_lines_survive_a_reopen_and_become_visible_on_commit()
    {
        var store = Store();
        await using (var first = await store.OpenAppendAsync(File("file-out", purpose: "batch_output"), Ct))
        {
            Assert.Equal(0, first.Length);
            await first.AppendLineAsync("{\"custom_id\":\"a\"}"u8.ToArray(), Ct);
            await first.AppendLineAsync("{\"custom_id\":\"b\"}"u8.ToArray(), Ct);
            Assert.Equal(36, first.Length);
        }

        // Not committed: invisible to readers and listings, but a reopen (another instance taking over) sees the lines.
        Assert.Null(await store.GetAsync("file-out", Ct));
        Assert.Empty(await store.ListAsync("me", null, 10, null, ascending: true, Ct));

        await using var reopened = await Store().OpenAppendAsync(File("file-out", purpose: "batch_output"), Ct);
        Assert.Equal(36, reopened.Length);
        Assert.Equal("{\"custom_id\":\"a\"}\n{\"custom_id\":\"b\"}\n", await ReadAllAsync(await reopened.OpenReadAsync(Ct)));
        await reopened.AppendLineAsync("{\"custom_id\":\"c\"}"u8.ToArray(), Ct);

        _time.Advance(TimeSpan.FromMinutes(1));
        var committed = await reopened.CommitAsync(Ct);
        Assert.Equal(54, committed.Bytes);
        Assert.Equal(_time.GetUtcNow().ToUnixTimeSeconds(), committed.CreatedAt);
        var meta = await store.GetAsync("file-out", Ct);
        Assert.Equal(54, meta!.Bytes);
        Assert.Equal("batch_output", meta.Purpose);
        Assert.Equal("{\"custom_id\":\"a\"}\n{\"custom_id\":\"b\"}\n{\"custom_id\":\"c\"}\n", await ReadAllAsync((await store.OpenReadAsync("file-out", Ct))!));
    }

    [Fact]
    public async Task Reopen_cuts_a_partial_last_line()
    {
        var store = Store();
        await using (var file = await store.OpenAppendAsync(File("file-cut"), Ct))
        {
            await file.AppendLineAsync("line-1"u8.ToArray(), Ct);
        }

        // What a crashed writer of another kind could leave: a row without its newline, or with half a line after one.
        await ExecuteAsync($"INSERT INTO \"{_schema}\".file_chunks (file_id, start, length, data) VALUES ('file-cut', 7, 9, convert_to(E'line-2\\nli', 'UTF8')), ('file-cut', 16, 4, convert_to('ne-3', 'UTF8'))");
        await using var reopened = await store.OpenAppendAsync(File("file-cut"), Ct);
        Assert.Equal(14, reopened.Length);
        Assert.Equal("line-1\nline-2\n", await ReadAllAsync(await reopened.OpenReadAsync(Ct)));
        await reopened.AppendLineAsync("line-3"u8.ToArray(), Ct);
        Assert.Equal("line-1\nline-2\nline-3\n", await ReadAllAsync(await reopened.OpenReadAsync(Ct)));
    }

    [Fact]
    public async Task Two_writers_of_one_file_never_overwrite_each_other()
    {
        // A worker whose lease was taken over may still append for a moment: both writers' lines are kept, whole.
        await using var stale = await Store().OpenAppendAsync(File("file-two"), Ct);
        await using var current = await Store().OpenAppendAsync(File("file-two"), Ct);
        await stale.AppendLineAsync("stale"u8.ToArray(), Ct);
        await current.AppendLineAsync("current"u8.ToArray(), Ct);
        await stale.AppendLineAsync("stale-2"u8.ToArray(), Ct);
        var text = await ReadAllAsync(await current.OpenReadAsync(Ct));
        Assert.Equal(["stale", "current", "stale-2"], text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task List_pages_by_owner_and_purpose_and_delete_removes_content()
    {
        var store = Store();
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var id = $"file-{i}";
            ids.Add(id);
            await store.SaveAsync(File(id), new MemoryStream(Encoding.UTF8.GetBytes($"{{\"n\":{i}}}\n")), 1000, Ct);
            await store.SaveAsync(File($"other-{i}", owner: "someone-else"), new MemoryStream("{}\n"u8.ToArray()), 1000, Ct);
            await store.SaveAsync(File($"data-{i}", purpose: "user_data"), new MemoryStream("{}\n"u8.ToArray()), 1000, Ct);
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        var first = await store.ListAsync("me", "batch", 2, null, ascending: true, Ct);
        Assert.Equal(ids.Take(2), first.Select(f => f.Id));
        var next = await store.ListAsync("me", "batch", 10, first[^1].Id, ascending: true, Ct);
        Assert.Equal(ids.Skip(2), next.Select(f => f.Id));
        var newest = await store.ListAsync("me", "batch", 2, null, ascending: false, Ct);
        Assert.Equal(["file-4", "file-3"], newest.Select(f => f.Id));
        Assert.Equal(10, (await store.ListAsync("me", null, 100, null, ascending: true, Ct)).Count);
        Assert.Empty(await store.ListAsync("me", "batch", 10, "no-such-file", ascending: true, Ct));

        Assert.True(await store.DeleteAsync("file-0", Ct));
        Assert.False(await store.DeleteAsync("file-0", Ct));
        Assert.Null(await store.GetAsync("file-0", Ct));
        Assert.Null(await store.OpenReadAsync("file-0", Ct));
        Assert.Equal(0L, await ScalarAsync<long>($"SELECT count(*) FROM \"{_schema}\".file_chunks WHERE file_id = 'file-0'"));
    }

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_dataSource, _schema);
            await _dataSource.DisposeAsync();
        }
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<string> ReadAllAsync(Stream stream)
    {
        await using (stream)
        {
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return await reader.ReadToEndAsync(Ct);
        }
    }

    /// <summary>A deterministic stream of <c>length</c> bytes, generated as read (never held in memory); records its largest read.</summary>
    private sealed class PatternStream(long length, long failAfter = -1) : Stream
    {
        private long _position;

        public int LargestRead { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public static byte[] Sha256(long length)
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var stream = new PatternStream(length);
            var buffer = new byte[81920];
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                hash.AppendData(buffer, 0, read);
            }

            return hash.GetHashAndReset();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            LargestRead = Math.Max(LargestRead, buffer.Length);
            if (failAfter >= 0 && _position >= failAfter)
            {
                throw new IOException("the client went away");
            }

            var count = (int)Math.Min(buffer.Length, length - _position);
            for (var i = 0; i < count; i++)
            {
                var p = _position + i;
                buffer[i] = (byte)((p * 31) ^ (p >> 8) ^ (p >> 16));
            }

            _position += count;
            return count;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer, offset, count));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
