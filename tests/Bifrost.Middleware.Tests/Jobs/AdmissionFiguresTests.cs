using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>
/// Admission control reads the store's figures (the unfinished count, the owner's usage: in a database store both grow
/// with the backlog) at most once a second and carries them forward by its own submissions; a refusal is always decided
/// on figures read fresh.
/// </summary>
public sealed class AdmissionFiguresTests
{
    [Fact]
    public async Task Submissions_within_a_second_read_the_stores_figures_once()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = new CountingStore(new InMemoryJobStore(time));
        await using var host = await GatewayHost.StartAsync(
            o => o.Jobs.MaxQueuedJobsPerOwner = 100,
            services: s => s.AddSingleton<TimeProvider>(time).AddSingleton<IJobStore>(store));

        for (var i = 0; i < 5; i++)
        {
            await host.SubmitAsync(ChatBody($"job {i}"));
        }

        // (the store's unfinished count is carried the same way; it is not counted here: the queued-jobs gauge reads it
        // too whenever a metrics listener in the test process collects)
        Assert.Equal(1, store.OwnerUsages);
        Assert.Equal(5, await store.CountUnfinishedAsync(Ct)); // nothing runs: the store hands out no job

        time.Advance(AdmissionFigures.Reuse);
        await host.SubmitAsync(ChatBody("a second later"));
        Assert.Equal(2, store.OwnerUsages);
    }

    [Fact]
    public async Task A_submission_the_carried_figures_would_refuse_is_decided_on_fresh_ones()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = new CountingStore(new InMemoryJobStore(time));
        await using var host = await GatewayHost.StartAsync(
            o => o.Jobs.MaxQueuedJobsPerOwner = 3,
            services: s => s.AddSingleton<TimeProvider>(time).AddSingleton<IJobStore>(store));

        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await host.SubmitAsync(ChatBody($"job {i}")));
        }

        // the owner's queue is full: refused, on figures read again for the refusal
        using (var refused = await host.SendAsync(HttpMethod.Post, ChatPath, ChatBody("one too many"), ("x-bf-async", "true")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            AssertError(await ReadAsync(refused), 429, "owner_queue_full", isBifrostError: true);
        }

        Assert.Equal(2, store.OwnerUsages);

        // a job leaves the queue (cancelled before it ran); the carried figure still says 3 within the second, the fresh one 2
        Assert.Equal(JobStatus.Cancelled, (await store.RequestCancellationAsync(ids[0], Ct))!.Status);
        await host.SubmitAsync(ChatBody("room again"));
        Assert.Equal(3, store.OwnerUsages);
        Assert.Equal(3, await store.CountUnfinishedAsync(Ct));
    }

    /// <summary>Counts the owner-usage reads; hands out no job, so everything submitted stays queued.</summary>
    private sealed class CountingStore(IJobStore inner) : DelegatingJobStore(inner)
    {
        private int _ownerUsages;

        public int OwnerUsages => Volatile.Read(ref _ownerUsages);

        public override ValueTask<JobOwnerUsage> GetOwnerUsageAsync(string owner, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _ownerUsages);
            return base.GetOwnerUsageAsync(owner, cancellationToken);
        }

        public override ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken) => ValueTask.FromResult<JobLease?>(null);

        public override ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, int maxRunningPerOwner, CancellationToken cancellationToken) => ValueTask.FromResult<JobLease?>(null);
    }
}
