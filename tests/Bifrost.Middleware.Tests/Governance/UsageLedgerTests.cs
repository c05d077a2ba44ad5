using Bifrost.Middleware.Governance;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>The usage ledger's queue: bounded, and every record it cannot take is counted, never silently lost.</summary>
public sealed class UsageLedgerTests
{
    [Fact]
    public async Task A_full_queue_counts_every_record_it_drops_and_the_writer_then_stores_the_rest()
    {
        var store = new InMemoryGovernanceStore(TimeProvider.System);
        var ledger = new UsageLedger(store, NullLogger<UsageLedger>.Instance);
        var time = DateTimeOffset.UtcNow;

        // No writer running: the queue fills at its capacity, the rest are dropped and counted.
        for (var i = 0; i < UsageLedger.Capacity + 7; i++)
        {
            ledger.Record(new UsageRecord { Time = time, Provider = "local", Model = "echo", Operation = "chat_completion", Source = UsageSource.Sync, Status = 200 });
        }

        Assert.Equal(7, ledger.Dropped);

        await ledger.StartAsync(TestContext.Current.CancellationToken);
        try
        {
            await ledger.FlushAsync(TestContext.Current.CancellationToken);
            Assert.Equal(UsageLedger.Capacity, ledger.Written);
            Assert.Equal(7, ledger.Dropped);
        }
        finally
        {
            await ledger.StopAsync(CancellationToken.None);
        }
    }
}
