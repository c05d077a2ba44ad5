using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Dashboard;

/// <summary>
/// The dashboard's Jobs API (TestServer): <c>GET /bifrost/api/jobs</c> lists every owner's batches and async jobs with
/// filters and a cursor (batch rows carry the batch object's status and counts), <c>POST /bifrost/api/jobs/{id}/cancel</c>
/// cancels as the batch API does, and refuses a request without the dashboard's CSRF header.
/// </summary>
public sealed class DashboardJobsApiTests
{
    private const string OwnerA = "sk-dashboard-owner-a";
    private const string OwnerB = "sk-dashboard-owner-b";

    private static async Task<JsonElement> JobsAsync(FileBatchHost host, string query = "")
    {
        using var response = await host.GetAsync("/bifrost/api/jobs" + query);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {body}");
        Assert.DoesNotContain(OwnerA, body, StringComparison.Ordinal);
        Assert.DoesNotContain(OwnerB, body, StringComparison.Ordinal);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static List<JsonElement> Rows(JsonElement list) => [.. list.GetProperty("data").EnumerateArray()];

    private static string Id(JsonElement row) => row.GetProperty("id").GetString()!;

    private static Task<HttpResponseMessage> CancelAsync(FileBatchHost host, string id, bool header = true)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/bifrost/api/jobs/{Uri.EscapeDataString(id)}/cancel");
        if (header)
        {
            request.Headers.Add("X-Bifrost-Dashboard", "1");
        }

        return host.Client.SendAsync(request, Ct);
    }

    private static async Task<string> SubmitAsyncAsync(FileBatchHost host, string auth, int delayMs)
    {
        var body = $$"""{"model":"local/echo","metadata":{"local_delay_ms":"{{delayMs}}"},"messages":[{"role":"user","content":"async hello"}]}""";
        using var response = await host.SendAsync(HttpMethod.Post, "/openai/v1/async/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"), auth);
        return (await ExpectAsync(response, HttpStatusCode.Accepted)).GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> WaitForRowAsync(FileBatchHost host, string id, Func<JsonElement, bool> until)
    {
        var stop = DateTime.UtcNow + Deadline;
        while (true)
        {
            var row = Rows(await JobsAsync(host)).SingleOrDefault(r => Id(r) == id);
            if (row.ValueKind == JsonValueKind.Object && until(row))
            {
                return row;
            }

            Assert.True(DateTime.UtcNow < stop, $"job {id} did not reach the expected state in time; last: {row}");
            await Task.Delay(20, Ct);
        }
    }

    [Fact]
    public async Task The_jobs_api_lists_every_owners_batches_and_async_jobs_newest_first_with_counts_filters_and_a_cursor()
    {
        await using var host = await StartAsync(o => o.Batches.Concurrency = 1, dashboard: true);

        // Owner A: a small batch that completes (one line fails) and a fast async job; owner B: a slow batch and a slow async job.
        var fileA = await host.UploadOkAsync(BatchLines.Jsonl([BatchLines.Chat("a-1"), BatchLines.Chat("a-2"), BatchLines.Chat("a-3", metadata: [("local_status", "400")])]), auth: OwnerA);
        var small = (await host.CreateBatchAsync(fileA.GetProperty("id").GetString()!, model: "local/echo", auth: OwnerA)).GetProperty("id").GetString()!;
        await host.WaitForEndAsync(small, OwnerA);
        var fastJob = await SubmitAsyncAsync(host, OwnerA, 0);
        var fileB = await host.UploadOkAsync(BatchLines.Jsonl(Enumerable.Range(1, 40).Select(i => BatchLines.Chat($"b-{i}", metadata: [("local_delay_ms", "150")]))), auth: OwnerB);
        var slow = (await host.CreateBatchAsync(fileB.GetProperty("id").GetString()!, auth: OwnerB)).GetProperty("id").GetString()!;
        var slowJob = await SubmitAsyncAsync(host, OwnerB, 60_000);
        await WaitForRowAsync(host, fastJob, r => r.GetProperty("status").GetString() == "completed");
        await WaitForRowAsync(host, slowJob, r => r.GetProperty("status").GetString() == "processing");
        var running = await WaitForRowAsync(host, slow, r => r.GetProperty("request_counts").GetProperty("completed").GetInt32() >= 1);

        var all = await JobsAsync(host);
        Assert.Equal("list", all.GetProperty("object").GetString());
        Assert.False(all.GetProperty("has_more").GetBoolean());
        Assert.Equal([slowJob, slow, fastJob, small], Rows(all).Select(Id));
        var owners = Rows(all).Select(r => r.GetProperty("owner").GetString()!).ToList();
        Assert.Equal(owners[2], owners[3]);
        Assert.Equal(owners[0], owners[1]);
        Assert.NotEqual(owners[0], owners[3]);

        // The finished batch: the batch object's status and counts, endpoint and model, times.
        var done = Rows(all)[3];
        Assert.Equal("batch", done.GetProperty("type").GetString());
        Assert.Equal("batch", done.GetProperty("kind").GetString());
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal("/v1/chat/completions", done.GetProperty("endpoint").GetString());
        Assert.Equal("echo", done.GetProperty("model").GetString());
        Assert.Equal("local", done.GetProperty("provider").GetString());
        var counts = done.GetProperty("request_counts");
        Assert.Equal((3, 2, 1), (counts.GetProperty("total").GetInt32(), counts.GetProperty("completed").GetInt32(), counts.GetProperty("failed").GetInt32()));
        Assert.False(done.GetProperty("cancellable").GetBoolean());
        Assert.NotEqual(JsonValueKind.Null, done.GetProperty("started_at").ValueKind);
        Assert.NotEqual(JsonValueKind.Null, done.GetProperty("finished_at").ValueKind);
        using (var batchApi = await host.GetAsync($"{BatchesPath}/{small}", OwnerA))
        {
            var batch = await ExpectAsync(batchApi, HttpStatusCode.OK);
            Assert.Equal(batch.GetProperty("request_counts").GetRawText(), counts.GetRawText()); // the same object /v1/batches answers
        }

        // The running batch and the async jobs.
        Assert.Equal("in_progress", running.GetProperty("status").GetString());
        Assert.Equal(40, running.GetProperty("request_counts").GetProperty("total").GetInt32());
        Assert.True(running.GetProperty("cancellable").GetBoolean());
        Assert.Equal(JsonValueKind.Null, running.GetProperty("model").ValueKind); // created without a batch-level model
        var fast = Rows(all)[2];
        Assert.Equal("async", fast.GetProperty("type").GetString());
        Assert.Equal("chat_completion", fast.GetProperty("kind").GetString());
        Assert.Equal("completed", fast.GetProperty("status").GetString());
        Assert.True(fast.GetProperty("ran_ms").GetInt64() >= 0);
        Assert.Equal(JsonValueKind.Null, fast.GetProperty("request_counts").ValueKind);
        Assert.Equal("processing", Rows(all)[0].GetProperty("status").GetString());
        Assert.True(Rows(all)[0].GetProperty("cancellable").GetBoolean());

        // Filters.
        Assert.Equal([slow, small], Rows(await JobsAsync(host, "?kind=batch")).Select(Id));
        Assert.Equal([slowJob, fastJob], Rows(await JobsAsync(host, "?kind=async")).Select(Id));
        Assert.Equal([slowJob, slow], Rows(await JobsAsync(host, "?state=active")).Select(Id));
        Assert.Equal([fastJob, small], Rows(await JobsAsync(host, "?state=finished")).Select(Id));
        Assert.Equal([slow], Rows(await JobsAsync(host, "?kind=batch&state=active")).Select(Id));

        // The cursor.
        var first = await JobsAsync(host, "?limit=3");
        Assert.Equal([slowJob, slow, fastJob], Rows(first).Select(Id));
        Assert.True(first.GetProperty("has_more").GetBoolean());
        Assert.Equal(fastJob, first.GetProperty("next_after").GetString());
        var second = await JobsAsync(host, "?limit=3&after=" + fastJob);
        Assert.Equal([small], Rows(second).Select(Id));
        Assert.False(second.GetProperty("has_more").GetBoolean());
        Assert.Equal(JsonValueKind.Null, second.GetProperty("next_after").ValueKind);

        // Bad values: 400 in the Bifrost shape, naming the parameter.
        foreach (var (query, param) in new[] { ("?kind=file", "kind"), ("?state=running", "state"), ("?limit=0", "limit"), ("?limit=501", "limit"), ("?limit=ten", "limit") })
        {
            using var bad = await host.GetAsync("/bifrost/api/jobs" + query);
            var error = await ExpectErrorAsync(bad, HttpStatusCode.BadRequest);
            Assert.Equal(param, error.GetProperty("param").GetString());
        }

        // Stop the slow work (the test's end would otherwise wait for it).
        using (var stop = await CancelAsync(host, slow))
        {
            await ExpectAsync(stop, HttpStatusCode.OK);
        }

        using (var stop = await CancelAsync(host, slowJob))
        {
            await ExpectAsync(stop, HttpStatusCode.OK);
        }
    }

    [Fact]
    public async Task Cancel_needs_the_dashboard_header_and_cancels_a_batch_as_its_owner_would_and_an_async_job()
    {
        await using var host = await StartAsync(o => o.Batches.Concurrency = 1, dashboard: true);
        var file = await host.UploadOkAsync(BatchLines.Jsonl(Enumerable.Range(1, 20).Select(i => BatchLines.Chat($"c-{i:D2}", metadata: [("local_delay_ms", "150")]))), auth: OwnerB);
        var id = (await host.CreateBatchAsync(file.GetProperty("id").GetString()!, auth: OwnerB)).GetProperty("id").GetString()!;
        await host.WaitForBatchAsync(id, b => b.GetProperty("request_counts").GetProperty("completed").GetInt32() >= 2, OwnerB);

        // Without the header (what a cross-site form would send): 403, and nothing changes.
        using (var refused = await CancelAsync(host, id, header: false))
        {
            var error = await ExpectErrorAsync(refused, HttpStatusCode.Forbidden);
            Assert.Equal("dashboard_header_required", error.GetProperty("code").GetString());
        }

        using (var wrongValue = new HttpRequestMessage(HttpMethod.Post, $"/bifrost/api/jobs/{id}/cancel"))
        {
            wrongValue.Headers.Add("X-Bifrost-Dashboard", "yes");
            using var refused = await host.Client.SendAsync(wrongValue, Ct);
            await ExpectErrorAsync(refused, HttpStatusCode.Forbidden);
        }

        Assert.Equal("in_progress", (await host.GetBatchAsync(id, OwnerB)).GetProperty("status").GetString());
        using (var get = await host.GetAsync($"/bifrost/api/jobs/{id}/cancel"))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        }

        // With it: the batch API's cancel, as the batch's owner (cancelling, then cancelled with the partial output).
        using (var cancel = await CancelAsync(host, id))
        {
            var row = await ExpectAsync(cancel, HttpStatusCode.OK);
            Assert.Equal(id, Id(row));
            Assert.Contains(row.GetProperty("status").GetString(), (string[])["cancelling", "cancelled"]);
            Assert.False(row.GetProperty("cancellable").GetBoolean());
            Assert.True(row.GetProperty("cancellation_requested").GetBoolean() || row.GetProperty("status").GetString() == "cancelled");
        }

        var ended = await host.WaitForEndAsync(id, OwnerB);
        Assert.Equal("cancelled", ended.GetProperty("status").GetString());
        var counts = ended.GetProperty("request_counts");
        Assert.InRange(counts.GetProperty("completed").GetInt32(), 2, 19);
        Assert.Equal(20, counts.GetProperty("completed").GetInt32() + counts.GetProperty("canceled").GetInt32());
        var listed = Rows(await JobsAsync(host, "?kind=batch")).Single();
        Assert.Equal("cancelled", listed.GetProperty("status").GetString());
        Assert.Equal(counts.GetProperty("completed").GetInt32(), listed.GetProperty("request_counts").GetProperty("completed").GetInt32());

        // Again: answered as it is. A completed batch: 409 as the batch API answers. Unknown: 404.
        using (var again = await CancelAsync(host, id))
        {
            Assert.Equal("cancelled", (await ExpectAsync(again, HttpStatusCode.OK)).GetProperty("status").GetString());
        }

        var quick = (await host.StartBatchAsync([BatchLines.Chat("q")], auth: OwnerA)).GetProperty("id").GetString()!;
        await host.WaitForEndAsync(quick, OwnerA);
        using (var late = await CancelAsync(host, quick))
        {
            var error = await ExpectErrorAsync(late, HttpStatusCode.Conflict);
            Assert.Equal("batch_not_cancellable", error.GetProperty("code").GetString());
        }

        using (var unknown = await CancelAsync(host, "batch_does_not_exist"))
        {
            var error = await ExpectErrorAsync(unknown, HttpStatusCode.NotFound);
            Assert.Equal("job_not_found", error.GetProperty("code").GetString());
        }

        // An async job: running → cancelling → cancelled; a finished one: 409.
        var slowJob = await SubmitAsyncAsync(host, OwnerA, 60_000);
        await WaitForRowAsync(host, slowJob, r => r.GetProperty("status").GetString() == "processing");
        using (var cancel = await CancelAsync(host, slowJob))
        {
            var row = await ExpectAsync(cancel, HttpStatusCode.OK);
            Assert.Contains(row.GetProperty("status").GetString(), (string[])["cancelling", "cancelled"]);
        }

        var cancelled = await WaitForRowAsync(host, slowJob, r => r.GetProperty("status").GetString() == "cancelled");
        Assert.False(cancelled.GetProperty("cancellable").GetBoolean());
        Assert.NotEqual(JsonValueKind.Null, cancelled.GetProperty("finished_at").ValueKind);
        var fastJob = await SubmitAsyncAsync(host, OwnerA, 0);
        await WaitForRowAsync(host, fastJob, r => r.GetProperty("status").GetString() == "completed");
        using (var late = await CancelAsync(host, fastJob))
        {
            var error = await ExpectErrorAsync(late, HttpStatusCode.Conflict);
            Assert.Equal("job_not_cancellable", error.GetProperty("code").GetString());
        }

    }

    [Fact]
    public async Task A_store_that_cannot_list_every_owner_answers_501_in_the_Bifrost_shape()
    {
        await using var host = await StartAsync(
            dashboard: true,
            services: services => services.AddSingleton<IJobStore>(new DelegatingJobStore(new InMemoryJobStore(TimeProvider.System))));
        using var response = await host.GetAsync("/bifrost/api/jobs");
        var error = await ExpectErrorAsync(response, HttpStatusCode.NotImplemented);
        Assert.Equal("job_listing_not_supported", error.GetProperty("code").GetString());
        Assert.Contains("DelegatingJobStore", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("evil.example", HttpStatusCode.Forbidden)] // DNS rebinding: another site's name pointed at 127.0.0.1
    [InlineData("evil.example:5050", HttpStatusCode.Forbidden)]
    [InlineData("10.1.2.3", HttpStatusCode.Forbidden)]
    [InlineData("localhost:5050", HttpStatusCode.OK)]
    [InlineData("127.0.0.1:5050", HttpStatusCode.OK)]
    [InlineData("[::1]:5050", HttpStatusCode.OK)]
    [InlineData("app.localhost", HttpStatusCode.OK)]
    public async Task A_local_request_must_also_name_a_local_host(string hostHeader, HttpStatusCode expected)
    {
        await using var host = await StartAsync(dashboard: true);
        foreach (var (method, path) in (ValueTuple<HttpMethod, string>[])[(HttpMethod.Get, "/bifrost/api/jobs"), (HttpMethod.Get, "/bifrost/api/requests"), (HttpMethod.Get, "/bifrost/"), (HttpMethod.Post, "/bifrost/api/jobs/job_unknown/cancel")])
        {
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Host = hostHeader;
            request.Headers.Add("X-Bifrost-Dashboard", "1");
            using var response = await host.Client.SendAsync(request, Ct);
            var wanted = expected == HttpStatusCode.OK && method == HttpMethod.Post ? HttpStatusCode.NotFound : expected;
            Assert.True(wanted == response.StatusCode, $"{method} {path} Host {hostHeader}: {response.StatusCode}");
            if (expected == HttpStatusCode.Forbidden)
            {
                var error = await ExpectErrorAsync(response, HttpStatusCode.Forbidden);
                Assert.Equal("dashboard_local_only", error.GetProperty("code").GetString());
            }
        }
    }
}
