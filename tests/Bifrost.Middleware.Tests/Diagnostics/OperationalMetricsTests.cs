using System.Diagnostics.Metrics;
using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Jobs;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Diagnostics;

/// <summary>
/// The operational instruments of the meter <c>Bifrost.Middleware</c>, read with <see cref="MetricCollector{T}"/> on the
/// host's own <see cref="IMeterFactory"/> after real async jobs, refusals, batches and uploads through the endpoints.
/// </summary>
public sealed class OperationalMetricsTests
{
    private const string Meter = "Bifrost.Middleware";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static MetricCollector<T> Collect<T>(GatewayHost host, string instrument)
        where T : struct =>
        new(host.Services.GetRequiredService<IMeterFactory>(), Meter, instrument);

    private static string? Tag<T>(CollectedMeasurement<T> measurement, string name)
        where T : struct =>
        measurement.Tags.TryGetValue(name, out var value) ? value?.ToString() : null;

    [Fact]
    public async Task Async_jobs_record_their_wait_run_time_and_final_status_by_kind()
    {
        await using var host = await GatewayHost.StartAsync(o => o.Jobs.PollInterval = TimeSpan.FromMilliseconds(50));
        using var finished = Collect<long>(host, "bifrost.jobs.finished");
        using var wait = Collect<double>(host, "bifrost.job.wait.duration");
        using var run = Collect<double>(host, "bifrost.job.run.duration");

        var ok = await host.SubmitAsync(ChatBody("fine"));
        var failing = await host.SubmitAsync(ChatBody("broken", metadata: ("local_status", "400")));
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(ok)).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await host.PollUntilFinishedAsync(failing)).Status);

        await finished.WaitForMeasurementsAsync(2, Wait);
        await run.WaitForMeasurementsAsync(2, Wait);
        await wait.WaitForMeasurementsAsync(2, Wait);

        var counts = finished.GetMeasurementSnapshot();
        Assert.Equal(2, counts.Count);
        Assert.All(counts, m => Assert.Equal(1, m.Value));
        Assert.All(counts, m => Assert.Equal("chat_completion", Tag(m, "bifrost.job.kind")));
        var completed = Assert.Single(counts, m => Tag(m, "bifrost.job.status") == "completed");
        Assert.Null(Tag(completed, "error.type"));
        var failed = Assert.Single(counts, m => Tag(m, "bifrost.job.status") == "failed");
        Assert.Equal("local_scripted_failure", Tag(failed, "error.type"));

        var runs = run.GetMeasurementSnapshot();
        Assert.Equal(["completed", "failed"], runs.Select(m => Tag(m, "bifrost.outcome")).Order());
        Assert.All(runs, m => Assert.Equal("chat_completion", Tag(m, "bifrost.job.kind")));
        Assert.All(runs, m => Assert.InRange(m.Value, 0, Wait.TotalSeconds));

        var waits = wait.GetMeasurementSnapshot();
        Assert.Equal(2, waits.Count);
        Assert.All(waits, m => Assert.Equal("chat_completion", Tag(m, "bifrost.job.kind")));
        Assert.All(waits, m => Assert.InRange(m.Value, 0, Wait.TotalSeconds));
        Assert.Equal("s", wait.Instrument!.Unit);
        Assert.Equal("{job}", finished.Instrument!.Unit);
    }

    [Fact]
    public async Task Queued_and_running_jobs_are_observed_from_the_store_and_the_workers()
    {
        var gate = new GateAdapter();
        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Jobs.PollInterval = TimeSpan.FromMilliseconds(50);
            },
            b => b.AddProvider("gate", _ => gate));
        using var queued = Collect<long>(host, "bifrost.jobs.queued");
        using var running = Collect<long>(host, "bifrost.jobs.running");

        var first = await host.SubmitAsync(ChatBody("one", "gate/m"));
        var second = await host.SubmitAsync(ChatBody("two", "gate/m"));
        await EventuallyAsync("the first job to reach the provider", () => Task.FromResult<object?>(gate.Started == 1 ? true : null));

        queued.RecordObservableInstruments();
        running.RecordObservableInstruments();
        Assert.Equal(2, queued.LastMeasurement!.Value); // one running, one waiting: both unfinished
        var byKind = running.GetMeasurementSnapshot().ToDictionary(m => Tag(m, "bifrost.job.kind")!, m => m.Value);
        Assert.Equal(1, byKind["chat_completion"]);
        Assert.Equal(0, byKind["batch"]); // every kind is reported, so a kind whose jobs ended goes back to 0

        gate.Open();
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(first)).Status);
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(second)).Status);
        await EventuallyAsync("the gauges to show no job", () =>
        {
            queued.Clear();
            running.Clear();
            queued.RecordObservableInstruments();
            running.RecordObservableInstruments();
            var idle = queued.LastMeasurement?.Value == 0 && running.GetMeasurementSnapshot().All(m => m.Value == 0);
            return Task.FromResult<object?>(idle ? true : null);
        });
    }

    [Fact]
    public async Task Job_queue_refusals_are_counted_by_error_code()
    {
        var gate = new GateAdapter();
        await using var host = await GatewayHost.StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Jobs.MaxQueuedJobs = 2;
                o.Jobs.MaxQueuedJobsPerOwner = 1;
            },
            b => b.AddProvider("gate", _ => gate));
        using var refusals = Collect<long>(host, "bifrost.admission.refusals");
        (string, string) alice = ("Authorization", "Bearer sk-alice");
        (string, string) bob = ("Authorization", "Bearer sk-bob");
        (string, string) carol = ("Authorization", "Bearer sk-carol");

        var first = await host.SubmitAsync(ChatBody("one", "gate/m"), alice);
        using (var ownerFull = await host.SendAsync(HttpMethod.Post, ChatPath, ChatBody("two", "gate/m"), ("x-bf-async", "true"), alice))
        {
            AssertError(await ReadAsync(ownerFull), 429, "owner_queue_full", isBifrostError: true);
        }

        var second = await host.SubmitAsync(ChatBody("three", "gate/m"), bob);
        using (var queueFull = await host.SendAsync(HttpMethod.Post, ChatPath, ChatBody("four", "gate/m"), ("x-bf-async", "true"), carol))
        {
            AssertError(await ReadAsync(queueFull), 429, "job_queue_full", isBifrostError: true);
        }

        var counted = refusals.GetMeasurementSnapshot();
        Assert.Equal(["job_queue_full", "owner_queue_full"], counted.Select(m => Tag(m, "error.type")).Order());
        Assert.All(counted, m => Assert.Equal(1, m.Value));
        Assert.All(counted, m => Assert.Equal("429", Tag(m, "http.response.status_code")));
        Assert.All(counted, m => Assert.Equal("job_queue", Tag(m, "bifrost.admission.source")));

        gate.Open();
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(first, alice)).Status);
        Assert.Equal(HttpStatusCode.OK, (await host.PollUntilFinishedAsync(second, bob)).Status);
        Assert.Equal(2, refusals.GetMeasurementSnapshot().Count); // accepted jobs are not refusals
    }

    [Fact]
    public async Task Uploads_over_the_storage_quota_are_counted_as_refusals()
    {
        await using var host = await FileBatchHost.StartAsync(o => o.Jobs.MaxStoredBytesPerOwner = 10_000);
        using var refusals = Collect<long>(host.Host, "bifrost.admission.refusals");

        await host.UploadOkAsync(new byte[6000], purpose: "user_data", filename: "a.bin", auth: "owner-a");
        using (var refused = await host.UploadAsync(new byte[6000], purpose: "user_data", filename: "b.bin", auth: "owner-a"))
        {
            var error = await FileBatchHost.ExpectErrorAsync(refused, HttpStatusCode.RequestEntityTooLarge);
            Assert.Equal("owner_storage_full", error.GetProperty("code").GetString());
        }

        var counted = Assert.Single(refusals.GetMeasurementSnapshot());
        Assert.Equal(1, counted.Value);
        Assert.Equal("owner_storage_full", Tag(counted, "error.type"));
        Assert.Equal("413", Tag(counted, "http.response.status_code"));
        Assert.Equal("file_upload", Tag(counted, "bifrost.admission.source"));
    }

    [Fact]
    public async Task Governance_refusals_are_counted_with_their_status_and_code()
    {
        const string keyA = "sk-bf-metrics-a-0001";
        const string keyR = "sk-bf-metrics-r-0002";
        await using var host = await GatewayHost.StartAsync(o =>
        {
            o.Governance.Mode = GovernanceMode.Required;
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = keyA, AllowedModels = ["local/echo"] });
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "r", Value = keyR, RateLimits = new() { Requests = 1, Period = "1h" } });
        });
        using var refusals = Collect<long>(host, "bifrost.admission.refusals");

        var expected = new List<(string Code, int Status)>();
        async Task SendAsync(string model, int status, params (string Name, string Value)[] headers)
        {
            using var response = await host.SendAsync(HttpMethod.Post, ChatPath, ChatBody("hello", model), headers);
            var json = await ReadAsync(response);
            Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {json}");
            if (status != 200)
            {
                expected.Add((json.GetProperty("error").GetProperty("code").GetString()!, status));
            }
        }

        await SendAsync("local/echo", 401); // no key in Required mode
        await SendAsync("local/echo", 401, ("x-bf-vk", "sk-bf-not-a-key"));
        await SendAsync("local/echo", 200, ("x-bf-vk", keyA));
        await SendAsync("local/other", 403, ("x-bf-vk", keyA)); // not an allowed model
        await SendAsync("local/echo", 200, ("x-bf-vk", keyR));
        await SendAsync("local/echo", 429, ("x-bf-vk", keyR)); // one request per hour

        var counted = refusals.GetMeasurementSnapshot();
        Assert.Equal(
            expected.Select(e => $"{e.Code}:{e.Status}").Order(),
            counted.Select(m => $"{Tag(m, "error.type")}:{Tag(m, "http.response.status_code")}").Order());
        Assert.Contains(counted, m => Tag(m, "error.type") == "virtual_key_required");
        Assert.Contains(counted, m => Tag(m, "error.type") == "model_not_allowed");
        Assert.All(counted, m => Assert.Equal("governance", Tag(m, "bifrost.admission.source")));
        Assert.All(counted, m => Assert.Equal(1, m.Value));
    }

    [Fact]
    public async Task Batch_lines_by_outcome_and_stored_files_by_purpose()
    {
        await using var host = await FileBatchHost.StartAsync();
        using var lines = Collect<long>(host.Host, "bifrost.batch.lines");
        using var bytes = Collect<long>(host.Host, "bifrost.files.stored.bytes");
        using var files = Collect<long>(host.Host, "bifrost.files.stored");

        var input = BatchLines.Jsonl([BatchLines.Chat("a"), BatchLines.Chat("b"), BatchLines.Chat("c", metadata: [("local_status", "400")])]);
        var file = await host.UploadOkAsync(input);
        Assert.Equal(input.Length, file.GetProperty("bytes").GetInt64());
        var batch = await host.CreateBatchAsync(file.GetProperty("id").GetString()!);
        var ended = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        Assert.Equal("completed", ended.GetProperty("status").GetString());
        var output = await host.ContentAsync(ended.GetProperty("output_file_id").GetString()!);
        var errors = await host.ContentAsync(ended.GetProperty("error_file_id").GetString()!);

        var byOutcome = lines.GetMeasurementSnapshot().GroupBy(m => Tag(m, "bifrost.outcome")!).ToDictionary(g => g.Key, g => g.Sum(m => m.Value));
        Assert.Equal(2, byOutcome["succeeded"]);
        Assert.Equal(1, byOutcome["failed"]);
        Assert.Equal(2, byOutcome.Count);

        long Sum(MetricCollector<long> collector, string purpose) =>
            collector.GetMeasurementSnapshot().Where(m => Tag(m, "bifrost.file.purpose") == purpose).Sum(m => m.Value);

        Assert.Equal(1, Sum(files, "batch"));
        Assert.Equal(input.Length, Sum(bytes, "batch"));
        Assert.Equal(2, Sum(files, "batch_output"));
        Assert.Equal(output.Length + errors.Length, Sum(bytes, "batch_output"));
        Assert.Equal("By", bytes.Instrument!.Unit);
    }

    [Fact]
    public async Task A_pending_batch_cancelled_before_it_ran_counts_as_a_cancelled_job()
    {
        var gate = new GateAdapter();
        await using var host = await FileBatchHost.StartAsync(
            o => o.Jobs.Workers = 1,
            b => b.AddProvider("gate", _ => gate));
        using var finished = Collect<long>(host.Host, "bifrost.jobs.finished");

        // The only worker is held by an async job, so the batch stays pending until it is cancelled.
        var blocker = await host.Host.SubmitAsync(ChatBody("hold", "gate/m"));
        await EventuallyAsync("the worker to be busy", () => Task.FromResult<object?>(gate.Started == 1 ? true : null));
        var batch = await host.StartBatchAsync([BatchLines.Chat("a")]);
        using (var cancel = await host.PostJsonAsync($"{FileBatchHost.BatchesPath}/{batch.GetProperty("id").GetString()}/cancel", "{}"))
        {
            var json = await FileBatchHost.ExpectAsync(cancel, HttpStatusCode.OK);
            Assert.Equal("cancelled", json.GetProperty("status").GetString());
        }

        var cancelled = Assert.Single(finished.GetMeasurementSnapshot());
        Assert.Equal("batch", Tag(cancelled, "bifrost.job.kind"));
        Assert.Equal("cancelled", Tag(cancelled, "bifrost.job.status"));

        gate.Open();
        Assert.Equal(HttpStatusCode.OK, (await host.Host.PollUntilFinishedAsync(blocker)).Status);
        await finished.WaitForMeasurementsAsync(2, Wait);
        Assert.Contains(finished.GetMeasurementSnapshot(), m => Tag(m, "bifrost.job.kind") == "chat_completion" && Tag(m, "bifrost.job.status") == "completed");
    }
}
