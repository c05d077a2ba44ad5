using System.Net;
using System.Text;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>The job engine inside a host: crashes are recorded on the job, dead workers' jobs are recovered, shutdown loses nothing.</summary>
public sealed class JobProcessorTests
{
    [Fact]
    public async Task An_adapter_that_throws_fails_the_job_with_500_and_the_host_serves_the_next_job()
    {
        var adapter = new ScriptedAdapter((_, _, _) => throw new InvalidOperationException("boom"));
        await using var host = await GatewayHost.StartAsync(o => o.Jobs.Workers = 1, b => b.AddProvider("broken", _ => adapter));

        var id = await host.SubmitAsync(ChatBody("crash", "broken/m"));
        var (status, error) = await host.PollUntilFinishedAsync(id);
        Assert.Equal(HttpStatusCode.InternalServerError, status);
        AssertError(error, 500, null, isBifrostError: true);
        Assert.Contains("boom", error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, adapter.Calls); // an unexpected exception is not retried

        Assert.False(host.Services.GetRequiredService<JobProcessor>().ExecuteTask!.IsCompleted, "the processor must keep running");
        var next = await host.SubmitAsync(ChatBody("still alive"));
        var (nextStatus, completion) = await host.PollUntilFinishedAsync(next);
        Assert.Equal(HttpStatusCode.OK, nextStatus);
        Assert.Equal("still alive", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task A_job_whose_handler_crashes_is_failed_with_500_and_the_worker_keeps_working()
    {
        await using var host = await GatewayHost.StartAsync(o =>
        {
            o.Jobs.Workers = 1;
            o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
        });
        var store = host.Services.GetRequiredService<IJobStore>();

        // A stored request the handler cannot read: it throws (JsonException), outside any provider.
        await store.EnqueueAsync(new NewJob { Id = "job-corrupt", Kind = "chat_completion", Owner = host.AnonymousOwner(), Payload = "not json"u8.ToArray(), ResultTtl = TimeSpan.FromHours(1) }, Ct);
        var failed = await store.StoreUntilAsync("job-corrupt", j => j.IsFinished, "the corrupt job to finish");
        Assert.Equal(JobStatus.Failed, failed.Status);
        Assert.Equal(500, failed.StatusCode);
        Assert.Equal(1, failed.Version);

        using (var poll = await host.PollAsync("job-corrupt"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, poll.StatusCode);
            AssertError(await ReadAsync(poll), 500, "internal_error", isBifrostError: true);
        }

        Assert.False(host.Services.GetRequiredService<JobProcessor>().ExecuteTask!.IsCompleted, "the processor must keep running");
        var next = await host.SubmitAsync(ChatBody("after the crash"));
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(next)).Status);
    }

    [Fact]
    public async Task A_job_whose_worker_died_is_claimed_again_after_its_lease_expired()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = new InMemoryJobStore(time);
        var owner = new DefaultJobOwnerResolver().ResolveOwner(new Microsoft.AspNetCore.Http.DefaultHttpContext());
        await store.EnqueueAsync(new NewJob { Id = "job-orphan", Kind = "chat_completion", Owner = owner, Payload = Encoding.UTF8.GetBytes(ChatBody("orphaned")), ResultTtl = TimeSpan.FromHours(1) }, Ct);

        // A worker of a previous instance claims it with a 30 s lease and dies (never renews, never finishes).
        var dead = await store.TryClaimAsync("dead-worker", TimeSpan.FromSeconds(30), Ct);
        Assert.NotNull(dead);

        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Jobs.PollInterval = TimeSpan.FromSeconds(1);
            },
            services: s => s.AddSingleton<TimeProvider>(time).AddSingleton<IJobStore>(store));

        // Before the lease ends the job stays with the dead worker, although the processor polls (the fake clock fires its timer).
        for (var i = 0; i < 20; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(10, Ct);
        }

        var held = await store.GetAsync("job-orphan", Ct);
        Assert.Equal(JobStatus.Processing, held!.Status);
        Assert.Equal("dead-worker", held.LeaseOwner);
        Assert.Equal(1, held.Version);
        Assert.Equal("processing", (await host.EnvelopeAsync("job-orphan")).GetProperty("status").GetString());

        // After it, the processor takes the job over and completes it.
        var done = await EventuallyAsync("the orphaned job to be completed", async () =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(10, Ct);
            return await store.GetAsync("job-orphan", Ct) is { IsFinished: true } job ? job : null;
        });
        Assert.Equal(JobStatus.Completed, done.Status);
        Assert.Equal(2, done.Version);
        Assert.True(done.CompletedAt >= dead.Job.LeaseExpiresAt);
        var (status, completion) = await host.PollUntilFinishedAsync("job-orphan");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("orphaned", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Shutdown_past_its_timeout_releases_the_running_job_and_the_next_host_completes_every_job()
    {
        var store = new InMemoryJobStore(TimeProvider.System);
        var gate = new GateAdapter();
        var first = await StartSharedAsync(store, gate, TimeSpan.FromMilliseconds(300));
        var ids = new List<string>();
        string running;
        try
        {
            running = await first.SubmitAsync(ChatBody("in flight", "gate/m"));
            await store.StoreUntilAsync(running, j => j.Status == JobStatus.Processing, "the first job to start");
            ids.Add(running);
            ids.Add(await first.SubmitAsync(ChatBody("queued 1")));
            ids.Add(await first.SubmitAsync(ChatBody("queued 2")));

            // The in-flight job never finishes on its own: the shutdown timeout (300 ms) runs out and it is released.
            await first.App.StopAsync(Ct);
        }
        finally
        {
            await first.DisposeAsync();
        }

        foreach (var id in ids)
        {
            var job = await store.GetAsync(id, Ct);
            Assert.NotNull(job);
            Assert.Equal(JobStatus.Pending, job.Status);
            Assert.Null(job.LeaseOwner);
            Assert.Equal(0, job.Attempts); // a shutdown is not a failed attempt
        }

        Assert.Equal(1, (await store.GetAsync(running, Ct))!.Version);
        Assert.Equal(3, await store.CountUnfinishedAsync(Ct));

        gate.Open();
        await using var second = await StartSharedAsync(store, gate, TimeSpan.FromSeconds(5));
        foreach (var id in ids)
        {
            var (status, _) = await second.PollUntilFinishedAsync(id);
            Assert.Equal(HttpStatusCode.OK, status);
        }

        Assert.Equal(0, await store.CountUnfinishedAsync(Ct));
        Assert.Equal(2, gate.Started);
    }

    [Fact]
    public async Task Shutdown_lets_the_running_job_finish_within_the_timeout_and_loses_none_of_the_queued_ones()
    {
        var store = new InMemoryJobStore(TimeProvider.System);
        var gate = new GateAdapter();
        var first = await StartSharedAsync(store, gate, TimeSpan.FromSeconds(10));
        var ids = new List<string>();
        string running;
        try
        {
            running = await first.SubmitAsync(ChatBody("in flight", "gate/m"));
            await store.StoreUntilAsync(running, j => j.Status == JobStatus.Processing, "the first job to start");
            ids.Add(running);
            ids.Add(await first.SubmitAsync(ChatBody("queued 1", "gate/m")));
            ids.Add(await first.SubmitAsync(ChatBody("queued 2", "gate/m")));

            // The running job finishes while the host is stopping (well within its 10 s timeout).
            var lifetime = first.Services.GetRequiredService<IHostApplicationLifetime>();
            using var opener = lifetime.ApplicationStopping.Register(() => _ = Task.Delay(300, CancellationToken.None).ContinueWith(_ => gate.Open(), TaskScheduler.Default));
            await first.App.StopAsync(Ct);
        }
        finally
        {
            await first.DisposeAsync();
        }

        var finished = await store.GetAsync(running, Ct);
        Assert.Equal(JobStatus.Completed, finished!.Status);
        foreach (var id in ids)
        {
            var job = await store.GetAsync(id, Ct);
            Assert.NotNull(job);
            Assert.True(job.Status is JobStatus.Completed or JobStatus.Pending, $"job {id} is {job.Status} after the shutdown");
        }

        await using var second = await StartSharedAsync(store, gate, TimeSpan.FromSeconds(5));
        foreach (var id in ids)
        {
            var (status, completion) = await second.PollUntilFinishedAsync(id);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("gate-open", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }

        Assert.Equal(0, await store.CountUnfinishedAsync(Ct));
    }

    /// <summary>A host on a shared store (as a durable store would be shared by restarts), one worker.</summary>
    private static Task<GatewayHost> StartSharedAsync(InMemoryJobStore store, GateAdapter gate, TimeSpan shutdownTimeout) =>
        GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
            },
            b => b.AddProvider("gate", _ => gate),
            s => s.AddSingleton<IJobStore>(store).Configure<HostOptions>(h => h.ShutdownTimeout = shutdownTimeout));
}
