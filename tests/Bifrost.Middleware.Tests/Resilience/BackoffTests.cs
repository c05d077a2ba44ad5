using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Resilience;

namespace Bifrost.Middleware.Tests.Resilience;

/// <summary>The one backoff policy (provider retries and job retries): exponential, capped, jittered, Retry-After, attempt limit.</summary>
public sealed class BackoffTests
{
    private static readonly Backoff Policy = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1), MaxRetries: 5);

    [Theory]
    [InlineData(0, 100)]
    [InlineData(1, 200)]
    [InlineData(2, 400)]
    [InlineData(3, 800)]
    [InlineData(4, 1000)] // 1,600 capped at 1,000
    public void The_delay_doubles_from_the_base_up_to_the_cap_and_jitter_keeps_half_to_all_of_it(int attempt, double cappedMs)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(cappedMs / 2), Policy.NextDelay(attempt, null, sample: 0));
        Assert.Equal(TimeSpan.FromMilliseconds(cappedMs * 0.75), Policy.NextDelay(attempt, null, sample: 0.5));
        Assert.Equal(TimeSpan.FromMilliseconds(cappedMs), Policy.NextDelay(attempt, null, sample: 1));
    }

    [Fact]
    public void Random_delays_stay_within_half_and_all_of_the_capped_delay_and_are_not_all_equal()
    {
        var seen = new HashSet<TimeSpan>();
        for (var i = 0; i < 200; i++)
        {
            var delay = Policy.NextDelay(4, null);
            Assert.NotNull(delay);
            Assert.InRange(delay.Value, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1));
            seen.Add(delay.Value);
        }

        Assert.True(seen.Count > 1, "jitter: 200 delays should not all be the same");
    }

    [Fact]
    public void There_is_no_retry_after_MaxRetries_retries_nor_for_a_negative_attempt()
    {
        Assert.NotNull(Policy.NextDelay(4, null));
        Assert.Null(Policy.NextDelay(5, null));
        Assert.Null(Policy.NextDelay(6, TimeSpan.FromMilliseconds(1)));
        Assert.Null(Policy.NextDelay(-1, null));
        Assert.Null(new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), MaxRetries: 0).NextDelay(0, null));
    }

    [Fact]
    public void Retry_After_replaces_the_computed_delay_up_to_the_cap_and_beyond_it_means_no_retry()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(700), Policy.NextDelay(0, TimeSpan.FromMilliseconds(700), sample: 0));
        Assert.Equal(TimeSpan.FromSeconds(1), Policy.NextDelay(3, TimeSpan.FromSeconds(1), sample: 0));
        Assert.Equal(TimeSpan.Zero, Policy.NextDelay(0, TimeSpan.FromSeconds(-3), sample: 0));
        Assert.Null(Policy.NextDelay(0, TimeSpan.FromMilliseconds(1001), sample: 0));
    }

    [Fact]
    public void Large_attempts_and_a_zero_base_give_finite_delays()
    {
        var many = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(30), MaxRetries: int.MaxValue);
        Assert.Equal(TimeSpan.FromSeconds(30), many.NextDelay(5_000, null, sample: 1));
        var zero = new Backoff(TimeSpan.Zero, TimeSpan.FromSeconds(30), MaxRetries: int.MaxValue);
        Assert.Equal(TimeSpan.Zero, zero.NextDelay(5_000, null, sample: 1));
    }

    [Fact]
    public void The_gateway_and_the_job_engine_use_this_policy()
    {
        var provider = new ProviderOptions { MaxRetries = 2, RetryBaseDelay = TimeSpan.FromMilliseconds(100), RetryMaxDelay = TimeSpan.FromMilliseconds(150) };
        var error = BifrostException.Provider(503, null, null, "overloaded");
        for (var i = 0; i < 50; i++)
        {
            Assert.InRange(RoutingHandler.NextDelay(error, 1, provider)!.Value, TimeSpan.FromMilliseconds(75), TimeSpan.FromMilliseconds(150));
        }

        Assert.Null(RoutingHandler.NextDelay(error, 2, provider));
        var slow = BifrostException.Provider(429, null, null, "slow down", retryAfter: TimeSpan.FromSeconds(1));
        Assert.Null(RoutingHandler.NextDelay(slow, 0, provider));
    }
}
