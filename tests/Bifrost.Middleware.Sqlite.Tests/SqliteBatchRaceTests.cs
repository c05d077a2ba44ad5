using Bifrost.Middleware.Sqlite.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Races;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>The batch races (<see cref="BatchRaceScenario"/>) against the SQLite job store.</summary>
public sealed class SqliteBatchRaceTests : IDisposable
{
    private const int Concurrency = 8;
    private readonly TempDirectory _directory = new("bifrost-sqlite-race");

    public void Dispose() => _directory.Dispose();

    private async Task RunAsync(Func<BatchRaceScenario, Task> test)
    {
        var counter = new StartedLinesCounter();
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

    [Theory]
    [InlineData(50)]
    [InlineData(500)]
    public Task A_cancel_at_any_stage_ends_cancelled_and_every_line_is_reported_once(int lines) =>
        RunAsync(scenario => scenario.CancelAtEveryStageAsync(lines, 0, 0.1, 0.5, 1, 1, 1));

    [Fact]
    public Task A_cancel_midway_through_5000_lines_stops_starting_lines_at_once() =>
        RunAsync(scenario => scenario.CancelOnceAsync(5000, 1000));

    [Fact]
    public Task The_input_of_a_running_batch_cannot_be_deleted_and_every_line_is_reported() =>
        RunAsync(scenario => scenario.DeleteInputMidRunThenCancelAsync(2000, 200));
}
