using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>Admission control holds under concurrent submits: never more unfinished jobs than the limit.</summary>
public sealed class AdmissionConcurrencyTests
{
    [Fact]
    public async Task Concurrent_submits_never_overshoot_MaxQueuedJobs()
    {
        const int limit = 5;
        // A store whose count takes a while (as a database's does), so concurrent submits interleave between count and store.
        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.MaxQueuedJobs = limit;
                o.Jobs.Workers = 1;
            },
            services: s => s.AddSingleton<IJobStore>(sp => new SlowCountStore(new InMemoryJobStore(TimeProvider.System))));
        const string body = """{"model":"local/echo","messages":[{"role":"user","content":"slow"}],"metadata":{"local_delay_ms":"3000"}}""";

        var answers = await Task.WhenAll(Enumerable.Range(0, 40).Select(async _ =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
            request.Headers.Add("x-bf-async", "true");
            using var response = await host.Client.SendAsync(request, TestContext.Current.CancellationToken);
            return response.StatusCode;
        }));

        var accepted = answers.Count(s => s == HttpStatusCode.OK);
        Assert.InRange(accepted, 1, limit);
        Assert.Equal(40 - accepted, answers.Count(s => s == HttpStatusCode.TooManyRequests));
        Assert.True(await host.Services.GetRequiredService<IJobStore>().CountUnfinishedAsync(TestContext.Current.CancellationToken) <= limit);
    }

    private sealed class SlowCountStore(InMemoryJobStore inner) : DelegatingJobStore(inner)
    {
        public override async ValueTask<long> CountUnfinishedAsync(CancellationToken cancellationToken)
        {
            var count = await Inner.CountUnfinishedAsync(cancellationToken);
            await Task.Delay(20, cancellationToken);
            return count;
        }
    }
}
