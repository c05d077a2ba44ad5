namespace Bifrost.Middleware.Jobs;

/// <summary>
/// The truth about background work (async inference, batches). The gateway persists a job through the store
/// before it answers the client; workers claim jobs with a lease, renew it while they work, and finish them with
/// a fenced compare-and-set on the lease's <see cref="JobLease.Version"/>, so a worker whose lease was lost can
/// never overwrite the result of the worker that took over.
/// </summary>
/// <remarks>
/// <para>Contract every implementation must keep (checked by <c>JobStoreConformanceTests&lt;TStore&gt;</c> in
/// <c>Bifrost.Middleware.Testing.XunitV3</c>):</para>
/// <list type="bullet">
/// <item><see cref="EnqueueAsync"/> returns only when the job is stored (durably, for a durable store).</item>
/// <item><see cref="TryClaimAsync(string, TimeSpan, CancellationToken)"/> hands a job to at most one worker at a time: a <see cref="JobStatus.Pending"/>
/// job whose <see cref="JobRecord.NotBefore"/> has passed, or a <see cref="JobStatus.Processing"/> job whose lease
/// expired (its worker died). Each claim increments <see cref="JobRecord.Version"/>, oldest jobs first.</item>
/// <item><see cref="RenewLeaseAsync"/>, <see cref="CompleteAsync"/>, <see cref="FailAsync"/> and <see cref="ReleaseAsync"/>
/// succeed only while the caller's lease is current (same version, job still processing); otherwise they return false and change nothing.</item>
/// <item>A recorded cancel request wins: <see cref="CompleteAsync"/> or <see cref="FailAsync"/> on a job whose
/// <see cref="JobRecord.CancellationRequested"/> is set stores it <see cref="JobStatus.Cancelled"/> (with the given outcome),
/// atomically with the fence, so a cancel the client was told about is never lost to a run that was just ending.</item>
/// <item>Finished jobs (completed, failed, cancelled) are removed by <see cref="ExpireAsync"/> once <see cref="JobRecord.ExpiresAt"/> passed; jobs still running are never expired.</item>
/// <item>All times come from the <see cref="TimeProvider"/> the store was given.</item>
/// <item>Fair claims (<see cref="TryClaimAsync(string, TimeSpan, int, CancellationToken)"/>): an owner never holds more than the
/// given number of running jobs (processing with an unexpired lease), also under concurrent claims from several instances, and
/// the next job is the oldest claimable one of the owner with the fewest running jobs (owners interleave instead of
/// strict FIFO across all of them).</item>
/// <item><see cref="GetOwnerUsageAsync"/> counts one owner's unfinished and running jobs and the bytes its stored jobs hold.</item>
/// <item><see cref="ListAllAsync"/> lists every owner's jobs newest first, filtered by kind and by finished or not, with the cursor of <see cref="ListAsync"/>.</item>
/// </list>
/// <para>The members added for fairness have default implementations so stores written against an older version keep
/// compiling; those defaults are not fair (they claim FIFO, ignoring the cap) and count usage by paging <see cref="ListAsync"/>.
/// Override them.</para>
/// </remarks>
public interface IJobStore
{
    /// <summary>Stores a new pending job.</summary>
    /// <param name="job">The job to store.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The stored job.</returns>
    ValueTask<JobRecord> EnqueueAsync(NewJob job, CancellationToken cancellationToken);

    /// <summary>Reads a job, or null when it does not exist (or expired).</summary>
    /// <param name="id">The job id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<JobRecord?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// Claims the oldest claimable job for a worker, or returns null when none is claimable now. No per-owner cap applies
    /// (a store may still interleave owners, as <see cref="TryClaimAsync(string, TimeSpan, int, CancellationToken)"/> does);
    /// the job processor uses that fair overload.
    /// </summary>
    /// <param name="workerId">Who claims (recorded on the job).</param>
    /// <param name="leaseDuration">How long the lease lasts unless renewed.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken);

    /// <summary>Extends a lease. False when the lease is no longer current (the job was taken over, finished or expired).</summary>
    /// <param name="lease">The lease.</param>
    /// <param name="leaseDuration">The new duration from now.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<bool> RenewLeaseAsync(JobLease lease, TimeSpan leaseDuration, CancellationToken cancellationToken);

    /// <summary>
    /// Saves a running job's progress (e.g. a batch's request counts) so readers see it advance. Fenced like
    /// <see cref="CompleteAsync"/>: false (and no change) when the lease is no longer current.
    /// </summary>
    /// <param name="lease">The lease.</param>
    /// <param name="progress">The progress document (UTF-8 JSON), replacing the previous one.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<bool> SaveProgressAsync(JobLease lease, ReadOnlyMemory<byte> progress, CancellationToken cancellationToken);

    /// <summary>
    /// Records a successful result. False (and no change) when the lease is no longer current. When cancellation was
    /// requested for the job, it is stored <see cref="JobStatus.Cancelled"/> instead (keeping the outcome).
    /// </summary>
    /// <param name="lease">The lease.</param>
    /// <param name="outcome">The result (body and status code).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<bool> CompleteAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken);

    /// <summary>
    /// Records a final failure. False (and no change) when the lease is no longer current. When cancellation was
    /// requested for the job, it is stored <see cref="JobStatus.Cancelled"/> instead (keeping the outcome).
    /// </summary>
    /// <param name="lease">The lease.</param>
    /// <param name="outcome">The error (body and status code).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<bool> FailAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken);

    /// <summary>
    /// Gives a job back without finishing it: it becomes pending again, claimable after <paramref name="notBefore"/>
    /// (a retry's backoff, or now for a shutdown). False when the lease is no longer current.
    /// </summary>
    /// <param name="lease">The lease.</param>
    /// <param name="notBefore">When the job may be claimed again; null for now.</param>
    /// <param name="countAttempt">Whether the released run counts as a failed attempt (a retry) or not (a shutdown).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<bool> ReleaseAsync(JobLease lease, DateTimeOffset? notBefore, bool countAttempt, CancellationToken cancellationToken);

    /// <summary>
    /// Asks for a job to be cancelled: a pending job that never ran (no <see cref="JobRecord.Progress"/>) becomes
    /// <see cref="JobStatus.Cancelled"/> at once; a processing job — or a pending one that already saved progress and waits
    /// to resume — gets <see cref="JobRecord.CancellationRequested"/> set and stays claimable, so its handler finishes the
    /// cancellation (a batch keeps its partial output).
    /// </summary>
    /// <param name="id">The job id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The job after the request, or null when it does not exist.</returns>
    ValueTask<JobRecord?> RequestCancellationAsync(string id, CancellationToken cancellationToken);

    /// <summary>Cancels a processing job whose worker saw the cancellation request (fenced like <see cref="FailAsync"/>).</summary>
    /// <param name="lease">The lease.</param>
    /// <param name="outcome">What to keep as the job's result (e.g. a partial result or a cancellation error).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<bool> MarkCancelledAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken);

    /// <summary>Lists an owner's jobs of one kind, newest first, after the job id <paramref name="after"/> (exclusive) when given.</summary>
    /// <param name="owner">The owner.</param>
    /// <param name="kind">The kind, or null for all.</param>
    /// <param name="limit">At most this many.</param>
    /// <param name="after">A job id from a previous page, or null.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyList<JobRecord>> ListAsync(string owner, string? kind, int limit, string? after, CancellationToken cancellationToken);

    /// <summary>
    /// The largest body (<see cref="JobRecord.Payload"/>, <see cref="JobRecord.Progress"/>, <see cref="JobRecord.Result"/>)
    /// <see cref="ListAllAsync"/> returns: 64 KiB. Larger ones are left out of a listing.
    /// </summary>
    const int ListAllBodyLimit = 64 * 1024;

    /// <summary>
    /// Lists jobs of every owner (an operator's view, such as the dashboard's Jobs page), newest first, after the job id
    /// <paramref name="after"/> (exclusive) when given, with the same order and cursor as <see cref="ListAsync"/>. Expired jobs are left out.
    /// A listing is an overview, so a page never reads large request or result bodies: a <see cref="JobRecord.Payload"/>
    /// longer than <see cref="ListAllBodyLimit"/> is returned empty, and a longer <see cref="JobRecord.Progress"/> or
    /// <see cref="JobRecord.Result"/> as null (read the job with <see cref="GetAsync"/> for them).
    /// </summary>
    /// <remarks>
    /// The default throws <see cref="NotSupportedException"/> (so stores written against an older version keep compiling; the
    /// dashboard then says the store cannot list). The built-in stores answer it with one query.
    /// </remarks>
    /// <param name="kind">Only jobs of this kind, or null for all.</param>
    /// <param name="exceptKind">Leave out jobs of this kind (e.g. <c>batch</c> to list async inference jobs only), or null.</param>
    /// <param name="unfinished">True: pending and processing jobs only; false: finished ones only; null: both.</param>
    /// <param name="limit">At most this many.</param>
    /// <param name="after">A job id from a previous page, or null.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyList<JobRecord>> ListAllAsync(string? kind, string? exceptKind, bool? unfinished, int limit, string? after, CancellationToken cancellationToken) =>
        ValueTask.FromException<IReadOnlyList<JobRecord>>(new NotSupportedException($"{GetType().Name} cannot list the jobs of every owner (IJobStore.ListAllAsync is not implemented)."));

    /// <summary>Deletes finished jobs whose <see cref="JobRecord.ExpiresAt"/> is at or before now.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were deleted.</returns>
    ValueTask<int> ExpireAsync(CancellationToken cancellationToken);

    /// <summary>How many jobs wait to run or run now (pending + processing): the figure admission control compares with its limit.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<long> CountUnfinishedAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Claims a job fairly across owners, or returns null when none is claimable now. Claimable are the jobs
    /// <see cref="TryClaimAsync(string, TimeSpan, CancellationToken)"/> would take, restricted to owners that hold fewer than
    /// <paramref name="maxRunningPerOwner"/> running jobs (processing with an unexpired lease, counted across every worker and
    /// instance that shares the store). Among them the store takes the oldest job of the owner with the fewest running jobs,
    /// so owners interleave. The check and the claim are one atomic step: concurrent claims never put an owner over the cap.
    /// </summary>
    /// <remarks>The default implementation is not fair: it ignores the cap and claims like <see cref="TryClaimAsync(string, TimeSpan, CancellationToken)"/>.</remarks>
    /// <param name="workerId">Who claims (recorded on the job).</param>
    /// <param name="leaseDuration">How long the lease lasts unless renewed.</param>
    /// <param name="maxRunningPerOwner">The most running jobs one owner may hold (at least 1).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, int maxRunningPerOwner, CancellationToken cancellationToken) =>
        TryClaimAsync(workerId, leaseDuration, cancellationToken);

    /// <summary>
    /// What one owner holds in the store: unfinished jobs (pending + processing), running jobs (processing with an unexpired
    /// lease) and the bytes of its stored, unexpired jobs (request payloads and results). Per-owner quotas compare these figures with their limits.
    /// </summary>
    /// <remarks>The default implementation pages through <see cref="ListAsync"/> (and counts every processing job as running); stores should answer it with one query.</remarks>
    /// <param name="owner">The owner.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    async ValueTask<JobOwnerUsage> GetOwnerUsageAsync(string owner, CancellationToken cancellationToken)
    {
        long unfinished = 0, running = 0, bytes = 0;
        string? after = null;
        while (true)
        {
            var page = await ListAsync(owner, null, 500, after, cancellationToken).ConfigureAwait(false);
            foreach (var job in page)
            {
                if (!job.IsFinished)
                {
                    unfinished++;
                }

                if (job.Status == JobStatus.Processing) // without a clock: expired leases count too
                {
                    running++;
                }

                bytes += job.Payload.Length + (job.Result?.Length ?? 0);
            }

            if (page.Count < 500)
            {
                return new JobOwnerUsage(unfinished, running, bytes);
            }

            after = page[^1].Id;
        }
    }

    /// <summary>
    /// Reads a job for an answer to a client, like <see cref="GetAsync"/>, but with its result (or error) body as a stream,
    /// so polls of a large result never hold it in memory once per reader. Null when the job does not exist (or expired).
    /// </summary>
    /// <remarks>
    /// The default reads the job with <see cref="GetAsync"/> and wraps its <see cref="JobRecord.Result"/> without copying
    /// it (right for a store that keeps results in memory). A store that reads results from a database should override it
    /// to stream the body from there. The caller disposes the reader.
    /// </remarks>
    /// <param name="id">The job id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    async ValueTask<JobResultReader?> OpenResultAsync(string id, CancellationToken cancellationToken) =>
        await GetAsync(id, cancellationToken).ConfigureAwait(false) is { } job ? JobResultReader.FromRecord(job) : null;
}
