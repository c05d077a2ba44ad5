using Bifrost.Middleware.Tests.Shared;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>One caller cannot starve the others on the SQLite store (see <see cref="StarvationScenario"/>).</summary>
public sealed class SqliteFairnessTests
{
    [Fact]
    public async Task A_caller_with_more_slow_jobs_than_workers_does_not_hold_up_another_callers_job()
    {
        using var directory = new TempDirectory("bifrost-fairness");
        await StarvationScenario.RunAsync(b => b.UseSqliteJobStore(Path.Combine(directory.Path, "jobs.db")));
    }
}
