using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Batches;

/// <summary>Batch creation checks (400/404), listing (newest first, paging), owners, and a batch that fails validation.</summary>
public sealed class BatchRequestTests
{
    private static string Body(string? inputFileId, string? endpoint = "/v1/chat/completions", string? window = "24h", JsonObject? metadata = null, string? model = null)
    {
        var body = new JsonObject();
        if (inputFileId is not null)
        {
            body["input_file_id"] = inputFileId;
        }

        if (endpoint is not null)
        {
            body["endpoint"] = endpoint;
        }

        if (window is not null)
        {
            body["completion_window"] = window;
        }

        if (metadata is not null)
        {
            body["metadata"] = metadata;
        }

        if (model is not null)
        {
            body["model"] = model;
        }

        return body.ToJsonString();
    }

    private static JsonObject Pairs(int count)
    {
        var metadata = new JsonObject();
        for (var i = 0; i < count; i++)
        {
            metadata[$"k{i}"] = $"v{i}";
        }

        return metadata;
    }

    [Fact]
    public async Task Bad_create_bodies_are_400s_naming_the_parameter_and_create_nothing()
    {
        await using var host = await StartAsync(o => o.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] });
        var batchFile = (await host.UploadOkAsync(BatchLines.Jsonl([BatchLines.Chat("a")]))).GetProperty("id").GetString()!;
        var userFile = (await host.UploadOkAsync(Encoding.UTF8.GetBytes("notes"), "user_data")).GetProperty("id").GetString()!;

        (string Body, string? Param)[] cases =
        [
            (Body(null), "input_file_id"),
            (Body(batchFile, endpoint: null), "endpoint"),
            (Body(batchFile, endpoint: "/v1/fine_tuning/jobs"), "endpoint"),
            (Body(batchFile, endpoint: "/v1/audio/speech"), "endpoint"), // not a batchable endpoint
            (Body(batchFile, window: "1h"), "completion_window"),
            (Body(batchFile, window: null), "completion_window"),
            (Body(batchFile, metadata: Pairs(17)), "metadata"),
            (Body(batchFile, metadata: new JsonObject { [new string('k', 65)] = "v" }), "metadata"),
            (Body(userFile), "input_file_id"),
            (Body(batchFile, model: "nope/x"), "model"),
            (Body(batchFile, model: "local/not-configured"), "model"),
            ("""{"input_file_id": 42}""", null),
            ("not json", null),
        ];

        foreach (var (body, param) in cases)
        {
            using var response = await host.CreateBatchRawAsync(body);
            var error = await ExpectErrorAsync(response, HttpStatusCode.BadRequest);
            if (param is not null)
            {
                Assert.True(param == error.GetProperty("param").GetString(), $"{body} → {error}");
            }
        }

        using var list = await host.GetAsync(BatchesPath);
        Assert.Equal(0, (await ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data").GetArrayLength());

        // The limits themselves are fine.
        await host.CreateBatchAsync(batchFile, metadata: Pairs(16).ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()));
    }

    [Fact]
    public async Task Unknown_and_other_owners_batches_and_files_are_404s()
    {
        await using var host = await StartAsync();
        var created = await host.StartBatchAsync([BatchLines.Chat("a")], auth: "sk-alice");
        var id = created.GetProperty("id").GetString()!;
        var fileId = created.GetProperty("input_file_id").GetString()!;

        foreach (var (batchId, auth) in new[] { ("batch_doesnotexist", "sk-alice"), (id, "sk-bob"), (id, null) })
        {
            using var get = await host.GetAsync($"{BatchesPath}/{batchId}", auth);
            Assert.Equal("batch_not_found", (await ExpectErrorAsync(get, HttpStatusCode.NotFound)).GetProperty("code").GetString());
            using var cancel = await host.SendAsync(HttpMethod.Post, $"{BatchesPath}/{batchId}/cancel", auth: auth);
            await ExpectErrorAsync(cancel, HttpStatusCode.NotFound);
        }

        // Bob cannot start a batch on Alice's file, nor on a file that does not exist.
        using var foreign = await host.CreateBatchRawAsync(Body(fileId), "sk-bob");
        Assert.Equal("input_file_id", (await ExpectErrorAsync(foreign, HttpStatusCode.NotFound)).GetProperty("param").GetString());
        using var missing = await host.CreateBatchRawAsync(Body("file-nothere"), "sk-alice");
        await ExpectErrorAsync(missing, HttpStatusCode.NotFound);

        Assert.Equal("completed", (await host.WaitForEndAsync(id, "sk-alice")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task List_is_newest_first_with_limit_after_and_has_more_per_owner()
    {
        await using var host = await StartAsync();
        var file = (await host.UploadOkAsync(BatchLines.Jsonl([BatchLines.Chat("a")]), auth: "sk-alice")).GetProperty("id").GetString()!;
        var created = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            created.Add((await host.CreateBatchAsync(file, auth: "sk-alice")).GetProperty("id").GetString()!);
        }

        var bobs = await host.StartBatchAsync([BatchLines.Chat("b")], auth: "sk-bob");

        async Task<(string[] Ids, bool HasMore, string? First, string? Last)> ListAsync(string path, string auth)
        {
            using var response = await host.GetAsync(path, auth);
            var list = await ExpectAsync(response, HttpStatusCode.OK);
            Assert.Equal("list", list.GetProperty("object").GetString());
            string? Id(string name) => list.GetProperty(name).ValueKind == JsonValueKind.Null ? null : list.GetProperty(name).GetString();
            var data = list.GetProperty("data").EnumerateArray().ToList();
            Assert.All(data, b => Assert.Equal("batch", b.GetProperty("object").GetString()));
            return ([.. data.Select(b => b.GetProperty("id").GetString()!)], list.GetProperty("has_more").GetBoolean(), Id("first_id"), Id("last_id"));
        }

        var all = await ListAsync(BatchesPath, "sk-alice");
        Assert.Equal(Enumerable.Reverse(created), all.Ids);
        Assert.False(all.HasMore);

        var page1 = await ListAsync($"{BatchesPath}?limit=2", "sk-alice");
        Assert.Equal(new[] { created[2], created[1] }, page1.Ids);
        Assert.Equal((true, created[2], created[1]), (page1.HasMore, page1.First, page1.Last));
        var page2 = await ListAsync($"/openai/batches?limit=2&after={page1.Last}", "sk-alice");
        Assert.Equal(new[] { created[0] }, page2.Ids);
        Assert.Equal((false, created[0], created[0]), (page2.HasMore, page2.First, page2.Last));

        Assert.Equal(new[] { bobs.GetProperty("id").GetString() }, (await ListAsync(BatchesPath, "sk-bob")).Ids);
        var nobody = await ListAsync(BatchesPath, "sk-carol");
        Assert.Equal((0, false, null, null), (nobody.Ids.Length, nobody.HasMore, nobody.First, nobody.Last));

        using var tooMany = await host.GetAsync($"{BatchesPath}?limit=101", "sk-alice");
        Assert.Equal("limit", (await ExpectErrorAsync(tooMany, HttpStatusCode.BadRequest)).GetProperty("param").GetString());

        foreach (var id in created)
        {
            await host.WaitForEndAsync(id, "sk-alice");
        }
    }

    [Fact]
    public async Task An_input_file_whose_lines_do_not_call_the_batch_endpoint_ends_the_batch_failed_with_line_errors()
    {
        await using var host = await StartAsync();

        // Upload validation would refuse this file, so it is put in the store directly (as an older version or
        // another store could have), owned by the anonymous caller: the batch's own validating phase must catch it.
        var store = host.Services.GetRequiredService<IFileStore>();
        var content = BatchLines.Jsonl(
        [
            BatchLines.Chat("ok"),
            BatchLines.Chat("embed", url: "/v1/unknown"),
            """{"custom_id":"broken",""",
        ]);
        using (var stream = new MemoryStream(content))
        {
            await store.SaveAsync(new NewFile { Id = "file-prestored", Filename = "in.jsonl", Purpose = "batch", Owner = "anonymous" }, stream, long.MaxValue, Ct);
        }

        var created = await host.CreateBatchAsync("file-prestored");
        var done = await host.WaitForEndAsync(created.GetProperty("id").GetString()!);

        Assert.Equal("failed", done.GetProperty("status").GetString());
        Assert.NotEqual(JsonValueKind.Null, done.GetProperty("failed_at").ValueKind);
        Assert.Equal(JsonValueKind.Null, done.GetProperty("in_progress_at").ValueKind);
        Assert.Equal(JsonValueKind.Null, done.GetProperty("output_file_id").ValueKind);
        Assert.Equal(JsonValueKind.Null, done.GetProperty("error_file_id").ValueKind);
        var errors = done.GetProperty("errors");
        Assert.Equal("list", errors.GetProperty("object").GetString());
        var data = errors.GetProperty("data").EnumerateArray().ToList();
        var byLine = data.Where(e => e.TryGetProperty("line", out var l) && l.ValueKind == JsonValueKind.Number).ToDictionary(e => e.GetProperty("line").GetInt32());
        Assert.Equal([2, 3], byLine.Keys.Order());
        Assert.Contains("url", byLine[2].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("JSON", byLine[3].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.All(data, e => Assert.False(string.IsNullOrEmpty(e.GetProperty("code").GetString())));

        // Nothing ran: no result files were created.
        using var outputs = await host.GetAsync($"{FilesPath}?purpose=batch_output");
        Assert.Equal(0, (await ExpectAsync(outputs, HttpStatusCode.OK)).GetProperty("data").GetArrayLength());
    }

    [Fact]
    public async Task A_batch_whose_input_file_was_deleted_before_it_ran_ends_failed()
    {
        // One worker kept busy by a slow batch, so the second batch is still pending when its file is deleted.
        await using var host = await StartAsync(o =>
        {
            o.Jobs.Workers = 1;
            o.Batches.Concurrency = 1;
        });
        var blocker = await host.StartBatchAsync([BatchLines.Chat("slow", metadata: [("local_delay_ms", "1500")])]);
        var second = await host.StartBatchAsync([BatchLines.Chat("x")]);
        Assert.Equal("validating", second.GetProperty("status").GetString());
        var inputId = second.GetProperty("input_file_id").GetString()!;

        // Over the API the input of a batch that has not ended cannot be deleted ...
        using var delete = await host.SendAsync(HttpMethod.Delete, $"{FilesPath}/{inputId}");
        Assert.Equal("file_in_use", (await ExpectErrorAsync(delete, HttpStatusCode.Conflict)).GetProperty("code").GetString());

        // ... but a store can still lose it (e.g. deleted behind the gateway's back): the batch then fails validation.
        Assert.True(await host.Services.GetRequiredService<IFileStore>().DeleteAsync(inputId, Ct));

        var done = await host.WaitForEndAsync(second.GetProperty("id").GetString()!);

        Assert.Equal("failed", done.GetProperty("status").GetString());
        Assert.Contains("does not exist", done.GetProperty("errors").GetProperty("data")[0].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("completed", (await host.WaitForEndAsync(blocker.GetProperty("id").GetString()!)).GetProperty("status").GetString());
    }
}
