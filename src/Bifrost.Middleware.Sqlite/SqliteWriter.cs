using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace Bifrost.Middleware.Sqlite;

/// <summary>
/// The store's only writer: one connection, one write at a time (SQLite allows one writer per database anyway, so
/// writers queue here, in memory, instead of sleeping in SQLite's busy handler).
/// </summary>
/// <remarks>
/// <para><see cref="SqliteWriterMode.GroupCommit"/> (the default): callers post their statement to a queue; one loop runs
/// whatever has queued up (up to <see cref="MaxBatch"/>) back to back in one transaction and answers every caller after
/// the COMMIT. Under load many writes share one commit (one fsync), and nobody is answered before their write is on
/// disk. A statement that fails alone (a duplicate id) fails only its caller; an error that ends the transaction fails
/// the whole group, none of which was committed.</para>
/// <para><see cref="SqliteWriterMode.Semaphore"/>: each caller takes a semaphore and runs its statement in its own
/// autocommit transaction (kept for the benchmark that compares the two).</para>
/// </remarks>
internal sealed class SqliteWriter : IDisposable
{
    public const int MaxBatch = 64;

    private readonly SqliteConnectionSlot _connection;
    private readonly SqliteDurability _durability;
    private readonly SqliteWriterMode _mode;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Channel<Operation> _queue = Channel.CreateUnbounded<Operation>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop = Task.CompletedTask;
    private long _groups;
    private long _grouped;

    public SqliteWriter(SqliteConnectionSlot connection, SqliteDurability durability, SqliteWriterMode mode)
    {
        _connection = connection;
        _durability = durability;
        _mode = mode;
        _connection.Execute(durability == SqliteDurability.Full ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;");
        if (mode == SqliteWriterMode.GroupCommit)
        {
            _loop = Task.Run(LoopAsync);
        }
    }

    /// <summary>Runs <paramref name="write"/> (statements on the writer connection) and returns once it is committed.</summary>
    /// <param name="durable">Whether the commit must survive a power loss (fsync) even in the default durability.</param>
    /// <param name="write">The statements; they must not open or end transactions themselves.</param>
    /// <param name="cancellationToken">Cancels the call while it waits for its turn (not once it ran).</param>
    public async ValueTask<T> WriteAsync<T>(bool durable, Func<SqliteConnectionSlot, T> write, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_mode == SqliteWriterMode.GroupCommit)
        {
            var operation = new Operation<T>(write, durable, cancellationToken);
            ObjectDisposedException.ThrowIf(!_queue.Writer.TryWrite(operation), this);

            return await operation.Task.ConfigureAwait(false);
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var full = NeedsFullSync(durable);
            if (full)
            {
                _connection.Execute("PRAGMA synchronous = FULL;");
            }

            try
            {
                return write(_connection);
            }
            finally
            {
                if (full)
                {
                    _connection.Execute("PRAGMA synchronous = NORMAL;");
                }
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Transactions that committed more than one write (group commit at work), and the writes in them.</summary>
    public (long Groups, long Writes) Grouped => (Interlocked.Read(ref _groups), Interlocked.Read(ref _grouped));

    /// <summary>Runs what is queued, then closes the connection.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _loop.Wait(TimeSpan.FromSeconds(10));
        var entered = _lock.Wait(TimeSpan.FromSeconds(10));
        try
        {
            _connection.Dispose();
        }
        finally
        {
            if (entered)
            {
                _lock.Release();
            }
        }
    }

    /// <summary>FULL just for this commit: only in the default durability, for a write a client is told about.</summary>
    private bool NeedsFullSync(bool durable) => durable && _durability == SqliteDurability.Acknowledged;

    private async Task LoopAsync()
    {
        var reader = _queue.Reader;
        var group = new List<Operation>(MaxBatch);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            group.Clear();
            while (group.Count < MaxBatch && reader.TryRead(out var operation))
            {
                if (operation.CancellationToken.IsCancellationRequested)
                {
                    operation.Cancel();
                    continue;
                }

                group.Add(operation);
            }

            if (group.Count > 0)
            {
                RunGroup(group);
            }
        }
    }

    private void RunGroup(List<Operation> group)
    {
        var full = group.Exists(o => NeedsFullSync(o.Durable));
        var transaction = group.Count > 1; // one statement alone is its own (autocommit) transaction
        try
        {
            if (full)
            {
                _connection.Execute("PRAGMA synchronous = FULL;");
            }

            if (transaction)
            {
                _connection.Execute("BEGIN IMMEDIATE;");
            }

            foreach (var operation in group)
            {
                try
                {
                    operation.Run(_connection);
                }
                catch (Exception ex) when (!transaction || InTransaction())
                {
                    // The statement failed alone (SQLite rolled back just that statement): only its caller hears of it.
                    operation.Error = ex;
                }
            }

            if (transaction)
            {
                _connection.Execute("COMMIT;");
                Interlocked.Increment(ref _groups);
                Interlocked.Add(ref _grouped, group.Count);
            }
        }
        catch (Exception ex)
        {
            // The transaction is gone (or never began): nothing of the group was committed.
            if (transaction && InTransaction())
            {
                TryExecute("ROLLBACK;");
            }

            foreach (var operation in group)
            {
                operation.Error ??= ex;
                operation.Answer();
            }

            return;
        }
        finally
        {
            if (full)
            {
                TryExecute("PRAGMA synchronous = NORMAL;");
            }
        }

        foreach (var operation in group)
        {
            operation.Answer();
        }
    }

    private bool InTransaction() => SQLitePCL.raw.sqlite3_get_autocommit(_connection.Connection.Handle) == 0;

    private void TryExecute(string sql)
    {
        try
        {
            _connection.Execute(sql);
        }
        catch (SqliteException)
        {
            // best effort: the next group starts from a clean state or fails on its own
        }
    }

    private abstract class Operation(bool durable, CancellationToken cancellationToken)
    {
        public bool Durable { get; } = durable;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        public Exception? Error { get; set; }

        public abstract void Run(SqliteConnectionSlot connection);

        public abstract void Answer();

        public abstract void Cancel();
    }

    private sealed class Operation<T>(Func<SqliteConnectionSlot, T> write, bool durable, CancellationToken cancellationToken) : Operation(durable, cancellationToken)
    {
        private readonly TaskCompletionSource<T> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;

        public Task<T> Task => _answer.Task;

        public override void Run(SqliteConnectionSlot connection) => _result = write(connection);

        public override void Answer()
        {
            if (Error is not null)
            {
                _answer.TrySetException(Error);
            }
            else
            {
                _answer.TrySetResult(_result!);
            }
        }

        public override void Cancel() => _answer.TrySetCanceled(CancellationToken);
    }
}

/// <summary>How the writer serializes writes (see <see cref="SqliteWriter"/>).</summary>
internal enum SqliteWriterMode
{
    /// <summary>A queue and one loop; writes that queued up together share a transaction and its commit.</summary>
    GroupCommit,

    /// <summary>A semaphore; one autocommit transaction per write.</summary>
    Semaphore,
}
