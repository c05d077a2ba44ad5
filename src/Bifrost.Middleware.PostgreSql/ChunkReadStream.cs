namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// Reads a file's content rows in order, one page (about one chunk) at a time, each page with its own short query on a
/// pooled connection: no connection or transaction is held between reads, however long the reader keeps the stream.
/// </summary>
internal sealed class ChunkReadStream(PostgreSqlFileStore store, string id, long? limit) : Stream
{
    private readonly Queue<byte[]> _pending = new();
    private byte[]? _row;
    private int _offset;
    private long _position;
    private long _fetched;
    private bool _end;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => limit ?? throw new NotSupportedException();

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (_row is null || _offset == _row.Length)
        {
            if (_pending.TryDequeue(out _row))
            {
                _offset = 0;
                continue;
            }

            _row = null;
            if (_end || (limit is { } max && _fetched >= max))
            {
                return 0;
            }

            var rows = await store.ReadRowsAsync(id, _fetched, cancellationToken).ConfigureAwait(false);
            if (rows.Count == 0)
            {
                _end = true;
                if (limit is { } expected && _fetched < expected)
                {
                    throw new IOException($"The content of file '{id}' ended at byte {_fetched}, before its size of {expected} bytes (was it deleted while being read?).");
                }

                return 0;
            }

            foreach (var row in rows)
            {
                _pending.Enqueue(row);
                _fetched += row.Length;
            }
        }

        var count = Math.Min(buffer.Length, _row.Length - _offset);
        if (limit is { } cap)
        {
            count = (int)Math.Min(count, cap - _position);
            if (count <= 0)
            {
                return 0;
            }
        }

        _row.AsMemory(_offset, count).CopyTo(buffer);
        _offset += count;
        _position += count;
        return count;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override int Read(Span<byte> buffer)
    {
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            var read = Read(rented, 0, buffer.Length);
            rented.AsSpan(0, read).CopyTo(buffer);
            return read;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
