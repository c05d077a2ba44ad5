using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Sqlite.Tests.Infrastructure;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>
/// A measurement, not a CI test (explicit: run it with <c>--explicit only</c> / <c>-explicit only</c>): the sample host as a
/// real process (SQLite job store), its peak working set (<see cref="Process.PeakWorkingSet64"/>, Linux VmHWM) read after
/// each step: a 400 MB <c>purpose</c> field, then a ~30 MB async result stored and polled 40 times at once (20 envelope
/// reads, 20 <c>x-bf-async-id</c> polls). Figures go to the test output and to <c>$BIFROST_MEASURE_OUT</c> (default
/// <c>/tmp/bifrost-memory.txt</c>). <c>BIFROST_SAMPLE_DLL</c> runs another build of the sample (to compare).
/// </summary>
public sealed class MemoryMeasurement
{
    private const int ResultBytes = 30 * 1024 * 1024;
    private const long PurposeBytes = 400L * 1024 * 1024;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Explicit = true)]
    public async Task Peak_working_set_of_a_huge_form_field_and_40_concurrent_reads_of_a_30_MB_result()
    {
        using var data = new TempDirectory("bifrost-memory");
        var settings = new Dictionary<string, string>
        {
            ["Bifrost__Sqlite__Path"] = Path.Combine(data.Path, "jobs.db"),
            ["Bifrost__Files__Directory"] = Path.Combine(data.Path, "files"),
            ["Bifrost__MaxRequestBodySize"] = (64 * 1024 * 1024).ToString(CultureInfo.InvariantCulture),
            ["Bifrost__Jobs__PollInterval"] = "00:00:00.100",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        var report = new StringBuilder();
        void Line(string text)
        {
            report.AppendLine(text);
            TestContext.Current.TestOutputHelper?.WriteLine(text);
        }

        Line($"machine: {Machine()}; load average: {File.ReadAllText("/proc/loadavg").Trim()}");
        Line($"sample: {Environment.GetEnvironmentVariable("BIFROST_SAMPLE_DLL") ?? "this build"}");
        var host = await SampleHostProcess.StartAsync(settings, Ct);
        string id;
        try
        {
            using var client = new HttpClient { BaseAddress = host.Client.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
            Line($"started: peak {Peak(host)} MB");

            // Finding 5: a 400 MB purpose field.
            var status = "no answer";
            try
            {
                using var upload = new HttpRequestMessage(HttpMethod.Post, "v1/files") { Content = new HugeFieldContent(PurposeBytes) };
                using var answer = await client.SendAsync(upload, Ct);
                status = $"{(int)answer.StatusCode} {Shorten(await answer.Content.ReadAsStringAsync(Ct))}";
            }
            catch (HttpRequestException ex)
            {
                status = "connection closed by the server: " + ex.Message;
            }

            Line($"400 MB purpose field: {status}; peak {Peak(host)} MB");

            // Finding 11: a ~30 MB async result (the local echo model answers the prompt), stored in SQLite.
            var prompt = new string('x', ResultBytes);
            var body = $$"""{"model":"local/echo","messages":[{"role":"user","content":"{{prompt}}"}]}""";
            using (var submit = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") })
            {
                submit.Headers.Add("x-bf-async", "true");
                using var accepted = await client.SendAsync(submit, Ct);
                var text = await accepted.Content.ReadAsStringAsync(Ct);
                Assert.True(accepted.StatusCode == HttpStatusCode.OK, text);
                id = JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
            }

            var deadline = Stopwatch.StartNew();
            while (true)
            {
                using var probe = await client.GetAsync(new Uri($"v1/async/chat/completions/{id}", UriKind.Relative), Ct);
                if ((await probe.Content.ReadAsStringAsync(Ct)).Contains("\"status\":\"completed\"", StringComparison.Ordinal))
                {
                    break;
                }

                Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2), "the 30 MB job did not finish");
                await Task.Delay(200, Ct);
            }

            Line($"30 MB async result stored (submit + run): peak {Peak(host)} MB");
        }
        finally
        {
            await host.DisposeAsync();
        }

        // A fresh process on the same database, so the reads' peak is not hidden by the submit's.
        await using var reader = await SampleHostProcess.StartAsync(settings, Ct);
        using var readClient = new HttpClient { BaseAddress = reader.Client.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        using (var warmUp = await readClient.GetAsync(new Uri("v1/async/chat/completions/job-none", UriKind.Relative), Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, warmUp.StatusCode);
        }

        Line($"restarted on the same database: peak {Peak(reader)} MB");

        var started = Stopwatch.StartNew();
        var reads = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            using var request = i % 2 == 0
                ? new HttpRequestMessage(HttpMethod.Get, $"v1/async/chat/completions/{id}")
                : new HttpRequestMessage(HttpMethod.Get, "v1/chat/completions");
            if (i % 2 == 1)
            {
                request.Headers.Add("x-bf-async-id", id);
            }

            using var response = await readClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await using var stream = await response.Content.ReadAsStreamAsync(Ct);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[81920];
            long length = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer, Ct)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                length += read;
            }

            return (Kind: i % 2 == 0 ? "envelope" : "poll", Hash: Convert.ToHexString(hash.GetHashAndReset()), Length: length);
        }));
        foreach (var kind in reads.GroupBy(r => r.Kind))
        {
            Assert.Single(kind.Select(r => r.Hash).Distinct());
            Assert.True(kind.First().Length > ResultBytes, $"{kind.Key} body of {kind.First().Length} bytes");
        }

        Line($"40 concurrent reads (20 envelope, 20 x-bf-async-id; bodies {reads[0].Length / 1048576.0:F1} / {reads[1].Length / 1048576.0:F1} MB, identical per kind) in {started.Elapsed.TotalSeconds:F1} s: peak {Peak(reader)} MB");
        var output = Environment.GetEnvironmentVariable("BIFROST_MEASURE_OUT") is { Length: > 0 } path ? path : Path.Combine(Path.GetTempPath(), "bifrost-memory.txt");
        await File.AppendAllTextAsync(output, report + Environment.NewLine, Ct);
    }

    private static long Peak(SampleHostProcess host)
    {
        using var process = Process.GetProcessById(host.ProcessId);
        process.Refresh();
        return process.PeakWorkingSet64 / (1024 * 1024);
    }

    private static string Machine() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";

    private static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "…";

    /// <summary>A multipart body whose <c>purpose</c> field is <c>size</c> bytes, generated while it is sent (never in the client's memory).</summary>
    private sealed class HugeFieldContent : HttpContent
    {
        private const string Boundary = "measure";
        private readonly long _size;

        public HugeFieldContent(long size)
        {
            _size = size;
            Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=" + Boundary);
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"--{Boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch"));
            var chunk = Encoding.ASCII.GetBytes(new string(' ', 1024 * 1024));
            for (long sent = 0; sent < _size; sent += chunk.Length)
            {
                await stream.WriteAsync(chunk);
            }

            await stream.WriteAsync(Encoding.ASCII.GetBytes($"\r\n--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n{{}}\r\n--{Boundary}--\r\n"));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
