// Batch throughput and upload memory through the real endpoints on Kestrel (127.0.0.1), in Release.
// Run as `Bifrost.Middleware.Benchmarks batches <scenario>` (see bench/README.md):
//
//   batch <lines> [concurrency]              one chat-completions batch of <lines> lines on the local provider
//   upload <megabytes> [lineBytes] [last]     one purpose=batch upload of a generated JSONL file (MB = 10^6 bytes);
//                                            "last" sends the purpose part after the file (the endpoint spools it)
//   async <jobs> [clients]                   async inference: <jobs> x-bf-async chat submits from [clients] concurrent
//                                            HTTP clients (submits/s), then end-to-end job latency (submit → completed)
//                                            p50/p99, saturated and one at a time
//   all                                      every scenario of the README, each in its own process (clean peak memory)
//
// Each scenario prints a human-readable summary and a last line "RESULT {json}".
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bifrost.Middleware.Benchmarks.Batches;

/// <summary>The <c>batches</c> command: parses the scenario and runs it.</summary>
internal static class BatchCommand
{
    /// <summary>The name of the command (the first argument of the program).</summary>
    public const string Name = "batches";

    public static async Task<int> RunAsync(string[] args)
    {
        var invariant = CultureInfo.InvariantCulture;
        return args switch
        {
            ["all", ..] => await Scenarios.AllAsync(),
            ["async", var jobs, .. var rest] => await Scenarios.AsyncAsync(int.Parse(jobs, invariant), rest.Length > 0 ? int.Parse(rest[0], invariant) : 32),
            ["batch", var lines, .. var rest] => await Scenarios.BatchAsync(int.Parse(lines, invariant), rest.Length > 0 ? int.Parse(rest[0], invariant) : 16),
            ["upload", var mb, .. var rest] => await Scenarios.UploadAsync(
                long.Parse(mb, invariant) * 1_000_000,
                rest.Length > 0 ? int.Parse(rest[0], invariant) : 4180,
                purposeLast: rest.Length > 1 && rest[1] == "last"),
            _ => Usage(),
        };
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: batches batch <lines> [concurrency] | batches upload <megabytes> [lineBytes] [last] | batches async <jobs> [clients] | batches all");
        return 2;
    }
}

internal static class Scenarios
{
    public static async Task<int> AllAsync()
    {
        string[][] runs =
        [
            ["async", "50000", "32"],
            ["batch", "10000"],
            ["batch", "100000"],
            ["upload", "209", "4180"],
            ["upload", "209", "4180", "last"],
            ["upload", "209", "200"],
        ];
        var results = new List<JsonObject>();
        foreach (var run in runs)
        {
            Console.WriteLine($"== {string.Join(' ', run)}");
            var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
            {
                start.ArgumentList.Add(typeof(BatchCommand).Assembly.Location); // started as `dotnet <dll>`
            }

            start.ArgumentList.Add(BatchCommand.Name);
            foreach (var arg in run)
            {
                start.ArgumentList.Add(arg);
            }

            using var child = Process.Start(start)!;
            string? line;
            JsonObject? result = null;
            while ((line = await child.StandardOutput.ReadLineAsync()) is not null)
            {
                Console.WriteLine("   " + line);
                if (line.StartsWith("RESULT ", StringComparison.Ordinal))
                {
                    result = JsonNode.Parse(line[7..])!.AsObject();
                }
            }

            await child.WaitForExitAsync();
            if (child.ExitCode != 0 || result is null)
            {
                Console.Error.WriteLine($"'{string.Join(' ', run)}' failed with exit code {child.ExitCode}");
                return 1;
            }

            results.Add(result);
        }

        Console.WriteLine();
        Console.WriteLine("| scenario | wall | rate | peak RSS (phase) | RSS before | process peak | peak managed heap | allocated |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            Console.WriteLine($"| {r["scenario"]} | {r["wall_s"]} s | {r["rate"]} | {r["peak_rss_mb"]} MB | {r["rss_before_mb"]} MB | {r["process_peak_mb"]} MB | {r["peak_heap_mb"]} MB | {r["allocated_mb"]} MB |");
        }

        return 0;
    }

    public static async Task<int> AsyncAsync(int jobs, int clients)
    {
        await using var server = await Server.StartAsync(o =>
        {
            o.Jobs.MaxQueuedJobs = Math.Max(o.Jobs.MaxQueuedJobs, jobs * 2);
            o.Jobs.MaxQueuedJobsPerOwner = Math.Max(o.Jobs.MaxQueuedJobsPerOwner, jobs * 2); // one caller submits them all
            o.Jobs.Workers = 4;
        });
        var store = server.Services.GetRequiredService<IJobStore>();
        const string body = """{"model":"local/echo","messages":[{"role":"user","content":"async benchmark"}]}""";

        async Task<string> SubmitAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Add("x-bf-async", "true");
            using var response = await server.Client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            await using var stream = await response.Content.ReadAsStreamAsync();
            using var json = await JsonDocument.ParseAsync(stream);
            return json.RootElement.GetProperty("id").GetString()!;
        }

        async Task<(double P50, double P99, double Max)> LatencyAsync(IReadOnlyList<string> ids)
        {
            var latencies = new List<double>(ids.Count);
            foreach (var id in ids)
            {
                JobRecord? job;
                while ((job = await store.GetAsync(id, CancellationToken.None)) is not { IsFinished: true })
                {
                    await Task.Delay(5);
                }

                if (job.Status != JobStatus.Completed)
                {
                    throw new InvalidOperationException($"job {id} ended {job.Status}");
                }

                latencies.Add((job.CompletedAt!.Value - job.CreatedAt).TotalMilliseconds);
            }

            latencies.Sort();
            return (latencies[(int)(latencies.Count * 0.50)], latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.99))], latencies[^1]);
        }

        // Warm up the whole path (JIT, connections).
        await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => SubmitAsync()));
        while (await store.CountUnfinishedAsync(CancellationToken.None) > 0)
        {
            await Task.Delay(10);
        }

        // 1. Saturated: <clients> concurrent submitters.
        using var probe = Probe.Start();
        var ids = new System.Collections.Concurrent.ConcurrentBag<string>();
        var next = 0;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= jobs)
            {
                ids.Add(await SubmitAsync());
            }
        }));
        wall.Stop();
        var submitRate = jobs / wall.Elapsed.TotalSeconds;
        var drained = Stopwatch.StartNew();
        var saturated = await LatencyAsync([.. ids]);
        var memory = probe.Stop();
        Console.WriteLine($"{jobs:N0} submits from {clients} clients in {wall.Elapsed.TotalSeconds:F2} s: {submitRate:N0} submits/s (all completed {drained.Elapsed.TotalSeconds:F2} s after the last submit)");
        Console.WriteLine($"  job latency under that load (created → completed): p50 {saturated.P50:F1} ms, p99 {saturated.P99:F1} ms, max {saturated.Max:F1} ms");

        // 2. Unloaded: one job at a time, so the figure is the engine's own delay (store → doorbell → worker → store).
        var single = new List<string>();
        for (var i = 0; i < 500; i++)
        {
            var id = await SubmitAsync();
            single.Add(id);
            await LatencyAsync([id]);
        }

        var unloaded = await LatencyAsync(single);
        Console.WriteLine($"  job latency one at a time: p50 {unloaded.P50:F2} ms, p99 {unloaded.P99:F2} ms");
        memory.Print();
        var ok = ids.Distinct().Count() == jobs;
        Console.WriteLine("RESULT " + memory.ToJson($"async {jobs:N0} jobs, {clients} clients", wall.Elapsed, $"{submitRate:N0} submits/s; latency p50 {saturated.P50:F1} / p99 {saturated.P99:F1} ms loaded, {unloaded.P50:F2} / {unloaded.P99:F2} ms alone", ok).ToJsonString());
        return ok ? 0 : 1;
    }

    public static async Task<int> BatchAsync(int lines, int concurrency)
    {
        await using var server = await Server.StartAsync(o =>
        {
            o.Files.MaxBatchLines = Math.Max(o.Files.MaxBatchLines, lines);
            o.Batches.Concurrency = concurrency;
        });
        var input = Path.Combine(server.Directory, "input.jsonl");
        var inputBytes = await Generate.BatchFileAsync(input, lines, lineBytes: 0);
        var upload = Stopwatch.StartNew();
        var fileId = await server.UploadAsync(input, purposeLast: false);
        upload.Stop();
        Console.WriteLine($"input: {lines:N0} lines, {inputBytes / 1e6:F1} MB, uploaded + validated in {upload.Elapsed.TotalSeconds:F2} s");

        using var probe = Probe.Start();
        var wall = Stopwatch.StartNew();
        var created = await server.PostJsonAsync("/openai/v1/batches", $$"""{"input_file_id":"{{fileId}}","endpoint":"/v1/chat/completions","completion_window":"24h"}""");
        var id = created.GetProperty("id").GetString()!;
        JsonElement batch;
        while (true)
        {
            batch = await server.GetJsonAsync($"/openai/v1/batches/{id}");
            if (batch.GetProperty("status").GetString() is "completed" or "failed" or "expired" or "cancelled")
            {
                break;
            }

            await Task.Delay(25);
        }

        wall.Stop();
        var memory = probe.Stop();

        // Verify after measuring: every custom_id exactly once, all succeeded.
        var counts = batch.GetProperty("request_counts");
        var seen = await server.CountCustomIdsAsync(batch.GetProperty("output_file_id").GetString());
        var ok = batch.GetProperty("status").GetString() == "completed"
            && counts.GetProperty("succeeded").GetInt32() == lines
            && seen.Lines == lines && seen.Unique == lines
            && batch.GetProperty("error_file_id").ValueKind == JsonValueKind.Null;
        Console.WriteLine($"batch {id}: {batch.GetProperty("status").GetString()}, {counts}");
        Console.WriteLine($"output: {seen.Lines:N0} lines, {seen.Unique:N0} distinct custom_ids; verified: {ok}");
        var rate = lines / wall.Elapsed.TotalSeconds;
        Console.WriteLine($"wall (create → completed seen): {wall.Elapsed.TotalSeconds:F2} s, {rate:N0} lines/s, concurrency {concurrency}");
        memory.Print();
        Console.WriteLine("RESULT " + memory.ToJson($"batch {lines:N0} lines", wall.Elapsed, $"{rate:N0} lines/s", ok).ToJsonString());
        return ok ? 0 : 1;
    }

    public static async Task<int> UploadAsync(long targetBytes, int lineBytes, bool purposeLast)
    {
        var expectedLines = (int)(targetBytes / lineBytes) + 1;
        await using var server = await Server.StartAsync(o =>
        {
            o.Files.MaxBatchLines = Math.Max(o.Files.MaxBatchLines, expectedLines);
        });
        var input = Path.Combine(server.Directory, "upload.jsonl");
        var bytes = await Generate.BatchFileAsync(input, expectedLines, lineBytes, targetBytes);
        var lines = File.ReadLines(input).Count();
        Console.WriteLine($"input: {bytes / 1e6:F1} MB ({bytes / 1048576.0:F1} MiB), {lines:N0} lines of ~{lineBytes} bytes, purpose {(purposeLast ? "after" : "before")} the file");

        using var probe = Probe.Start();
        var wall = Stopwatch.StartNew();
        var fileId = await server.UploadAsync(input, purposeLast);
        wall.Stop();
        var memory = probe.Stop();

        var file = await server.GetJsonAsync($"/openai/v1/files/{fileId}");
        var ok = file.GetProperty("bytes").GetInt64() == bytes;
        Console.WriteLine($"stored {fileId}: {file.GetProperty("bytes").GetInt64():N0} bytes; verified: {ok}");
        var rate = bytes / 1e6 / wall.Elapsed.TotalSeconds;
        Console.WriteLine($"upload + line-by-line validation: {wall.Elapsed.TotalSeconds:F2} s, {rate:F0} MB/s");
        memory.Print();
        var name = $"upload {bytes / 1e6:F0} MB, {lines:N0} lines{(purposeLast ? ", purpose last" : string.Empty)}";
        Console.WriteLine("RESULT " + memory.ToJson(name, wall.Elapsed, $"{rate:F0} MB/s", ok).ToJsonString());
        return ok ? 0 : 1;
    }
}

/// <summary>The gateway on Kestrel at 127.0.0.1 (random port), its file store in a temporary directory, and a client.</summary>
internal sealed class Server : IAsyncDisposable
{
    private readonly WebApplication _app;

    private Server(WebApplication app, HttpClient client, string directory)
    {
        _app = app;
        Client = client;
        Directory = directory;
    }

    public HttpClient Client { get; }

    public string Directory { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<Server> StartAsync(Action<BifrostOptions> configure)
    {
        var directory = Path.Combine(Path.GetTempPath(), "bifrost-bench-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(directory);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = directory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "local";
            o.Providers["local"] = new ProviderOptions { Type = "local" };
            o.Files.Directory = Path.Combine(directory, "files");
            configure(o);
        });
        var app = builder.Build();
        app.MapBifrost("/openai");
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var client = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(10) };
        return new Server(app, client, directory);
    }

    public async Task<string> UploadAsync(string path, bool purposeLast)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous | FileOptions.SequentialScan);
        using var form = new MultipartFormDataContent();
        var file = new StreamContent(stream, 81920);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
        if (!purposeLast)
        {
            form.Add(new StringContent("batch"), "purpose");
        }

        form.Add(file, "file", Path.GetFileName(path));
        if (purposeLast)
        {
            form.Add(new StringContent("batch"), "purpose");
        }

        using var response = await Client.PostAsync(new Uri("/openai/v1/files", UriKind.Relative), form);
        var json = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"upload failed: {(int)response.StatusCode} {json}");
        }

        return JsonDocument.Parse(json).RootElement.GetProperty("id").GetString()!;
    }

    public async Task<JsonElement> PostJsonAsync(string path, string json)
    {
        using var response = await Client.PostAsync(new Uri(path, UriKind.Relative), new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode ? JsonDocument.Parse(text).RootElement.Clone() : throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {text}");
    }

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await Client.GetAsync(new Uri(path, UriKind.Relative));
        var text = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode ? JsonDocument.Parse(text).RootElement.Clone() : throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {text}");
    }

    /// <summary>Streams a result file and counts its lines and distinct custom_ids.</summary>
    public async Task<(int Lines, int Unique)> CountCustomIdsAsync(string? fileId)
    {
        if (fileId is null)
        {
            return (0, 0);
        }

        using var response = await Client.GetAsync(new Uri($"/openai/v1/files/{fileId}/content", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var lines = 0;
        string? line;
        while ((line = await reader.ReadLineAsync()) is not null)
        {
            lines++;
            using var document = JsonDocument.Parse(line);
            ids.Add(document.RootElement.GetProperty("custom_id").GetString()!);
        }

        return (lines, ids.Count);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class Generate
{
    /// <summary>
    /// Writes a valid chat-completions batch file, streamed. <paramref name="lineBytes"/> 0: short lines; otherwise each
    /// line is padded to about that size; <paramref name="maxBytes"/> stops before the file would grow past it.
    /// </summary>
    public static async Task<long> BatchFileAsync(string path, int lines, int lineBytes, long maxBytes = long.MaxValue)
    {
        await using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        await using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16);
        long written = 0;
        for (var i = 1; i <= lines; i++)
        {
            var text = $"Hello number {i}, please echo this back.";
            var line = Line(i, text);
            if (lineBytes > line.Length)
            {
                line = Line(i, text + " " + new string('x', lineBytes - line.Length - 1));
            }

            if (written + line.Length + 1 > maxBytes)
            {
                break;
            }

            await writer.WriteAsync(line);
            await writer.WriteAsync('\n');
            written += line.Length + 1;
        }

        return written;
    }

    private static string Line(int i, string text) =>
        $$$"""{"custom_id":"req-{{{i:D7}}}","method":"POST","url":"/v1/chat/completions","body":{"model":"local/echo","messages":[{"role":"user","content":"{{{text}}}"}]}}""";
}

/// <summary>
/// Memory during one phase: peak resident set (Linux VmHWM, reset at the start through /proc/self/clear_refs), resident
/// set before, the largest managed heap seen by a 10 ms sampler, bytes allocated and GC counts.
/// </summary>
internal sealed class Probe : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampler;
    private readonly long _rssBefore;
    private readonly long _processPeakBefore;
    private readonly long _allocatedBefore;
    private readonly int[] _gcBefore;
    private readonly bool _peakReset;
    private long _peakHeap;
    private long _peakRssSampled;

    private Probe()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        _rssBefore = Environment.WorkingSet;
        using (var self = Process.GetCurrentProcess())
        {
            _processPeakBefore = self.PeakWorkingSet64;
        }

        _peakReset = TryResetPeak();
        _allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        _gcBefore = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        _sampler = Task.Run(SampleAsync);
    }

    public static Probe Start() => new();

    public Result Stop()
    {
        _stop.Cancel();
        _sampler.Wait();
        using var self = Process.GetCurrentProcess();
        var peak = _peakReset ? self.PeakWorkingSet64 : Math.Max(_peakRssSampled, Environment.WorkingSet);
        return new Result(
            _rssBefore,
            peak,
            _peakReset,
            _peakHeap,
            GC.GetTotalAllocatedBytes(precise: true) - _allocatedBefore,
            [GC.CollectionCount(0) - _gcBefore[0], GC.CollectionCount(1) - _gcBefore[1], GC.CollectionCount(2) - _gcBefore[2]],
            Environment.WorkingSet,
            Math.Max(_processPeakBefore, peak));
    }

    public void Dispose() => _stop.Dispose();

    private static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private async Task SampleAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            _peakHeap = Math.Max(_peakHeap, GC.GetGCMemoryInfo().HeapSizeBytes);
            _peakHeap = Math.Max(_peakHeap, GC.GetTotalMemory(false));
            _peakRssSampled = Math.Max(_peakRssSampled, Environment.WorkingSet);
            try
            {
                await Task.Delay(10, _stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    internal sealed record Result(long RssBefore, long PeakRss, bool PeakIsKernelHighWater, long PeakHeap, long Allocated, int[] Gcs, long RssAfter, long ProcessPeak)
    {
        private static string Mb(long bytes) => (bytes / 1048576.0).ToString("F0", CultureInfo.InvariantCulture);

        public void Print() => Console.WriteLine(
            $"memory: peak RSS {Mb(PeakRss)} MB ({(PeakIsKernelHighWater ? "VmHWM" : "sampled")}), RSS before {Mb(RssBefore)} MB, after {Mb(RssAfter)} MB, " +
            $"process peak since start {Mb(ProcessPeak)} MB, peak managed heap {Mb(PeakHeap)} MB, allocated {Mb(Allocated)} MB, GCs gen0/1/2 {Gcs[0]}/{Gcs[1]}/{Gcs[2]}");

        public JsonObject ToJson(string scenario, TimeSpan wall, string rate, bool verified) => new()
        {
            ["scenario"] = scenario,
            ["wall_s"] = wall.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture),
            ["rate"] = rate,
            ["peak_rss_mb"] = Mb(PeakRss),
            ["rss_before_mb"] = Mb(RssBefore),
            ["rss_after_mb"] = Mb(RssAfter),
            ["process_peak_mb"] = Mb(ProcessPeak),
            ["peak_heap_mb"] = Mb(PeakHeap),
            ["allocated_mb"] = Mb(Allocated),
            ["gcs"] = $"{Gcs[0]}/{Gcs[1]}/{Gcs[2]}",
            ["verified"] = verified,
        };
    }
}
