namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// Groups concurrent writes into one statement and one flushed commit: at most a few groups are in flight at once, and the
/// writes handed over while they are go together into the next one. Each call returns only once its own group committed (or failed), so what a caller is
/// told is durable is durable, exactly as with one commit per call; the group only shares the round trip, the statement
/// and the WAL flush.
/// </summary>
/// <remarks>
/// <para>No thread of its own: a caller that finds fewer than the most groups in flight writes, for itself and whatever was
/// handed over meanwhile; once its own write is done it hands the rest to a thread-pool task and returns (so one caller
/// never writes for others for long). So a few concurrent callers each write at once, as without grouping (no call waits
/// for another's flush before its statement starts), and many share statements and flushes. Two writes with the same key never share a group (a statement that touches a row twice
/// cannot tell the callers apart): the later one waits for the next group.</para>
/// <para>The writer completes each item of a group (its result, or an exception for it alone, such as a duplicate id).
/// An item the writer left open, or every item of a group whose statement failed, fails with that exception.</para>
/// </remarks>
/// <typeparam name="TItem">What one caller writes.</typeparam>
/// <typeparam name="TResult">What one caller gets back.</typeparam>
internal sealed class GroupedCommits<TItem, TResult>
{
    private readonly Func<IReadOnlyList<Entry>, Task> _write;
    private readonly Func<TItem, string> _key;
    private readonly Func<TItem, long> _size;
    private readonly int _maxItems;
    private readonly long _maxBytes;
    private readonly Lock _gate = new();
    private readonly List<Entry> _queue = [];
    private readonly int _maxWriters;
    private int _writers;
    private int _groups;

    /// <param name="write">Writes one group in one statement and completes each entry.</param>
    /// <param name="key">The row an item writes (two items with the same key never share a group).</param>
    /// <param name="size">An item's bytes (bounds a group together with <paramref name="maxBytes"/>).</param>
    /// <param name="maxItems">At most this many items per group.</param>
    /// <param name="maxBytes">At most about this many bytes per group (a single larger item is written alone).</param>
    /// <param name="maxWriters">At most this many groups in flight at once.</param>
    public GroupedCommits(Func<IReadOnlyList<Entry>, Task> write, Func<TItem, string> key, Func<TItem, long> size, int maxItems, long maxBytes, int maxWriters)
    {
        _maxWriters = maxWriters;
        _write = write;
        _key = key;
        _size = size;
        _maxItems = maxItems;
        _maxBytes = maxBytes;
    }

    /// <summary>Groups written so far (tests: fewer than calls when calls were grouped).</summary>
    public int Groups => Volatile.Read(ref _groups);

    /// <summary>Writes <paramref name="item"/> with whatever else is handed over; returns once its group committed.</summary>
    /// <param name="item">The write.</param>
    /// <param name="cancellationToken">A write not yet sent when it is cancelled is left out; one already sent may still commit
    /// (as a single statement may), and the call stops waiting for it.</param>
    public async Task<TResult> WriteAsync(TItem item, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var entry = new Entry(item, cancellationToken);
        bool lead;
        lock (_gate)
        {
            _queue.Add(entry);
            lead = _writers < _maxWriters;
            if (lead)
            {
                _writers++;
            }
        }

        if (lead)
        {
            await DrainAsync(entry).ConfigureAwait(false);
        }

        return await entry.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes groups until the queue is empty, or (for a caller) until its own entry is done; holds one writer slot.</summary>
    private async Task DrainAsync(Entry? own)
    {
        var group = new List<Entry>();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            group.Clear();
            keys.Clear();
            lock (_gate)
            {
                if (own is { Done.Task.IsCompleted: true } && _queue.Count > 0)
                {
                    // The caller's own write is done: the rest goes on without it.
                    _ = Task.Run(() => DrainAsync(null));
                    return;
                }

                _queue.RemoveAll(static e => e.CancellationToken.IsCancellationRequested && e.Cancel());
                var bytes = 0L;
                for (var i = 0; i < _queue.Count && group.Count < _maxItems; i++)
                {
                    var next = _queue[i];
                    if (next.CancellationToken.IsCancellationRequested)
                    {
                        continue; // its caller gave up just now: not written (answered and dropped at the next group)
                    }

                    var size = _size(next.Item);
                    if (group.Count > 0 && bytes + size > _maxBytes)
                    {
                        break;
                    }

                    if (!keys.Add(_key(next.Item)))
                    {
                        continue; // the same row twice: the later write goes into the next group
                    }

                    group.Add(next);
                    bytes += size;
                }

                if (group.Count == 0)
                {
                    _writers--;
                    return;
                }

                if (group.Count == _queue.Count)
                {
                    _queue.Clear();
                }
                else
                {
                    var taken = group.ToHashSet();
                    _queue.RemoveAll(taken.Contains);
                }
            }

            try
            {
                await _write(group).ConfigureAwait(false);
                Interlocked.Increment(ref _groups);
                foreach (var entry in group)
                {
                    entry.Fail(new InvalidOperationException("The grouped write left an item without an answer."));
                }
            }
            catch (Exception ex)
            {
                foreach (var entry in group)
                {
                    entry.Fail(ex);
                }
            }
        }
    }

    /// <summary>One caller's write and its answer.</summary>
    internal sealed class Entry(TItem item, CancellationToken cancellationToken)
    {
        public TItem Item { get; } = item;

        /// <summary>The caller's token: a write whose caller gave up before its group was sent is not written.</summary>
        public CancellationToken CancellationToken { get; } = cancellationToken;

        public TaskCompletionSource<TResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Answers a write left out because its caller gave up (true: for <c>RemoveAll</c>).</summary>
        public bool Cancel()
        {
            Done.TrySetCanceled(CancellationToken);
            return true;
        }

        /// <summary>Fails this write alone (a no-op when it was answered).</summary>
        public void Fail(Exception ex)
        {
            if (ex is OperationCanceledException oce)
            {
                Done.TrySetCanceled(oce.CancellationToken);
            }
            else
            {
                Done.TrySetException(ex);
            }
        }
    }
}
