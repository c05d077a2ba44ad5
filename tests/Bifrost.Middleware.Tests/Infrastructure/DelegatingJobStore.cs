namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>An <see cref="IJobStore"/> that passes every call to another one; tests override the calls they observe or disturb.</summary>
internal class DelegatingJobStore(IJobStore inner) : IJobStore
{
    protected IJobStore Inner => inner;

    public virtual ValueTask<JobRecord> EnqueueAsync(NewJob job, CancellationToken cancellationToken) => inner.EnqueueAsync(job, cancellationToken);

    public virtual ValueTask<JobRecord?> GetAsync(string id, CancellationToken cancellationToken) => inner.GetAsync(id, cancellationToken);

    public virtual ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken) => inner.TryClaimAsync(workerId, leaseDuration, cancellationToken);

    public virtual ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, int maxRunningPerOwner, CancellationToken cancellationToken) => inner.TryClaimAsync(workerId, leaseDuration, maxRunningPerOwner, cancellationToken);

    public virtual ValueTask<JobOwnerUsage> GetOwnerUsageAsync(string owner, CancellationToken cancellationToken) => inner.GetOwnerUsageAsync(owner, cancellationToken);

    public virtual ValueTask<bool> RenewLeaseAsync(JobLease lease, TimeSpan leaseDuration, CancellationToken cancellationToken) => inner.RenewLeaseAsync(lease, leaseDuration, cancellationToken);

    public virtual ValueTask<bool> SaveProgressAsync(JobLease lease, ReadOnlyMemory<byte> progress, CancellationToken cancellationToken) => inner.SaveProgressAsync(lease, progress, cancellationToken);

    public virtual ValueTask<bool> CompleteAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken) => inner.CompleteAsync(lease, outcome, cancellationToken);

    public virtual ValueTask<bool> FailAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken) => inner.FailAsync(lease, outcome, cancellationToken);

    public virtual ValueTask<bool> ReleaseAsync(JobLease lease, DateTimeOffset? notBefore, bool countAttempt, CancellationToken cancellationToken) => inner.ReleaseAsync(lease, notBefore, countAttempt, cancellationToken);

    public virtual ValueTask<JobRecord?> RequestCancellationAsync(string id, CancellationToken cancellationToken) => inner.RequestCancellationAsync(id, cancellationToken);

    public virtual ValueTask<bool> MarkCancelledAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken) => inner.MarkCancelledAsync(lease, outcome, cancellationToken);

    public virtual ValueTask<IReadOnlyList<JobRecord>> ListAsync(string owner, string? kind, int limit, string? after, CancellationToken cancellationToken) => inner.ListAsync(owner, kind, limit, after, cancellationToken);

    public virtual ValueTask<int> ExpireAsync(CancellationToken cancellationToken) => inner.ExpireAsync(cancellationToken);

    public virtual ValueTask<long> CountUnfinishedAsync(CancellationToken cancellationToken) => inner.CountUnfinishedAsync(cancellationToken);

    public virtual ValueTask<JobResultReader?> OpenResultAsync(string id, CancellationToken cancellationToken) => inner.OpenResultAsync(id, cancellationToken);
}
