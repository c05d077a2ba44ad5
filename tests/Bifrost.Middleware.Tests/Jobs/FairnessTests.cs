using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Shared;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>
/// One caller cannot starve the others: the per-owner cap of running jobs with interleaved claims (end to end on the
/// in-memory store; the same scenario runs on SQLite and PostgreSQL in their projects), the run deadline
/// (Jobs:MaxRunDuration, per job and per batch line) and the per-owner quotas on unfinished jobs and stored bytes.
/// </summary>
public sealed class FairnessTests
{
    private const string EmbeddingsPath = "/openai/v1/embeddings";

    [Fact]
    public Task A_caller_with_more_slow_jobs_than_workers_does_not_hold_up_another_callers_job() =>
        StarvationScenario.RunAsync(_ => { });

    [Fact]
    public async Task A_job_running_past_MaxRunDuration_fails_with_504_job_timeout_and_frees_its_worker()
    {
        var gate = new GateAdapter(); // never opened: the upstream call would hang for ever
        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Jobs.MaxRunDuration = TimeSpan.FromMilliseconds(300);
                o.Jobs.PollInterval = TimeSpan.FromMilliseconds(50);
            },
            b => b.AddProvider("gate", _ => gate));

        var stuck = await host.SubmitAsync(ChatBody("never answered", "gate/m"));
        var (status, body) = await host.PollUntilFinishedAsync(stuck);
        Assert.Equal(HttpStatusCode.GatewayTimeout, status);
        AssertError(body, 504, "job_timeout", isBifrostError: true);
        Assert.Contains("MaxRunDuration", body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);

        var envelope = await host.EnvelopeUntilFinishedAsync(stuck);
        Assert.Equal("failed", envelope.GetProperty("status").GetString());
        var job = await host.Services.GetRequiredService<IJobStore>().GetAsync(stuck, Ct);
        Assert.Equal(JobStatus.Failed, job!.Status);
        Assert.Equal(504, job.StatusCode);
        Assert.Equal(1, gate.Started); // a timeout is final: not retried

        // The single worker is free again: the next job runs.
        var next = await host.SubmitAsync(ChatBody("after the timeout"));
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(next)).Status);
    }

    [Fact]
    public async Task A_batch_line_running_past_MaxRunDuration_fails_alone_and_the_batch_completes()
    {
        await using var host = await FileBatchHost.StartAsync(o => o.Jobs.MaxRunDuration = TimeSpan.FromMilliseconds(300));
        var created = await host.StartBatchAsync(
        [
            BatchLines.Chat("fast"),
            BatchLines.Chat("slow", metadata: [("local_delay_ms", "600000")]),
            BatchLines.Chat("fast-too"),
        ]);

        var batch = await host.WaitForEndAsync(created.GetProperty("id").GetString()!);
        Assert.Equal("completed", batch.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(batch);
        Assert.Equal(["fast", "fast-too"], output.Select(BatchLines.CustomId).Order(StringComparer.Ordinal));
        var slow = Assert.Single(errors);
        Assert.Equal("slow", BatchLines.CustomId(slow));
        Assert.Equal(504, slow.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("job_timeout", slow.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task An_owner_at_its_queue_quota_gets_429_owner_queue_full_on_every_submit_path_while_others_are_served()
    {
        var gate = new GateAdapter();
        await using var host = await FileBatchHost.StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Jobs.MaxQueuedJobsPerOwner = 2;
                o.Jobs.QueueFullRetryAfter = TimeSpan.FromSeconds(9);
            },
            b => b.AddProvider("gate", _ => gate));
        var a = host.Host;
        (string, string) ownerA = ("Authorization", "Bearer owner-a");
        (string, string) ownerB = ("Authorization", "Bearer owner-b");

        var first = await a.SubmitAsync(ChatBody("one", "gate/m"), ownerA);
        var second = await a.SubmitAsync(ChatBody("two", "gate/m"), ownerA);

        using (var refused = await a.SendAsync(HttpMethod.Post, ChatPath, ChatBody("three", "gate/m"), ("x-bf-async", "true"), ownerA))
        {
            await AssertTooManyAsync(refused, "owner_queue_full");
        }

        using (var refused = await a.SendAsync(HttpMethod.Post, EnvelopePath, ChatBody("three", "gate/m"), ownerA))
        {
            await AssertTooManyAsync(refused, "owner_queue_full");
        }

        using (var refused = await a.SendAsync(HttpMethod.Post, EmbeddingsPath, """{"model":"local/echo","input":"three"}""", ("x-bf-async", "true"), ownerA))
        {
            await AssertTooManyAsync(refused, "owner_queue_full");
        }

        var file = await host.UploadOkAsync(BatchLines.Jsonl([BatchLines.Chat("line")]), auth: "owner-a");
        using (var refused = await host.CreateBatchRawAsync(
            $$"""{"input_file_id":"{{file.GetProperty("id").GetString()}}","endpoint":"/v1/chat/completions","completion_window":"24h"}""",
            auth: "owner-a"))
        {
            await AssertTooManyAsync(refused, "owner_queue_full");
        }

        // Another caller is served meanwhile (the global queue is far from full), and its job runs once the worker is free.
        var other = await a.SubmitAsync(ChatBody("other caller"), ownerB);

        // Refused, not accepted and dropped: owner A holds exactly its two jobs.
        var owner = host.Services.GetRequiredService<IJobOwnerResolver>();
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Request.Headers.Authorization = "Bearer owner-a";
        var jobs = await host.Services.GetRequiredService<IJobStore>().ListAsync(owner.ResolveOwner(context), null, 100, null, Ct);
        Assert.Equal(new[] { first, second }.Order(), jobs.Select(j => j.Id).Order());

        gate.Open();
        Assert.Equal(HttpStatusCode.OK, (await a.PollUntilFinishedAsync(first, ownerA)).Status);
        Assert.Equal(HttpStatusCode.OK, (await a.PollUntilFinishedAsync(second, ownerA)).Status);
        Assert.Equal(HttpStatusCode.OK, (await a.PollUntilFinishedAsync(other, ownerB)).Status);
        var third = await a.SubmitAsync(ChatBody("three", "gate/m"), ownerA);
        Assert.Equal(HttpStatusCode.OK, (await a.PollUntilFinishedAsync(third, ownerA)).Status);
    }

    [Fact]
    public async Task Uploads_beyond_the_owners_storage_quota_get_413_owner_storage_full_and_leave_nothing_behind()
    {
        await using var host = await FileBatchHost.StartAsync(o => o.Jobs.MaxStoredBytesPerOwner = 10_000);

        await host.UploadOkAsync(new byte[6000], purpose: "user_data", filename: "a.bin", auth: "owner-a");
        var before = host.StoredFileNames();

        // Does not fit in the 4,000 bytes left: refused while streaming, whichever part comes first, and nothing is kept.
        foreach (var purposeFirst in new[] { true, false })
        {
            using var refused = await host.UploadAsync(new byte[6000], purpose: "user_data", filename: "b.bin", purposeFirst: purposeFirst, auth: "owner-a");
            var error = await FileBatchHost.ExpectErrorAsync(refused, HttpStatusCode.RequestEntityTooLarge);
            Assert.Equal("owner_storage_full", error.GetProperty("code").GetString());
            Assert.Null(refused.Headers.RetryAfter); // the caller must free space (delete files); waiting alone may not help
        }

        Assert.Equal(before, host.StoredFileNames());
        using (var list = await host.GetAsync(FileBatchHost.FilesPath, auth: "owner-a"))
        {
            Assert.Single((await FileBatchHost.ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data").EnumerateArray());
        }

        // What fits is accepted; other callers have quotas of their own.
        await host.UploadOkAsync(new byte[3900], purpose: "user_data", filename: "c.bin", auth: "owner-a");
        await host.UploadOkAsync(new byte[6000], purpose: "user_data", filename: "d.bin", auth: "owner-b");

        // 100 bytes left: an async request larger than that is refused with 429 and Retry-After (job results expire).
        (string, string) ownerA = ("Authorization", "Bearer owner-a");
        using (var refused = await host.Host.SendAsync(HttpMethod.Post, ChatPath, ChatBody(new string('x', 500)), ("x-bf-async", "true"), ownerA))
        {
            await AssertTooManyAsync(refused, "owner_storage_full");
        }

        // Full: refused before the body is read.
        await host.UploadOkAsync(new byte[100], purpose: "user_data", filename: "e.bin", auth: "owner-a");
        using (var refused = await host.UploadAsync(new byte[1], purpose: "user_data", filename: "f.bin", auth: "owner-a"))
        {
            var error = await FileBatchHost.ExpectErrorAsync(refused, HttpStatusCode.RequestEntityTooLarge);
            Assert.Equal("owner_storage_full", error.GetProperty("code").GetString());
        }
    }

    private static async Task AssertTooManyAsync(HttpResponseMessage response, string code)
    {
        var json = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.TooManyRequests, $"expected 429, got {(int)response.StatusCode}: {json}");
        AssertError(json, 429, code, isBifrostError: true);
        Assert.Equal("rate_limit_error", json.GetProperty("error").GetProperty("type").GetString());
        Assert.NotNull(response.Headers.RetryAfter?.Delta);
        Assert.True(json.TryGetProperty("extra_fields", out _), $"no extra_fields: {json}");
    }
}
