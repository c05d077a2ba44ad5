using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.FileBatchHost;

namespace Bifrost.Middleware.Tests.Files;

/// <summary>
/// Hostile and broken multipart uploads: bounded fields, parts and headers, duplicate fields and files, truncated and
/// malformed bodies — each a 400 in the Bifrost shape with nothing left in the store.
/// </summary>
public sealed class MultipartUploadTests
{
    private const string Boundary = "b0undary";
    private const string End = "--" + Boundary + "--\r\n";

    private static readonly string BatchJsonl = Encoding.UTF8.GetString(BatchLines.Jsonl([BatchLines.Chat("a"), BatchLines.Chat("b")]));

    private static string Field(string name, string value) =>
        $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n";

    private static string FilePart(string content, string filename = "input.jsonl", string extraHeaders = "") =>
        $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n{extraHeaders}\r\n{content}\r\n";

    private static ByteArrayContent Raw(string body, string? contentType = "multipart/form-data; boundary=" + Boundary)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        if (contentType is not null)
        {
            Assert.True(content.Headers.TryAddWithoutValidation("Content-Type", contentType));
        }

        return content;
    }

    private static Task<HttpResponseMessage> PostAsync(FileBatchHost host, string body, string? contentType = "multipart/form-data; boundary=" + Boundary) =>
        host.SendAsync(HttpMethod.Post, FilesPath, Raw(body, contentType));

    /// <summary>Asserts a 400 Bifrost error and that the store holds nothing (no file, no temporary, nothing listed).</summary>
    private static async Task<JsonElement> AssertRejectedAsync(FileBatchHost host, HttpResponseMessage response, string? param = "", string? code = null)
    {
        var error = await ExpectErrorAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        if (param != string.Empty)
        {
            Assert.Equal(param, error.TryGetProperty("param", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null);
        }

        if (code is not null)
        {
            Assert.Equal(code, error.GetProperty("code").GetString());
        }

        await AssertNothingStoredAsync(host);
        return error;
    }

    private static async Task AssertNothingStoredAsync(FileBatchHost host)
    {
        Assert.Empty(host.StoredFileNames());
        using var list = await host.GetAsync(FilesPath);
        Assert.Equal(0, (await ExpectAsync(list, HttpStatusCode.OK)).GetProperty("data").GetArrayLength());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_huge_purpose_field_is_a_400_naming_purpose_not_read_whole(bool purposeFirst)
    {
        await using var host = await StartAsync();
        var purpose = "batch" + new string(' ', 1024 * 1024) + "x";
        var body = purposeFirst ? Field("purpose", purpose) + FilePart(BatchJsonl) + End : FilePart(BatchJsonl) + Field("purpose", purpose) + End;

        using var response = await PostAsync(host, body);

        var error = await AssertRejectedAsync(host, response, "purpose", "invalid_multipart");
        Assert.Contains("4096 bytes", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_purpose_at_the_field_limit_is_read_and_validated_as_usual()
    {
        await using var host = await StartAsync();
        using var padded = await PostAsync(host, Field("purpose", "batch" + new string(' ', 4096 - 5)) + FilePart(BatchJsonl) + End);
        Assert.Equal("batch", (await ExpectAsync(padded, HttpStatusCode.OK)).GetProperty("purpose").GetString());
    }

    [Fact]
    public async Task Unknown_small_fields_are_ignored_and_a_large_one_is_a_400_naming_it()
    {
        await using var host = await StartAsync();
        using var ok = await PostAsync(host, Field("expires_after[anchor]", "created_at") + Field("purpose", "user_data") + Field("note", "hi") + FilePart("data") + End);
        var file = await ExpectAsync(ok, HttpStatusCode.OK);
        Assert.Equal(4, file.GetProperty("bytes").GetInt64());
        using (var delete = await host.SendAsync(HttpMethod.Delete, $"{FilesPath}/{file.GetProperty("id").GetString()}"))
        {
            await ExpectAsync(delete, HttpStatusCode.OK);
        }

        using var big = await PostAsync(host, Field("purpose", "user_data") + Field("note", new string('n', 5000)) + FilePart("data") + End);
        var error = await AssertRejectedAsync(host, big, "note", "invalid_multipart");
        Assert.Contains("'note'", error.GetProperty("message").GetString(), StringComparison.Ordinal);

        using var unnamed = await PostAsync(host, $"--{Boundary}\r\nContent-Type: text/plain\r\n\r\n{new string('u', 5000)}\r\n" + Field("purpose", "user_data") + FilePart("data") + End);
        await AssertRejectedAsync(host, unnamed, null, "invalid_multipart");
    }

    [Theory]
    [InlineData("purpose-file-purpose")]
    [InlineData("purpose-purpose-file")]
    [InlineData("file-purpose-purpose")]
    public async Task Conflicting_purpose_fields_are_a_400_whatever_their_order(string order)
    {
        await using var host = await StartAsync();
        var parts = order.Split('-');
        var purposes = new Queue<string>(["user_data", "batch"]);
        var body = string.Concat(parts.Select(p => p == "file" ? FilePart("not json at all\n") : Field("purpose", purposes.Dequeue()))) + End;

        using var response = await PostAsync(host, body);

        var error = await AssertRejectedAsync(host, response, "purpose");
        Assert.Contains("more than once", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_purpose_twice_is_accepted()
    {
        await using var host = await StartAsync();
        using var response = await PostAsync(host, Field("purpose", "batch") + FilePart(BatchJsonl) + Field("purpose", "batch") + End);
        Assert.Equal("batch", (await ExpectAsync(response, HttpStatusCode.OK)).GetProperty("purpose").GetString());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Two_file_parts_are_a_400_and_nothing_is_stored(bool purposeFirst)
    {
        await using var host = await StartAsync();
        var files = FilePart(BatchJsonl, "one.jsonl") + FilePart(BatchJsonl, "two.jsonl");
        var body = purposeFirst ? Field("purpose", "batch") + files + End : files + Field("purpose", "batch") + End;

        using var response = await PostAsync(host, body);

        await AssertRejectedAsync(host, response, "file");
    }

    [Fact]
    public async Task More_parts_than_allowed_is_a_400()
    {
        await using var host = await StartAsync();
        var extras = string.Concat(Enumerable.Range(0, 20).Select(i => Field($"x{i}", "y")));
        using var response = await PostAsync(host, Field("purpose", "user_data") + FilePart("data") + extras + End);
        var error = await AssertRejectedAsync(host, response, null, "invalid_multipart");
        Assert.Contains("more than 16 parts", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_one_megabyte_filename_is_a_400_about_the_part_headers_not_a_413(bool purposeFirst)
    {
        await using var host = await StartAsync();
        var file = FilePart(BatchJsonl, new string('f', 1024 * 1024) + ".jsonl");
        var body = purposeFirst ? Field("purpose", "batch") + file + End : file + Field("purpose", "batch") + End;

        using var response = await PostAsync(host, body);

        var error = await AssertRejectedAsync(host, response, null, "invalid_multipart");
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains("headers", message, StringComparison.Ordinal);
        Assert.DoesNotContain("536870912", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_filename_over_the_filename_limit_is_a_400_naming_file()
    {
        await using var host = await StartAsync();
        using var response = await PostAsync(host, Field("purpose", "user_data") + FilePart("data", new string('f', 2000)) + End);
        var error = await AssertRejectedAsync(host, response, "file", "invalid_multipart");
        Assert.Contains("filename", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_huge_part_header_or_too_many_headers_is_a_400()
    {
        await using var host = await StartAsync();
        using var longHeader = await PostAsync(host, Field("purpose", "user_data") + FilePart("data", extraHeaders: $"X-Pad: {new string('p', 1024 * 1024)}\r\n") + End);
        await AssertRejectedAsync(host, longHeader, null, "invalid_multipart");

        var many = string.Concat(Enumerable.Range(0, 40).Select(i => $"X-H{i}: v\r\n"));
        using var manyHeaders = await PostAsync(host, Field("purpose", "user_data") + FilePart("data", extraHeaders: many) + End);
        var error = await AssertRejectedAsync(host, manyHeaders, null, "invalid_multipart");
        Assert.Contains("headers", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    public static TheoryData<string, string> Truncations => new()
    {
        { "no closing boundary after the file", Field("purpose", "batch") + FilePart(BatchJsonl) },
        { "no closing boundary, purpose last", FilePart(BatchJsonl) + Field("purpose", "batch") },
        { "cut in the middle of the file", Field("purpose", "batch") + FilePart(BatchJsonl)[..^20] },
        { "cut in the middle of the file, purpose unknown yet", FilePart(BatchJsonl + BatchJsonl)[..^30] },
        { "cut in the part headers", Field("purpose", "batch") + $"--{Boundary}\r\nContent-Disposition: form-da" },
        { "cut after a boundary line", Field("purpose", "batch") + $"--{Boundary}\r\n" },
        { "cut in the purpose value", FilePart(BatchJsonl) + $"--{Boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbat" },
        { "only the first boundary", $"--{Boundary}" },
        { "empty body", string.Empty },
        { "body with another boundary", Field("purpose", "batch").Replace(Boundary, "other", StringComparison.Ordinal) + FilePart(BatchJsonl).Replace(Boundary, "other", StringComparison.Ordinal) + "--other--\r\n" },
        { "no boundary at all, 64 KB of text", new string('z', 64 * 1024) },
    };

    [Theory]
    [MemberData(nameof(Truncations))]
    public async Task A_truncated_or_malformed_body_is_a_400_and_nothing_is_stored(string what, string body)
    {
        await using var host = await StartAsync();
        using var response = await PostAsync(host, body);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{what}: {(int)response.StatusCode} {text}");
        await AssertRejectedAsync(host, response);

        // The host is fine afterwards.
        await host.UploadOkAsync(BatchLines.Jsonl([BatchLines.Chat("ok")]));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("text/plain")]
    [InlineData("application/json")]
    [InlineData("multipart/form-data")]
    [InlineData("multipart/form-data; boundary=")]
    [InlineData("multipart/form-data; boundary=\"\"")]
    [InlineData("multipart/mixed; boundary=" + Boundary)]
    [InlineData("multipart/form-data; boundary=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [InlineData("multipart/form-data; boundary=\"unterminated")]
    public async Task A_missing_garbled_or_non_multipart_content_type_is_a_400(string? contentType)
    {
        await using var host = await StartAsync();
        using var response = await PostAsync(host, Field("purpose", "batch") + FilePart(BatchJsonl) + End, contentType);
        await AssertRejectedAsync(host, response);
    }
}
