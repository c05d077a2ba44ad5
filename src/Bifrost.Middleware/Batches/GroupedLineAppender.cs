namespace Bifrost.Middleware.Batches;

/// <summary>
/// Appends a batch's result lines to one file, one write at a time, grouping the lines handed over while a write is in
/// flight into the next one (<see cref="IAppendableFile.AppendLinesAsync"/>: one round trip and one row for a database
/// store, instead of one per line). Lines are written in the order they were handed over, and a call returns only once
/// its lines were written (as <see cref="IAppendableFile.AppendLineAsync"/> does), so a line counted as done is in the
/// file: a crash loses no line a run counted, and a resumed run finds every line written before it.
/// </summary>
/// <remarks>
/// No thread of its own: the caller that finds no write in flight writes, for itself and for whatever was handed over
/// meanwhile, until nothing is left. A failed write fails the calls whose lines it held and those waiting behind it
/// (their lines were not written); the next call starts afresh.
/// </remarks>
internal sealed class GroupedLineAppender(IAppendableFile file)
{
    /// <summary>At most this many lines per write.</summary>
    internal const int MaxLinesPerWrite = 512;

    /// <summary>At most about this many bytes per write (a single larger line is written alone).</summary>
    internal const int MaxBytesPerWrite = 1024 * 1024;

    private readonly Lock _gate = new();
    private readonly Queue<Pending> _queue = new();
    private bool _writing;

    /// <summary>Writes so far (for tests: fewer than lines when lines were grouped).</summary>
    public int Writes => Volatile.Read(ref _writes);

    private int _writes;

    /// <summary>Appends <paramref name="line"/>; returns once it was written.</summary>
    public Task AppendAsync(ReadOnlyMemory<byte> line, CancellationToken cancellationToken) => AppendAsync([line], cancellationToken);

    /// <summary>Appends <paramref name="lines"/>, together and in order; returns once they were written.</summary>
    public async Task AppendAsync(IReadOnlyList<ReadOnlyMemory<byte>> lines, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lines);
        if (lines.Count == 0)
        {
            return;
        }

        var pending = new Pending(lines, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        bool lead;
        lock (_gate)
        {
            _queue.Enqueue(pending);
            lead = !_writing;
            _writing = true;
        }

        if (lead)
        {
            await DrainAsync(cancellationToken).ConfigureAwait(false);
        }

        await pending.Done.Task.ConfigureAwait(false);
    }

    /// <summary>Writes groups until the queue is empty; a failure fails every call still queued.</summary>
    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        var group = new List<Pending>();
        var lines = new List<ReadOnlyMemory<byte>>();
        while (true)
        {
            group.Clear();
            lines.Clear();
            lock (_gate)
            {
                var bytes = 0L;
                while (_queue.TryPeek(out var next)
                    && (group.Count == 0 || (lines.Count + next.Lines.Count <= MaxLinesPerWrite && bytes + Bytes(next.Lines) <= MaxBytesPerWrite)))
                {
                    _queue.Dequeue();
                    group.Add(next);
                    lines.AddRange(next.Lines);
                    bytes += Bytes(next.Lines);
                }

                if (group.Count == 0)
                {
                    _writing = false;
                    return;
                }
            }

            try
            {
                if (lines.Count == 1)
                {
                    await file.AppendLineAsync(lines[0], cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await file.AppendLinesAsync(lines, cancellationToken).ConfigureAwait(false);
                }

                Interlocked.Increment(ref _writes);
            }
            catch (Exception ex)
            {
                List<Pending> failed;
                lock (_gate)
                {
                    failed = [.. group, .. _queue];
                    _queue.Clear();
                    _writing = false;
                }

                foreach (var call in failed)
                {
                    call.Fail(ex);
                }

                return;
            }

            foreach (var call in group)
            {
                call.Done.TrySetResult();
            }
        }
    }

    private static long Bytes(IReadOnlyList<ReadOnlyMemory<byte>> lines)
    {
        var bytes = 0L;
        foreach (var line in lines)
        {
            bytes += line.Length + 1;
        }

        return bytes;
    }

    private sealed record Pending(IReadOnlyList<ReadOnlyMemory<byte>> Lines, TaskCompletionSource Done)
    {
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
