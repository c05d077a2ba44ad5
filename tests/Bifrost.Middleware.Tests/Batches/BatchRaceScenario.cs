using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

// Shared by the in-memory (here), SQLite and PostgreSQL test projects (linked as source): the same races against every
// job store. It talks HTTP only (absolute /openai/v1/... paths), so any host with the gateway at /openai can run it.
namespace Bifrost.Middleware.Tests.Races;

/// <summary>Counts the gateway calls that started (a plugin's pre-hook runs once per started line of a batch).</summary>
public sealed class StartedLinesCounter : IBifrostPlugin
{
    private int _started;

    public int Started => Volatile.Read(ref _started);

    public ValueTask PreHookAsync(BifrostPluginContext context, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _started);
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Batch races run by repetition: a cancel at every stage of a batch (before it starts, early, midway, when every line
/// already ran), and deleting the input mid-run. Invariants: a cancel answered <c>cancelling</c>/<c>cancelled</c> ends
/// <c>cancelled</c> (with <c>cancelling_at</c> and <c>cancelled_at</c>); one answered 409 <c>batch_not_cancellable</c> came
/// when the batch was already finalizing or ended, and it ends <c>completed</c>; no line starts after the cancel was
/// acknowledged beyond those already past their last check (at most <c>Concurrency</c>); every custom_id is exactly once
/// in the output or error file of a batch that started; request_counts add up.
/// </summary>
public sealed class BatchRaceScenario(HttpClient client, StartedLinesCounter counter, int concurrency)
{
    private const string Files = "/openai/v1/files";
    private const string Batches = "/openai/v1/batches";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>For each fraction (0 = at once, 1 = after every line started), runs a batch of <paramref name="lines"/> and cancels it then.</summary>
    public async Task CancelAtEveryStageAsync(int lines, params double[] fractions)
    {
        foreach (var fraction in fractions)
        {
            await CancelOnceAsync(lines, (int)Math.Round(lines * fraction));
        }
    }

    /// <summary>Runs a batch, cancels it once <paramref name="cancelAfterStarted"/> lines started, and checks the invariants.</summary>
    /// <param name="lines">The batch's size.</param>
    /// <param name="cancelAfterStarted">How many lines start before the cancel is sent.</param>
    /// <param name="cancelVia">Gives, once the lines started, another instance to send the cancel to (the run must hear of it through the store); null for this one.</param>
    /// <param name="lineDelayMs">How long each line takes (the local provider's <c>local_delay_ms</c>).</param>
    /// <param name="maxStartedAfterAck">Lines allowed to start after the acknowledgement; default the concurrency.</param>
    public async Task CancelOnceAsync(int lines, int cancelAfterStarted, Func<Task<HttpClient>>? cancelVia = null, int lineDelayMs = 0, int? maxStartedAfterAck = null)
    {
        var startedBefore = counter.Started;
        var (ids, batchId) = await StartAsync(lines, "cancel", lineDelayMs);
        await WaitAsync(() => counter.Started - startedBefore >= cancelAfterStarted, $"{cancelAfterStarted} lines to start");

        var cancelClient = cancelVia is null ? client : await cancelVia();
        using var cancel = await cancelClient.PostAsync($"{Batches}/{batchId}/cancel", null, Ct);
        var startedAtAck = counter.Started;
        var answer = await JsonAsync(cancel);
        var ended = await WaitForEndAsync(batchId);
        var startedAfterAck = counter.Started - startedAtAck;
        var status = ended.GetProperty("status").GetString();
        if (cancel.StatusCode == HttpStatusCode.OK)
        {
            Assert.True(answer.GetProperty("status").GetString() is "cancelling" or "cancelled", $"cancel answered {answer}");
            Assert.True(status == "cancelled", $"the cancel was acknowledged ({answer.GetProperty("status")}) but the batch ended {status}: {ended}");
            Assert.NotEqual(JsonValueKind.Null, ended.GetProperty("cancelling_at").ValueKind);
            Assert.NotEqual(JsonValueKind.Null, ended.GetProperty("cancelled_at").ValueKind);
            Assert.Equal(JsonValueKind.Null, ended.GetProperty("completed_at").ValueKind);
            Assert.True(startedAfterAck <= (maxStartedAfterAck ?? concurrency), $"{startedAfterAck} lines started after the cancel was acknowledged (concurrency {concurrency})");
        }
        else
        {
            Assert.Equal(HttpStatusCode.Conflict, cancel.StatusCode);
            Assert.Equal("batch_not_cancellable", answer.GetProperty("error").GetProperty("code").GetString());
            Assert.Equal("completed", status);
        }

        await AssertResultsAsync(ended, ids, counter.Started - startedBefore);
    }

    /// <summary>
    /// Deletes the input one step into a run of <paramref name="lines"/> (refused while the batch runs), then cancels:
    /// every custom_id still gets its line; once the batch ended the input can be deleted.
    /// </summary>
    public async Task DeleteInputMidRunThenCancelAsync(int lines, int deleteAfterStarted)
    {
        var startedBefore = counter.Started;
        // Each line takes 5 ms, so the rest of the batch (lines × 5 ms / concurrency, over a second for 2,000 lines at 8)
        // is surely still running when the delete comes; without a delay a fast machine may finish it first (then 200 is right).
        var (ids, batchId) = await StartAsync(lines, "delete", lineDelayMs: 5);
        var batch = await GetBatchAsync(batchId);
        var inputId = batch.GetProperty("input_file_id").GetString()!;
        await WaitAsync(() => counter.Started - startedBefore >= deleteAfterStarted, $"{deleteAfterStarted} lines to start");

        using (var delete = await client.DeleteAsync($"{Files}/{inputId}", Ct))
        {
            var body = await JsonAsync(delete);
            Assert.True(delete.StatusCode == HttpStatusCode.Conflict, $"deleting a running batch's input answered {(int)delete.StatusCode}: {body}");
            Assert.Equal("file_in_use", body.GetProperty("error").GetProperty("code").GetString());
        }

        using var cancel = await client.PostAsync($"{Batches}/{batchId}/cancel", null, Ct);
        var answer = await JsonAsync(cancel);
        var ended = await WaitForEndAsync(batchId);
        Assert.True(cancel.StatusCode == HttpStatusCode.OK ? ended.GetProperty("status").GetString() == "cancelled" : ended.GetProperty("status").GetString() == "completed", $"cancel answered {answer}; ended {ended}");
        await AssertResultsAsync(ended, ids, counter.Started - startedBefore);

        using var deleteAfter = await client.DeleteAsync($"{Files}/{inputId}", Ct);
        Assert.True(deleteAfter.StatusCode == HttpStatusCode.OK, $"deleting the input of an ended batch answered {(int)deleteAfter.StatusCode}");
    }

    private async Task AssertResultsAsync(JsonElement ended, List<string> ids, int started)
    {
        var counts = ended.GetProperty("request_counts");
        int Count(string name) => counts.GetProperty(name).GetInt32();
        var output = await LinesAsync(ended.GetProperty("output_file_id"));
        var errors = await LinesAsync(ended.GetProperty("error_file_id"));
        if (ended.GetProperty("in_progress_at").ValueKind == JsonValueKind.Null)
        {
            // Cancelled before it started (OpenAI does the same): no lines were read, none ran, no files.
            Assert.Equal("cancelled", ended.GetProperty("status").GetString());
            Assert.Equal(0, Count("total"));
            Assert.Empty(output);
            Assert.Empty(errors);
            Assert.Equal(0, started);
            return;
        }

        var seen = output.Concat(errors).Select(static l => l.GetProperty("custom_id").GetString()!).ToList();
        var duplicates = seen.GroupBy(static id => id).Where(static g => g.Count() > 1).Select(static g => g.Key).Take(5).ToList();
        Assert.True(duplicates.Count == 0, $"custom_ids written more than once: {string.Join(", ", duplicates)}");
        var missing = ids.Except(seen).Take(5).ToList();
        Assert.True(missing.Count == 0 && seen.Count == ids.Count, $"{ids.Count - seen.Count} custom_ids missing from the results, e.g. {string.Join(", ", missing)}; batch {ended}");

        Assert.Equal(ids.Count, Count("total"));
        Assert.Equal(0, Count("pending"));
        Assert.Equal(Count("succeeded"), Count("completed"));
        Assert.Equal(ids.Count, Count("completed") + Count("failed") + Count("expired") + Count("canceled"));
        Assert.Equal(output.Count, Count("completed"));
        Assert.Equal(errors.Count, Count("failed") + Count("canceled") + Count("expired"));
        Assert.Equal(output.Count, started); // every line that started ran to its result; none started twice
        Assert.All(errors, static line => Assert.Equal("batch_cancelled", line.GetProperty("error").GetProperty("code").GetString()));
        Assert.Equal(output.Count == 0, ended.GetProperty("output_file_id").ValueKind == JsonValueKind.Null);
        Assert.Equal(errors.Count == 0, ended.GetProperty("error_file_id").ValueKind == JsonValueKind.Null);
    }

    private async Task<(List<string> Ids, string BatchId)> StartAsync(int lines, string prefix, int lineDelayMs = 0)
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var ids = Enumerable.Range(0, lines).Select(i => $"{prefix}-{run}-{i:D5}").ToList();
        var jsonl = new StringBuilder();
        foreach (var id in ids)
        {
            jsonl.Append(new JsonObject
            {
                ["custom_id"] = id,
                ["method"] = "POST",
                ["url"] = "/v1/chat/completions",
                ["body"] = new JsonObject
                {
                    ["model"] = "local/echo",
                    ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = id }),
                    ["metadata"] = lineDelayMs > 0 ? new JsonObject { ["local_delay_ms"] = lineDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture) } : null,
                },
            }.ToJsonString()).Append('\n');
        }

        using var form = new MultipartFormDataContent();
        form.Add(new StringContent("batch"), "purpose");
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl.ToString()));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "file", "input.jsonl");
        using var upload = await client.PostAsync(Files, form, Ct);
        var uploaded = await JsonAsync(upload, HttpStatusCode.OK);

        var create = new JsonObject { ["input_file_id"] = uploaded.GetProperty("id").GetString(), ["endpoint"] = "/v1/chat/completions", ["completion_window"] = "24h" };
        using var created = await client.PostAsync(Batches, new StringContent(create.ToJsonString(), Encoding.UTF8, "application/json"), Ct);
        return (ids, (await JsonAsync(created, HttpStatusCode.OK)).GetProperty("id").GetString()!);
    }

    private async Task<JsonElement> GetBatchAsync(string id)
    {
        using var response = await client.GetAsync($"{Batches}/{id}", Ct);
        return await JsonAsync(response, HttpStatusCode.OK);
    }

    private async Task<JsonElement> WaitForEndAsync(string id)
    {
        var stop = DateTime.UtcNow + Deadline;
        while (true)
        {
            var batch = await GetBatchAsync(id);
            if (batch.GetProperty("status").GetString() is "completed" or "failed" or "expired" or "cancelled")
            {
                return batch;
            }

            Assert.True(DateTime.UtcNow < stop, $"batch {id} did not end in time; last: {batch}");
            await Task.Delay(10, Ct);
        }
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var stop = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < stop, $"timed out waiting for {what}");
            await Task.Delay(1, Ct);
        }
    }

    private async Task<List<JsonElement>> LinesAsync(JsonElement fileId)
    {
        if (fileId.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        using var response = await client.GetAsync($"{Files}/{fileId.GetString()}/content", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(text.Length > 0, $"file {fileId} is empty: a result file exists only when it has lines");
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(static line => JsonDocument.Parse(line).RootElement.Clone())];
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response, HttpStatusCode? expected = null)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        if (expected is { } status)
        {
            Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        }

        return JsonDocument.Parse(text).RootElement.Clone();
    }
}

/// <summary>
/// The batch races as tests, one set per job store: each store's test project derives this class and says how to start a
/// host with the gateway at <c>/openai</c> on that store (<see cref="RunAsync"/>).
/// </summary>
public abstract class BatchRaceTestsBase
{
    /// <summary>Lines a batch runs at once in these hosts (<c>Batches:Concurrency</c>).</summary>
    protected const int Concurrency = 8;

    /// <summary>The stages at which <see cref="A_cancel_at_any_stage_ends_cancelled_and_every_line_is_reported_once"/> cancels (fractions of the lines started).</summary>
    protected virtual double[] CancelStages => [0, 0.1, 0.5, 1, 1, 1];

    /// <summary>Starts a host on the store under test (batches at <see cref="Concurrency"/>, <paramref name="counter"/> as a plugin) and runs <paramref name="test"/> against it.</summary>
    protected abstract Task RunAsync(StartedLinesCounter counter, Func<BatchRaceScenario, Task> test);

    [Theory]
    [InlineData(50)]
    [InlineData(500)]
    public Task A_cancel_at_any_stage_ends_cancelled_and_every_line_is_reported_once(int lines) =>
        RunAsync(new StartedLinesCounter(), scenario => scenario.CancelAtEveryStageAsync(lines, CancelStages));

    [Fact]
    public Task A_cancel_midway_through_5000_lines_stops_starting_lines_at_once() =>
        RunAsync(new StartedLinesCounter(), scenario => scenario.CancelOnceAsync(5000, 1000));

    [Fact]
    public Task The_input_of_a_running_batch_cannot_be_deleted_and_every_line_is_reported() =>
        RunAsync(new StartedLinesCounter(), scenario => scenario.DeleteInputMidRunThenCancelAsync(2000, 200));
}
