using System.Threading.Channels;
using Microsoft.Extensions.Hosting;

namespace Bifrost.Middleware.Governance;

/// <summary>
/// Takes settled requests off the request's path: <see cref="Record"/> only queues (never blocks, never throws); a
/// background loop appends them to the <see cref="IGovernanceStore"/> in batches of up to <see cref="MaxBatch"/>, pausing
/// <see cref="Pace"/> once the queue is drained so records gather: a loop woken by every record would make each
/// request pay for waking it (a thread-pool hop and a thread wake-up, microseconds) and the store take one write per
/// request. A record is in the store within about <see cref="Pace"/> of its call; <see cref="FlushAsync"/> cuts the pause short. When the
/// queue is full (the store is down or far behind) records are dropped and counted, never the request.
/// On stop the queue is drained for up to <see cref="DrainTimeout"/>.
/// </summary>
internal sealed partial class UsageLedger(IGovernanceStore store, ILogger<UsageLedger> logger) : BackgroundService
{
    public const int Capacity = 100_000;
    public const int MaxBatch = 500;
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(50);

    private readonly Channel<UsageRecord> _queue = Channel.CreateBounded<UsageRecord>(new BoundedChannelOptions(Capacity)
    {
        // Wait (never awaited: only TryWrite is used) so a full queue makes TryWrite answer false and the record is counted
        // as dropped; DropWrite would answer true and drop it uncounted.
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
    });

    private long _dropped;
    private long _written;
    private volatile TaskCompletionSource? _pause; // completed to end the writer's pause early

    /// <summary>Records dropped because the queue was full or the store failed.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Records written to the store.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Queues a record for the ledger.</summary>
    public void Record(UsageRecord record)
    {
        if (!_queue.Writer.TryWrite(record))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>Waits until every record queued so far is written (tests, admin reads that must see the latest usage).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (_queue.Reader.Count > 0 || Volatile.Read(ref _writing) != 0)
        {
            _pause?.TrySetResult();
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }
    }

    private int _writing;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<UsageRecord>(MaxBatch);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                await WriteAvailableAsync(batch, stoppingToken).ConfigureAwait(false);

                // The queue was drained: let the next records gather (a flush or the stop ends the pause early).
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

    /// <summary>Writes what is queued, batch after batch, until a batch does not fill.</summary>
    private async Task WriteAvailableAsync(List<UsageRecord> batch, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _writing, 1);
        try
        {
            while (true)
            {
                batch.Clear();
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var record))
                {
                    batch.Add(record);
                }

                if (batch.Count == 0)
                {
                    return;
                }

                try
                {
                    await store.AppendUsageAsync(batch, cancellationToken).ConfigureAwait(false);
                    Interlocked.Add(ref _written, batch.Count);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Interlocked.Add(ref _dropped, batch.Count);
                    LogWriteFailed(logger, batch.Count, ex);
                }

                if (batch.Count < MaxBatch)
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

    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "Could not write {Count} usage records to the governance store; they are dropped.")]
    private static partial void LogWriteFailed(ILogger logger, int count, Exception exception);
}
