using System.Text;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>
/// A batch interrupted mid-way (host 1 stopped with a short shutdown timeout, plus a half-written line left in the
/// output file as a crash would) is resumed by host 2 sharing the job store and the file directory: every custom_id
/// exactly once, nothing lost, counts right.
/// </summary>
public sealed class BatchResumeTests
{
    [Fact]
    public async Task A_batch_interrupted_mid_way_is_resumed_by_the_next_host_with_every_line_exactly_once()
    {
        using var directory = new TempDirectory();
        var store = new InMemoryJobStore(TimeProvider.System);
        const int Total = 30;
        var ids = Enumerable.Range(1, Total).Select(i => $"r-{i:D2}").ToList();
        var failing = new HashSet<string> { "r-03", "r-17", "r-29" };
        var lines = ids.Select(id => BatchLines.Chat(
            id,
            metadata: failing.Contains(id) ? [("local_status", "400")] : [("local_delay_ms", "60"), ("local_reply", "done " + id)]));

        string batchId;
        string outputPath;
        byte[] firstRunOutput;
        int firstRunLines;
        await using (var host1 = await StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Batches.Concurrency = 1;
            },
            services: s =>
            {
                s.AddSingleton<IJobStore>(store);
                s.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromMilliseconds(100));
            },
            directory: directory.Path))
        {
            var created = await host1.StartBatchAsync(lines);
            batchId = created.GetProperty("id").GetString()!;
            await host1.WaitForBatchAsync(batchId, b => b.GetProperty("request_counts").GetProperty("completed").GetInt32() >= 5);

            await host1.Host.App.StopAsync(Ct);

            // Released, not finished: pending again, with its progress kept.
            var job = await store.GetAsync(batchId, Ct);
            Assert.Equal(JobStatus.Pending, job!.Status);
            Assert.NotNull(job.Progress);
            outputPath = Path.Combine(directory.Path, $"file-{batchId["batch_".Length..]}-output.data");
            firstRunOutput = await File.ReadAllBytesAsync(outputPath, Ct);
            firstRunLines = BatchLines.Parse(firstRunOutput).Count;
            Assert.InRange(firstRunLines, 5, Total - failing.Count - 1);
        }

        // What a crash mid-write leaves behind: half a line, for a custom_id that has not run yet.
        await File.AppendAllTextAsync(outputPath, """{"id":"batch_req_000000000000000000000000","custom_id":"r-30","response":{"status_code":20""", Ct);

        await using var host2 = await StartAsync(
            o => o.Batches.Concurrency = 4,
            services: s => s.AddSingleton<IJobStore>(store),
            directory: directory.Path);
        var done = await host2.WaitForEndAsync(batchId);

        Assert.Equal("completed", done.GetProperty("status").GetString());
        BatchLines.AssertCountsAddUp(done, Total);
        Assert.Equal((Total - failing.Count, failing.Count), (done.GetProperty("request_counts").GetProperty("succeeded").GetInt32(), done.GetProperty("request_counts").GetProperty("failed").GetInt32()));
        var (output, errors) = await host2.ResultsAsync(done);
        BatchLines.AssertExactlyOnce(ids, output, errors);
        Assert.Equal(failing.Order(), errors.Select(BatchLines.CustomId).Order());
        Assert.All(output, line => Assert.Equal(
            "done " + BatchLines.CustomId(line),
            line.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()));

        // The first run's lines were kept as they were (not run again), and the half line is gone.
        var final = await host2.ContentAsync(done.GetProperty("output_file_id").GetString()!);
        Assert.True(final.AsSpan().StartsWith(firstRunOutput), "the resumed run rewrote lines of the first run");
        Assert.DoesNotContain("batch_req_000000000000000000000000", Encoding.UTF8.GetString(final), StringComparison.Ordinal);
        Assert.Equal(2, (await store.GetAsync(batchId, Ct))!.Version); // two claims: one per host
    }

    [Fact]
    public async Task A_cancel_requested_while_no_host_runs_the_batch_is_honoured_by_the_next_host()
    {
        using var directory = new TempDirectory();
        var store = new InMemoryJobStore(TimeProvider.System);
        var ids = Enumerable.Range(1, 20).Select(i => $"k-{i:D2}").ToList();
        string batchId;
        await using (var host1 = await StartAsync(
            o =>
            {
                o.Jobs.Workers = 1;
                o.Batches.Concurrency = 1;
            },
            services: s =>
            {
                s.AddSingleton<IJobStore>(store);
                s.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromMilliseconds(100));
            },
            directory: directory.Path))
        {
            var created = await host1.StartBatchAsync(ids.Select(id => BatchLines.Chat(id, metadata: [("local_delay_ms", "80")])));
            batchId = created.GetProperty("id").GetString()!;
            await host1.WaitForBatchAsync(batchId, b => b.GetProperty("request_counts").GetProperty("completed").GetInt32() >= 3);
            await host1.Host.App.StopAsync(Ct);
        }

        // Pending in the store after a partial run: the cancel request flags it (it stays claimable), so the next host's
        // runner finishes the cancellation gracefully and commits the partial output.
        var flagged = await store.RequestCancellationAsync(batchId, Ct);
        Assert.Equal(JobStatus.Pending, flagged!.Status);
        Assert.True(flagged.CancellationRequested);

        await using var host2 = await StartAsync(services: s => s.AddSingleton<IJobStore>(store), directory: directory.Path);
        var batch = await host2.WaitForEndAsync(batchId);

        Assert.Equal("cancelled", batch.GetProperty("status").GetString());
        var counts = batch.GetProperty("request_counts");
        Assert.Equal(0, counts.GetProperty("pending").GetInt32());
        Assert.Equal(20, counts.GetProperty("total").GetInt32());
        Assert.True(counts.GetProperty("completed").GetInt32() >= 3);
        var (output, errors) = await host2.ResultsAsync(batch);
        Assert.Equal(counts.GetProperty("completed").GetInt32(), output.Count);
        Assert.Equal(ids, output.Concat(errors).Select(l => l.GetProperty("custom_id").GetString()!).Order().ToList());
        Assert.All(errors, e => Assert.Equal("batch_cancelled", e.GetProperty("error").GetProperty("code").GetString()));
        Assert.Equal(20, counts.GetProperty("completed").GetInt32() + counts.GetProperty("failed").GetInt32() + counts.GetProperty("canceled").GetInt32());
    }
}
