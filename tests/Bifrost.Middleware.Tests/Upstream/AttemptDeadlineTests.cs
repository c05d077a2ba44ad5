using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>
/// An attempt's deadline, on the system clock (one source linked to the caller's token, its own timer) and on an injected
/// clock (a timeout source on that clock): the timeout cancels the token and reads as expired; the caller's cancellation
/// cancels it and does not; a disarmed deadline is never cancelled by its timeout.
/// </summary>
public sealed class AttemptDeadlineTests
{
    private static ProviderContext Context(TimeSpan timeout) => new("p", new ProviderOptions { Type = "openai", Timeout = timeout }, "m", null);

    private static async Task WaitCancelledAsync(CancellationToken token)
    {
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = token.Register(() => cancelled.TrySetResult());
        await cancelled.Task.WaitAsync(TestContext.Current.CancellationToken);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task On_the_system_clock_the_timeout_cancels_the_token_and_reads_as_expired(bool cancellableCaller)
    {
        using var caller = new CancellationTokenSource();
        using var deadline = new AttemptDeadline(Context(TimeSpan.FromMilliseconds(20)), TimeProvider.System, cancellableCaller ? caller.Token : CancellationToken.None);

        await WaitCancelledAsync(deadline.Token);

        Assert.True(deadline.Expired);
        Assert.False(caller.IsCancellationRequested);
    }

    [Fact]
    public async Task On_the_system_clock_the_callers_cancellation_cancels_the_token_and_is_not_an_expiry()
    {
        using var caller = new CancellationTokenSource();
        using var deadline = new AttemptDeadline(Context(TimeSpan.FromMinutes(5)), TimeProvider.System, caller.Token);
        Assert.False(deadline.Token.IsCancellationRequested);

        await caller.CancelAsync();

        Assert.True(deadline.Token.IsCancellationRequested);
        Assert.False(deadline.Expired);
    }

    [Fact]
    public async Task On_the_system_clock_a_disarmed_deadline_is_not_cancelled_by_its_timeout()
    {
        using var caller = new CancellationTokenSource();
        using var deadline = new AttemptDeadline(Context(TimeSpan.FromMilliseconds(30)), TimeProvider.System, caller.Token);
        deadline.Disarm();

        // A second deadline of the same timeout, not disarmed, has expired by then.
        using var witness = new AttemptDeadline(Context(TimeSpan.FromMilliseconds(30)), TimeProvider.System, caller.Token);
        await WaitCancelledAsync(witness.Token);
        await Task.Delay(50, TestContext.Current.CancellationToken);

        Assert.False(deadline.Token.IsCancellationRequested);
        Assert.False(deadline.Expired);
        await caller.CancelAsync();
        Assert.True(deadline.Token.IsCancellationRequested); // still the caller's token
    }

    [Fact]
    public void On_an_injected_clock_the_timeout_follows_that_clock()
    {
        var time = new FakeTimeProvider();
        using var caller = new CancellationTokenSource();
        using var deadline = new AttemptDeadline(Context(TimeSpan.FromSeconds(10)), time, caller.Token);

        time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(deadline.Token.IsCancellationRequested);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(deadline.Token.IsCancellationRequested);
        Assert.True(deadline.Expired);

        using var disarmed = new AttemptDeadline(Context(TimeSpan.FromSeconds(10)), time, caller.Token);
        disarmed.Disarm();
        time.Advance(TimeSpan.FromSeconds(20));
        Assert.False(disarmed.Token.IsCancellationRequested);
        Assert.False(disarmed.Expired);
    }
}
