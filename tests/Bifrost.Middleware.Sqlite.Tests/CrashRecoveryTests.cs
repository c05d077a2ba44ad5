using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Sqlite.Tests.Infrastructure;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>
/// The sample host (SQLite job store by default) as a real process, killed with SIGKILL in the middle of a batch and of
/// an async chat job, then started again on the same data directory: both finish, every batch line has exactly one
/// result, the counts add up, nothing is lost.
/// </summary>
public sealed class CrashRecoveryTests
{
    private const int Lines = 2000;
    private const string AsyncPrompt = "Survive a kill -9, please";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Batch_and_async_job_in_flight_survive_a_kill_9_and_finish_after_restart()
    {
        var total = Stopwatch.StartNew();
        using var data = new TempDirectory("bifrost-crash");
        var databasePath = Path.Combine(data.Path, "jobs.db");
        var filesDirectory = Path.Combine(data.Path, "files");
        var settings = new Dictionary<string, string>
        {
            ["Bifrost__Sqlite__Path"] = databasePath,
            ["Bifrost__Files__Directory"] = filesDirectory,
            // A dead worker's lease runs out quickly, so the restarted host takes its jobs over within seconds.
            ["Bifrost__Jobs__LeaseDuration"] = "00:00:02",
            ["Bifrost__Jobs__PollInterval"] = "00:00:00.200",
            ["Bifrost__Batches__Concurrency"] = "8",
            ["Bifrost__Batches__ProgressInterval"] = "00:00:00.200",
            ["Logging__LogLevel__Default"] = "Warning",
        };

        string batchId;
        string jobId;
        string inputFileId;
        var first = await SampleHostProcess.StartAsync(settings, Ct);
        var firstPid = first.ProcessId;
        try
        {
            // An async chat job that takes 6 s upstream: it is running when the host dies.
            jobId = await SubmitAsyncChatAsync(first.Client, AsyncPrompt, delayMs: 6000);
            inputFileId = await UploadBatchInputAsync(first.Client);
            batchId = await CreateBatchAsync(first.Client, inputFileId);

            // Kill as soon as the batch has visibly made progress and the async job is running.
            await EventuallyAsync("the batch to make progress and the async job to run", TimeSpan.FromSeconds(30), first, async () =>
            {
                var counts = (await GetBatchAsync(first.Client, batchId)).GetProperty("request_counts");
                var done = counts.GetProperty("completed").GetInt32() + counts.GetProperty("failed").GetInt32();
                Assert.True(done < Lines, $"the batch finished ({done} lines) before the host could be killed: too fast to test a crash");
                var job = await GetJobEnvelopeAsync(first.Client, jobId);
                return done > 0 && job.GetProperty("status").GetString() == "processing";
            });
            first.KillHard();
            Assert.True(first.HasExited);
        }
        finally
        {
            await first.DisposeAsync();
        }

        // What the dead process left: lines already in the output file, and both jobs still leased to its workers.
        var suffix = batchId["batch_".Length..];
        var linesBeforeCrash = CountLines(Path.Combine(filesDirectory, $"file-{suffix}-output.data"));
        Assert.InRange(linesBeforeCrash, 1, Lines - 1);
        await using (var store = new SqliteJobStore(databasePath, TimeProvider.System))
        {
            foreach (var id in new[] { batchId, jobId })
            {
                var job = await store.GetAsync(id, Ct);
                Assert.NotNull(job);
                Assert.Equal(JobStatus.Processing, job.Status);
                Assert.Contains($":{firstPid}:", job.LeaseOwner, StringComparison.Ordinal);
            }
        }

        await using var second = await SampleHostProcess.StartAsync(settings, Ct);

        // The async job: taken over once the dead lease ran out, run again, completed with the same answer.
        JsonElement envelope = default;
        await EventuallyAsync("the async job to complete after the restart", TimeSpan.FromSeconds(40), second, async () =>
        {
            envelope = await GetJobEnvelopeAsync(second.Client, jobId);
            var status = envelope.GetProperty("status").GetString();
            Assert.NotEqual("failed", status);
            return status == "completed";
        });
        Assert.Equal(200, envelope.GetProperty("status_code").GetInt32());
        Assert.Equal(AsyncPrompt, envelope.GetProperty("result").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // The batch: resumed from its files, completed.
        JsonElement batch = default;
        await EventuallyAsync("the batch to complete after the restart", TimeSpan.FromSeconds(40), second, async () =>
        {
            batch = await GetBatchAsync(second.Client, batchId);
            var status = batch.GetProperty("status").GetString();
            Assert.True(status is "validating" or "in_progress" or "finalizing" or "completed", $"unexpected batch status {status}: {batch}");
            return status == "completed";
        });

        var countsJson = batch.GetProperty("request_counts");
        int Count(string name) => countsJson.TryGetProperty(name, out var value) ? value.GetInt32() : 0;
        Assert.Equal(Lines, Count("total"));
        Assert.Equal(Count("total"), Count("succeeded") + Count("failed") + Count("expired") + Count("canceled"));
        Assert.Equal(Count("completed") + Count("failed"), Count("total"));

        // Every custom_id exactly once across output and error files, and nothing else.
        var outputIds = await DownloadCustomIdsAsync(second.Client, batch, "output_file_id");
        var errorIds = await DownloadCustomIdsAsync(second.Client, batch, "error_file_id");
        var all = outputIds.Concat(errorIds).ToList();
        var duplicates = all.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).Take(5).ToList();
        Assert.True(duplicates.Count == 0, $"custom_ids with more than one result: {string.Join(", ", duplicates)}");
        Assert.Equal(Enumerable.Range(0, Lines).Select(CustomId).Order(StringComparer.Ordinal), all.Order(StringComparer.Ordinal));
        Assert.Equal(Count("succeeded"), outputIds.Count);
        Assert.Equal(Count("failed") + Count("expired") + Count("canceled"), errorIds.Count);
        Assert.True(total.Elapsed < TimeSpan.FromSeconds(90), $"the crash test took {total.Elapsed.TotalSeconds:F0}s");
        TestContext.Current.SendDiagnosticMessage($"crash test: {linesBeforeCrash} lines before the kill, {outputIds.Count} succeeded in all, {total.Elapsed.TotalSeconds:F1}s");
    }

    private static string CustomId(int i) => $"line-{i:D5}";

    private static async Task<string> SubmitAsyncChatAsync(HttpClient client, string prompt, int delayMs)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = Json(ChatBody(prompt, delayMs)),
        };
        request.Headers.Add("x-bf-async", "true");
        using var response = await client.SendAsync(request, Ct);
        var json = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"async submit answered {(int)response.StatusCode}: {json}");
        return json.GetProperty("id").GetString()!;
    }

    private static async Task<string> UploadBatchInputAsync(HttpClient client)
    {
        var input = new StringBuilder();
        for (var i = 0; i < Lines; i++)
        {
            input.Append("{\"custom_id\":\"").Append(CustomId(i)).Append("\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":")
                .Append(ChatBody($"line {i}", delayMs: 5)).Append("}\n");
        }

        using var form = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
        };
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(input.ToString()));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
        form.Add(file, "file", "crash-input.jsonl");
        using var response = await client.PostAsync(new Uri("v1/files", UriKind.Relative), form, Ct);
        var json = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"upload answered {(int)response.StatusCode}: {json}");
        return json.GetProperty("id").GetString()!;
    }

    private static async Task<string> CreateBatchAsync(HttpClient client, string inputFileId)
    {
        using var content = Json($"{{\"input_file_id\":\"{inputFileId}\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}}");
        using var response = await client.PostAsync(new Uri("v1/batches", UriKind.Relative), content, Ct);
        var json = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"batch create answered {(int)response.StatusCode}: {json}");
        return json.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> GetBatchAsync(HttpClient client, string batchId)
    {
        using var response = await client.GetAsync(new Uri($"v1/batches/{batchId}", UriKind.Relative), Ct);
        var json = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"batch get answered {(int)response.StatusCode}: {json}");
        return json;
    }

    private static async Task<JsonElement> GetJobEnvelopeAsync(HttpClient client, string jobId)
    {
        using var response = await client.GetAsync(new Uri($"v1/async/chat/completions/{jobId}", UriKind.Relative), Ct);
        var json = await ReadAsync(response);
        var finished = json.GetProperty("status").GetString() is "completed" or "failed";
        var expected = finished ? HttpStatusCode.OK : HttpStatusCode.Accepted; // Bifrost: 202 until the job finished
        Assert.True(response.StatusCode == expected, $"job get answered {(int)response.StatusCode}: {json}");
        return json;
    }

    private static async Task<List<string>> DownloadCustomIdsAsync(HttpClient client, JsonElement batch, string property)
    {
        if (!batch.TryGetProperty(property, out var id) || id.ValueKind != JsonValueKind.String)
        {
            return [];
        }

        using var response = await client.GetAsync(new Uri($"v1/files/{id.GetString()}/content", UriKind.Relative), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"file content answered {(int)response.StatusCode}: {text}");
        var ids = new List<string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var document = JsonDocument.Parse(line); // a torn line would fail here
            ids.Add(document.RootElement.GetProperty("custom_id").GetString()!);
        }

        return ids;
    }

    private static string ChatBody(string prompt, int delayMs) =>
        JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = "local/echo",
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = prompt } },
            ["metadata"] = new Dictionary<string, string> { ["local_delay_ms"] = delayMs.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        });

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            throw new InvalidOperationException($"Not JSON ({(int)response.StatusCode}): {text}");
        }
    }

    private static int CountLines(string path) =>
        File.Exists(path) ? File.ReadAllBytes(path).Count(b => b == (byte)'\n') : 0;

    private static async Task EventuallyAsync(string what, TimeSpan timeout, SampleHostProcess host, Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (host.HasExited)
            {
                throw new InvalidOperationException($"The host exited while waiting for {what}:\n{host.Output}");
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Waited {timeout.TotalSeconds:F0}s for {what}. Host output:\n{host.Output}");
            }

            await Task.Delay(50, Ct);
        }
    }
}
