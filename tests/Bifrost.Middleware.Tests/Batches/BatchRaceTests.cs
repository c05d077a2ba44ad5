using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Races;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>The batch races (<see cref="BatchRaceScenario"/>) against the in-memory job store and the file-system file store.</summary>
public sealed class BatchRaceTests
{
    private const int Concurrency = 8;

    private static async Task RunAsync(Func<BatchRaceScenario, Task> test)
    {
        var counter = new StartedLinesCounter();
        await using var host = await FileBatchHost.StartAsync(o => o.Batches.Concurrency = Concurrency, b => b.AddPlugin(counter));
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
