using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>Failed jobs answer the error the synchronous call would have answered; retryable failures are retried up to MaxAttempts.</summary>
public sealed class AsyncFailureTests
{
    [Fact]
    public async Task A_failed_job_answers_the_providers_error_with_its_status_on_both_routes()
    {
        await using var host = await GatewayHost.StartAsync();
        var body = ChatBody("Unauthorized, please", metadata: ("local_status", "401"));

        using var sync = await host.PostJsonAsync(ChatPath, body, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, sync.StatusCode);
        var expected = await ReadAsync(sync);

        var id = await host.SubmitAsync(body);
        var (status, error) = await host.PollUntilFinishedAsync(id);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        AssertError(error, 401, "local_scripted_failure", isBifrostError: false);
        Assert.Equal("authentication_error", error.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("local", error.GetProperty("extra_fields").GetProperty("provider").GetString());
        AssertSameJson(expected, error);

        var envelope = await host.EnvelopeAsync(id);
        Assert.Equal("failed", envelope.GetProperty("status").GetString());
        Assert.Equal(401, envelope.GetProperty("status_code").GetInt32());
        Assert.Equal(JsonValueKind.Null, envelope.GetProperty("result").ValueKind);
        Assert.Equal(JsonValueKind.String, envelope.GetProperty("completed_at").ValueKind);
        AssertSameJson(expected, envelope.GetProperty("error"));

        // 401 is not retryable: the job ran once.
        var job = await host.Services.GetRequiredService<IJobStore>().GetAsync(id, Ct);
        Assert.NotNull(job);
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(1, job.Version);
    }

    [Fact]
    public async Task A_retryable_failure_runs_exactly_MaxAttempts_times_then_fails_with_its_status()
    {
        var adapter = new ScriptedAdapter((_, _, _) => throw BifrostException.Provider(503, null, "overloaded", "The provider is overloaded."));
        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.MaxAttempts = 2;
                o.Jobs.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
                o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
            },
            b => b.AddProvider("counting", _ => adapter).ConfigureProvider("counting", p => p.MaxRetries = 0));

        var id = await host.SubmitAsync(ChatBody("retry me", "counting/m"));
        var (status, error) = await host.PollUntilFinishedAsync(id);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        AssertError(error, 503, "overloaded", isBifrostError: false);
        Assert.Equal(2, adapter.Calls);

        var job = await host.Services.GetRequiredService<IJobStore>().GetAsync(id, Ct);
        Assert.NotNull(job);
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(1, job.Attempts);
        Assert.Equal(2, job.Version);

        var envelope = await host.EnvelopeAsync(id);
        Assert.Equal("failed", envelope.GetProperty("status").GetString());
        Assert.Equal(503, envelope.GetProperty("status_code").GetInt32());
    }

    [Fact]
    public async Task A_job_whose_retry_succeeds_completes_with_the_result()
    {
        var adapter = new ScriptedAdapter((call, context, _) => call == 1
            ? throw BifrostException.Provider(429, null, "rate_limited", "Slow down.")
            : Task.FromResult(Reply(context, "second time lucky")));
        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.MaxAttempts = 3;
                o.Jobs.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
                o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
            },
            b => b.AddProvider("flaky", _ => adapter).ConfigureProvider("flaky", p => p.MaxRetries = 0));

        var id = await host.SubmitAsync(ChatBody("retry me", "flaky/m"));
        var (status, completion) = await host.PollUntilFinishedAsync(id);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("second time lucky", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("flaky", completion.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(2, adapter.Calls);
    }
}
