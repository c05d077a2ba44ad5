using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// Two real sample-host processes share one PostgreSQL schema. Batches and async jobs are submitted to one and polled
/// from the other; the instance running the batch is killed (SIGKILL) in the middle of it; the other one takes the work
/// over when the lease expires. Everything completes, nothing is lost, and — counted at the fake upstream the lines are
/// routed to — no request is answered twice.
/// </summary>
public sealed class TwoInstanceTests : IAsyncDisposable
{
    private const int Lines = 2000;
    private const int AsyncJobs = 24;
    private const string ChatPath = "openai/v1/chat/completions";
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private readonly List<IAsyncDisposable> _resources = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Two_instances_share_batches_and_async_jobs_and_survive_the_death_of_one()
    {
        var connectionString = PostgresTestDatabase.Require();
        var upstream = Track(await FakeUpstream.StartAsync());
        upstream.Delay = TimeSpan.FromMilliseconds(15);
        var environment = new Dictionary<string, string>
        {
            ["Bifrost__PostgreSql__ConnectionString"] = connectionString,
            ["Bifrost__PostgreSql__Schema"] = _schema,
            ["Bifrost__Providers__fake__Type"] = "openai",
            ["Bifrost__Providers__fake__BaseUrl"] = upstream.BaseUrl,
            ["Bifrost__Providers__fake__Keys__0__Value"] = "sk-fake",
            ["Bifrost__Jobs__Workers"] = "4",
            // One caller submits everything here (the batch and every async job), and this test is about sharing and
            // surviving a death, not fairness: the fleet-wide per-owner cap (default Workers / 2) must not keep the
            // victim's async jobs waiting while the survivor runs the same owner's jobs.
            ["Bifrost__Jobs__MaxRunningPerOwner"] = "8",
            ["Bifrost__Jobs__LeaseDuration"] = "00:00:03",
            ["Bifrost__Jobs__PollInterval"] = "00:00:00.500",
            ["Bifrost__Batches__Concurrency"] = "8",
            ["Bifrost__Batches__ProgressInterval"] = "00:00:00.200",
        };

        // Both start at once against an empty schema: the migration runs once, under its advisory lock.
        var starting = new[] { "A", "B" }.Select(name => SampleHostProcess.StartAsync(name, environment, Ct)).ToArray();
        var hosts = await Task.WhenAll(starting);
        foreach (var host in hosts)
        {
            Track(host);
        }

        var (a, b) = (hosts[0], hosts[1]);

        // A batch and async jobs submitted to A...
        var inputFileId = await UploadBatchFileAsync(a);
        var batchId = await CreateBatchAsync(a, inputFileId);
        var firstJobs = new List<string>();
        for (var i = 0; i < AsyncJobs / 2; i++)
        {
            firstJobs.Add(await SubmitAsync(a, $"async-{i}"));
        }

        // ...are visible from B at once (polls answered by the instance that did not receive them).
        foreach (var id in firstJobs)
        {
            var poll = await PollAsync(b, id);
            Assert.True(poll.Status == HttpStatusCode.OK, $"poll of {id} on B: {(int)poll.Status} {poll.Body}");
        }

        await WaitUntilAsync("the batch to be well under way (seen from B)", async () =>
        {
            var batch = await GetBatchAsync(b, batchId);
            return batch.GetProperty("status").GetString() == "in_progress" && batch.GetProperty("request_counts").GetProperty("completed").GetInt32() >= Lines / 5;
        });

        // Kill the instance that runs the batch, with async jobs in flight on it too. The upstream first holds every call
        // not yet answered, so nothing is half-answered at the kill: the victim's held calls die with it unanswered (they
        // never ran), and every answer it got had a moment to be stored.
        var runnerPid = await BatchRunnerProcessIdAsync(connectionString);
        var victim = hosts.Single(h => h.ProcessId == runnerPid);
        var survivor = hosts.Single(h => h != victim);
        upstream.CloseGate();
        var secondJobs = new List<string>();
        for (var i = AsyncJobs / 2; i < AsyncJobs; i++)
        {
            secondJobs.Add(await SubmitAsync(victim, $"async-{i}"));
        }

        var held = -1;
        var heldSince = DateTime.UtcNow;
        await WaitUntilAsync("the calls in flight to settle at the closed gate", () =>
        {
            var now = DateTime.UtcNow;
            if (upstream.Held != held)
            {
                (held, heldSince) = (upstream.Held, now);
            }

            return Task.FromResult(now - heldSince > TimeSpan.FromMilliseconds(750) && now - upstream.LastAnswered > TimeSpan.FromMilliseconds(750));
        });
        var victimAsyncJobs = await RunningAsyncJobsAsync(connectionString, victim.ProcessId);
        var answeredAtKill = upstream.TotalAnswered;
        await victim.KillAsync();

        // The victim's held calls must be seen as aborted before the gate opens: the kernel closes its sockets at once, but
        // the upstream notices a dead connection only when it next reads from it. Opening the gate before that would let a
        // held call of the dead process be counted as answered (and then run again by the survivor).
        var heldAfterKill = -1;
        var heldAfterKillSince = DateTime.UtcNow;
        await WaitUntilAsync("the dead instance's held calls to be seen as aborted", () =>
        {
            var now = DateTime.UtcNow;
            if (upstream.Held != heldAfterKill)
            {
                (heldAfterKill, heldAfterKillSince) = (upstream.Held, now);
            }

            return Task.FromResult(now - heldAfterKillSince > TimeSpan.FromMilliseconds(750));
        });
        upstream.OpenGate();
        Assert.True(answeredAtKill < Lines, $"the batch was mid-way when its instance died ({answeredAtKill} answered)");
        Assert.True(victimAsyncJobs > 0, "an async job was in flight on the killed instance");

        // The survivor finishes everything: the batch (after the lease expires) and every async job, whoever received it.
        var finished = await WaitUntilAsync("the batch to complete on the survivor", async () =>
        {
            var batch = await GetBatchAsync(survivor, batchId);
            var status = batch.GetProperty("status").GetString();
            Assert.True(status is "validating" or "in_progress" or "finalizing" or "completed", $"batch status {status}: {batch}");
            return status == "completed" ? batch : (JsonElement?)null;
        }, TimeSpan.FromSeconds(120));
        var counts = finished.GetProperty("request_counts");
        Assert.Equal(Lines, counts.GetProperty("total").GetInt32());
        Assert.Equal(Lines, counts.GetProperty("completed").GetInt32());
        Assert.Equal(0, counts.GetProperty("failed").GetInt32());
        Assert.Equal(JsonValueKind.Null, finished.TryGetProperty("error_file_id", out var errorFile) ? errorFile.ValueKind : JsonValueKind.Null);

        foreach (var (id, n) in firstJobs.Concat(secondJobs).Select((id, n) => (id, n)))
        {
            var result = await WaitUntilAsync($"async job {id} to finish on the survivor", async () =>
            {
                var poll = await PollAsync(survivor, id);
                return poll.Status == HttpStatusCode.OK && poll.Body.GetProperty("choices").GetArrayLength() > 0 ? poll.Body.Clone() : (JsonElement?)null;
            }, TimeSpan.FromSeconds(60));
            Assert.Equal($"echo: async-{n}", result.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }

        // Every line's result exactly once in the output file, read from the survivor.
        var output = await DownloadAsync(survivor, finished.GetProperty("output_file_id").GetString()!);
        var results = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.Equal(Lines, results.Count);
        Assert.Equal(Lines, results.Select(r => r.GetProperty("custom_id").GetString()).Distinct().Count());
        Assert.All(results, r =>
        {
            var customId = r.GetProperty("custom_id").GetString();
            Assert.Equal(200, r.GetProperty("response").GetProperty("status_code").GetInt32());
            Assert.Equal($"echo: {customId}", r.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        });

        // No request ran twice: the upstream answered each line and each async job exactly once.
        var twice = upstream.Answered.Where(kv => kv.Value != 1).Select(kv => $"{kv.Key}×{kv.Value}").ToList();
        Assert.True(twice.Count == 0, $"answered more than once: {string.Join(", ", twice.Take(20))}");
        Assert.Equal(Lines + AsyncJobs, upstream.Answered.Count);
        Assert.Equal(Lines + AsyncJobs, upstream.TotalAnswered);
        TestContext.Current.SendDiagnosticMessage($"killed {victim.Name} (batch runner, {victimAsyncJobs} async jobs in flight) with {answeredAtKill} calls answered and {held} held; {upstream.Aborted} calls died unanswered and were run again by {survivor.Name}.");
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _resources.Count - 1; i >= 0; i--)
        {
            await _resources[i].DisposeAsync();
        }

        if (PostgresTestDatabase.ConnectionString is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_schema);
        }
    }

    private T Track<T>(T resource)
        where T : IAsyncDisposable
    {
        _resources.Add(resource);
        return resource;
    }

    private static async Task<string> UploadBatchFileAsync(SampleHostProcess host)
    {
        var jsonl = new StringBuilder();
        for (var i = 0; i < Lines; i++)
        {
            var line = new JsonObject
            {
                ["custom_id"] = $"line-{i}",
                ["method"] = "POST",
                ["url"] = "/v1/chat/completions",
                ["body"] = new JsonObject
                {
                    ["model"] = "fake/m",
                    ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"line-{i}" }),
                },
            };
            jsonl.Append(line.ToJsonString()).Append('\n');
        }

        using var form = new MultipartFormDataContent();
        form.Add(new StringContent("batch"), "purpose");
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl.ToString()));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
        form.Add(file, "file", "lines.jsonl");
        using var response = await host.Client.PostAsync("openai/v1/files", form, Ct);
        var json = await ReadAsync(response);
        Assert.True(response.IsSuccessStatusCode, $"upload: {(int)response.StatusCode} {json}");
        return json.GetProperty("id").GetString()!;
    }

    private static async Task<string> CreateBatchAsync(SampleHostProcess host, string inputFileId)
    {
        var body = new JsonObject { ["input_file_id"] = inputFileId, ["endpoint"] = "/v1/chat/completions", ["completion_window"] = "24h" };
        using var response = await host.Client.PostAsync("openai/v1/batches", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"), Ct);
        var json = await ReadAsync(response);
        Assert.True(response.IsSuccessStatusCode, $"create batch: {(int)response.StatusCode} {json}");
        return json.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> GetBatchAsync(SampleHostProcess host, string batchId)
    {
        using var response = await host.Client.GetAsync($"openai/v1/batches/{batchId}", Ct);
        var json = await ReadAsync(response);
        Assert.True(response.IsSuccessStatusCode, $"get batch from {host.Name}: {(int)response.StatusCode} {json}");
        return json;
    }

    private static async Task<string> SubmitAsync(SampleHostProcess host, string content)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, ChatPath)
        {
            Content = new StringContent(Chat(content), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-bf-async", "true");
        using var response = await host.Client.SendAsync(request, Ct);
        var json = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"submit to {host.Name}: {(int)response.StatusCode} {json}");
        return json.GetProperty("id").GetString()!;
    }

    private static async Task<PollResult> PollAsync(SampleHostProcess host, string id)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, ChatPath) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        request.Headers.Add("x-bf-async-id", id);
        using var response = await host.Client.SendAsync(request, Ct);
        return new PollResult(response.StatusCode, await ReadAsync(response));
    }

    private static async Task<string> DownloadAsync(SampleHostProcess host, string fileId)
    {
        using var response = await host.Client.GetAsync($"openai/v1/files/{fileId}/content", Ct);
        Assert.True(response.IsSuccessStatusCode, $"download {fileId}: {(int)response.StatusCode}");
        return await response.Content.ReadAsStringAsync(Ct);
    }

    private async Task<int> BatchRunnerProcessIdAsync(string connectionString)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using var command = dataSource.CreateCommand($"SELECT lease_owner FROM \"{_schema}\".jobs WHERE kind = 'batch' AND status = 1");
        var owner = (string?)await command.ExecuteScalarAsync(Ct);
        Assert.False(string.IsNullOrEmpty(owner), "the batch is being run by some instance");
        return int.Parse(owner.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture); // "{machine}:{pid}:{instance}:{worker}"
    }

    private async Task<int> RunningAsyncJobsAsync(string connectionString, int processId)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using var command = dataSource.CreateCommand($"SELECT count(*) FROM \"{_schema}\".jobs WHERE kind <> 'batch' AND status = 1 AND split_part(lease_owner, ':', 2) = @pid");
        command.Parameters.AddWithValue("pid", processId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return (int)(long)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static string Chat(string content) => new JsonObject
    {
        ["model"] = "fake/m",
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
    }.ToJsonString();

    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        return JsonDocument.Parse(text.Length == 0 ? "null" : text).RootElement.Clone();
    }

    private static async Task WaitUntilAsync(string what, Func<Task<bool>> condition, TimeSpan? deadline = null) =>
        await WaitUntilAsync<bool>(what, async () => await condition() ? true : null, deadline);

    private static async Task<T> WaitUntilAsync<T>(string what, Func<Task<T?>> probe, TimeSpan? deadline = null)
        where T : struct
    {
        var until = DateTime.UtcNow + (deadline ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < until, $"Timed out waiting for {what}.");
            await Task.Delay(50, Ct);
        }
    }

    private readonly record struct PollResult(HttpStatusCode Status, JsonElement Body);
}
