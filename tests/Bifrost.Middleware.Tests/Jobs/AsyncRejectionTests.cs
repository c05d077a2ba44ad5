using System.Net;
using System.Text;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>404 for jobs the caller cannot see, 400 for requests that cannot become jobs, 429 when the queue is full.</summary>
public sealed class AsyncRejectionTests
{
    [Fact]
    public async Task An_unknown_id_is_404_on_every_poll_route()
    {
        await using var host = await GatewayHost.StartAsync();
        const string id = "0199a0b6-0000-7000-8000-000000000000";

        using var post = await host.PollAsync(id);
        await AssertNotFoundAsync(post);
        using var get = await host.SendAsync(HttpMethod.Get, ChatPath, null, ("x-bf-async-id", id));
        await AssertNotFoundAsync(get);
        using var envelope = await host.SendAsync(HttpMethod.Get, $"{EnvelopePath}/{id}", null);
        await AssertNotFoundAsync(envelope);
    }

    [Fact]
    public async Task Another_callers_job_is_404_and_the_owners_is_not()
    {
        await using var host = await GatewayHost.StartAsync();
        (string, string) alice = ("Authorization", "Bearer sk-alice");
        (string, string) bob = ("Authorization", "Bearer sk-bob");
        var id = await host.SubmitAsync(ChatBody("mine"), alice);

        var (status, _) = await host.PollUntilFinishedAsync(id, alice);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("completed", (await host.EnvelopeAsync(id, alice)).GetProperty("status").GetString());

        using (var response = await host.PollAsync(id, bob))
        {
            await AssertNotFoundAsync(response);
        }

        using (var response = await host.SendAsync(HttpMethod.Get, $"{EnvelopePath}/{id}", null, bob))
        {
            await AssertNotFoundAsync(response);
        }

        // No credentials at all is the shared anonymous owner, not a wildcard.
        using (var response = await host.PollAsync(id))
        {
            await AssertNotFoundAsync(response);
        }
    }

    [Fact]
    public async Task A_job_is_404_once_its_result_ttl_passed_and_the_sweep_deletes_it()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = new ExpiryCountingStore(new InMemoryJobStore(time));
        await using var host = await GatewayHost.StartAsync(
            o => o.Jobs.SweepInterval = TimeSpan.FromSeconds(30),
            services: s => s.AddSingleton<TimeProvider>(time).AddSingleton<IJobStore>(store));

        var id = await host.SubmitAsync(ChatBody("short-lived"), ("x-bf-async-job-result-ttl", "60"));
        var (status, _) = await host.PollUntilFinishedAsync(id);
        Assert.Equal(HttpStatusCode.OK, status);
        var envelope = await host.EnvelopeAsync(id);
        Assert.Equal(TimeSpan.FromSeconds(60), Rfc3339(envelope.GetProperty("expires_at")) - Rfc3339(envelope.GetProperty("completed_at")));

        time.Advance(TimeSpan.FromSeconds(59));
        using (var stillThere = await host.PollAsync(id))
        {
            Assert.Equal(HttpStatusCode.OK, stillThere.StatusCode);
        }

        time.Advance(TimeSpan.FromSeconds(1));
        using (var gone = await host.PollAsync(id))
        {
            await AssertNotFoundAsync(gone);
        }

        using (var gone = await host.SendAsync(HttpMethod.Get, $"{EnvelopePath}/{id}", null))
        {
            await AssertNotFoundAsync(gone);
        }

        // The background sweep (every 30 s of the fake clock) deletes it from the store.
        await EventuallyAsync("the sweep to delete the expired job", async () =>
        {
            time.Advance(TimeSpan.FromSeconds(30));
            await Task.Yield();
            return store.Deleted > 0 ? (object)true : null;
        });
        Assert.Equal(1, store.Deleted);
    }

    [Fact]
    public async Task A_job_of_another_kind_is_404_on_the_chat_routes()
    {
        await using var host = await GatewayHost.StartAsync(o => o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20));
        var store = host.Services.GetRequiredService<IJobStore>();
        var owner = host.AnonymousOwner();
        var payload = Encoding.UTF8.GetBytes(ChatBody("not a chat job"));
        await store.EnqueueAsync(new NewJob { Id = "job-other-kind", Kind = "no_such_kind", Owner = owner, Payload = payload, ResultTtl = TimeSpan.FromHours(1) }, Ct);
        await store.EnqueueAsync(new NewJob { Id = "job-chat-kind", Kind = "chat_completion", Owner = owner, Payload = payload, ResultTtl = TimeSpan.FromHours(1) }, Ct);

        // The same owner's chat job is visible (control), the other kind is not, on either route.
        var (status, _) = await host.PollUntilFinishedAsync("job-chat-kind");
        Assert.Equal(HttpStatusCode.OK, status);
        using (var response = await host.PollAsync("job-other-kind"))
        {
            await AssertNotFoundAsync(response);
        }

        using (var response = await host.SendAsync(HttpMethod.Get, $"{EnvelopePath}/job-other-kind", null))
        {
            await AssertNotFoundAsync(response);
        }

        // A chat job id on the route of another kind: 404 (job kinds are per route).
        using (var response = await host.SendAsync(HttpMethod.Get, "/openai/v1/async/embeddings/job-chat-kind", null))
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        // The kind without a handler is failed by the processor, not left pending forever.
        var failed = await store.StoreUntilAsync("job-other-kind", j => j.IsFinished, "the unknown kind to fail");
        Assert.Equal(JobStatus.Failed, failed.Status);
        Assert.Equal(500, failed.StatusCode);
    }

    [Fact]
    public async Task Async_with_stream_is_400_and_stores_nothing()
    {
        await using var host = await GatewayHost.StartAsync();
        const string body = """{"model":"local/echo","stream":true,"messages":[{"role":"user","content":"hi"}]}""";

        using var header = await host.SendAsync(HttpMethod.Post, ChatPath, body, ("x-bf-async", "true"));
        Assert.Equal(HttpStatusCode.BadRequest, header.StatusCode);
        var error = await ReadAsync(header);
        AssertError(error, 400, "async_stream_not_supported", isBifrostError: true);
        Assert.Equal("stream", error.GetProperty("error").GetProperty("param").GetString());

        using var envelope = await host.SendAsync(HttpMethod.Post, EnvelopePath, body);
        Assert.Equal(HttpStatusCode.BadRequest, envelope.StatusCode);
        AssertError(await ReadAsync(envelope), 400, "async_stream_not_supported", isBifrostError: true);

        await AssertNoJobsAsync(host);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("1.5")]
    public async Task An_invalid_result_ttl_header_is_400_and_stores_nothing(string ttl)
    {
        await using var host = await GatewayHost.StartAsync();

        using var header = await host.SendAsync(HttpMethod.Post, ChatPath, ChatBody("hi"), ("x-bf-async", "true"), ("x-bf-async-job-result-ttl", ttl));
        Assert.Equal(HttpStatusCode.BadRequest, header.StatusCode);
        var error = await ReadAsync(header);
        AssertError(error, 400, null, isBifrostError: true);
        Assert.Equal("x-bf-async-job-result-ttl", error.GetProperty("error").GetProperty("param").GetString());

        using var envelope = await host.SendAsync(HttpMethod.Post, EnvelopePath, ChatBody("hi"), ("x-bf-async-job-result-ttl", ttl));
        Assert.Equal(HttpStatusCode.BadRequest, envelope.StatusCode);

        await AssertNoJobsAsync(host);
    }

    [Fact]
    public async Task An_invalid_request_is_rejected_at_submit_not_stored_as_a_failed_job()
    {
        await using var host = await GatewayHost.StartAsync(o => o.Providers["local"].Models = ["echo"]);

        using var unknownModel = await host.SendAsync(HttpMethod.Post, ChatPath, ChatBody("hi", "local/no-such-model"), ("x-bf-async", "true"));
        Assert.Equal(HttpStatusCode.BadRequest, unknownModel.StatusCode);
        AssertError(await ReadAsync(unknownModel), 400, "model_not_found", isBifrostError: true);

        using var unknownProvider = await host.SendAsync(HttpMethod.Post, EnvelopePath, ChatBody("hi", "nope/x"));
        Assert.Equal(HttpStatusCode.BadRequest, unknownProvider.StatusCode);
        AssertError(await ReadAsync(unknownProvider), 400, "provider_not_found", isBifrostError: true);

        using var noMessages = await host.SendAsync(HttpMethod.Post, ChatPath, """{"model":"local/echo","messages":[]}""", ("x-bf-async", "true"));
        Assert.Equal(HttpStatusCode.BadRequest, noMessages.StatusCode);

        using var notJson = await host.SendAsync(HttpMethod.Post, ChatPath, "{not json", ("x-bf-async", "true"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);

        await AssertNoJobsAsync(host);
    }

    [Fact]
    public async Task A_full_queue_answers_429_with_retry_after_and_accepts_again_once_jobs_finished()
    {
        var gate = new GateAdapter();
        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Jobs.MaxQueuedJobs = 2;
                o.Jobs.QueueFullRetryAfter = TimeSpan.FromSeconds(7);
            },
            b => b.AddProvider("gate", _ => gate));

        var first = await host.SubmitAsync(ChatBody("one", "gate/m"));
        var second = await host.SubmitAsync(ChatBody("two", "gate/m"));

        using (var full = await host.SendAsync(HttpMethod.Post, ChatPath, ChatBody("three", "gate/m"), ("x-bf-async", "true")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, full.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(7), full.Headers.RetryAfter?.Delta);
            var error = await ReadAsync(full);
            AssertError(error, 429, "job_queue_full", isBifrostError: true);
            Assert.Equal("rate_limit_error", error.GetProperty("error").GetProperty("type").GetString());
        }

        using (var full = await host.SendAsync(HttpMethod.Post, EnvelopePath, ChatBody("three", "gate/m")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, full.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(7), full.Headers.RetryAfter?.Delta);
        }

        // Rejected, not accepted and dropped: the store holds exactly the two accepted jobs.
        var jobs = await host.Services.GetRequiredService<IJobStore>().ListAsync(host.AnonymousOwner(), null, 100, null, Ct);
        Assert.Equal(new[] { first, second }.Order(), jobs.Select(j => j.Id).Order());

        gate.Open();
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(first)).Status);
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(second)).Status);
        var third = await host.SubmitAsync(ChatBody("three", "gate/m"));
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(third)).Status);
    }

    private static async Task AssertNotFoundAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        AssertError(await ReadAsync(response), 404, "job_not_found", isBifrostError: true);
    }

    private static async Task AssertNoJobsAsync(GatewayHost host)
    {
        var store = host.Services.GetRequiredService<IJobStore>();
        Assert.Equal(0, await store.CountUnfinishedAsync(Ct));
        Assert.Empty(await store.ListAsync(host.AnonymousOwner(), null, 100, null, Ct));
    }

    /// <summary>An <see cref="InMemoryJobStore"/> that counts what <see cref="IJobStore.ExpireAsync"/> deleted.</summary>
    private sealed class ExpiryCountingStore(InMemoryJobStore inner) : DelegatingJobStore(inner)
    {
        private int _deleted;

        public int Deleted => Volatile.Read(ref _deleted);

        public override async ValueTask<int> ExpireAsync(CancellationToken cancellationToken)
        {
            var deleted = await Inner.ExpireAsync(cancellationToken);
            Interlocked.Add(ref _deleted, deleted);
            return deleted;
        }
    }
}
