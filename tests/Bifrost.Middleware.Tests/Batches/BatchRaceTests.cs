using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Races;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>The batch races (<see cref="BatchRaceScenario"/>) against the in-memory job store and the file-system file store.</summary>
public sealed class BatchRaceTests : BatchRaceTestsBase
{
    protected override async Task RunAsync(StartedLinesCounter counter, Func<BatchRaceScenario, Task> test)
    {
        await using var host = await FileBatchHost.StartAsync(o => o.Batches.Concurrency = Concurrency, b => b.AddPlugin(counter));
        await test(new BatchRaceScenario(host.Client, counter, Concurrency));
    }
}
