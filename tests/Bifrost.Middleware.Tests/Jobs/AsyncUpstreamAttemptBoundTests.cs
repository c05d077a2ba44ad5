using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>
/// The documented bound on upstream calls of one async job (README, "Async inference"): each run of the job is one
/// gateway call, which makes at most <c>MaxRetries + 1</c> attempts on the model and on each fallback; the job runs at
/// most <c>Jobs:MaxAttempts</c> times. So an always-failing upstream sees exactly
/// <c>Jobs:MaxAttempts × Σ (MaxRetries + 1)</c> calls, and then none.
/// </summary>
public sealed class AsyncUpstreamAttemptBoundTests
{
    [Fact]
    public async Task An_async_job_against_an_always_503_upstream_makes_exactly_MaxAttempts_times_the_gateway_attempts()
    {
        const int jobAttempts = 3, primaryRetries = 2, fallbackRetries = 1;
        const int bound = jobAttempts * ((primaryRetries + 1) + (fallbackRetries + 1)); // 3 × (3 + 2) = 15

        await using var primary = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(503, "overloaded"));
        await using var fallback = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(503, "overloaded too"));
        await using var host = await GatewayHost.StartAsync(o =>
        {
            o.Providers["openai"] = Upstream.UpstreamGateway.Provider(primary, p => p.MaxRetries = primaryRetries);
            o.Providers["other"] = Upstream.UpstreamGateway.Provider(fallback, p => p.MaxRetries = fallbackRetries);
            o.Jobs.MaxAttempts = jobAttempts;
            o.Jobs.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
            o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
        });

        var id = await host.SubmitAsync("""{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"fallbacks":["other/model-b"]}""");
        var (status, error) = await host.PollUntilFinishedAsync(id);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        AssertError(error, 503, null, isBifrostError: false);
        var job = await host.Services.GetRequiredService<IJobStore>().GetAsync(id, Ct);
        Assert.NotNull(job);
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(jobAttempts - 1, job.Attempts);

        // Failed is final: give a stray re-run the time of several job backoffs to show up, then count.
        await Task.Delay(TimeSpan.FromMilliseconds(300), Ct);
        Assert.Equal(jobAttempts * (primaryRetries + 1), primary.ChatCalls);
        Assert.Equal(jobAttempts * (fallbackRetries + 1), fallback.ChatCalls);
        Assert.Equal(bound, primary.ChatCalls + fallback.ChatCalls);
    }
}
