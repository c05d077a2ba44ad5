
namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>The in-process cancel signal: reaches a registered run at once, and one that registers just after the signal.</summary>
public sealed class JobCancellationRegistryTests
{
    [Fact]
    public void A_signal_cancels_the_registered_run_and_a_signal_before_registration_is_kept_for_it()
    {
        var registry = new JobCancellationRegistry(TimeProvider.System);
        using var running = new CancellationTokenSource();
        using var late = new CancellationTokenSource();
        using var other = new CancellationTokenSource();

        using (registry.Register("job-1", running))
        using (registry.Register("job-3", other))
        {
            registry.CancellationRequested("job-1");
            Assert.True(running.IsCancellationRequested);
            Assert.False(other.IsCancellationRequested);
        }

        // Signalled between the claim and the registration: the run still hears of it when it registers.
        registry.CancellationRequested("job-2");
        using (registry.Register("job-2", late))
        {
            Assert.True(late.IsCancellationRequested);
        }

        // After the run ended, a signal does not touch its (disposed) source.
        registry.CancellationRequested("job-3");
        Assert.False(other.IsCancellationRequested);
    }
}
