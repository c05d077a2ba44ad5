using Bifrost.Middleware.Hosting;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.RequestLog;

/// <summary>
/// Takes request-log entries off the request's path into the <see cref="IRequestLogStore"/>, through a
/// <see cref="PacedBatchWriter{T}"/> (queued, written in batches, paced, drops counted, drained on stop); before an entry
/// with content is stored the <see cref="IRequestLogRedactor"/> is applied. The queue holds
/// <see cref="RequestLogOptions.MaxEntries"/> entries (at least <see cref="MinCapacity"/>, at most <see cref="Capacity"/>),
/// so memory stays bounded even when the writer never runs (a ServiceProvider used without a host starts no hosted
/// service). Every <see cref="PruneInterval"/> the store is pruned to <see cref="RequestLogOptions.Retention"/> and
/// <see cref="RequestLogOptions.MaxEntries"/>.
/// </summary>
internal sealed partial class RequestLogWriter(
    IRequestLogStore store,
    IOptions<BifrostOptions> options,
    TimeProvider time,
    ILogger<RequestLogWriter> logger,
    IRequestLogRedactor? redactor = null) : PacedBatchWriter<RequestLogEntry>(Math.Clamp(options.Value.RequestLog.MaxEntries, MinCapacity, Capacity))
{
    public const int Capacity = 100_000;
    public const int MinCapacity = 1_000;
    public static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(1);

    private readonly RequestLogOptions _options = options.Value.RequestLog;

    /// <summary>Whether calls are recorded (<see cref="RequestLogOptions.Enabled"/>).</summary>
    public bool Enabled => _options.Enabled;

    /// <summary>Whether request and response content are captured.</summary>
    public bool CaptureContent => _options.CaptureContent;

    /// <summary>The most characters of a stream's content captured (<see cref="RequestLogOptions.MaxStreamContentLength"/>).</summary>
    public int MaxStreamContentLength => _options.MaxStreamContentLength;

    public TimeProvider Time => time;

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
        await base.ExecuteAsync(stoppingToken).ConfigureAwait(false);
        await prune.ConfigureAwait(false);
    }

    protected override Task WriteBatchAsync(IReadOnlyList<RequestLogEntry> batch, CancellationToken cancellationToken) =>
        store.AppendAsync(batch, cancellationToken).AsTask();

    protected override void OnWriteFailed(int count, Exception exception) => LogWriteFailed(logger, count, exception);

    /// <summary>The hook's version of an entry with content (null: not stored); a hook that throws drops the entry (never stored unredacted).</summary>
    protected override RequestLogEntry? Prepare(RequestLogEntry item)
    {
        if (redactor is null || (item.RequestContent is null && item.ResponseContent is null))
        {
            return item;
        }

        try
        {
            return redactor.Redact(item); // null: the host chose not to store it (not counted as a drop)
        }
        catch (Exception ex)
        {
            CountDropped(1);
            LogRedactFailed(logger, item.Id, ex);
            return null;
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
