using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>A fresh temporary directory, deleted on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bifrost-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>
/// A gateway host whose file store lives in its own temporary directory, with helpers for the files and batches API
/// over HTTP. Short job poll and progress intervals, so cancels and progress show up quickly.
/// </summary>
public sealed class FileBatchHost : IAsyncDisposable
{
    public const string FilesPath = "/openai/v1/files";
    public const string BatchesPath = "/openai/v1/batches";

    /// <summary>How long any "eventually" may take (builds share 2 CPU cores with other work: generous).</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly TempDirectory? _ownedDirectory;

    private FileBatchHost(GatewayHost host, string directory, TempDirectory? owned)
    {
        Host = host;
        Directory = directory;
        _ownedDirectory = owned;
    }

    public GatewayHost Host { get; }

    /// <summary>The file store's directory.</summary>
    public string Directory { get; }

    public HttpClient Client => Host.Client;

    public IServiceProvider Services => Host.Services;

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Starts a host; <paramref name="directory"/> null uses a fresh temporary directory deleted on dispose.</summary>
    public static async Task<FileBatchHost> StartAsync(
        Action<BifrostOptions>? configure = null,
        Action<IBifrostBuilder>? bifrost = null,
        Action<IServiceCollection>? services = null,
        string? directory = null,
        bool dashboard = false)
    {
        var owned = directory is null ? new TempDirectory() : null;
        var path = directory ?? owned!.Path;
        try
        {
            var host = await GatewayHost.StartAsync(
                options =>
                {
                    options.Files.Directory = path;
                    options.Jobs.PollInterval = TimeSpan.FromMilliseconds(50);
                    options.Batches.ProgressInterval = TimeSpan.FromMilliseconds(50);
                    configure?.Invoke(options);
                },
                bifrost,
                services,
                dashboard: dashboard);
            return new FileBatchHost(host, path, owned);
        }
        catch
        {
            owned?.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        _ownedDirectory?.Dispose();
    }

    /// <summary>Files in the store's directory (data, metadata, temporaries).</summary>
    public string[] StoredFileNames() => [.. System.IO.Directory.EnumerateFiles(Directory).Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal)!];

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content = null, string? auth = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (auth is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", auth);
        }

        return await Client.SendAsync(request, Ct);
    }

    public Task<HttpResponseMessage> GetAsync(string path, string? auth = null) => SendAsync(HttpMethod.Get, path, null, auth);

    public Task<HttpResponseMessage> PostJsonAsync(string path, string json, string? auth = null) =>
        SendAsync(HttpMethod.Post, path, new StringContent(json, Encoding.UTF8, "application/json"), auth);

    /// <summary>A multipart upload; the part order is chosen by <paramref name="purposeFirst"/>; null purpose or content leaves that part out.</summary>
    public static MultipartFormDataContent Multipart(byte[]? content, string? purpose, string filename = "input.jsonl", bool purposeFirst = true)
    {
        var form = new MultipartFormDataContent();
        if (purposeFirst && purpose is not null)
        {
            form.Add(new StringContent(purpose), "purpose");
        }

        if (content is not null)
        {
            var file = new ByteArrayContent(content);
            file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(file, "file", filename);
        }

        if (!purposeFirst && purpose is not null)
        {
            form.Add(new StringContent(purpose), "purpose");
        }

        return form;
    }

    public Task<HttpResponseMessage> UploadAsync(byte[]? content, string? purpose = "batch", string filename = "input.jsonl", bool purposeFirst = true, string? auth = null) =>
        SendAsync(HttpMethod.Post, FilesPath, Multipart(content, purpose, filename, purposeFirst), auth);

    /// <summary>Uploads and asserts 200; returns the file object.</summary>
    public async Task<JsonElement> UploadOkAsync(byte[] content, string purpose = "batch", string filename = "input.jsonl", bool purposeFirst = true, string? auth = null)
    {
        using var response = await UploadAsync(content, purpose, filename, purposeFirst, auth);
        return await ExpectAsync(response, HttpStatusCode.OK);
    }

    /// <summary>Asserts the status (showing the body when it differs) and returns the JSON body.</summary>
    public static async Task<JsonElement> ExpectAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Asserts a Bifrost error of this status and returns its <c>error</c> object.</summary>
    public static async Task<JsonElement> ExpectErrorAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var json = await ExpectAsync(response, status);
        Assert.Equal((int)status, json.GetProperty("status_code").GetInt32());
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
        var error = json.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        return error;
    }

    /// <summary>Creates a batch from a raw JSON body; returns the response.</summary>
    public Task<HttpResponseMessage> CreateBatchRawAsync(string json, string? auth = null) => PostJsonAsync(BatchesPath, json, auth);

    /// <summary>Creates a chat-completions batch and asserts 200.</summary>
    public async Task<JsonElement> CreateBatchAsync(string inputFileId, string? model = null, IDictionary<string, string>? metadata = null, string? auth = null)
    {
        var body = new JsonObject
        {
            ["input_file_id"] = inputFileId,
            ["endpoint"] = "/v1/chat/completions",
            ["completion_window"] = "24h",
        };
        if (model is not null)
        {
            body["model"] = model;
        }

        if (metadata is not null)
        {
            var meta = new JsonObject();
            foreach (var (key, value) in metadata)
            {
                meta[key] = value;
            }

            body["metadata"] = meta;
        }

        using var response = await CreateBatchRawAsync(body.ToJsonString(), auth);
        return await ExpectAsync(response, HttpStatusCode.OK);
    }

    /// <summary>Uploads <paramref name="lines"/> as a batch file and creates a batch of it.</summary>
    public async Task<JsonElement> StartBatchAsync(IEnumerable<string> lines, string? model = null, string? auth = null)
    {
        var file = await UploadOkAsync(BatchLines.Jsonl(lines), auth: auth);
        return await CreateBatchAsync(file.GetProperty("id").GetString()!, model, auth: auth);
    }

    public async Task<JsonElement> GetBatchAsync(string id, string? auth = null)
    {
        using var response = await GetAsync($"{BatchesPath}/{id}", auth);
        return await ExpectAsync(response, HttpStatusCode.OK);
    }

    /// <summary>Polls the batch until <paramref name="until"/> holds; fails with the last state at the deadline.</summary>
    public async Task<JsonElement> WaitForBatchAsync(string id, Func<JsonElement, bool> until, string? auth = null, TimeSpan? deadline = null)
    {
        var stop = DateTime.UtcNow + (deadline ?? Deadline);
        JsonElement batch;
        while (true)
        {
            batch = await GetBatchAsync(id, auth);
            if (until(batch))
            {
                return batch;
            }

            Assert.True(DateTime.UtcNow < stop, $"batch {id} did not reach the expected state in time; last: {batch}");
            await Task.Delay(20, Ct);
        }
    }

    public static bool IsTerminal(JsonElement batch) =>
        batch.GetProperty("status").GetString() is "completed" or "failed" or "expired" or "cancelled";

    /// <summary>Waits until the batch ended and returns it.</summary>
    public Task<JsonElement> WaitForEndAsync(string id, string? auth = null, TimeSpan? deadline = null) => WaitForBatchAsync(id, IsTerminal, auth, deadline);

    /// <summary>The bytes of a file's content (asserts 200).</summary>
    public async Task<byte[]> ContentAsync(string fileId, string? auth = null)
    {
        using var response = await GetAsync($"{FilesPath}/{fileId}/content", auth);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Assert.Fail($"content of {fileId}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        return await response.Content.ReadAsByteArrayAsync(Ct);
    }

    /// <summary>The JSONL lines of a result file; an absent (null) file has none.</summary>
    public async Task<List<JsonElement>> ReadLinesAsync(JsonElement fileId, string? auth = null)
    {
        if (fileId.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        var bytes = await ContentAsync(fileId.GetString()!, auth);
        return BatchLines.Parse(bytes);
    }

    /// <summary>Output and error lines of an ended batch.</summary>
    public async Task<(List<JsonElement> Output, List<JsonElement> Errors)> ResultsAsync(JsonElement batch, string? auth = null) =>
        (await ReadLinesAsync(batch.GetProperty("output_file_id"), auth), await ReadLinesAsync(batch.GetProperty("error_file_id"), auth));
}

/// <summary>Batch input lines and result parsing.</summary>
public static class BatchLines
{
    /// <summary>A chat-completions request line; <paramref name="metadata"/> scripts the local provider; <paramref name="model"/> null leaves it out.</summary>
    public static string Chat(string customId, string text = "hello", string? model = "local/echo", IEnumerable<(string Key, string Value)>? metadata = null, string url = "/v1/chat/completions", string method = "POST")
    {
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) };
        if (model is not null)
        {
            body["model"] = model;
        }

        if (metadata is not null)
        {
            var meta = new JsonObject();
            foreach (var (key, value) in metadata)
            {
                meta[key] = value;
            }

            body["metadata"] = meta;
        }

        return new JsonObject { ["custom_id"] = customId, ["method"] = method, ["url"] = url, ["body"] = body }.ToJsonString();
    }

    public static byte[] Jsonl(IEnumerable<string> lines) => Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n");

    public static List<JsonElement> Parse(byte[] jsonl)
    {
        var text = Encoding.UTF8.GetString(jsonl);
        Assert.True(text.Length == 0 || text.EndsWith('\n'), "a result file ends with a newline");
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(static line => JsonDocument.Parse(line).RootElement.Clone())];
    }

    public static string CustomId(JsonElement line) => line.GetProperty("custom_id").GetString()!;

    /// <summary>Asserts that every expected custom_id appears exactly once across the result lines (and nothing else does).</summary>
    public static void AssertExactlyOnce(IEnumerable<string> expected, IEnumerable<JsonElement> output, IEnumerable<JsonElement> errors)
    {
        var seen = output.Concat(errors).Select(CustomId).ToList();
        var duplicates = seen.GroupBy(static id => id).Where(static g => g.Count() > 1).Select(static g => g.Key).ToList();
        Assert.True(duplicates.Count == 0, $"custom_ids written more than once: {string.Join(", ", duplicates)}");
        Assert.Equal(expected.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
    }

    /// <summary>Asserts that request_counts add up: nothing pending, completed == succeeded, total == the sum of the outcomes.</summary>
    public static void AssertCountsAddUp(JsonElement batch, int total)
    {
        var counts = batch.GetProperty("request_counts");
        int Count(string name) => counts.GetProperty(name).GetInt32();
        Assert.Equal(total, Count("total"));
        Assert.Equal(0, Count("pending"));
        Assert.Equal(Count("succeeded"), Count("completed"));
        Assert.Equal(total, Count("succeeded") + Count("failed") + Count("expired") + Count("canceled"));
    }
}
