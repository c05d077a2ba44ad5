using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Options;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>
/// The doorbell wakes only workers that could claim something: at most <c>Jobs:Workers</c> rings wait to be taken, and a
/// job stored for an owner already running its <c>Jobs:MaxRunningPerOwner</c> jobs on this instance wakes nobody (the
/// worker that ends one of that owner's jobs looks at the queue at once), so idle workers do not pick for nothing.
/// </summary>
public sealed class JobDoorbellTests
{
    [Fact]
    public async Task At_most_Workers_rings_wait_to_be_taken()
    {
        var doorbell = new JobDoorbell(TimeProvider.System, Options.Create(new BifrostOptions { Jobs = { Workers = 3 } }));
        for (var i = 0; i < 50; i++)
        {
            doorbell.Ring();
        }

        Assert.Equal(3, doorbell.Pending);
        for (var i = 0; i < 3; i++)
        {
            var wait = doorbell.WaitAsync(TimeSpan.FromMinutes(10), Ct);
            Assert.True(wait.IsCompleted); // a waiting ring is taken at once
            await wait;
        }

        Assert.Equal(0, doorbell.Pending);
        var fourth = doorbell.WaitAsync(TimeSpan.FromMinutes(10), Ct).AsTask();
        Assert.False(fourth.IsCompleted); // the other 47 rings woke nobody
        doorbell.Ring();
        await fourth.WaitAsync(Ct);
    }

    [Fact]
    public void A_ring_for_an_owner_at_its_cap_is_held_back_and_marked()
    {
        var doorbell = new JobDoorbell(TimeProvider.System, Options.Create(new BifrostOptions()));
        doorbell.UseOwnerCap(owner => owner == "busy");

        doorbell.Ring("busy");
        doorbell.Ring("busy");
        Assert.Equal(0, doorbell.Pending);
        Assert.Equal(2, doorbell.Suppressed);
        Assert.True(doorbell.IsDeferred("busy"));

        doorbell.Ring("idle");
        Assert.Equal(1, doorbell.Pending);
        Assert.Equal(2, doorbell.Suppressed);

        Assert.True(doorbell.TakeDeferred("busy"));
        Assert.False(doorbell.TakeDeferred("busy")); // taken once
        Assert.False(doorbell.TakeDeferred("idle"));
    }

    [Fact]
    public async Task Jobs_of_an_owner_at_its_cap_wake_no_idle_worker_and_still_all_run_without_polling()
    {
        var gate = new GateAdapter();
        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.Workers = 4;
                o.Jobs.MaxRunningPerOwner = 2;
                o.Jobs.PollInterval = TimeSpan.FromMinutes(10); // no poll during the test: only rings and re-claims move jobs
            },
            b => b.AddProvider("gate", _ => gate));
        var doorbell = host.Services.GetRequiredService<JobDoorbell>();
        (string, string) ownerA = ("Authorization", "Bearer owner-a");
        (string, string) ownerB = ("Authorization", "Bearer owner-b");

        var ids = new List<(string Id, (string, string) Owner)>
        {
            (await host.SubmitAsync(ChatBody("a1", "gate/m"), ownerA), ownerA),
            (await host.SubmitAsync(ChatBody("a2", "gate/m"), ownerA), ownerA),
        };
        await EventuallyAsync("owner A's two jobs to run", () => Task.FromResult<object?>(gate.Started == 2 ? true : null));
        Assert.Equal(0, doorbell.Suppressed);

        // Owner A runs its 2: four more of its jobs ring nobody (two workers are idle, none could claim them).
        for (var i = 3; i <= 6; i++)
        {
            ids.Add((await host.SubmitAsync(ChatBody($"a{i}", "gate/m"), ownerA), ownerA));
        }

        Assert.Equal(4, doorbell.Suppressed);
        Assert.Equal(0, doorbell.Pending);

        // Another owner's job rings, and an idle worker runs it.
        ids.Add((await host.SubmitAsync(ChatBody("b1", "gate/m"), ownerB), ownerB));
        Assert.Equal(4, doorbell.Suppressed);
        await EventuallyAsync("owner B's job to run", () => Task.FromResult<object?>(gate.Started == 3 ? true : null));

        // Every job ends: A's queued jobs are claimed by the workers that end A's jobs (the poll is 10 minutes away).
        gate.Open();
        foreach (var (id, owner) in ids)
        {
            var (status, _) = await host.PollUntilFinishedAsync(id, owner);
            Assert.Equal(HttpStatusCode.OK, status);
        }

        Assert.Equal(7, gate.Started);
    }
}
