using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Fuzz;

/// <summary>
/// The batch path of the fuzz suite: generated bodies run as batch lines (JSONL upload, batch create, the line run) must
/// get the same answer as the synchronous route; generated line envelopes (custom_id, method, url, body) must never get
/// a 5xx from the upload, the batch create or the run; every custom_id ends exactly once in the output or error file.
/// </summary>
public sealed class BatchFuzzTests
{
    private const int CiBodyIterations = 60;
    private const int CiLineIterations = 80;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Routes => new() { "chat/completions", "completions", "embeddings", "responses" };

    /// <summary>A generated body as a batch line gets the answer the synchronous route gives it (status class and error code).</summary>
    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Generated_bodies_as_batch_lines_get_the_same_answer_as_sync(string route)
    {
        await using var host = await StartAsync();
        var cases = FuzzRunner.Cases(FuzzTargets.Of(route, FuzzPath.SyncAndAsync), FuzzSettings.Iterations(CiBodyIterations));
        var violations = new List<(FuzzCase Case, FuzzViolation Violation)>();
        var lines = new List<BatchCase>();
        foreach (var c in cases)
        {
            var found = new List<FuzzViolation>();
            var sync = await SyncAsync(host, c.Target.Url, c.Body.Text, found);
            violations.AddRange(found.Select(v => (c, v)));
            lines.Add(new BatchCase(c, $"c{c.Index}", Line($"c{c.Index}", "/v1/" + route, c.Body.Text), sync));
        }

        violations.AddRange(await RunBatchesAsync(host, "/v1/" + route, lines));
        AssertNone($"batch lines of {route}", violations);
    }

    /// <summary>Generated line envelopes (custom_id, method, url, body, extension fields) never get a 5xx anywhere.</summary>
    [Fact]
    public async Task Generated_batch_line_envelopes_never_get_a_5xx()
    {
        await using var host = await StartAsync();
        var target = new FuzzTarget("batches", FuzzPath.SyncAndAsync,
            """{"custom_id":"line","method":"POST","url":"/v1/chat/completions","body":{"model":"local/echo","messages":[{"role":"user","content":"hi"}],"x_ext":{"k":"v"}},"x_line":1}""");
        var cases = FuzzRunner.Cases([target], FuzzSettings.Iterations(CiLineIterations));
        // Unique custom_ids (unless the mutation hit them), so that the lines can share one batch.
        var lines = cases.Select(c =>
        {
            var line = c.Body.Text.Replace("\"custom_id\":\"line", $"\"custom_id\":\"line{c.Index}-", StringComparison.Ordinal);
            return new BatchCase(c, CustomId(line), line, null);
        }).ToList();
        var violations = await RunBatchesAsync(host, "/v1/chat/completions", lines);
        AssertNone("batch line envelopes", violations);
    }

    /// <summary>Finding 12: Bifrost's inline batch (requests array + model, no input_file_id) and GET batches/{id}/results.</summary>
    [Fact]
    public async Task An_inline_batch_runs_and_its_results_are_served()
    {
        await using var host = await StartAsync();
        const string body = """
            {"model":"local/echo","endpoint":"/v1/chat/completions","completion_window":"24h",
             "requests":[{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"local/echo","messages":[{"role":"user","content":"one"}]}},
                         {"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"local/echo","messages":[{"role":"user","content":"two"}]}}]}
            """;
        using var create = await host.CreateBatchRawAsync(body);
        var text = await create.Content.ReadAsStringAsync(Ct);
        Assert.True(create.StatusCode == HttpStatusCode.OK, $"an inline batch (Bifrost's shape) answered {(int)create.StatusCode}: {text}");
        var id = JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
        var batch = await host.WaitForEndAsync(id);
        Assert.Equal("completed", batch.GetProperty("status").GetString());
        using var results = await host.GetAsync($"{FileBatchHost.BatchesPath}/{id}/results");
        var resultText = await results.Content.ReadAsStringAsync(Ct);
        Assert.True(results.StatusCode == HttpStatusCode.OK, $"GET batches/{id}/results answered {(int)results.StatusCode}: {resultText}");
        Assert.Contains("\"a\"", resultText, StringComparison.Ordinal);
        Assert.Contains("\"b\"", resultText, StringComparison.Ordinal);
    }

    internal static Task<FileBatchHost> StartAsync() => FileBatchHost.StartAsync(options =>
    {
        options.Jobs.Workers = 8;
        options.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
        options.Batches.ProgressInterval = TimeSpan.FromMilliseconds(20);
    });

    /// <summary>One batch line: its case, custom_id, JSONL text and (for body mutations) the synchronous answer to compare with.</summary>
    private sealed record BatchCase(FuzzCase Case, string? CustomId, string Line, FuzzAnswer? Sync);

    private static string Line(string customId, string url, string body) =>
        $"{{\"custom_id\":\"{customId}\",\"method\":\"POST\",\"url\":\"{url}\",\"body\":{body}}}";

    private static string? CustomId(string line)
    {
        try
        {
            using var json = JsonDocument.Parse(line);
            return json.RootElement.TryGetProperty("custom_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private static async Task<FuzzAnswer?> SyncAsync(FileBatchHost host, string url, string body, List<FuzzViolation> violations)
    {
        try
        {
            using var response = await host.PostJsonAsync(url, body);
            return FuzzOracle.Checked("sync", (int)response.StatusCode, await response.Content.ReadAsStringAsync(Ct), violations);
        }
        catch (Exception ex) when (!Ct.IsCancellationRequested)
        {
            violations.Add(new FuzzViolation("sync", "exception", $"{ex.GetType().Name}: {ex.Message}"));
            return null;
        }
    }

    /// <summary>
    /// Uploads the lines as one file and runs one batch; a refused upload or create is split in halves until each refusal
    /// is pinned to one line (which is then checked on its own). Returns every broken property.
    /// </summary>
    private static async Task<List<(FuzzCase, FuzzViolation)>> RunBatchesAsync(FileBatchHost host, string endpoint, List<BatchCase> lines)
    {
        var violations = new ConcurrentBag<(FuzzCase, FuzzViolation)>();
        var groups = new List<List<BatchCase>> { lines };
        var running = new List<Task>();
        while (groups.Count > 0)
        {
            var group = groups[^1];
            groups.RemoveAt(groups.Count - 1);
            var (refused, batchId) = await SubmitAsync(host, endpoint, group, violations);
            if (batchId is not null)
            {
                running.Add(CheckRunAsync(host, batchId, group, violations));
            }
            else if (refused && group.Count > 1)
            {
                groups.Add(group[..(group.Count / 2)]);
                groups.Add(group[(group.Count / 2)..]);
            }
            else if (refused && group[0].Sync is { IsSuccess: true } sync)
            {
                violations.Add((group[0].Case, new FuzzViolation("batch upload/create", "refuses a body the sync route accepts", $"sync answered {sync}; line: {FuzzOracle.Excerpt(group[0].Line)}")));
            }
        }

        await Task.WhenAll(running);
        return [.. violations];
    }

    /// <summary>Uploads and creates; (true, null) when refused with a 4xx, (false, id) when the batch runs.</summary>
    private static async Task<(bool Refused, string? BatchId)> SubmitAsync(FileBatchHost host, string endpoint, List<BatchCase> group, ConcurrentBag<(FuzzCase, FuzzViolation)> violations)
    {
        var jsonl = Encoding.UTF8.GetBytes(string.Join('\n', group.Select(l => l.Line)) + "\n");
        var one = group.Count == 1 ? group[0].Case : null;
        var local = new List<FuzzViolation>();
        FuzzAnswer? upload;
        using (var response = await host.UploadAsync(jsonl))
        {
            upload = FuzzOracle.Checked("batch file upload", (int)response.StatusCode, await response.Content.ReadAsStringAsync(Ct), local);
        }

        if (upload is { IsSuccess: true })
        {
            var fileId = JsonDocument.Parse(upload.Text).RootElement.GetProperty("id").GetString()!;
            var create = $$"""{"input_file_id":"{{fileId}}","endpoint":"{{endpoint}}","completion_window":"24h"}""";
            using var response = await host.CreateBatchRawAsync(create);
            var answer = FuzzOracle.Checked("batch create", (int)response.StatusCode, await response.Content.ReadAsStringAsync(Ct), local);
            if (answer is { IsSuccess: true })
            {
                Report(local);
                return (false, JsonDocument.Parse(answer.Text).RootElement.GetProperty("id").GetString());
            }
        }

        Report(local);
        return (true, null);

        void Report(List<FuzzViolation> found)
        {
            // A 5xx of a many-line group is reported once it is pinned to one line (the split goes on).
            foreach (var v in found.Where(_ => one is not null))
            {
                violations.Add((one!, v));
            }
        }
    }

    /// <summary>Waits for the batch to end, then checks each line's outcome: exactly once, never 5xx, the sync answer for body mutations.</summary>
    private static async Task CheckRunAsync(FileBatchHost host, string batchId, List<BatchCase> group, ConcurrentBag<(FuzzCase, FuzzViolation)> violations)
    {
        var batch = await host.WaitForEndAsync(batchId);
        var (output, errors) = await host.ResultsAsync(batch);
        var outcomes = new Dictionary<string, List<(bool Ok, int Status, string? Code, string Text)>>(StringComparer.Ordinal);
        foreach (var (line, ok) in output.Select(l => (l, true)).Concat(errors.Select(l => (l, false))))
        {
            var id = line.TryGetProperty("custom_id", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : string.Empty;
            var status = 0;
            string? code = null;
            if (line.TryGetProperty("response", out var response) && response.ValueKind == JsonValueKind.Object)
            {
                status = response.TryGetProperty("status_code", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt32() : 0;
                if (response.TryGetProperty("body", out var body) && body.ValueKind == JsonValueKind.Object && body.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object)
                {
                    code = e.TryGetProperty("code", out var cc) && cc.ValueKind == JsonValueKind.String ? cc.GetString() : null;
                }
            }
            else if (line.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
            {
                code = error.TryGetProperty("code", out var cc) && cc.ValueKind == JsonValueKind.String ? cc.GetString() : null;
            }

            if (!outcomes.TryGetValue(id, out var list))
            {
                outcomes[id] = list = [];
            }

            list.Add((ok, status, code, line.GetRawText()));
        }

        foreach (var item in group)
        {
            if (item.CustomId is not { } key)
            {
                continue; // not a readable custom_id: nothing to look up (a 5xx of its line would still show below for others)
            }

            if (!outcomes.TryGetValue(key, out var found) || found.Count != 1)
            {
                violations.Add((item.Case, new FuzzViolation("batch run", "custom_id not exactly once in the output and error files",
                    $"custom_id '{key}' appears {found?.Count ?? 0} times; batch {batch.GetProperty("status").GetString()} {batch.GetProperty("request_counts")}")));
                continue;
            }

            var (ok, status, code, text) = found[0];
            if (status >= 500)
            {
                violations.Add((item.Case, new FuzzViolation("batch line", $"{status} (server error)", FuzzOracle.Excerpt(text))));
            }

            if (item.Sync is { } sync)
            {
                var line = ok ? new FuzzAnswer(status == 0 ? 200 : status, null, text) : new FuzzAnswer(status == 0 ? 400 : status, code, text);
                if (!sync.SameAs(line))
                {
                    violations.Add((item.Case, new FuzzViolation("batch line", sync.Status / 100 == line.Status / 100 ? "same status class as sync but another error code" : "another status class than sync",
                        $"sync answered {sync}, the batch line {(ok ? "succeeded" : "failed")} with {line}\n    sync body: {sync.Excerpt}\n    line: {FuzzOracle.Excerpt(text)}")));
                }
            }
        }
    }

    private static void AssertNone(string name, IEnumerable<(FuzzCase Case, FuzzViolation Violation)> violations)
    {
        var list = violations.ToList();
        if (list.Count == 0)
        {
            return;
        }

        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"{name}: {list.Select(x => x.Case.Index).Distinct().Count()} generated cases broke a property (seed {FuzzSettings.Seed}).");
        foreach (var group in list.GroupBy(x => (x.Violation.Key, x.Case.Body.Kind)).OrderByDescending(g => g.Count()))
        {
            var (c, v) = group.First();
            report.AppendLine(CultureInfo.InvariantCulture, $"== {v.Key}, from mutations of kind {c.Body.Kind} — {group.Count()} cases");
            report.AppendLine(CultureInfo.InvariantCulture, $"   e.g. case {c.Index}: {c.Body} ({FuzzSettings.Replay(c.Index)})");
            report.AppendLine("   " + v.Detail.Replace("\n", "\n   ", StringComparison.Ordinal));
            report.AppendLine("   body: " + FuzzOracle.Excerpt(c.Body.Text));
        }

        Assert.Fail(report.ToString());
    }
}

/// <summary>
/// The upload path of the fuzz suite: generated multipart bodies (truncated, garbled, duplicate or oversized fields and
/// headers, bad boundaries, bad JSONL) must never get a 5xx and must get the Bifrost error shape when refused.
/// </summary>
public sealed class MultipartFuzzTests
{
    private const int CiIterations = 150;
    private const string Boundary = "fuzzboundary";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] Mutations =
    [
        "truncate", "no-closing-boundary", "garble-header", "long-filename", "long-header", "duplicate-purpose-conflict",
        "duplicate-purpose-same", "bad-purpose", "invalid-utf8-purpose", "long-purpose", "no-boundary-param", "wrong-boundary",
        "not-multipart", "no-file", "empty-file", "surrogate-jsonl", "extra-part", "many-fields", "lf-only", "two-files",
        "unquoted-name", "header-without-colon", "file-first",
    ];

    [Fact]
    public async Task Generated_multipart_uploads_never_get_a_5xx()
    {
        await using var host = await BatchFuzzTests.StartAsync();
        var failures = new List<string>();
        var iterations = FuzzSettings.Iterations(CiIterations);
        for (var i = 0; i < iterations; i++)
        {
            if (FuzzSettings.OnlyCase is { } only && only != i)
            {
                continue;
            }

            var (kind, variant) = CsCheck.Gen.Select(CsCheck.Gen.Int[0, Mutations.Length - 1], CsCheck.Gen.Int[0, 1_000_000])
                .Generate(FuzzSettings.Pcg(i), null!, out _);
            var (contentType, body) = Build(Mutations[(kind + i) % Mutations.Length], variant);
            var violations = new List<FuzzViolation>();
            try
            {
                using var content = new ByteArrayContent(body);
                content.Headers.TryAddWithoutValidation("Content-Type", contentType);
                using var response = await host.SendAsync(HttpMethod.Post, FileBatchHost.FilesPath, content);
                FuzzOracle.Checked("upload", (int)response.StatusCode, await response.Content.ReadAsStringAsync(Ct), violations);
            }
            catch (Exception ex) when (!Ct.IsCancellationRequested)
            {
                violations.Add(new FuzzViolation("upload", "exception", $"{ex.GetType().Name}: {ex.Message}"));
            }

            failures.AddRange(violations.Select(v =>
                $"case {i} ({Mutations[(kind + i) % Mutations.Length]}, {FuzzSettings.Replay(i)}): {v.Key}: {v.Detail}\n   Content-Type: {contentType}\n   body: {FuzzOracle.Excerpt(Encoding.UTF8.GetString(body))}"));
        }

        Assert.True(failures.Count == 0, $"{failures.Count} generated uploads broke a property (seed {FuzzSettings.Seed}):\n" + string.Join("\n", failures.Take(12)));
    }

    /// <summary>Finding 3 and 5 as fixed cases: each must be a 400 in the Bifrost shape naming the problem (not a 500, not a 413 quoting the file limit).</summary>
    [Theory]
    [InlineData("no-closing-boundary")]
    [InlineData("truncate")]
    [InlineData("duplicate-purpose-conflict")]
    [InlineData("long-filename")]
    [InlineData("long-header")]
    [InlineData("long-purpose")]
    public async Task Broken_uploads_are_a_400(string mutation)
    {
        await using var host = await BatchFuzzTests.StartAsync();
        var (contentType, body) = Build(mutation, variant: 8, big: true);
        using var content = new ByteArrayContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        using var response = await host.SendAsync(HttpMethod.Post, FileBatchHost.FilesPath, content);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"upload '{mutation}' ({body.Length} bytes) answered {(int)response.StatusCode}, expected 400: {FuzzOracle.Excerpt(text)}");
        Assert.True(FuzzOracle.ErrorShapeProblem(400, text, out _) is null, text);
    }

    /// <summary>A multipart body built from a valid upload with one mutation; <paramref name="big"/> uses the issue's sizes (1 MB header).</summary>
    private static (string ContentType, byte[] Body) Build(string mutation, int variant, bool big = false)
    {
        const string jsonl = "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"local/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}\n";
        var contentType = $"multipart/form-data; boundary={Boundary}";
        var longSize = big ? 1 << 20 : 64 * 1024 + (variant % 1024);
        var purpose = "batch";
        var file = jsonl;
        var filename = "input.jsonl";
        var extraHeader = string.Empty;
        var parts = new List<string>();
        string Field(string name, string value) => $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n";
        string File(string content) => $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n{extraHeader}Content-Type: application/octet-stream\r\n\r\n{content}\r\n";
        var closing = $"--{Boundary}--\r\n";
        switch (mutation)
        {
            case "long-filename":
                filename = new string('f', longSize) + ".jsonl";
                break;
            case "long-header":
                extraHeader = $"X-Fuzz: {new string('h', longSize)}\r\n";
                break;
            case "bad-purpose":
                purpose = new[] { "", "BATCH", "fine_tune", "batch ", "\u00e9", "batch\u0000" }[variant % 6];
                break;
            case "long-purpose":
                purpose = new string('p', big ? 8 << 20 : longSize);
                break;
            case "surrogate-jsonl":
                file = jsonl.Replace("\"a\"", variant % 2 == 0 ? "\"a\\uD800\"" : "\"a\"", StringComparison.Ordinal)
                    .Replace("\"POST\"", variant % 3 == 0 ? "\"PO\\uDC00ST\"" : "\"POST\"", StringComparison.Ordinal)
                    .Replace("\"model\"", variant % 5 == 0 ? "\"mo\\uDFFFdel\"" : "\"model\"", StringComparison.Ordinal)
                    .Replace("local/echo", variant % 2 == 1 ? "local/echo\\uD800" : "local/echo", StringComparison.Ordinal);
                break;
            case "empty-file":
                file = string.Empty;
                break;
        }

        switch (mutation)
        {
            case "duplicate-purpose-conflict":
                // Conflicting purposes must be refused; a host that lets one win skips the batch validation of this file.
                parts.Add(Field("purpose", variant % 2 == 0 ? "batch" : "user_data"));
                parts.Add(Field("purpose", variant % 2 == 0 ? "user_data" : "batch"));
                parts.Add(File("not jsonl at all\n"));
                break;
            case "duplicate-purpose-same":
                parts.Add(Field("purpose", purpose));
                parts.Add(Field("purpose", purpose));
                parts.Add(File(file));
                break;
            case "no-file":
                parts.Add(Field("purpose", purpose));
                break;
            case "extra-part":
                parts.Add(Field("purpose", purpose));
                parts.Add(Field("x_fuzz", new string('x', variant % 5000)));
                parts.Add(File(file));
                break;
            case "many-fields":
                for (var f = 0; f < 500 + (variant % 2000); f++)
                {
                    parts.Add(Field("f" + f.ToString(CultureInfo.InvariantCulture), "v"));
                }

                parts.Add(Field("purpose", purpose));
                parts.Add(File(file));
                break;
            case "two-files":
                parts.Add(Field("purpose", purpose));
                parts.Add(File(file));
                parts.Add(File(file));
                break;
            case "file-first":
                parts.Add(File(file));
                parts.Add(Field("purpose", purpose));
                break;
            default:
                parts.Add(Field("purpose", purpose));
                parts.Add(File(file));
                break;
        }

        var text = string.Concat(parts) + closing;
        switch (mutation)
        {
            case "truncate":
                text = text[..(variant % Math.Max(1, text.Length - closing.Length))];
                break;
            case "no-closing-boundary":
                text = text[..^closing.Length];
                break;
            case "garble-header":
            {
                var garbles = new[] { "Content-Disposition: form-data; name=\"purpose", "Content-Disposition: ;;;", "Content-Disposition: form-data; name=\"\"", "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%FF%FE", "Content-Disposition" };
                text = text.Replace("Content-Disposition: form-data; name=\"purpose\"", garbles[variant % garbles.Length], StringComparison.Ordinal);
                break;
            }

            case "no-boundary-param":
                contentType = "multipart/form-data";
                break;
            case "wrong-boundary":
                contentType = "multipart/form-data; boundary=other";
                break;
            case "not-multipart":
                contentType = new[] { "application/json", "text/plain", "multipart/mixed; boundary=" + Boundary, "application/x-www-form-urlencoded" }[variant % 4];
                break;
            case "lf-only":
                text = text.Replace("\r\n", "\n", StringComparison.Ordinal);
                break;
            case "unquoted-name":
                text = text.Replace("name=\"purpose\"", "name=purpose", StringComparison.Ordinal);
                break;
            case "header-without-colon":
                text = text.Replace("Content-Type: application/octet-stream", "Content-Type application/octet-stream", StringComparison.Ordinal);
                break;
        }

        var bytes = Encoding.UTF8.GetBytes(text);
        if (mutation == "invalid-utf8-purpose")
        {
            var marker = Encoding.UTF8.GetBytes("\r\n\r\nbatch\r\n");
            var at = bytes.AsSpan().IndexOf(marker);
            if (at >= 0)
            {
                bytes[at + 4] = 0xFF;
                bytes[at + 5] = 0xC0;
            }
        }

        return (contentType, bytes);
    }
}
