namespace Bifrost.Middleware.Governance;

/// <summary>
/// Takes settled requests off the request's path into the <see cref="IGovernanceStore"/>'s ledger, through a
/// <see cref="Hosting.PacedBatchWriter{T}"/> (queued, written in batches, paced, drops counted, drained on stop) of
/// <see cref="Capacity"/> records.
/// </summary>
internal sealed partial class UsageLedger(IGovernanceStore store, ILogger<UsageLedger> logger) : Hosting.PacedBatchWriter<UsageRecord>(Capacity)
{
    public const int Capacity = 100_000;

    protected override Task WriteBatchAsync(IReadOnlyList<UsageRecord> batch, CancellationToken cancellationToken) =>
        store.AppendUsageAsync(batch, cancellationToken).AsTask();

    protected override void OnWriteFailed(int count, Exception exception) => LogWriteFailed(logger, count, exception);

    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "Could not write {Count} usage records to the governance store; they are dropped.")]
    private static partial void LogWriteFailed(ILogger logger, int count, Exception exception);
}
