using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.RequestLog;

/// <summary>
/// Takes request-log entries off the request's path, as the usage ledger does: <see cref="Record"/> only queues (never
/// blocks, never throws); a background loop applies the <see cref="IRequestLogRedactor"/> (when content is captured) and
/// appends them to the <see cref="IRequestLogStore"/> in batches of up to <see cref="MaxBatch"/>, pausing
/// <see cref="Pace"/> once the queue is drained so entries gather. The queue holds <see cref="RequestLogOptions.MaxEntries"/>
/// entries (at least <see cref="MinCapacity"/>, at most <see cref="Capacity"/>). When the queue is full (the store is down or far
/// behind) entries are dropped and counted (<see cref="Dropped"/>), never the request. Every <see cref="PruneInterval"/>
/// the store is pruned to <see cref="RequestLogOptions.Retention"/> and <see cref="RequestLogOptions.MaxEntries"/>.
/// On stop the queue is drained for up to <see cref="DrainTimeout"/>.
/// </summary>
internal sealed partial class RequestLogWriter(
    IRequestLogStore store,
    IOptions<BifrostOptions> options,
    TimeProvider time,
    ILogger<RequestLogWriter> logger,
    IRequestLogRedactor? redactor = null) : BackgroundService
{
    public const int Capacity = 100_000;
    public const int MinCapacity = 1_000;
    public const int MaxBatch = 500;
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(50);
    public static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(1);

    private readonly RequestLogOptions _options = options.Value.RequestLog;

    // As many entries as the log keeps (1,000 to 100,000): memory stays bounded by MaxEntries even when the writer
    // never runs (a ServiceProvider used without a host starts no hosted service).
    private readonly Channel<RequestLogEntry> _queue = Channel.CreateBounded<RequestLogEntry>(new BoundedChannelOptions(Math.Clamp(options.Value.RequestLog.MaxEntries, MinCapacity, Capacity))
    {
        FullMode = BoundedChannelFullMode.Wait, // TryWrite never waits: it answers false when full (a Drop mode would answer true and drop uncounted)
        SingleReader = true,
    });

    private long _dropped;
    private long _written;
    private int _writing;
    private volatile TaskCompletionSource? _pause; // completed to end the writer's pause early

    /// <summary>Whether calls are recorded (<see cref="RequestLogOptions.Enabled"/>).</summary>
    public bool Enabled => _options.Enabled;

    /// <summary>Whether request and response content are captured.</summary>
    public bool CaptureContent => _options.CaptureContent;

    /// <summary>Entries dropped because the queue was full or the store failed.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Entries written to the store.</summary>
    public long Written => Interlocked.Read(ref _written);

    public TimeProvider Time => time;

    /// <summary>Queues an entry.</summary>
    public void Record(RequestLogEntry entry)
    {
        if (!_queue.Writer.TryWrite(entry))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>Waits until every entry queued so far is written.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (_queue.Reader.Count > 0 || Volatile.Read(ref _writing) != 0)
        {
            _pause?.TrySetResult();
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Applies the retention now: entries older than <see cref="RequestLogOptions.Retention"/>, and beyond <see cref="RequestLogOptions.MaxEntries"/>.</summary>
    public async Task<long> PruneAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await store.PruneAsync(time.GetUtcNow() - _options.Retention, _options.MaxEntries, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogPruneFailed(logger, ex);
            return 0;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }

        var prune = PruneLoopAsync(stoppingToken);
        var batch = new List<RequestLogEntry>(MaxBatch);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                await WriteAvailableAsync(batch, stoppingToken).ConfigureAwait(false);

                // The queue was drained: let the next entries gather (a flush or the stop ends the pause early).
                var pause = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _pause = pause;
                await Task.WhenAny(Task.Delay(Pace, stoppingToken), pause.Task).ConfigureAwait(false);
                _pause = null;
                stoppingToken.ThrowIfCancellationRequested();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            await prune.ConfigureAwait(false);
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

    /// <summary>Applies the retention every <see cref="PruneInterval"/> (beside the writer: the store serves both).</summary>
    private async Task PruneLoopAsync(CancellationToken stoppingToken)
    {
        try
        {
            using var timer = new PeriodicTimer(PruneInterval, time);
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await PruneAsync(stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    /// <summary>Writes what is queued, batch after batch, until a batch does not fill.</summary>
    private async Task WriteAvailableAsync(List<RequestLogEntry> batch, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _writing, 1);
        try
        {
            while (true)
            {
                batch.Clear();
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var entry))
                {
                    if (Redact(entry) is { } kept)
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
                    await store.AppendAsync(batch, cancellationToken).ConfigureAwait(false);
                    Interlocked.Add(ref _written, batch.Count);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Interlocked.Add(ref _dropped, batch.Count);
                    LogWriteFailed(logger, batch.Count, ex);
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

    /// <summary>The hook's version of an entry with content (null: not stored); a hook that throws drops the entry (never stored unredacted).</summary>
    private RequestLogEntry? Redact(RequestLogEntry entry)
    {
        if (redactor is null || (entry.RequestContent is null && entry.ResponseContent is null))
        {
            return entry;
        }

        try
        {
            return redactor.Redact(entry);
        }
        catch (Exception ex)
        {
            Interlocked.Increment(ref _dropped);
            LogRedactFailed(logger, entry.Id, ex);
            return null;
        }
    }

    [LoggerMessage(EventId = 920, Level = LogLevel.Warning, Message = "Could not write {Count} request-log entries to the store; they are dropped.")]
    private static partial void LogWriteFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 921, Level = LogLevel.Warning, Message = "The request-log store could not be pruned; retrying at the next interval.")]
    private static partial void LogPruneFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 922, Level = LogLevel.Warning, Message = "The request-log redactor failed on entry {Id}; the entry is dropped, never stored unredacted.")]
    private static partial void LogRedactFailed(ILogger logger, string id, Exception exception);
}

/// <summary>The <see cref="IBifrostRequestLog"/> over the configured store and the writer.</summary>
internal sealed class BifrostRequestLog(IRequestLogStore store, RequestLogWriter writer) : IBifrostRequestLog
{
    public ValueTask<RequestLogPage> QueryAsync(RequestLogQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(query.Limit, 1, nameof(query));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(query.Limit, RequestLogQuery.MaxLimit, nameof(query));
        return store.QueryAsync(query, cancellationToken);
    }

    public ValueTask<RequestLogEntry?> GetAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        return store.GetAsync(id, cancellationToken);
    }

    public Task FlushAsync(CancellationToken cancellationToken) => writer.FlushAsync(cancellationToken);
}
