using Bifrost.Middleware.Sqlite.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Races;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>The batch races (<see cref="BatchRaceScenario"/>) against the SQLite job store.</summary>
public sealed class SqliteBatchRaceTests : BatchRaceTestsBase, IDisposable
{
    private readonly TempDirectory _directory = new("bifrost-sqlite-race");

    public void Dispose() => _directory.Dispose();

    protected override async Task RunAsync(StartedLinesCounter counter, Func<BatchRaceScenario, Task> test)
    {
        await using var host = await InProcessHost.StartAsync(
            _directory.Path,
            b => b.UseSqliteJobStore(Path.Combine(_directory.Path, "jobs.db")).AddPlugin(counter),
            o =>
            {
                o.Batches.Concurrency = Concurrency;
                o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(50);
                o.Jobs.PollInterval = TimeSpan.FromMilliseconds(50);
            });
        await test(new BatchRaceScenario(host.Client, counter, Concurrency));
    }
}
