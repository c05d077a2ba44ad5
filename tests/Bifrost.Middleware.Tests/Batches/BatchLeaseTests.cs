using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>
/// Exactly-once under store trouble while a batch runs: a failed lease renewal must neither leave a second worker
/// running the same batch next to the first one, nor let the first one write on after its lease ran out.
/// </summary>
public sealed class BatchLeaseTests
{
    private static async Task<(FileBatchHost Host, FlakyRenewalStore Store, OverlapAdapter Adapter)> StartAsync(TimeSpan lease)
    {
        var store = new FlakyRenewalStore(new InMemoryJobStore(TimeProvider.System));
        var adapter = new OverlapAdapter();
        var host = await FileBatchHost.StartAsync(
            o =>
            {
                o.Jobs.Workers = 2; // an idle worker that could take the batch over
                o.Jobs.LeaseDuration = lease;
                o.Jobs.PollInterval = TimeSpan.FromMilliseconds(25);
                o.Batches.Concurrency = 1;
            },
            bifrost: b => b.AddProvider("slow", _ => adapter),
            services: s => s.AddSingleton<IJobStore>(store));
        return (host, store, adapter);
    }

    [Fact]
    public async Task One_failed_renewal_does_not_stop_the_renewals_and_no_other_worker_takes_the_batch_over()
    {
        // A lease of 1.2 s is renewed every 0.4 s: one failed renewal leaves 0.8 s of lease, enough on a loaded 2-core machine.
        var (host, store, adapter) = await StartAsync(TimeSpan.FromMilliseconds(1200));
        await using var _ = host;
        var ids = Enumerable.Range(1, 30).Select(i => $"l-{i:D2}").ToList();
        store.FailRenewals(1);

        var created = await host.StartBatchAsync(ids.Select(id => BatchLines.Chat(id, model: "slow/m")));
        var id = created.GetProperty("id").GetString()!;
        var done = await host.WaitForEndAsync(id);

        Assert.True(store.FailedRenewals >= 1, "the store blip happened");
        Assert.Equal("completed", done.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(done);
        BatchLines.AssertExactlyOnce(ids, output, errors);
        BatchLines.AssertCountsAddUp(done, ids.Count);
        Assert.Equal(1, adapter.MaxInFlight); // Concurrency 1: more than one call at a time means two workers ran the batch
        Assert.Equal(1, (await store.GetAsync(id, Ct))!.Version); // renewed after the blip: never claimed twice
    }

    [Fact]
    public async Task When_renewals_fail_for_longer_than_the_lease_the_worker_stops_before_another_one_takes_over()
    {
        var (host, store, adapter) = await StartAsync(TimeSpan.FromMilliseconds(900));
        await using var _ = host;
        var ids = Enumerable.Range(1, 40).Select(i => $"o-{i:D2}").ToList();
        var created = await host.StartBatchAsync(ids.Select(id => BatchLines.Chat(id, model: "slow/m")));
        var id = created.GetProperty("id").GetString()!;
        await host.WaitForBatchAsync(id, b => b.GetProperty("request_counts").GetProperty("completed").GetInt32() >= 3);

        // The store cannot renew leases for longer than the lease: the batch is taken over (a new claim) once it ran out.
        store.FailRenewals(int.MaxValue);
        var deadline = DateTime.UtcNow + Deadline;
        while ((await store.GetAsync(id, Ct))!.Version < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the batch was not taken over after its lease ran out");
            await Task.Delay(10, Ct);
        }

        store.FailRenewals(0);
        var done = await host.WaitForEndAsync(id);

        Assert.Equal("completed", done.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(done);
        BatchLines.AssertExactlyOnce(ids, output, errors);
        BatchLines.AssertCountsAddUp(done, ids.Count);
        Assert.Equal(1, adapter.MaxInFlight); // Concurrency 1: more than one call at a time means two workers ran the batch
    }

    /// <summary>A provider taking 50 ms per call, with replies of random length, that records the most calls in flight at once.</summary>
    internal sealed class OverlapAdapter : IProviderAdapter
    {
        private int _inFlight;
        private int _maxInFlight;

        public int MaxInFlight => Volatile.Read(ref _maxInFlight);

        public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
        {
            var now = Interlocked.Increment(ref _inFlight);
            try
            {
                int max;
                while (now > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max)
                {
                }

                await Task.Delay(50, cancellationToken);
                return Jobs.AsyncTestKit.Reply(context, new string('z', Random.Shared.Next(1, 200)));
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }

        public IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) =>
            throw new NotSupportedException();
    }

    /// <summary>An <see cref="InMemoryJobStore"/> whose lease renewals throw (a database blip) while told to.</summary>
    internal sealed class FlakyRenewalStore(InMemoryJobStore inner) : DelegatingJobStore(inner)
    {
        private int _toFail;
        private int _failed;

        public int FailedRenewals => Volatile.Read(ref _failed);

        public void FailRenewals(int count) => Volatile.Write(ref _toFail, count);

        public override ValueTask<bool> RenewLeaseAsync(JobLease lease, TimeSpan leaseDuration, CancellationToken cancellationToken)
        {
            if (Volatile.Read(ref _toFail) > 0)
            {
                Interlocked.Decrement(ref _toFail);
                Interlocked.Increment(ref _failed);
                throw new InvalidOperationException("store blip");
            }

            return Inner.RenewLeaseAsync(lease, leaseDuration, cancellationToken);
        }
    }
}
