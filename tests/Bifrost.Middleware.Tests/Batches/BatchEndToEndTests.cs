using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>Batches end to end over HTTP: upload → create → poll → download; result format, counts, routing, progress.</summary>
public sealed partial class BatchEndToEndTests
{
    [GeneratedRegex("^batch_req_[0-9a-f]{24}$")]
    private static partial Regex LineIdPattern();

    private static readonly string[] BatchFields =
    [
        "id", "object", "endpoint", "errors", "input_file_id", "completion_window", "status", "output_file_id", "error_file_id",
        "created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at",
        "cancelled_at", "request_counts", "metadata", "extra_fields",
    ];

    private static long? Time(JsonElement batch, string name) =>
        batch.GetProperty(name).ValueKind == JsonValueKind.Null ? null : batch.GetProperty(name).GetInt64();

    [Fact]
    public async Task A_batch_completes_with_every_custom_id_exactly_once_in_OpenAI_result_format()
    {
        await using var host = await StartAsync(o => o.Batches.Concurrency = 4);
        var ids = Enumerable.Range(1, 50).Select(i => $"req-{i:D3}").ToList();
        var failing = ids.Where((_, i) => i % 10 == 3).ToHashSet();
        var lines = ids.Select(id => BatchLines.Chat(
            id,
            metadata: failing.Contains(id) ? [("local_status", "400")] : [("local_reply", "reply to " + id)]));
        var file = await host.UploadOkAsync(BatchLines.Jsonl(lines));
        var fileId = file.GetProperty("id").GetString()!;

        var created = await host.CreateBatchAsync(fileId, metadata: new Dictionary<string, string> { ["team"] = "search" });

        var id = created.GetProperty("id").GetString()!;
        Assert.StartsWith("batch_", id);
        foreach (var field in BatchFields)
        {
            Assert.True(created.TryGetProperty(field, out _), $"the batch object lacks '{field}': {created}");
        }

        Assert.Equal("batch", created.GetProperty("object").GetString());
        Assert.Equal("validating", created.GetProperty("status").GetString());
        Assert.Equal("/v1/chat/completions", created.GetProperty("endpoint").GetString());
        Assert.Equal(fileId, created.GetProperty("input_file_id").GetString());
        Assert.Equal("24h", created.GetProperty("completion_window").GetString());
        Assert.Equal("search", created.GetProperty("metadata").GetProperty("team").GetString());
        Assert.Equal(created.GetProperty("created_at").GetInt64() + (24 * 3600), created.GetProperty("expires_at").GetInt64());
        Assert.Equal(JsonValueKind.Null, created.GetProperty("output_file_id").ValueKind);
        Assert.Equal("batch_create", created.GetProperty("extra_fields").GetProperty("request_type").GetString());

        var done = await host.WaitForEndAsync(id);

        Assert.Equal("completed", done.GetProperty("status").GetString());
        BatchLines.AssertCountsAddUp(done, 50);
        var counts = done.GetProperty("request_counts");
        Assert.Equal((45, 5, 0, 0), (counts.GetProperty("completed").GetInt32(), counts.GetProperty("failed").GetInt32(), counts.GetProperty("expired").GetInt32(), counts.GetProperty("canceled").GetInt32()));
        var phases = new[] { "created_at", "in_progress_at", "finalizing_at", "completed_at" }.Select(p => Time(done, p)).ToList();
        Assert.All(phases, p => Assert.NotNull(p));
        Assert.Equal(phases.Order(), phases);
        Assert.All(new[] { "failed_at", "expired_at", "cancelling_at", "cancelled_at" }, p => Assert.Null(Time(done, p)));
        Assert.Equal("search", done.GetProperty("metadata").GetProperty("team").GetString());

        var (output, errors) = await host.ResultsAsync(done);
        BatchLines.AssertExactlyOnce(ids, output, errors);
        Assert.Equal(failing.Order(), errors.Select(BatchLines.CustomId).Order());
        Assert.Equal(output.Count + errors.Count, output.Concat(errors).Select(l => l.GetProperty("id").GetString()).Distinct().Count());
        foreach (var line in output)
        {
            Assert.Matches(LineIdPattern(), line.GetProperty("id").GetString());
            var response = line.GetProperty("response");
            Assert.Equal(200, response.GetProperty("status_code").GetInt32());
            var body = response.GetProperty("body");
            Assert.Equal("chat.completion", body.GetProperty("object").GetString());
            Assert.Equal(body.GetProperty("id").GetString(), response.GetProperty("request_id").GetString());
            Assert.Equal("reply to " + BatchLines.CustomId(line), body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
        }

        foreach (var line in errors)
        {
            Assert.Matches(LineIdPattern(), line.GetProperty("id").GetString());
            var response = line.GetProperty("response");
            Assert.Equal(400, response.GetProperty("status_code").GetInt32());
            Assert.Contains("Scripted failure", response.GetProperty("body").GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
        }

        // The result files are ordinary batch_output files of the same owner, with their real size.
        foreach (var (fileProperty, lineCount) in new[] { ("output_file_id", 45), ("error_file_id", 5) })
        {
            var resultId = done.GetProperty(fileProperty).GetString()!;
            using var get = await host.GetAsync($"{FilesPath}/{resultId}");
            var meta = await ExpectAsync(get, HttpStatusCode.OK);
            Assert.Equal("batch_output", meta.GetProperty("purpose").GetString());
            Assert.Equal((await host.ContentAsync(resultId)).Length, meta.GetProperty("bytes").GetInt64());
            Assert.Equal(lineCount, BatchLines.Parse(await host.ContentAsync(resultId)).Count);
            using var other = await host.GetAsync($"{FilesPath}/{resultId}/content", "sk-someone-else");
            await ExpectErrorAsync(other, HttpStatusCode.NotFound);
        }

        using var list = await host.GetAsync($"{FilesPath}?purpose=batch_output");
        Assert.Equal(2, (await ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data").GetArrayLength());

        // The route without /v1 reads the same batch.
        using var unversioned = await host.GetAsync($"/openai/batches/{id}");
        var again = await ExpectAsync(unversioned, HttpStatusCode.OK);
        Assert.Equal("completed", again.GetProperty("status").GetString());
        Assert.Equal("batch_retrieve", again.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task Lines_route_by_their_own_model_and_the_batch_model_fills_in_where_a_line_has_none()
    {
        await using var host = await StartAsync(o =>
        {
            o.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] };
            o.Providers["alt"] = new ProviderOptions { Type = "local" };
        });
        string[] lines =
        [
            BatchLines.Chat("on-local", model: "local/echo"),
            BatchLines.Chat("on-alt", model: "alt/m1"),
            BatchLines.Chat("no-model", model: null),
            BatchLines.Chat("not-allowed", model: "local/not-in-the-list"),
        ];

        var created = await host.StartBatchAsync(lines, model: "alt/default-model");
        Assert.Equal("alt", created.GetProperty("extra_fields").GetProperty("provider").GetString());
        var done = await host.WaitForEndAsync(created.GetProperty("id").GetString()!);

        Assert.Equal("completed", done.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(done);
        var served = output.ToDictionary(BatchLines.CustomId, l => l.GetProperty("response").GetProperty("body"));
        Assert.Equal(("local", "echo"), (served["on-local"].GetProperty("extra_fields").GetProperty("provider").GetString(), served["on-local"].GetProperty("model").GetString()));
        Assert.Equal(("alt", "m1"), (served["on-alt"].GetProperty("extra_fields").GetProperty("provider").GetString(), served["on-alt"].GetProperty("model").GetString()));
        Assert.Equal(("alt", "default-model"), (served["no-model"].GetProperty("extra_fields").GetProperty("provider").GetString(), served["no-model"].GetProperty("model").GetString()));
        var rejected = Assert.Single(errors);
        Assert.Equal("not-allowed", BatchLines.CustomId(rejected));
        Assert.Equal(400, rejected.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("model_not_found", rejected.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("code").GetString());
        BatchLines.AssertCountsAddUp(done, 4);
    }

    [Fact]
    public async Task Without_a_batch_model_a_line_without_model_fails_alone_into_the_error_file()
    {
        await using var host = await StartAsync();
        var created = await host.StartBatchAsync([BatchLines.Chat("with", model: "local/echo"), BatchLines.Chat("without", model: null)]);
        var done = await host.WaitForEndAsync(created.GetProperty("id").GetString()!);

        Assert.Equal("completed", done.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(done);
        Assert.Equal("with", BatchLines.CustomId(Assert.Single(output)));
        var error = Assert.Single(errors);
        Assert.Equal("without", BatchLines.CustomId(error));
        Assert.Equal(400, error.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal(1, done.GetProperty("request_counts").GetProperty("failed").GetInt32());
    }

    [Fact]
    public async Task A_slow_batch_shows_in_progress_with_growing_counts_before_it_completes()
    {
        await using var host = await StartAsync(o =>
        {
            o.Batches.Concurrency = 1;
            o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(20);
        });
        const int Total = 12;
        var created = await host.StartBatchAsync(Enumerable.Range(1, Total).Select(i => BatchLines.Chat($"slow-{i}", metadata: [("local_delay_ms", "120")])));
        var id = created.GetProperty("id").GetString()!;

        var observed = new List<int>();
        var done = await host.WaitForBatchAsync(id, batch =>
        {
            var counts = batch.GetProperty("request_counts");
            if (batch.GetProperty("status").GetString() == "in_progress")
            {
                Assert.NotNull(Time(batch, "in_progress_at"));
                Assert.Equal(Total, counts.GetProperty("total").GetInt32());
                var completed = counts.GetProperty("completed").GetInt32();
                Assert.Equal(Total - completed, counts.GetProperty("pending").GetInt32());
                observed.Add(completed);
            }

            return IsTerminal(batch);
        });

        Assert.Equal("completed", done.GetProperty("status").GetString());
        BatchLines.AssertCountsAddUp(done, Total);
        Assert.Equal(observed.Order(), observed); // never goes backwards
        var partial = observed.Where(c => c is > 0 and < Total).Distinct().ToList();
        Assert.True(partial.Count >= 2, $"expected to see the count grow while in_progress; saw {string.Join(",", observed)}");
    }

    [Fact]
    public async Task Cancel_mid_way_keeps_the_partial_output_and_reports_the_rest_as_batch_cancelled()
    {
        await using var host = await StartAsync(o => o.Batches.Concurrency = 1);
        const int Total = 20;
        var ids = Enumerable.Range(1, Total).Select(i => $"c-{i:D2}").ToList();
        var created = await host.StartBatchAsync(ids.Select(id => BatchLines.Chat(id, metadata: [("local_delay_ms", "150")])));
        var id = created.GetProperty("id").GetString()!;
        await host.WaitForBatchAsync(id, b => b.GetProperty("request_counts").GetProperty("completed").GetInt32() >= 2);

        using var cancel = await host.SendAsync(HttpMethod.Post, $"{BatchesPath}/{id}/cancel");
        var cancelling = await ExpectAsync(cancel, HttpStatusCode.OK);

        Assert.Equal("cancelling", cancelling.GetProperty("status").GetString());
        Assert.NotNull(Time(cancelling, "cancelling_at"));
        Assert.Equal("batch_cancel", cancelling.GetProperty("extra_fields").GetProperty("request_type").GetString());
        var done = await host.WaitForEndAsync(id);
        Assert.Equal("cancelled", done.GetProperty("status").GetString());
        Assert.NotNull(Time(done, "cancelling_at"));
        Assert.NotNull(Time(done, "cancelled_at"));
        Assert.Null(Time(done, "completed_at"));
        BatchLines.AssertCountsAddUp(done, Total);

        var (output, errors) = await host.ResultsAsync(done);
        BatchLines.AssertExactlyOnce(ids, output, errors);
        Assert.InRange(output.Count, 2, Total - 2);
        Assert.Equal(output.Count, done.GetProperty("request_counts").GetProperty("completed").GetInt32());
        Assert.Equal(errors.Count, done.GetProperty("request_counts").GetProperty("canceled").GetInt32());
        Assert.All(errors, line =>
        {
            Assert.Equal(JsonValueKind.Null, line.GetProperty("response").ValueKind);
            Assert.Equal("batch_cancelled", line.GetProperty("error").GetProperty("code").GetString());
        });

        // Input order is kept: what ran is a prefix of the input, what was cancelled the rest.
        Assert.Equal(ids.Take(output.Count), output.Select(BatchLines.CustomId).Order());

        // Cancelling a cancelled batch again answers it as it is.
        using var again = await host.SendAsync(HttpMethod.Post, $"{BatchesPath}/{id}/cancel");
        Assert.Equal("cancelled", (await ExpectAsync(again, HttpStatusCode.OK)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_batch_without_failed_lines_has_no_error_file_and_one_without_successes_no_output_file_on_disk_either()
    {
        await using var host = await StartAsync();
        var ok = await host.WaitForEndAsync((await host.StartBatchAsync([BatchLines.Chat("a"), BatchLines.Chat("b")])).GetProperty("id").GetString()!);
        var failing = await host.WaitForEndAsync((await host.StartBatchAsync([BatchLines.Chat("c", metadata: [("local_status", "400")])])).GetProperty("id").GetString()!);

        Assert.Equal("completed", ok.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, ok.GetProperty("error_file_id").ValueKind);
        Assert.Equal(JsonValueKind.String, ok.GetProperty("output_file_id").ValueKind);
        Assert.Equal("completed", failing.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, failing.GetProperty("output_file_id").ValueKind);
        Assert.Equal(JsonValueKind.String, failing.GetProperty("error_file_id").ValueKind);

        // Nothing empty is left in the store's directory: no zero-byte errors/output data files.
        var names = host.StoredFileNames();
        Assert.DoesNotContain(names, name => new FileInfo(Path.Combine(host.Directory, name)).Length == 0);
        Assert.DoesNotContain(names, name => name.Contains(ok.GetProperty("id").GetString()!["batch_".Length..] + "-errors", StringComparison.Ordinal));
        Assert.DoesNotContain(names, name => name.Contains(failing.GetProperty("id").GetString()!["batch_".Length..] + "-output", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cancel_of_an_ended_batch_is_a_409()
    {
        await using var host = await StartAsync();
        var created = await host.StartBatchAsync([BatchLines.Chat("only")]);
        var id = created.GetProperty("id").GetString()!;
        Assert.Equal("completed", (await host.WaitForEndAsync(id)).GetProperty("status").GetString());

        using var cancel = await host.SendAsync(HttpMethod.Post, $"{BatchesPath}/{id}/cancel");

        var error = await ExpectErrorAsync(cancel, HttpStatusCode.Conflict);
        Assert.Equal("batch_not_cancellable", error.GetProperty("code").GetString());
        Assert.Equal("completed", (await host.GetBatchAsync(id)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Cancel_of_a_batch_that_has_not_started_ends_it_at_once_and_it_never_runs()
    {
        // One worker kept busy by a slow batch, so the second batch is still waiting when it is cancelled.
        await using var host = await StartAsync(o =>
        {
            o.Jobs.Workers = 1;
            o.Batches.Concurrency = 1;
        });
        var blocker = await host.StartBatchAsync([BatchLines.Chat("slow", metadata: [("local_delay_ms", "1000")])]);
        var waiting = await host.StartBatchAsync([BatchLines.Chat("never-1"), BatchLines.Chat("never-2")]);
        var id = waiting.GetProperty("id").GetString()!;

        using var cancel = await host.SendAsync(HttpMethod.Post, $"{BatchesPath}/{id}/cancel");
        var cancelled = await ExpectAsync(cancel, HttpStatusCode.OK);

        Assert.Equal("cancelled", cancelled.GetProperty("status").GetString());
        Assert.NotNull(Time(cancelled, "cancelled_at"));
        Assert.Null(Time(cancelled, "in_progress_at"));
        Assert.Equal(0, cancelled.GetProperty("request_counts").GetProperty("pending").GetInt32());
        Assert.Equal("completed", (await host.WaitForEndAsync(blocker.GetProperty("id").GetString()!)).GetProperty("status").GetString());

        // The worker is free now; the cancelled batch stays as it was and wrote nothing.
        var after = await host.GetBatchAsync(id);
        Assert.Equal("cancelled", after.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, after.GetProperty("output_file_id").ValueKind);
        Assert.Equal(JsonValueKind.Null, after.GetProperty("error_file_id").ValueKind);
        Assert.DoesNotContain(host.StoredFileNames(), name => name.Contains(id["batch_".Length..], StringComparison.Ordinal));
    }
}
