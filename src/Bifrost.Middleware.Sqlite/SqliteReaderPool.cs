namespace Bifrost.Middleware.Sqlite;

/// <summary>
/// Read-only connections handed to one caller at a time (WAL: readers never wait for the writer); up to
/// <see cref="MaxIdle"/> idle ones are kept with their prepared statements, a connection that failed is closed.
/// </summary>
internal sealed class SqliteReaderPool(string connectionString, int busyTimeoutMs) : IDisposable
{
    public const int MaxIdle = 8;

    private readonly System.Collections.Concurrent.ConcurrentBag<SqliteConnectionSlot> _idle = [];
    private int _idleCount;
    private volatile bool _disposed;

    /// <summary>Runs <paramref name="read"/> on a pooled read-only connection.</summary>
    public T Read<T>(Func<SqliteConnectionSlot, T> read)
    {
        var reader = Rent();
        var healthy = false;
        try
        {
            var result = read(reader);
            healthy = true;
            return result;
        }
        finally
        {
            Return(reader, healthy);
        }
    }

    /// <summary>A read-only connection from the pool (or a new one), for a read that outlives one call; give it back with <see cref="Return"/>.</summary>
    public SqliteConnectionSlot Rent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_idle.TryTake(out var reader))
        {
            Interlocked.Decrement(ref _idleCount);
            return reader;
        }

        return SqliteConnectionSlot.Open(connectionString, busyTimeoutMs, readOnly: true);
    }

    /// <summary>Gives a rented connection back (kept when healthy and fewer than <see cref="MaxIdle"/> are idle), or closes it.</summary>
    public void Return(SqliteConnectionSlot reader, bool healthy)
    {
        if (healthy && !_disposed && Interlocked.Increment(ref _idleCount) <= MaxIdle)
        {
            _idle.Add(reader);
            return;
        }

        if (healthy && !_disposed)
        {
            Interlocked.Decrement(ref _idleCount);
        }

        reader.Dispose();
    }

    public void Dispose()
    {
        _disposed = true;
        while (_idle.TryTake(out var reader))
        {
            reader.Dispose();
        }
    }
}
