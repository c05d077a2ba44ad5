using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Sqlite.Tests.Infrastructure;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>
/// Issue 11's memory test: the sample host as a real process receives the requests of findings 1 (huge n, n × long
/// echo, 20,000 embedding inputs at 3072 dimensions), 5 (a 400 MB form field streamed from here, a 1 MB part header and
/// filename) and 11c (a ~30 MB async result read 40 times at once). Its peak working set (VmHWM, read by the runtime as
/// <see cref="Process.PeakWorkingSet64"/>) must stay under the baseline measured after warm-up plus
/// <see cref="MarginBytes"/>, and every answer must be the expected 4xx/2xx. A watchdog kills the child as soon as the
/// bound is crossed, so an unfixed host fails fast instead of taking the machine's memory.
/// </summary>
public sealed class SampleHostMemoryTests
{
    /// <summary>
    /// Headroom over the warmed-up baseline. Measured on the 2-core CI machine: the warmed-up sample host peaks at about
    /// 150–200 MB; building the ~30 MB embeddings result once costs about 100 MB more. 300 MB leaves margin for GC timing
    /// while anything that materializes per request (40 × 30 MB) or reads a 400 MB field crosses it.
    /// </summary>
    public const long MarginBytes = 300L * 1024 * 1024;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Findings_1_5_and_11_keep_the_peak_working_set_bounded()
    {
        using var data = new TempDirectory("bifrost-memory");
        var settings = new Dictionary<string, string>
        {
            ["Bifrost__Sqlite__Path"] = Path.Combine(data.Path, "jobs.db"),
            ["Bifrost__Files__Directory"] = Path.Combine(data.Path, "files"),
            ["Bifrost__Jobs__PollInterval"] = "00:00:00.100",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        await using var host = await SampleHostProcess.StartAsync(settings, Ct);
        using var client = new HttpClient { BaseAddress = host.Client.BaseAddress, Timeout = TimeSpan.FromMinutes(3) };

        // Warm-up: every path once, so the baseline includes JIT, pools and the SQLite connection.
        await ExpectAsync(client, "warm-up chat", Json("v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"warm up"}]}"""), 200);
        await ExpectAsync(client, "warm-up embeddings", Json("v1/embeddings", """{"model":"local/echo","input":["a","b"],"dimensions":64}"""), 200);
        await ExpectAsync(client, "warm-up upload", Upload(new Field("purpose", "user_data"), new FilePart("a.txt", "hello"u8.ToArray())), 200);
        var warm = await SubmitAsync(client, """{"model":"local/echo","input":["warm"],"dimensions":8}""");
        await WaitCompletedAsync(client, warm);
        await Task.Delay(500, Ct);

        var baseline = Peak(host.ProcessId);
        var bound = baseline + MarginBytes;
        using var watchdog = new Watchdog(host, bound);
        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine($"baseline peak working set {Mb(baseline)}, bound {Mb(bound)}");

        async Task Step(string name, Func<Task> action)
        {
            try
            {
                await action();
            }
            catch (Exception ex) when (watchdog.Tripped is not null && ex is not Xunit.Sdk.XunitException)
            {
                // The watchdog killed the host: that, not the broken connection, is the failure.
            }

            Assert.True(watchdog.Tripped is null,
                $"'{name}': the sample host's peak working set reached {Mb(watchdog.Tripped ?? 0)} (baseline {Mb(baseline)} + margin {Mb(MarginBytes)} = bound {Mb(bound)}); the watchdog killed it.");
            output?.WriteLine($"after '{name}': peak {Mb(Peak(host.ProcessId))}");
        }

        // Finding 1: unbounded work from a small request.
        await Step("chat n: 10000000", () => ExpectAsync(client, "chat n: 10000000",
            Json("v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"n":10000000}"""), 400));
        await Step("completions n: 128 + 1 MB echo", () => ExpectAsync(client, "completions n: 128 + 1 MB echo",
            Json("v1/completions", $$"""{"model":"local/echo","prompt":"{{string.Join(' ', Enumerable.Repeat("echo", 200_000))}}","n":128,"echo":true}"""), 400));
        await Step("embeddings 20,000 inputs × 3072 dimensions", () => ExpectAsync(client, "embeddings 20,000 inputs",
            Json("v1/embeddings", $$"""{"model":"local/echo","dimensions":3072,"input":[{{string.Join(',', Enumerable.Range(0, 20_000).Select(i => $"\"{i % 10}\""))}}]}"""), 400));

        // Finding 5: memory from a form field, part headers and filenames.
        await Step("a 400 MB purpose field", () => ExpectAsync(client, "400 MB purpose", Upload(new StreamedField("purpose", 400L * 1024 * 1024), new FilePart("a.jsonl", "{}"u8.ToArray())), 400));
        await Step("a 1 MB filename", () => ExpectAsync(client, "1 MB filename", Upload(new Field("purpose", "user_data"), new FilePart(new string('f', 1 << 20), "x"u8.ToArray())), 400));
        await Step("a 1 MB part header", () => ExpectAsync(client, "1 MB part header", Upload(new Field("purpose", "user_data"), new FilePart("a.txt", "x"u8.ToArray(), $"X-Fuzz: {new string('h', 1 << 20)}")), 400));

        // Finding 11c: one ~30 MB async result (1000 inputs × 3072 dimensions), read 40 times at once.
        string? job = null;
        await Step("a ~30 MB async result", async () =>
        {
            job = await SubmitAsync(client, $$"""{"model":"local/echo","dimensions":3072,"input":[{{string.Join(',', Enumerable.Range(0, 1000).Select(i => $"\"text {i}\""))}}]}""");
            await WaitCompletedAsync(client, job);
        });
        await Step("40 concurrent reads of the 30 MB result", async () =>
        {
            var sizes = await Task.WhenAll(Enumerable.Range(0, 40).Select(async _ =>
            {
                using var response = await client.GetAsync($"v1/async/embeddings/{job}", HttpCompletionOption.ResponseHeadersRead, Ct);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                await using var body = await response.Content.ReadAsStreamAsync(Ct);
                var buffer = new byte[81920];
                long total = 0;
                int read;
                while ((read = await body.ReadAsync(buffer, Ct)) > 0)
                {
                    total += read;
                }

                return total;
            }));
            Assert.All(sizes, size => Assert.True(size > 20_000_000, $"a result read returned only {size} bytes"));
        });

        var peak = Peak(host.ProcessId);
        output?.WriteLine($"final peak working set {Mb(peak)} (bound {Mb(bound)})");
        Assert.True(peak <= bound, $"the sample host's peak working set {Mb(peak)} exceeds the bound {Mb(bound)} (baseline {Mb(baseline)} + {Mb(MarginBytes)})");
        Assert.False(host.HasExited, $"the sample host died:\n{host.Output}");
    }

    private static long Peak(int pid)
    {
        using var process = Process.GetProcessById(pid);
        process.Refresh();
        return process.PeakWorkingSet64;
    }

    private static string Mb(long bytes) => $"{bytes / (1024.0 * 1024):F0} MB";

    private static async Task ExpectAsync(HttpClient client, string what, HttpRequestMessage request, int status)
    {
        using (request)
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
            var text = await ReadBoundedAsync(response);
            Assert.True((int)response.StatusCode == status, $"'{what}' answered {(int)response.StatusCode} (expected {status}): {text}");
            if (status >= 400)
            {
                using var json = JsonDocument.Parse(text);
                Assert.True(json.RootElement.GetProperty("is_bifrost_error").ValueKind is JsonValueKind.True or JsonValueKind.False, text);
                Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("error").GetProperty("message").GetString()), text);
            }
        }
    }

    /// <summary>The first 4 KB of the body (the rest is drained, not kept: an unfixed host may answer hundreds of MB).</summary>
    private static async Task<string> ReadBoundedAsync(HttpResponseMessage response)
    {
        await using var body = await response.Content.ReadAsStreamAsync(Ct);
        var kept = new MemoryStream();
        var buffer = new byte[81920];
        int read;
        while ((read = await body.ReadAsync(buffer, Ct)) > 0)
        {
            if (kept.Length < 4096)
            {
                kept.Write(buffer, 0, Math.Min(read, 4096 - (int)kept.Length));
            }
        }

        return Encoding.UTF8.GetString(kept.ToArray());
    }

    private static async Task<string> SubmitAsync(HttpClient client, string body)
    {
        using var response = await client.SendAsync(Json("v1/async/embeddings", body), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"async submit answered {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task WaitCompletedAsync(HttpClient client, string id)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            using var response = await client.GetAsync($"v1/async/embeddings/{id}", HttpCompletionOption.ResponseHeadersRead, Ct);
            await using var body = await response.Content.ReadAsStreamAsync(Ct);
            var head = new byte[256];
            var read = await body.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, Ct);
            var prefix = Encoding.UTF8.GetString(head, 0, read);
            if (prefix.Contains("\"completed\"", StringComparison.Ordinal))
            {
                return;
            }

            Assert.True(!prefix.Contains("\"failed\"", StringComparison.Ordinal), $"job {id} failed: {prefix}");
            Assert.True(DateTime.UtcNow < until, $"job {id} did not complete within 60 s: {prefix}");
            await Task.Delay(100, Ct);
        }
    }

    private static HttpRequestMessage Json(string path, string body) =>
        new(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };

    private static HttpRequestMessage Upload(params Part[] parts) =>
        new(HttpMethod.Post, "v1/files") { Content = new MultipartStream(parts) };

    private abstract record Part;

    private sealed record Field(string Name, string Value) : Part;

    /// <summary>A form field of <paramref name="Length"/> bytes, generated while it is sent (never in memory).</summary>
    private sealed record StreamedField(string Name, long Length) : Part;

    private sealed record FilePart(string Filename, byte[] Content, string? ExtraHeader = null) : Part;

    /// <summary>multipart/form-data written straight to the connection, so a 400 MB part costs the test nothing.</summary>
    private sealed class MultipartStream : HttpContent
    {
        private const string Boundary = "memtestboundary";
        private readonly Part[] _parts;

        public MultipartStream(Part[] parts)
        {
            _parts = parts;
            Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={Boundary}");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            async Task Write(string text) => await stream.WriteAsync(Encoding.UTF8.GetBytes(text));
            foreach (var part in _parts)
            {
                switch (part)
                {
                    case Field field:
                        await Write($"--{Boundary}\r\nContent-Disposition: form-data; name=\"{field.Name}\"\r\n\r\n{field.Value}\r\n");
                        break;
                    case StreamedField streamed:
                    {
                        await Write($"--{Boundary}\r\nContent-Disposition: form-data; name=\"{streamed.Name}\"\r\n\r\n");
                        var chunk = new byte[64 * 1024];
                        Array.Fill(chunk, (byte)'b');
                        for (long sent = 0; sent < streamed.Length; sent += chunk.Length)
                        {
                            await stream.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, streamed.Length - sent)));
                        }

                        await Write("\r\n");
                        break;
                    }

                    case FilePart file:
                        await Write($"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file.Filename}\"\r\n"
                            + (file.ExtraHeader is null ? string.Empty : file.ExtraHeader + "\r\n")
                            + "Content-Type: application/octet-stream\r\n\r\n");
                        await stream.WriteAsync(file.Content);
                        await Write("\r\n");
                        break;
                }
            }

            await Write($"--{Boundary}--\r\n");
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>Samples the child's peak working set every 50 ms; kills it (by its PID) as soon as the bound is crossed.</summary>
    private sealed class Watchdog : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private long _tripped;

        public Watchdog(SampleHostProcess host, long bound)
        {
            _loop = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested && !host.HasExited)
                {
                    try
                    {
                        var peak = Peak(host.ProcessId);
                        if (peak > bound)
                        {
                            Interlocked.Exchange(ref _tripped, peak);
                            host.KillHard();
                            return;
                        }
                    }
                    catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
                    {
                        return; // the process is gone
                    }

                    try
                    {
                        await Task.Delay(50, _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            });
        }

        /// <summary>The peak that crossed the bound, or null.</summary>
        public long? Tripped => Interlocked.Read(ref _tripped) is var value && value > 0 ? value : (long?)null;

        public void Dispose()
        {
            _stop.Cancel();
            _loop.Wait(TimeSpan.FromSeconds(5));
            _stop.Dispose();
        }
    }
}
