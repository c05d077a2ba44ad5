using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Bifrost.Middleware.Testing;

/// <summary>
/// The contract of <see cref="IJobStore"/>, as tests. Derive from it in your test project with your store
/// (<c>public sealed class MyStoreTests : JobStoreConformanceTests&lt;MyStore&gt;</c>) and every test runs against it:
/// claim exclusivity under concurrency, FIFO order, lease expiry and recovery, fencing of stale workers, retries with
/// backoff, cancellation, TTL expiry, owner isolation, admission counting, fairness across owners (interleaved claims,
/// the per-owner cap of running jobs under concurrent claims, per-owner usage), and the operator's listing across owners.
/// </summary>
/// <typeparam name="TStore">The store under test.</typeparam>
public abstract class JobStoreConformanceTests<TStore>
    where TStore : IJobStore
{
    /// <summary>The fake clock every store of this suite is created with; tests move it forward.</summary>
    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));

    /// <summary>A lease length the tests use.</summary>
    protected static TimeSpan Lease => TimeSpan.FromSeconds(30);

    /// <summary>
    /// Creates an empty store that reads the time from <paramref name="timeProvider"/> (once per test). A
    /// <see cref="ValueTask{TResult}"/>, as <c>ProviderAdapterConformanceTests.CreateAdapterAsync</c> and xunit.v3's
    /// <c>IAsyncLifetime</c>: a store made synchronously returns <c>ValueTask.FromResult(store)</c> without allocating.
    /// </summary>
    /// <param name="timeProvider">The clock.</param>
    protected abstract ValueTask<TStore> CreateStoreAsync(TimeProvider timeProvider);

    /// <summary>Releases a store created by <see cref="CreateStoreAsync"/> (by default: disposes it when it is <see cref="IAsyncDisposable"/>).</summary>
    /// <param name="store">The store.</param>
    protected virtual ValueTask DisposeStoreAsync(TStore store) => store is IAsyncDisposable disposable ? disposable.DisposeAsync() : ValueTask.CompletedTask;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static NewJob Job(string? id = null, string owner = "owner-a", string kind = "chat_completion", int maxAttempts = 3, TimeSpan? ttl = null) => new()
    {
        Id = id ?? Guid.NewGuid().ToString(),
        Kind = kind,
        Owner = owner,
        Payload = Encoding.UTF8.GetBytes("{\"model\":\"local/echo\"}"),
        ResultTtl = ttl ?? TimeSpan.FromMinutes(10),
        MaxAttempts = maxAttempts,
    };

    private async Task RunAsync(Func<TStore, Task> test)
    {
        var store = await CreateStoreAsync(Time);
        try
        {
            await test(store);
        }
        finally
        {
            await DisposeStoreAsync(store);
        }
    }

    /// <summary>An enqueued job reads back pending, with its payload, owner, kind and creation time.</summary>
    [Fact]
    public Task Enqueued_job_reads_back_pending_with_its_payload() => RunAsync(async store =>
    {
        var job = Job();
        var stored = await store.EnqueueAsync(job, Token);
        var read = await store.GetAsync(job.Id, Token);

        Assert.NotNull(read);
        Assert.Equal(JobStatus.Pending, stored.Status);
        Assert.Equal(JobStatus.Pending, read.Status);
        Assert.Equal(job.Owner, read.Owner);
        Assert.Equal(job.Kind, read.Kind);
        Assert.Equal(job.Payload.ToArray(), read.Payload.ToArray());
        Assert.Equal(Time.GetUtcNow(), read.CreatedAt);
        Assert.Null(read.Result);
        Assert.Null(await store.GetAsync("no-such-job", Token));
    });

    /// <summary>The submitter's W3C traceparent is stored as given (and read back by a claim); a job without one has none.</summary>
    [Fact]
    public Task The_submitters_trace_context_is_kept_as_given_and_absent_when_not_given() => RunAsync(async store =>
    {
        const string traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        var traced = new NewJob { Id = Guid.NewGuid().ToString(), Kind = "chat_completion", Owner = "owner-a", Payload = "{}"u8.ToArray(), ResultTtl = TimeSpan.FromMinutes(10), TraceParent = traceParent };
        var plain = Job();

        Assert.Equal(traceParent, (await store.EnqueueAsync(traced, Token)).TraceParent);
        await store.EnqueueAsync(plain, Token);

        Assert.Equal(traceParent, (await store.GetAsync(traced.Id, Token))!.TraceParent);
        Assert.Null((await store.GetAsync(plain.Id, Token))!.TraceParent);
        var lease = await store.TryClaimAsync("w", Lease, Token); // the worker reads it from the claimed job
        Assert.Equal(traced.Id, lease!.Job.Id);
        Assert.Equal(traceParent, lease.Job.TraceParent);
    });

    /// <summary>Jobs are claimed oldest first, each claim moves the job to processing with a higher version.</summary>
    [Fact]
    public Task Claims_are_first_in_first_out() => RunAsync(async store =>
    {
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var job = Job();
            ids.Add(job.Id);
            await store.EnqueueAsync(job, Token);
            Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var claimed = new List<string>();
        while (await store.TryClaimAsync("w", Lease, Token) is { } lease)
        {
            Assert.Equal(JobStatus.Processing, lease.Job.Status);
            Assert.True(lease.Version > 0);
            Assert.Equal("w", lease.Job.LeaseOwner);
            claimed.Add(lease.JobId);
        }

        Assert.Equal(ids, claimed);
        Assert.Null(await store.TryClaimAsync("w", Lease, Token));
    });

    /// <summary>Many workers claiming at once never get the same job twice.</summary>
    [Fact]
    public Task Concurrent_claims_are_exclusive() => RunAsync(async store =>
    {
        const int jobs = 200;
        for (var i = 0; i < jobs; i++)
        {
            await store.EnqueueAsync(Job(), Token);
        }

        var claimed = new ConcurrentBag<string>();
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            while (await store.TryClaimAsync($"w{w}", Lease, Token) is { } lease)
            {
                claimed.Add(lease.JobId);
            }
        }));
        await Task.WhenAll(workers);

        Assert.Equal(jobs, claimed.Count);
        Assert.Equal(jobs, claimed.Distinct().Count());
    });

    /// <summary>A job whose worker died is claimed again once its lease expired, not before.</summary>
    [Fact]
    public Task Expired_lease_makes_the_job_claimable_again() => RunAsync(async store =>
    {
        var job = Job();
        await store.EnqueueAsync(job, Token);
        var first = await store.TryClaimAsync("dead-worker", Lease, Token);
        Assert.NotNull(first);

        Time.Advance(Lease - TimeSpan.FromSeconds(1));
        Assert.Null(await store.TryClaimAsync("w2", Lease, Token));

        Time.Advance(TimeSpan.FromSeconds(2));
        var second = await store.TryClaimAsync("w2", Lease, Token);
        Assert.NotNull(second);
        Assert.Equal(job.Id, second.JobId);
        Assert.True(second.Version > first.Version);
        Assert.Equal("w2", second.Job.LeaseOwner);
    });

    /// <summary>A renewed lease keeps the job away from other workers past its first expiry.</summary>
    [Fact]
    public Task Renewed_lease_is_not_taken_over() => RunAsync(async store =>
    {
        await store.EnqueueAsync(Job(), Token);
        var lease = await store.TryClaimAsync("w1", Lease, Token);
        Assert.NotNull(lease);

        Time.Advance(Lease / 2);
        Assert.True(await store.RenewLeaseAsync(lease, Lease, Token));
        Time.Advance(Lease / 2 + TimeSpan.FromSeconds(5));

        Assert.Null(await store.TryClaimAsync("w2", Lease, Token));
        Assert.True(await store.CompleteAsync(lease, new JobOutcome(200, "{}"u8.ToArray()), Token));
    });

    /// <summary>After a takeover, every write of the old worker is rejected and changes nothing; the new worker's result stands.</summary>
    [Fact]
    public Task Stale_worker_is_fenced_out() => RunAsync(async store =>
    {
        var job = Job();
        await store.EnqueueAsync(job, Token);
        var stale = await store.TryClaimAsync("w1", Lease, Token);
        Assert.NotNull(stale);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        var current = await store.TryClaimAsync("w2", Lease, Token);
        Assert.NotNull(current);

        Assert.False(await store.RenewLeaseAsync(stale, Lease, Token));
        Assert.False(await store.CompleteAsync(stale, new JobOutcome(200, "\"stale\""u8.ToArray()), Token));
        Assert.False(await store.FailAsync(stale, new JobOutcome(500, "\"stale\""u8.ToArray()), Token));
        Assert.False(await store.ReleaseAsync(stale, null, countAttempt: true, Token));
        Assert.False(await store.MarkCancelledAsync(stale, new JobOutcome(499, "\"stale\""u8.ToArray()), Token));
        var during = await store.GetAsync(job.Id, Token);
        Assert.Equal(JobStatus.Processing, during!.Status);
        Assert.Equal("w2", during.LeaseOwner);

        Assert.True(await store.CompleteAsync(current, new JobOutcome(200, "\"fresh\""u8.ToArray()), Token));
        var done = await store.GetAsync(job.Id, Token);
        Assert.Equal(JobStatus.Completed, done!.Status);
        Assert.Equal("\"fresh\"", Encoding.UTF8.GetString(done.Result!.Value.Span));
        Assert.False(await store.CompleteAsync(current, new JobOutcome(200, "\"again\""u8.ToArray()), Token));
    });

    /// <summary>Progress saved by the current worker is visible to readers, kept after completion, and fenced against stale workers.</summary>
    [Fact]
    public Task Progress_is_visible_and_fenced() => RunAsync(async store =>
    {
        var job = Job();
        await store.EnqueueAsync(job, Token);
        var stale = await store.TryClaimAsync("w1", Lease, Token);
        Assert.True(await store.SaveProgressAsync(stale!, "{\"done\":1}"u8.ToArray(), Token));
        Assert.Equal("{\"done\":1}", Encoding.UTF8.GetString((await store.GetAsync(job.Id, Token))!.Progress!.Value.Span));

        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        var current = await store.TryClaimAsync("w2", Lease, Token);
        Assert.False(await store.SaveProgressAsync(stale!, "{\"done\":99}"u8.ToArray(), Token));
        Assert.Equal("{\"done\":1}", Encoding.UTF8.GetString(current!.Job.Progress!.Value.Span));
        Assert.True(await store.SaveProgressAsync(current, "{\"done\":2}"u8.ToArray(), Token));
        Assert.True(await store.CompleteAsync(current, new JobOutcome(200, "{}"u8.ToArray()), Token));
        Assert.Equal("{\"done\":2}", Encoding.UTF8.GetString((await store.GetAsync(job.Id, Token))!.Progress!.Value.Span));
    });

    /// <summary>A lease that ran out cannot complete the job even if nobody took it over yet.</summary>
    [Fact]
    public Task Expired_lease_cannot_complete() => RunAsync(async store =>
    {
        await store.EnqueueAsync(Job(), Token);
        var lease = await store.TryClaimAsync("w1", Lease, Token);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        Assert.False(await store.CompleteAsync(lease!, new JobOutcome(200, "{}"u8.ToArray()), Token));
    });

    /// <summary>Completing records status, status code, body, completion and expiry times.</summary>
    [Fact]
    public Task Complete_and_fail_record_the_outcome() => RunAsync(async store =>
    {
        var ok = Job(ttl: TimeSpan.FromMinutes(5));
        var bad = Job(ttl: TimeSpan.FromMinutes(5));
        await store.EnqueueAsync(ok, Token);
        await store.EnqueueAsync(bad, Token);
        var okLease = await store.TryClaimAsync("w", Lease, Token);
        var badLease = await store.TryClaimAsync("w", Lease, Token);
        Assert.Equal(2, await store.CountUnfinishedAsync(Token));

        Time.Advance(TimeSpan.FromSeconds(3));
        Assert.True(await store.CompleteAsync(okLease!, new JobOutcome(200, "{\"ok\":true}"u8.ToArray()), Token));
        Assert.True(await store.FailAsync(badLease!, new JobOutcome(429, "{\"error\":{}}"u8.ToArray()), Token));

        var done = await store.GetAsync(ok.Id, Token);
        Assert.Equal(JobStatus.Completed, done!.Status);
        Assert.Equal(200, done.StatusCode);
        Assert.Equal("{\"ok\":true}", Encoding.UTF8.GetString(done.Result!.Value.Span));
        Assert.Equal(Time.GetUtcNow(), done.CompletedAt);
        Assert.Equal(Time.GetUtcNow() + TimeSpan.FromMinutes(5), done.ExpiresAt);
        Assert.True(done.IsFinished);

        var failed = await store.GetAsync(bad.Id, Token);
        Assert.Equal(JobStatus.Failed, failed!.Status);
        Assert.Equal(429, failed.StatusCode);
        Assert.Equal(0, await store.CountUnfinishedAsync(Token));
    });

    /// <summary>A retry releases the job with a backoff: not claimable before it, claimable after, attempts counted.</summary>
    [Fact]
    public Task Released_job_waits_for_its_backoff_and_counts_the_attempt() => RunAsync(async store =>
    {
        var job = Job();
        await store.EnqueueAsync(job, Token);
        var lease = await store.TryClaimAsync("w", Lease, Token);
        Assert.True(await store.ReleaseAsync(lease!, Time.GetUtcNow() + TimeSpan.FromSeconds(10), countAttempt: true, Token));

        var pending = await store.GetAsync(job.Id, Token);
        Assert.Equal(JobStatus.Pending, pending!.Status);
        Assert.Equal(1, pending.Attempts);
        Assert.Null(await store.TryClaimAsync("w", Lease, Token));

        Time.Advance(TimeSpan.FromSeconds(11));
        var again = await store.TryClaimAsync("w", Lease, Token);
        Assert.NotNull(again);
        Assert.Equal(1, again.Job.Attempts);
        Assert.True(again.Version > lease!.Version);
    });

    /// <summary>A job due later does not block jobs behind it that are due now.</summary>
    [Fact]
    public Task Backoff_of_one_job_does_not_block_others() => RunAsync(async store =>
    {
        var slow = Job();
        var next = Job();
        await store.EnqueueAsync(slow, Token);
        var lease = await store.TryClaimAsync("w", Lease, Token);
        Assert.True(await store.ReleaseAsync(lease!, Time.GetUtcNow() + TimeSpan.FromMinutes(1), countAttempt: true, Token));
        await store.EnqueueAsync(next, Token);

        var claimed = await store.TryClaimAsync("w", Lease, Token);
        Assert.Equal(next.Id, claimed?.JobId);
    });

    /// <summary>A shutdown release does not count an attempt and makes the job claimable at once.</summary>
    [Fact]
    public Task Shutdown_release_keeps_attempts() => RunAsync(async store =>
    {
        var job = Job();
        await store.EnqueueAsync(job, Token);
        var lease = await store.TryClaimAsync("w", Lease, Token);
        Assert.True(await store.ReleaseAsync(lease!, null, countAttempt: false, Token));

        var again = await store.TryClaimAsync("w2", Lease, Token);
        Assert.Equal(job.Id, again?.JobId);
        Assert.Equal(0, again!.Job.Attempts);
    });

    /// <summary>Cancelling a pending job finishes it at once; a running job gets the request flag, and its worker can mark it cancelled.</summary>
    [Fact]
    public Task Cancellation_of_pending_and_running_jobs() => RunAsync(async store =>
    {
        var running = Job();
        var waiting = Job();
        await store.EnqueueAsync(running, Token);
        await store.EnqueueAsync(waiting, Token);
        var lease = await store.TryClaimAsync("w", Lease, Token);
        Assert.Equal(running.Id, lease!.JobId);

        var cancelledPending = await store.RequestCancellationAsync(waiting.Id, Token);
        Assert.Equal(JobStatus.Cancelled, cancelledPending!.Status);
        Assert.Null(await store.TryClaimAsync("w2", Lease, Token));

        var flagged = await store.RequestCancellationAsync(running.Id, Token);
        Assert.Equal(JobStatus.Processing, flagged!.Status);
        Assert.True(flagged.CancellationRequested);
        Assert.True((await store.GetAsync(running.Id, Token))!.CancellationRequested);

        Assert.True(await store.MarkCancelledAsync(lease, new JobOutcome(499, "{}"u8.ToArray()), Token));
        Assert.Equal(JobStatus.Cancelled, (await store.GetAsync(running.Id, Token))!.Status);
        Assert.Equal(0, await store.CountUnfinishedAsync(Token));
        Assert.Null(await store.RequestCancellationAsync("no-such-job", Token));
    });

    /// <summary>A pending job that already saved progress is flagged, not cancelled, so a worker can finish it gracefully.</summary>
    [Fact]
    public Task Cancelling_a_started_pending_job_flags_it_and_keeps_it_claimable() => RunAsync(async store =>
    {
        var job = Job();
        await store.EnqueueAsync(job, Token);
        var lease = await store.TryClaimAsync("w", Lease, Token);
        Assert.True(await store.SaveProgressAsync(lease!, "{\"done\":1}"u8.ToArray(), Token));
        Assert.True(await store.ReleaseAsync(lease!, null, countAttempt: false, Token));

        var flagged = await store.RequestCancellationAsync(job.Id, Token);
        Assert.Equal(JobStatus.Pending, flagged!.Status);
        Assert.True(flagged.CancellationRequested);

        var resumed = await store.TryClaimAsync("w2", Lease, Token);
        Assert.Equal(job.Id, resumed?.JobId);
        Assert.True(resumed!.Job.CancellationRequested);
        Assert.True(await store.MarkCancelledAsync(resumed, new JobOutcome(200, "{}"u8.ToArray()), Token));
        Assert.Equal(JobStatus.Cancelled, (await store.GetAsync(job.Id, Token))!.Status);
    });

    /// <summary>
    /// A recorded cancel request wins over the run's own ending: completing or failing a job whose cancellation was
    /// requested stores it <see cref="JobStatus.Cancelled"/> (keeping the outcome), never completed or failed, because the
    /// client was already told it is being cancelled. A cancel request that comes after the job finished changes nothing.
    /// </summary>
    [Fact]
    public Task A_cancel_request_wins_over_a_later_completion_or_failure() => RunAsync(async store =>
    {
        var completing = Job();
        var failing = Job();
        var finishedFirst = Job();
        await store.EnqueueAsync(completing, Token);
        await store.EnqueueAsync(failing, Token);
        await store.EnqueueAsync(finishedFirst, Token);
        var completeLease = await store.TryClaimAsync("w1", Lease, Token);
        var failLease = await store.TryClaimAsync("w2", Lease, Token);
        var doneLease = await store.TryClaimAsync("w3", Lease, Token);
        Assert.Equal(completing.Id, completeLease!.JobId);
        Assert.Equal(failing.Id, failLease!.JobId);
        Assert.Equal(finishedFirst.Id, doneLease!.JobId);

        Assert.True((await store.RequestCancellationAsync(completing.Id, Token))!.CancellationRequested);
        Assert.True((await store.RequestCancellationAsync(failing.Id, Token))!.CancellationRequested);

        Assert.True(await store.CompleteAsync(completeLease, new JobOutcome(200, "{\"done\":true}"u8.ToArray()), Token));
        Assert.True(await store.FailAsync(failLease, new JobOutcome(502, "{\"error\":{}}"u8.ToArray()), Token));
        var completed = await store.GetAsync(completing.Id, Token);
        var failed = await store.GetAsync(failing.Id, Token);
        Assert.Equal(JobStatus.Cancelled, completed!.Status);
        Assert.Equal(200, completed.StatusCode);
        Assert.Equal("{\"done\":true}", Encoding.UTF8.GetString(completed.Result!.Value.Span));
        Assert.NotNull(completed.CompletedAt);
        Assert.Equal(JobStatus.Cancelled, failed!.Status);
        Assert.Equal(502, failed.StatusCode);

        // Finished before the request: the request is too late and changes nothing.
        Assert.True(await store.CompleteAsync(doneLease, new JobOutcome(200, "{}"u8.ToArray()), Token));
        var late = await store.RequestCancellationAsync(finishedFirst.Id, Token);
        Assert.Equal(JobStatus.Completed, late?.Status ?? (await store.GetAsync(finishedFirst.Id, Token))!.Status);
        Assert.Equal(JobStatus.Completed, (await store.GetAsync(finishedFirst.Id, Token))!.Status);
        Assert.Equal(0, await store.CountUnfinishedAsync(Token));
    });

    /// <summary>
    /// Completion and a cancel request racing from many threads: every job whose cancel request was acknowledged as
    /// recorded (the request returned it unfinished, flagged) ends cancelled; the others end completed.
    /// </summary>
    [Fact]
    public Task Completion_racing_a_cancel_request_never_loses_an_acknowledged_cancel() => RunAsync(async store =>
    {
        const int Jobs = 40;
        var leases = new List<JobLease>();
        for (var i = 0; i < Jobs; i++)
        {
            await store.EnqueueAsync(Job(), Token);
        }

        for (var i = 0; i < Jobs; i++)
        {
            leases.Add((await store.TryClaimAsync($"w{i}", Lease, Token))!);
        }

        var acknowledged = new ConcurrentDictionary<string, bool>();
        await Task.WhenAll(leases.Select(lease => Task.Run(async () =>
        {
            var cancel = Task.Run(async () =>
            {
                var answer = await store.RequestCancellationAsync(lease.JobId, Token);
                acknowledged[lease.JobId] = answer is { IsFinished: false, CancellationRequested: true } or { Status: JobStatus.Cancelled };
            });
            var complete = Task.Run(async () => await store.CompleteAsync(lease, new JobOutcome(200, "{}"u8.ToArray()), Token));
            await Task.WhenAll(cancel, complete);
        })));

        foreach (var lease in leases)
        {
            var job = await store.GetAsync(lease.JobId, Token);
            Assert.Equal(acknowledged[lease.JobId] ? JobStatus.Cancelled : JobStatus.Completed, job!.Status);
        }
    });

    /// <summary>Finished jobs disappear after their TTL; unfinished jobs never expire, however old.</summary>
    [Fact]
    public Task Finished_jobs_expire_after_their_ttl_and_running_ones_never() => RunAsync(async store =>
    {
        var finished = Job(ttl: TimeSpan.FromMinutes(1));
        var running = Job(ttl: TimeSpan.FromMinutes(1));
        var pending = Job(ttl: TimeSpan.FromMinutes(1));
        await store.EnqueueAsync(finished, Token);
        await store.EnqueueAsync(running, Token);
        var finishedLease = await store.TryClaimAsync("w", Lease, Token);
        var runningLease = await store.TryClaimAsync("w", Lease, Token);
        await store.EnqueueAsync(pending, Token);
        Assert.True(await store.RenewLeaseAsync(runningLease!, TimeSpan.FromHours(1), Token));
        Assert.True(await store.CompleteAsync(finishedLease!, new JobOutcome(200, "{}"u8.ToArray()), Token));

        Time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(0, await store.ExpireAsync(Token));
        Assert.NotNull(await store.GetAsync(finished.Id, Token));

        Time.Advance(TimeSpan.FromSeconds(2));
        Time.Advance(TimeSpan.FromMinutes(10));
        Assert.True(await store.ExpireAsync(Token) >= 1);
        Assert.Null(await store.GetAsync(finished.Id, Token));
        Assert.NotNull(await store.GetAsync(running.Id, Token));
        Assert.NotNull(await store.GetAsync(pending.Id, Token));
    });

    /// <summary>Listing shows only the owner's jobs (of the kind asked), newest first, in pages.</summary>
    [Fact]
    public Task List_is_per_owner_newest_first_and_paged() => RunAsync(async store =>
    {
        var mine = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var job = Job(owner: "me", kind: "batch");
            mine.Add(job.Id);
            await store.EnqueueAsync(job, Token);
            await store.EnqueueAsync(Job(owner: "someone-else", kind: "batch"), Token);
            await store.EnqueueAsync(Job(owner: "me", kind: "chat_completion"), Token);
            Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        mine.Reverse();
        var first = await store.ListAsync("me", "batch", 3, null, Token);
        Assert.Equal(mine.Take(3), first.Select(j => j.Id));
        var second = await store.ListAsync("me", "batch", 3, first[^1].Id, Token);
        Assert.Equal(mine.Skip(3), second.Select(j => j.Id));
        Assert.All(first.Concat(second), j => Assert.Equal("me", j.Owner));
        Assert.Equal(10, (await store.ListAsync("me", null, 100, null, Token)).Count);
        Assert.Empty(await store.ListAsync("nobody", null, 100, null, Token));
    });

    /// <summary>
    /// The operator's listing spans owners, newest first, paged with the same cursor as the per-owner list, filtered by kind
    /// (or every kind but one) and by finished or not, and leaves expired jobs out.
    /// </summary>
    [Fact]
    public Task List_all_spans_owners_newest_first_filtered_and_paged() => RunAsync(async store =>
    {
        var all = new List<NewJob>();
        for (var i = 0; i < 4; i++)
        {
            foreach (var job in (NewJob[])[Job(owner: "owner-a", kind: "batch"), Job(owner: "owner-b", kind: "chat_completion"), Job(owner: "owner-c", kind: "batch")])
            {
                all.Add(job);
                await store.EnqueueAsync(job, Token);
                Time.Advance(TimeSpan.FromMilliseconds(1));
            }
        }

        // Finish the two oldest jobs (one failed, one completed), and cancel the third (pending: cancelled at once).
        var first = await store.TryClaimAsync("w", Lease, Token);
        Assert.Equal(all[0].Id, first!.JobId);
        Assert.True(await store.FailAsync(first, new JobOutcome(500, "{}"u8.ToArray()), Token));
        var second = await store.TryClaimAsync("w", Lease, Token);
        Assert.Equal(all[1].Id, second!.JobId);
        Assert.True(await store.CompleteAsync(second, new JobOutcome(200, "{}"u8.ToArray()), Token));
        Assert.Equal(JobStatus.Cancelled, (await store.RequestCancellationAsync(all[2].Id, Token))!.Status);
        var running = await store.TryClaimAsync("w", Lease, Token); // all[3], processing: unfinished
        Assert.Equal(all[3].Id, running!.JobId);

        var newestFirst = Enumerable.Reverse(all).Select(j => j.Id).ToList();
        var everything = await store.ListAllAsync(null, null, null, 100, null, Token);
        Assert.Equal(newestFirst, everything.Select(j => j.Id));
        Assert.Equal(["owner-a", "owner-b", "owner-c"], everything.Select(j => j.Owner).Distinct().Order(StringComparer.Ordinal));

        // Paging: pages of 5 chain through the cursor to the same order, without repeats.
        var paged = new List<string>();
        string? after = null;
        var pages = 0;
        while (true)
        {
            var page = await store.ListAllAsync(null, null, null, 5, after, Token);
            pages++;
            paged.AddRange(page.Select(j => j.Id));
            if (page.Count < 5)
            {
                break;
            }

            after = page[^1].Id;
        }

        Assert.Equal(newestFirst, paged);
        Assert.Equal(3, pages); // 5 + 5 + 2

        // Kind filters.
        var batches = await store.ListAllAsync("batch", null, null, 100, null, Token);
        Assert.Equal(newestFirst.Where(id => all.Single(j => j.Id == id).Kind == "batch"), batches.Select(j => j.Id));
        Assert.Equal(8, batches.Count);
        Assert.Equal(["owner-a", "owner-c"], batches.Select(j => j.Owner).Distinct().Order(StringComparer.Ordinal));
        var notBatches = await store.ListAllAsync(null, "batch", null, 100, null, Token);
        Assert.Equal(4, notBatches.Count);
        Assert.All(notBatches, j => Assert.Equal("chat_completion", j.Kind));
        Assert.Empty(await store.ListAllAsync("batch", "batch", null, 100, null, Token));

        // State filters: three finished (failed, completed, cancelled), nine unfinished (one processing).
        var finished = await store.ListAllAsync(null, null, false, 100, null, Token);
        Assert.Equal([all[2].Id, all[1].Id, all[0].Id], finished.Select(j => j.Id));
        Assert.Equal([JobStatus.Cancelled, JobStatus.Completed, JobStatus.Failed], finished.Select(j => j.Status));
        var unfinished = await store.ListAllAsync(null, null, true, 100, null, Token);
        Assert.Equal(newestFirst.Take(9), unfinished.Select(j => j.Id));
        Assert.Equal(JobStatus.Processing, unfinished[^1].Status);
        Assert.All(unfinished.Take(8), j => Assert.Equal(JobStatus.Pending, j.Status));
        var finishedBatches = await store.ListAllAsync("batch", null, false, 100, null, Token);
        Assert.Equal([all[2].Id, all[0].Id], finishedBatches.Select(j => j.Id));
        var unfinishedAsync = await store.ListAllAsync(null, "batch", true, 2, null, Token);
        Assert.Equal([all[10].Id, all[7].Id], unfinishedAsync.Select(j => j.Id));
        Assert.Empty(await store.ListAllAsync(null, null, null, 0, null, Token));

        // Expired finished jobs are left out, the running one stays.
        Time.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal(9, (await store.ListAllAsync(null, null, null, 100, null, Token)).Count);
        Assert.Empty(await store.ListAllAsync(null, null, false, 100, null, Token));
    });

    /// <summary>
    /// A listing never carries a body over <see cref="IJobStore.ListAllBodyLimit"/> (payload returned empty, progress and
    /// result null), and carries the ones up to it whole; reading the job gives every body.
    /// </summary>
    [Fact]
    public Task List_all_leaves_out_bodies_over_the_limit() => RunAsync(async store =>
    {
        var limit = IJobStore.ListAllBodyLimit;
        byte[] Body(int length, byte fill) => Enumerable.Repeat(fill, length).ToArray();
        NewJob Sized(int length, byte fill) => new() { Id = Guid.NewGuid().ToString(), Kind = "chat_completion", Owner = "owner-a", Payload = Body(length, fill), ResultTtl = TimeSpan.FromMinutes(10), MaxAttempts = 3 };
        var big = Sized(limit + 1, (byte)'p');
        var fits = Sized(limit, (byte)'q');
        await store.EnqueueAsync(big, Token);
        Time.Advance(TimeSpan.FromMilliseconds(1));
        await store.EnqueueAsync(fits, Token);

        var first = await store.TryClaimAsync("w", Lease, Token);
        Assert.Equal(big.Id, first!.JobId);
        Assert.True(await store.SaveProgressAsync(first, Body(limit + 1, (byte)'s'), Token));
        Assert.True(await store.CompleteAsync(first, new JobOutcome(200, Body(limit + 1, (byte)'r')), Token));
        var second = await store.TryClaimAsync("w", Lease, Token);
        Assert.Equal(fits.Id, second!.JobId);
        Assert.True(await store.SaveProgressAsync(second, Body(limit, (byte)'t'), Token));
        Assert.True(await store.CompleteAsync(second, new JobOutcome(200, Body(limit, (byte)'u')), Token));

        var listed = (await store.ListAllAsync(null, null, null, 10, null, Token)).ToDictionary(j => j.Id);
        Assert.Equal(0, listed[big.Id].Payload.Length);
        Assert.Null(listed[big.Id].Progress);
        Assert.Null(listed[big.Id].Result);
        Assert.Equal(JobStatus.Completed, listed[big.Id].Status);
        Assert.Equal(limit, listed[fits.Id].Payload.Length);
        Assert.Equal(limit, listed[fits.Id].Progress!.Value.Length);
        Assert.Equal(limit, listed[fits.Id].Result!.Value.Length);
        Assert.True(listed[fits.Id].Result!.Value.Span.IndexOfAnyExcept((byte)'u') < 0);

        var read = await store.GetAsync(big.Id, Token);
        Assert.Equal(limit + 1, read!.Payload.Length);
        Assert.Equal(limit + 1, read.Result!.Value.Length);
    });

    /// <summary>The admission figure counts pending and processing jobs, not finished ones.</summary>
    [Fact]
    public Task Unfinished_count_tracks_pending_and_processing() => RunAsync(async store =>
    {
        Assert.Equal(0, await store.CountUnfinishedAsync(Token));
        for (var i = 0; i < 3; i++)
        {
            await store.EnqueueAsync(Job(), Token);
        }

        var lease = await store.TryClaimAsync("w", Lease, Token);
        Assert.Equal(3, await store.CountUnfinishedAsync(Token));
        await store.CompleteAsync(lease!, new JobOutcome(200, "{}"u8.ToArray()), Token);
        Assert.Equal(2, await store.CountUnfinishedAsync(Token));
    });

    /// <summary>Fair claims interleave owners: the oldest job of the owner with the fewest running jobs comes next, not strict FIFO.</summary>
    [Fact]
    public Task Fair_claims_interleave_owners() => RunAsync(async store =>
    {
        var a = new List<string>();
        var b = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var job = Job(owner: "owner-a");
            a.Add(job.Id);
            await store.EnqueueAsync(job, Token);
            Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        for (var i = 0; i < 3; i++)
        {
            var job = Job(owner: "owner-b");
            b.Add(job.Id);
            await store.EnqueueAsync(job, Token);
            Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var claimed = new List<string>();
        while (await store.TryClaimAsync("w", Lease, 100, Token) is { } lease)
        {
            claimed.Add(lease.JobId);
        }

        Assert.Equal([a[0], b[0], a[1], b[1], a[2], b[2]], claimed);
    });

    /// <summary>An owner at the cap of running jobs gets no more until one of its jobs finishes or its lease runs out; other owners are served meanwhile.</summary>
    [Fact]
    public Task Fair_claims_respect_the_per_owner_cap() => RunAsync(async store =>
    {
        var a = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var job = Job(owner: "owner-a");
            a.Add(job.Id);
            await store.EnqueueAsync(job, Token);
            Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var b = Job(owner: "owner-b");
        await store.EnqueueAsync(b, Token);

        var first = await store.TryClaimAsync("w", Lease, 2, Token);
        var second = await store.TryClaimAsync("w", Lease, 2, Token);
        var third = await store.TryClaimAsync("w", Lease, 2, Token);
        Assert.Equal(a[0], first?.JobId);
        Assert.Equal(b.Id, second?.JobId); // owner-b has no running job: it goes before owner-a's second
        Assert.Equal(a[1], third?.JobId);
        Assert.Null(await store.TryClaimAsync("w", Lease, 2, Token)); // owner-a holds 2 running jobs: the cap

        Assert.True(await store.CompleteAsync(first!, new JobOutcome(200, "{}"u8.ToArray()), Token));
        var fourth = await store.TryClaimAsync("w", Lease, 2, Token);
        Assert.Equal(a[2], fourth?.JobId);
        Assert.Null(await store.TryClaimAsync("w", Lease, 2, Token));

        // Leases that ran out do not count as running: their jobs (and the owner's next one) are claimable again.
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        var taken = new List<string>();
        while (await store.TryClaimAsync("w2", Lease, 2, Token) is { } lease)
        {
            taken.Add(lease.JobId);
        }

        Assert.Equal([a[1], b.Id, a[2]], taken);
        Assert.Equal(2, (await store.GetOwnerUsageAsync("owner-a", Token)).RunningJobs);
        Assert.Equal(JobStatus.Pending, (await store.GetAsync(a[3], Token))!.Status);
    });

    /// <summary>
    /// Many workers claiming at once never put an owner over the cap, and never get the same job twice. Repeated in rounds
    /// (each round finishes what it claimed), so a claim that checks the cap and takes the job in two unfenced steps is caught.
    /// </summary>
    [Fact]
    public Task Concurrent_fair_claims_never_exceed_the_per_owner_cap() => RunAsync(async store =>
    {
        string[] owners = ["owner-a", "owner-b", "owner-c"];
        const int Rounds = 8;
        const int Cap = 1;
        for (var i = 0; i < Rounds * 4; i++)
        {
            foreach (var owner in owners)
            {
                await store.EnqueueAsync(Job(owner: owner), Token);
            }
        }

        var all = new HashSet<string>();
        for (var round = 0; round < Rounds; round++)
        {
            var claimed = new ConcurrentBag<JobLease>();
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var workers = Enumerable.Range(0, 12).Select(w => Task.Run(async () =>
            {
                await start.Task;
                while (await store.TryClaimAsync($"w{w}", Lease, Cap, Token) is { } lease)
                {
                    claimed.Add(lease);
                }
            }));
            start.SetResult();
            await Task.WhenAll(workers);

            foreach (var owner in owners)
            {
                Assert.True(Cap == claimed.Count(l => l.Job.Owner == owner), $"round {round}: {owner} got {claimed.Count(l => l.Job.Owner == owner)} claims; the cap is {Cap}");
                Assert.Equal(Cap, (await store.GetOwnerUsageAsync(owner, Token)).RunningJobs);
            }

            foreach (var lease in claimed)
            {
                Assert.True(all.Add(lease.JobId), $"job {lease.JobId} claimed twice");
                Assert.True(await store.CompleteAsync(lease, new JobOutcome(200, "{}"u8.ToArray()), Token));
            }
        }
    });

    /// <summary>Per-owner usage: unfinished and running jobs, and the bytes of stored payloads and results, of that owner only.</summary>
    [Fact]
    public Task Owner_usage_counts_jobs_and_bytes_per_owner() => RunAsync(async store =>
    {
        var payload = Job().Payload.Length;
        var done = Job(owner: "owner-a", ttl: TimeSpan.FromMinutes(1));
        await store.EnqueueAsync(done, Token);
        await store.EnqueueAsync(Job(owner: "owner-a"), Token);
        await store.EnqueueAsync(Job(owner: "owner-a"), Token);
        await store.EnqueueAsync(Job(owner: "owner-b"), Token);
        Assert.Equal(new JobOwnerUsage(3, 0, 3 * payload), await store.GetOwnerUsageAsync("owner-a", Token));

        var finished = await store.TryClaimAsync("w", Lease, 10, Token);
        Assert.Equal(done.Id, finished?.JobId);
        var running = await store.TryClaimAsync("w", Lease, 10, Token);
        Assert.Equal("owner-b", running?.Job.Owner);
        running = await store.TryClaimAsync("w", Lease, 10, Token);
        Assert.Equal("owner-a", running?.Job.Owner);
        Assert.Equal(new JobOwnerUsage(3, 2, 3 * payload), await store.GetOwnerUsageAsync("owner-a", Token));

        var result = new byte[1000];
        Assert.True(await store.CompleteAsync(finished!, new JobOutcome(200, result), Token));
        Assert.Equal(new JobOwnerUsage(2, 1, (3 * payload) + 1000), await store.GetOwnerUsageAsync("owner-a", Token));
        Assert.Equal(new JobOwnerUsage(1, 1, payload), await store.GetOwnerUsageAsync("owner-b", Token));
        Assert.Equal(default, await store.GetOwnerUsageAsync("nobody", Token));

        // A finished job's bytes are freed once it expired and was swept; a processing job whose lease ran out is not running.
        Time.Advance(TimeSpan.FromMinutes(2));
        await store.ExpireAsync(Token);
        Assert.Equal(new JobOwnerUsage(2, 0, 2 * payload), await store.GetOwnerUsageAsync("owner-a", Token));
    });

    /// <summary>
    /// <see cref="IJobStore.OpenResultAsync"/> hands out a finished job's result (or error) as a stream with the stored
    /// bytes, to many readers at once; an unfinished job has its payload and no result; an unknown or expired job is null.
    /// </summary>
    [Fact]
    public Task Results_open_as_streams_with_the_stored_bytes() => RunAsync(async store =>
    {
        Assert.Null(await store.OpenResultAsync("no-such-job", Token));

        var pending = Job();
        await store.EnqueueAsync(pending, Token);
        await using (var reader = await store.OpenResultAsync(pending.Id, Token))
        {
            Assert.NotNull(reader);
            Assert.Equal(JobStatus.Pending, reader.Job.Status);
            Assert.Equal(pending.Payload.ToArray(), reader.Job.Payload.ToArray());
            Assert.Null(reader.Result);
        }

        // A result of a few hundred KB with every byte value, and an error.
        var body = new byte[300_001];
        for (var i = 0; i < body.Length; i++)
        {
            body[i] = (byte)(i * 7);
        }

        var completed = await store.TryClaimAsync("w", Lease, Token);
        Assert.True(await store.CompleteAsync(completed!, new JobOutcome(200, body), Token));
        var failedJob = Job();
        await store.EnqueueAsync(failedJob, Token);
        var failed = await store.TryClaimAsync("w", Lease, Token);
        Assert.True(await store.FailAsync(failed!, new JobOutcome(429, "{\"error\":1}"u8.ToArray()), Token));

        var readers = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            await using var reader = await store.OpenResultAsync(pending.Id, Token);
            Assert.NotNull(reader);
            Assert.Equal(JobStatus.Completed, reader.Job.Status);
            Assert.Equal(200, reader.Job.StatusCode);
            Assert.NotNull(reader.Result);
            using var copy = new MemoryStream();
            await reader.Result.CopyToAsync(copy, 4096, Token);
            Assert.True(reader.ResultLength is null || reader.ResultLength == body.Length);
            return copy.ToArray();
        }));
        Assert.All(readers, read => Assert.Equal(body, read));

        await using (var reader = await store.OpenResultAsync(failedJob.Id, Token))
        {
            Assert.Equal(JobStatus.Failed, reader!.Job.Status);
            Assert.Equal(429, reader.Job.StatusCode);
            using var copy = new MemoryStream();
            await reader.Result!.CopyToAsync(copy, Token);
            Assert.Equal("{\"error\":1}", Encoding.UTF8.GetString(copy.ToArray()));
        }

        Time.Advance(TimeSpan.FromMinutes(11));
        Assert.Null(await store.OpenResultAsync(pending.Id, Token));
    });
}
