using System.Threading.Channels;
using Microsoft.Extensions.Hosting;

namespace Bifrost.Middleware.Hosting;

/// <summary>
/// Takes items off the request's path and writes them to a store in batches: <see cref="Record"/> only queues (never
/// blocks, never throws); a background loop writes what queued up in batches of up to <see cref="MaxBatch"/>, pausing
/// <see cref="Pace"/> once the queue is drained so items gather — a loop woken by every item would make each request pay
/// for waking it (a thread-pool hop and a thread wake-up) and the store take one write per request. An item is in the
/// store within about <see cref="Pace"/>; <see cref="FlushAsync"/> cuts the pause short. When the queue is full (the store
/// is down or far behind) or a batch fails, items are dropped and counted (<see cref="Dropped"/>), never the request. On
/// stop the queue is drained for up to <see cref="DrainTimeout"/>. The usage ledger and the request log are built on it.
/// </summary>
internal abstract class PacedBatchWriter<T> : BackgroundService
    where T : class
{
    public const int MaxBatch = 500;
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(50);

    private readonly Channel<T> _queue;
    private long _dropped;
    private long _written;
    private int _writing;
    private volatile TaskCompletionSource? _pause; // completed to end the writer's pause early

    protected PacedBatchWriter(int capacity) =>
        _queue = Channel.CreateBounded<T>(new BoundedChannelOptions(capacity)
        {
            // Wait (never awaited: only TryWrite is used) so a full queue makes TryWrite answer false and the item is
            // counted as dropped; DropWrite would answer true and drop it uncounted.
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });

    /// <summary>Items dropped: the queue was full, the store failed, or <see cref="Prepare"/> left them out.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Items written to the store.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Queues an item.</summary>
    public void Record(T item)
    {
        if (!_queue.Writer.TryWrite(item))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>Waits until every item queued so far is written.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (_queue.Reader.Count > 0 || Volatile.Read(ref _writing) != 0)
        {
            _pause?.TrySetResult();
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes one batch to the store (a failure drops the batch, counted, and is passed to <see cref="OnWriteFailed"/>).</summary>
    protected abstract Task WriteBatchAsync(IReadOnlyList<T> batch, CancellationToken cancellationToken);

    /// <summary>Logs a batch the store refused.</summary>
    protected abstract void OnWriteFailed(int count, Exception exception);

    /// <summary>The item as stored, or null to leave it out (counted as dropped). Default: as queued.</summary>
    protected virtual T? Prepare(T item) => item;

    /// <summary>Counts items left out by <see cref="Prepare"/>.</summary>
    protected void CountDropped(int count) => Interlocked.Add(ref _dropped, count);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<T>(MaxBatch);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                await WriteAvailableAsync(batch, stoppingToken).ConfigureAwait(false);

                // The queue was drained: let the next items gather (a flush or the stop ends the pause early).
                var pause = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _pause = pause;
                await Task.WhenAny(Task.Delay(Pace, stoppingToken), pause.Task).ConfigureAwait(false);
                _pause = null;
                stoppingToken.ThrowIfCancellationRequested();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            using var drain = new CancellationTokenSource(DrainTimeout);
            try
            {
                await WriteAvailableAsync(batch, drain.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // what is left is lost with the process, as with any in-memory queue
            }
        }
    }

    /// <summary>Writes what is queued, batch after batch, until the queue is empty.</summary>
    private async Task WriteAvailableAsync(List<T> batch, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _writing, 1);
        try
        {
            while (true)
            {
                batch.Clear();
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var item))
                {
                    if (Prepare(item) is { } kept)
                    {
                        batch.Add(kept);
                    }
                }

                if (batch.Count == 0)
                {
                    if (_queue.Reader.Count == 0)
                    {
                        return;
                    }

                    continue;
                }

                try
                {
                    await WriteBatchAsync(batch, cancellationToken).ConfigureAwait(false);
                    Interlocked.Add(ref _written, batch.Count);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Interlocked.Add(ref _dropped, batch.Count);
                    OnWriteFailed(batch.Count, ex);
                }

                if (batch.Count < MaxBatch && _queue.Reader.Count == 0)
                {
                    return;
                }
            }
        }
        finally
        {
            Volatile.Write(ref _writing, 0);
        }
    }
}
