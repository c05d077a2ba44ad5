using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Files;

/// <summary>The files API over HTTP: upload (both part orders), the file object, list, get, content, delete, owners, limits, bad requests.</summary>
public sealed class FileApiTests
{
    private static byte[] ValidBatchFile(int lines = 3) =>
        BatchLines.Jsonl(Enumerable.Range(1, lines).Select(i => BatchLines.Chat($"req-{i}", $"text {i}")));

    private static void AssertFileObject(JsonElement file, long bytes, string filename, string purpose, long notBefore, long notAfter)
    {
        Assert.StartsWith("file-", file.GetProperty("id").GetString());
        Assert.Equal("file", file.GetProperty("object").GetString());
        Assert.Equal(bytes, file.GetProperty("bytes").GetInt64());
        Assert.Equal(filename, file.GetProperty("filename").GetString());
        Assert.Equal(purpose, file.GetProperty("purpose").GetString());
        Assert.Equal("processed", file.GetProperty("status").GetString());
        var created = file.GetProperty("created_at").GetInt64();
        Assert.InRange(created, notBefore, notAfter);
    }

    private static long UnixNow() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Upload_in_either_part_order_stores_the_file_and_answers_an_OpenAI_file_object(bool purposeFirst)
    {
        await using var host = await StartAsync();
        var content = ValidBatchFile(5);
        var before = UnixNow();

        var file = await host.UploadOkAsync(content, "batch", "requests.jsonl", purposeFirst);

        AssertFileObject(file, content.Length, "requests.jsonl", "batch", before, UnixNow());
        var id = file.GetProperty("id").GetString()!;
        using var get = await host.GetAsync($"{FilesPath}/{id}");
        var fetched = await ExpectAsync(get, HttpStatusCode.OK);
        Assert.Equal(file.ToString(), fetched.ToString());
        Assert.Equal(content, await host.ContentAsync(id));

        // Stored as {id}.data + {id}.meta.json, no temporaries left behind.
        Assert.Equal([$"{id}.data", $"{id}.meta.json"], host.StoredFileNames());
    }

    [Fact]
    public async Task Routes_answer_without_the_v1_segment_too()
    {
        await using var host = await StartAsync();
        using var upload = await host.SendAsync(HttpMethod.Post, "/openai/files", Multipart(ValidBatchFile(), "batch"));
        var file = await ExpectAsync(upload, HttpStatusCode.OK);
        var id = file.GetProperty("id").GetString();
        using var get = await host.GetAsync($"/openai/files/{id}");
        Assert.Equal(id, (await ExpectAsync(get, HttpStatusCode.OK)).GetProperty("id").GetString());
        using var list = await host.GetAsync("/openai/files");
        Assert.Equal(id, (await ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data")[0].GetProperty("id").GetString());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_multi_megabyte_binary_user_data_file_round_trips_byte_for_byte(bool purposeFirst)
    {
        await using var host = await StartAsync();
        var content = new byte[(3 * 1024 * 1024) + 4321];
        new Random(42).NextBytes(content);
        content[0] = (byte)'\r';
        content[^1] = (byte)'\n'; // boundary-like bytes at the edges of the part

        var file = await host.UploadOkAsync(content, "user_data", "blob.bin", purposeFirst);

        AssertFileObject(file, content.Length, "blob.bin", "user_data", 0, UnixNow());
        var id = file.GetProperty("id").GetString()!;
        using var response = await host.GetAsync($"{FilesPath}/{id}/content");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.Length, response.Content.Headers.ContentLength);
        var downloaded = await response.Content.ReadAsByteArrayAsync(Ct);
        Assert.True(content.AsSpan().SequenceEqual(downloaded), "downloaded bytes differ from the uploaded ones");
    }

    [Fact]
    public async Task List_filters_by_purpose_and_pages_with_limit_after_and_order()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2025-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var host = await StartAsync(services: s => s.AddSingleton<TimeProvider>(clock));

        // b1, u1, b2, u2, b3: one second apart, so created_at orders them.
        var ids = new Dictionary<string, string>();
        foreach (var (name, purpose) in new[] { ("b1", "batch"), ("u1", "user_data"), ("b2", "batch"), ("u2", "user_data"), ("b3", "batch") })
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            var file = await host.UploadOkAsync(purpose == "batch" ? ValidBatchFile() : Encoding.UTF8.GetBytes(name), purpose, name + ".txt");
            Assert.Equal(clock.GetUtcNow().ToUnixTimeSeconds(), file.GetProperty("created_at").GetInt64());
            ids[name] = file.GetProperty("id").GetString()!;
        }

        async Task<(string[] Names, bool HasMore, string? First, string? Last)> ListAsync(string query)
        {
            using var response = await host.GetAsync($"{FilesPath}{query}");
            var list = await ExpectAsync(response, HttpStatusCode.OK);
            Assert.Equal("list", list.GetProperty("object").GetString());
            var names = list.GetProperty("data").EnumerateArray().Select(f => ids.Single(p => p.Value == f.GetProperty("id").GetString()).Key).ToArray();
            string? Id(string property) => list.GetProperty(property).ValueKind == JsonValueKind.Null ? null : list.GetProperty(property).GetString();
            return (names, list.GetProperty("has_more").GetBoolean(), Id("first_id"), Id("last_id"));
        }

        static string Join(string[] names) => string.Join(',', names);

        // Default: newest first, all purposes.
        Assert.Equal(["b3", "u2", "b2", "u1", "b1"], (await ListAsync(string.Empty)).Names);
        var batchAsc = await ListAsync("?purpose=batch&order=asc");
        Assert.Equal(["b1", "b2", "b3"], batchAsc.Names);
        Assert.False(batchAsc.HasMore);
        Assert.Equal((ids["b1"], ids["b3"]), (batchAsc.First, batchAsc.Last));
        Assert.Equal(["u2", "u1"], (await ListAsync("?purpose=user_data")).Names);

        // Paging oldest first.
        var page1 = await ListAsync("?limit=2&order=asc");
        Assert.Equal(("b1,u1", true, ids["b1"], ids["u1"]), (Join(page1.Names), page1.HasMore, page1.First, page1.Last));
        var page2 = await ListAsync($"?limit=2&order=asc&after={page1.Last}");
        Assert.Equal(("b2,u2", true), (Join(page2.Names), page2.HasMore));
        var page3 = await ListAsync($"?limit=2&order=asc&after={page2.Last}");
        Assert.Equal(("b3", false), (Join(page3.Names), page3.HasMore));

        // Paging newest first within one purpose.
        var newest = await ListAsync("?purpose=batch&limit=2&order=desc");
        Assert.Equal(("b3,b2", true), (Join(newest.Names), newest.HasMore));
        var rest = await ListAsync($"?purpose=batch&limit=2&order=desc&after={newest.Last}");
        Assert.Equal(("b1", false, ids["b1"], ids["b1"]), (Join(rest.Names), rest.HasMore, rest.First, rest.Last));

        var empty = await ListAsync("?purpose=evals");
        Assert.Equal((0, false, null, null), (empty.Names.Length, empty.HasMore, empty.First, empty.Last));

        using var badOrder = await host.GetAsync($"{FilesPath}?order=sideways");
        Assert.Equal("order", (await ExpectErrorAsync(badOrder, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
        using var badLimit = await host.GetAsync($"{FilesPath}?limit=0");
        Assert.Equal("limit", (await ExpectErrorAsync(badLimit, HttpStatusCode.BadRequest)).GetProperty("param").GetString());
    }

    [Fact]
    public async Task Delete_removes_the_file_then_every_route_answers_404()
    {
        await using var host = await StartAsync();
        var keep = (await host.UploadOkAsync(ValidBatchFile())).GetProperty("id").GetString()!;
        var id = (await host.UploadOkAsync(Encoding.UTF8.GetBytes("bye"), "user_data")).GetProperty("id").GetString()!;

        using var delete = await host.SendAsync(HttpMethod.Delete, $"{FilesPath}/{id}");
        var deleted = await ExpectAsync(delete, HttpStatusCode.OK);
        Assert.Equal(id, deleted.GetProperty("id").GetString());
        Assert.Equal("file", deleted.GetProperty("object").GetString());
        Assert.True(deleted.GetProperty("deleted").GetBoolean());

        using var get = await host.GetAsync($"{FilesPath}/{id}");
        Assert.Equal("file_not_found", (await ExpectErrorAsync(get, HttpStatusCode.NotFound)).GetProperty("code").GetString());
        using var content = await host.GetAsync($"{FilesPath}/{id}/content");
        await ExpectErrorAsync(content, HttpStatusCode.NotFound);
        using var again = await host.SendAsync(HttpMethod.Delete, $"{FilesPath}/{id}");
        await ExpectErrorAsync(again, HttpStatusCode.NotFound);
        using var list = await host.GetAsync(FilesPath);
        Assert.Equal([keep], (await ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()));
        Assert.DoesNotContain(host.StoredFileNames(), name => name.StartsWith(id, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Another_owner_gets_404_for_everything_and_cannot_delete()
    {
        await using var host = await StartAsync();
        var id = (await host.UploadOkAsync(ValidBatchFile(), auth: "sk-alice")).GetProperty("id").GetString()!;

        foreach (var other in new[] { "sk-bob", null })
        {
            using var get = await host.GetAsync($"{FilesPath}/{id}", other);
            await ExpectErrorAsync(get, HttpStatusCode.NotFound);
            using var content = await host.GetAsync($"{FilesPath}/{id}/content", other);
            await ExpectErrorAsync(content, HttpStatusCode.NotFound);
            using var delete = await host.SendAsync(HttpMethod.Delete, $"{FilesPath}/{id}", auth: other);
            await ExpectErrorAsync(delete, HttpStatusCode.NotFound);
            using var list = await host.GetAsync(FilesPath, other);
            Assert.Equal(0, (await ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data").GetArrayLength());
        }

        using var mine = await host.GetAsync($"{FilesPath}/{id}", "sk-alice");
        await ExpectAsync(mine, HttpStatusCode.OK);
        Assert.Equal(ValidBatchFile(), await host.ContentAsync(id, "sk-alice"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Bad_purpose_is_a_400_naming_purpose_and_nothing_is_stored(bool purposeFirst)
    {
        await using var host = await StartAsync();
        using var response = await host.UploadAsync(ValidBatchFile(), "fine-tuning-please", purposeFirst: purposeFirst);
        var error = await ExpectErrorAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("purpose", error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Empty(host.StoredFileNames());
    }

    [Fact]
    public async Task Missing_file_missing_purpose_and_non_multipart_bodies_are_400s()
    {
        await using var host = await StartAsync();

        using var noFile = await host.UploadAsync(null, "batch");
        Assert.Equal("file", (await ExpectErrorAsync(noFile, HttpStatusCode.BadRequest)).GetProperty("param").GetString());

        using var noPurpose = await host.UploadAsync(ValidBatchFile(), null);
        Assert.Equal("purpose", (await ExpectErrorAsync(noPurpose, HttpStatusCode.BadRequest)).GetProperty("param").GetString());

        using var json = await host.PostJsonAsync(FilesPath, """{"purpose":"batch","file":"abc"}""");
        Assert.Contains("multipart", (await ExpectErrorAsync(json, HttpStatusCode.BadRequest)).GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);

        using var noBody = await host.SendAsync(HttpMethod.Post, FilesPath);
        await ExpectErrorAsync(noBody, HttpStatusCode.BadRequest);

        Assert.Empty(host.StoredFileNames());
        using var list = await host.GetAsync(FilesPath);
        Assert.Equal(0, (await ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data").GetArrayLength());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_bad_batch_file_is_a_400_naming_each_bad_line_and_nothing_is_stored(bool purposeFirst)
    {
        await using var host = await StartAsync();
        string[] lines =
        [
            BatchLines.Chat("a"),                                                     // 1 fine
            """{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":""", // 2 bad JSON
            BatchLines.Chat("a"),                                                     // 3 duplicate custom_id
            BatchLines.Chat("d", method: "GET"),                                      // 4 method GET
            BatchLines.Chat("e", url: "/v1/fine_tuning/jobs"),                        // 5 unsupported url
            """{"custom_id":"f","method":"POST","url":"/v1/chat/completions","body":"text"}""", // 6 body not an object
            BatchLines.Chat("g"),                                                     // 7 fine
        ];

        using var response = await host.UploadAsync(BatchLines.Jsonl(lines), "batch", purposeFirst: purposeFirst);

        var error = await ExpectErrorAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_batch_file", error.GetProperty("code").GetString());
        Assert.Equal("file", error.GetProperty("param").GetString());
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains("line 2: invalid JSON", message, StringComparison.Ordinal);
        Assert.Contains("line 3: duplicate custom_id 'a'", message, StringComparison.Ordinal);
        Assert.Contains("line 4: 'method'", message, StringComparison.Ordinal);
        Assert.Contains("line 5: 'url'", message, StringComparison.Ordinal);
        Assert.Contains("line 6: 'body'", message, StringComparison.Ordinal);
        Assert.DoesNotContain("line 1:", message, StringComparison.Ordinal);
        Assert.DoesNotContain("line 7:", message, StringComparison.Ordinal);
        Assert.Empty(host.StoredFileNames());
    }

    [Fact]
    public async Task An_empty_batch_file_and_one_over_MaxBatchLines_are_400s()
    {
        await using var host = await StartAsync(o => o.Files.MaxBatchLines = 3);

        using var empty = await host.UploadAsync("\n\n"u8.ToArray(), "batch");
        Assert.Contains("no requests", (await ExpectErrorAsync(empty, HttpStatusCode.BadRequest)).GetProperty("message").GetString(), StringComparison.Ordinal);

        using var tooMany = await host.UploadAsync(ValidBatchFile(4), "batch");
        Assert.Contains("line 4: the file has more than 3 requests", (await ExpectErrorAsync(tooMany, HttpStatusCode.BadRequest)).GetProperty("message").GetString(), StringComparison.Ordinal);

        await host.UploadOkAsync(ValidBatchFile(3)); // at the limit: fine
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_batch_file_over_MaxBatchFileBytes_is_a_413_and_nothing_is_stored(bool purposeFirst)
    {
        var content = ValidBatchFile(40);
        await using var host = await StartAsync(o => o.Files.MaxBatchFileBytes = content.Length - 1);

        using var response = await host.UploadAsync(content, "batch", purposeFirst: purposeFirst);

        var error = await ExpectErrorAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("file_too_large", error.GetProperty("code").GetString());
        Assert.Empty(host.StoredFileNames());
        using var list = await host.GetAsync(FilesPath);
        Assert.Equal(0, (await ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data").GetArrayLength());

        // The batch limit applies to batch files only; exactly at the limit is fine.
        await host.UploadOkAsync(content, "user_data", purposeFirst: purposeFirst);
        await host.UploadOkAsync(content[..(content.Length - 1)], "user_data", purposeFirst: purposeFirst);
    }

    [Fact]
    public async Task A_batch_file_exactly_at_MaxBatchFileBytes_is_accepted()
    {
        var content = ValidBatchFile(10);
        await using var host = await StartAsync(o => o.Files.MaxBatchFileBytes = content.Length);
        var file = await host.UploadOkAsync(content);
        Assert.Equal(content.Length, file.GetProperty("bytes").GetInt64());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Any_file_over_MaxUploadBytes_is_a_413_and_nothing_is_stored(bool purposeFirst)
    {
        await using var host = await StartAsync(o => o.Files.MaxUploadBytes = 64 * 1024);
        var content = new byte[(64 * 1024) + 1];

        using var response = await host.UploadAsync(content, "user_data", "big.bin", purposeFirst);

        await ExpectErrorAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Empty(host.StoredFileNames());
        await host.UploadOkAsync(content[..(64 * 1024)], "user_data", "fits.bin", purposeFirst);
    }
}
