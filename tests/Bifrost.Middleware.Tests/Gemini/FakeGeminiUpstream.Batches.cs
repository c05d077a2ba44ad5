using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>
/// The fake's Batch API and Files API, as documented: the Files API's resumable upload (<c>POST /upload/v1beta/files</c>
/// with <c>X-Goog-Upload-Protocol: resumable</c> + <c>X-Goog-Upload-Command: start</c> → the session URL in
/// <c>X-Goog-Upload-URL</c>; then the bytes with <c>upload, finalize</c> → <c>{"file": {"name": "files/…"}}</c>;
/// https://ai.google.dev/api/files), <c>models/{model}:batchGenerateContent</c> with <c>inputConfig.fileName</c> (a JSONL of
/// <c>{"key","request"}</c> lines) → an Operation <c>{"name": "batches/…", "metadata": GenerateContentBatch}</c>,
/// <c>GET batches/{id}</c> (state <c>BATCH_STATE_*</c>, <c>batchStats</c> int64 counts as strings, <c>output.responsesFile</c>),
/// <c>POST batches/{id}:cancel</c>, and <c>GET /download/v1beta/files/{id}:download?alt=media</c> for the responses file
/// (one <c>{"key", "response" | "error"}</c> line per request) — https://ai.google.dev/api/batch-mode,
/// https://ai.google.dev/gemini-api/docs/batch-api. A request whose last user text contains "please fail" gets a per-line
/// <c>INVALID_ARGUMENT</c> error (gRPC code 3).
/// </summary>
public sealed partial class FakeGeminiUpstream
{
    private int _batchCounter;

    /// <summary>Files uploaded through the Files API, by name (<c>files/…</c>), as text.</summary>
    public ConcurrentDictionary<string, string> UploadedFiles { get; } = new();

    /// <summary>Files the fake generated (responses files), by name.</summary>
    public ConcurrentDictionary<string, string> GeneratedFiles { get; } = new();

    public ConcurrentDictionary<string, FakeBatch> Batches { get; } = new();

    /// <summary>How many polls a batch takes to succeed.</summary>
    public int CompleteAfterPolls { get; set; } = 2;

    /// <summary>When set, batchGenerateContent answers this failure.</summary>
    public Failure? CreateBatchFailure { get; set; }

    /// <summary>Name the responses file only in the finished operation's <c>response</c>, not in <c>metadata.output</c>.</summary>
    public bool OutputOnlyInOperationResponse { get; set; }

    /// <summary>When set, a batch ends <c>BATCH_STATE_FAILED</c> with this operation error (gRPC code, message).</summary>
    public (int Code, string Message)? FailBatchWith { get; set; }

    private void MapBatches(WebApplication app)
    {
        app.MapPost("/upload/v1beta/files", UploadAsync);
        app.MapGet("/v1beta/batches/{**rest}", async (HttpContext context, string rest) =>
        {
            await RecordAsync(context);
            if (!await CheckKeyAsync(context))
            {
                return;
            }

            if (!Batches.TryGetValue(rest, out var batch))
            {
                await WriteErrorAsync(context, 404, $"Batch 'batches/{rest}' not found.", null, null);
                return;
            }

            batch.Poll(this);
            await context.Response.WriteAsJsonAsync(batch.Operation(OutputOnlyInOperationResponse));
        });
        app.MapPost("/v1beta/batches/{**rest}", async (HttpContext context, string rest) =>
        {
            await RecordAsync(context);
            if (!await CheckKeyAsync(context))
            {
                return;
            }

            if (!rest.EndsWith(":cancel", StringComparison.Ordinal) || !Batches.TryGetValue(rest[..^":cancel".Length], out var batch))
            {
                await WriteErrorAsync(context, 404, "Not found.", null, null);
                return;
            }

            batch.CancelRequested = true;
            await context.Response.WriteAsJsonAsync(new JsonObject());
        });
        app.MapGet("/download/v1beta/files/{name}", async (HttpContext context, string name) =>
        {
            await RecordAsync(context);
            if (!await CheckKeyAsync(context))
            {
                return;
            }

            var id = name.EndsWith(":download", StringComparison.Ordinal) ? name[..^":download".Length] : name;
            if (context.Request.Query["alt"] != "media" || !GeneratedFiles.TryGetValue("files/" + id, out var content))
            {
                await WriteErrorAsync(context, 404, $"File 'files/{id}' not found.", null, null);
                return;
            }

            context.Response.ContentType = "application/jsonl";
            await context.Response.WriteAsync(content);
        });
    }

    private static async Task<bool> CheckKeyAsync(HttpContext context)
    {
        if (context.Request.Headers["x-goog-api-key"].ToString() == Key)
        {
            return true;
        }

        await WriteErrorAsync(context, 400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID", null);
        return false;
    }

    /// <summary>The resumable upload: the start request (JSON metadata) and, at the session URL, the bytes.</summary>
    private async Task UploadAsync(HttpContext context)
    {
        var command = context.Request.Headers["X-Goog-Upload-Command"].ToString();
        if (command == "start")
        {
            await RecordAsync(context);
            if (!await CheckKeyAsync(context))
            {
                return;
            }

            if (context.Request.Headers["X-Goog-Upload-Protocol"] != "resumable" || !long.TryParse(context.Request.Headers["X-Goog-Upload-Header-Content-Length"], CultureInfo.InvariantCulture, out _))
            {
                await WriteErrorAsync(context, 400, "Bad upload start.", null, null);
                return;
            }

            var session = Interlocked.Increment(ref _batchCounter).ToString(CultureInfo.InvariantCulture);
            context.Response.Headers["X-Goog-Upload-URL"] = $"{_server.Address}/upload/v1beta/files?upload_id=session-{session}&upload_protocol=resumable";
            context.Response.Headers["X-Goog-Upload-Status"] = "active";
            return;
        }

        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(context.RequestAborted);
        Requests.Enqueue(new UpstreamRequest(
            context.Request.Method,
            context.Request.Path.Value!,
            context.Request.QueryString.Value ?? string.Empty,
            context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()),
            null));
        if (command != "upload, finalize" || context.Request.Headers["X-Goog-Upload-Offset"] != "0" || !context.Request.Query["upload_id"].ToString().StartsWith("session-", StringComparison.Ordinal))
        {
            await WriteErrorAsync(context, 400, "Bad upload.", null, null);
            return;
        }

        var name = "files/in" + Interlocked.Increment(ref _batchCounter).ToString(CultureInfo.InvariantCulture);
        UploadedFiles[name] = text;
        await context.Response.WriteAsJsonAsync(new JsonObject
        {
            ["file"] = new JsonObject { ["name"] = name, ["mimeType"] = context.Request.ContentType, ["sizeBytes"] = Encoding.UTF8.GetByteCount(text).ToString(CultureInfo.InvariantCulture), ["state"] = "ACTIVE" },
        });
    }

    private async Task CreateBatchAsync(HttpContext context, JsonObject request, string model)
    {
        if (CreateBatchFailure is { } failure)
        {
            await WriteErrorAsync(context, failure.Status, failure.Message, failure.Reason, failure.RetryDelay);
            return;
        }

        var fileName = request["batch"]?["inputConfig"]?["fileName"]?.GetValue<string>();
        if (fileName is null || !UploadedFiles.TryGetValue(fileName, out var content))
        {
            await WriteErrorAsync(context, 400, $"Input file '{fileName}' not found.", null, null);
            return;
        }

        var lines = content.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var id = "b" + Interlocked.Increment(ref _batchCounter).ToString(CultureInfo.InvariantCulture);
        var batch = new FakeBatch(id, model, request["batch"]?["displayName"]?.GetValue<string>(), lines);
        Batches[id] = batch;
        await context.Response.WriteAsJsonAsync(batch.Operation());
    }

    /// <summary>A batch the fake runs: pending until <see cref="CompleteAfterPolls"/> polls, then its responses file is written.</summary>
    public sealed class FakeBatch(string id, string model, string? displayName, List<JsonObject> lines)
    {
        private int _polls;
        private string _state = "BATCH_STATE_PENDING";
        private string? _responsesFile;
        private (int Code, string Message)? _error;
        private int _succeeded;
        private int _failed;

        public string Id => id;

        public string Model => model;

        public List<JsonObject> Lines => lines;

        public bool CancelRequested { get; set; }

        public void Poll(FakeGeminiUpstream upstream)
        {
            if (_state is not ("BATCH_STATE_PENDING" or "BATCH_STATE_RUNNING"))
            {
                return;
            }

            if (CancelRequested)
            {
                _state = "BATCH_STATE_CANCELLED";
                return;
            }

            if (++_polls < upstream.CompleteAfterPolls)
            {
                _state = "BATCH_STATE_RUNNING";
                return;
            }

            if (upstream.FailBatchWith is { } failure)
            {
                _state = "BATCH_STATE_FAILED";
                _error = failure;
                return;
            }

            var output = new StringBuilder();
            var n = 0;
            foreach (var line in lines)
            {
                var text = LastUserText(line["request"]!.AsObject());
                var result = new JsonObject { ["key"] = line["key"]!.DeepClone() };
                if (text.Contains("please fail", StringComparison.Ordinal))
                {
                    result["error"] = new JsonObject { ["code"] = 3, ["message"] = "scripted batch error", ["status"] = "INVALID_ARGUMENT" };
                    _failed++;
                }
                else
                {
                    var response = Response(new JsonArray(Text("batch: " + text)), prompt: 10, candidates: 3);
                    response["modelVersion"] = model;
                    response["responseId"] = $"resp_{id}_{n}";
                    result["response"] = response;
                    _succeeded++;
                }

                n++;
                output.Append(result.ToJsonString()).Append('\n');
            }

            _responsesFile = "files/out-" + id;
            upstream.GeneratedFiles[_responsesFile] = output.ToString();
            _state = "BATCH_STATE_SUCCEEDED";
        }

        public JsonObject Operation(bool outputOnlyInResponse = false)
        {
            var ended = _state is not ("BATCH_STATE_PENDING" or "BATCH_STATE_RUNNING");
            var metadata = new JsonObject
            {
                ["@type"] = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                ["model"] = "models/" + model,
                ["displayName"] = displayName,
                ["createTime"] = "2026-12-06T10:00:00.123456789Z",
                ["updateTime"] = "2026-12-06T10:00:05.5Z",
                ["batchStats"] = new JsonObject
                {
                    // int64 fields: strings in protobuf JSON
                    ["requestCount"] = lines.Count.ToString(CultureInfo.InvariantCulture),
                    ["successfulRequestCount"] = _succeeded.ToString(CultureInfo.InvariantCulture),
                    ["failedRequestCount"] = _failed.ToString(CultureInfo.InvariantCulture),
                    ["pendingRequestCount"] = (ended ? 0 : lines.Count).ToString(CultureInfo.InvariantCulture),
                },
                ["state"] = _state,
            };
            var operation = new JsonObject { ["name"] = "batches/" + id, ["metadata"] = metadata };
            if (ended)
            {
                metadata["endTime"] = "2026-12-06T10:30:00Z";
                operation["done"] = true;
                if (_responsesFile is not null)
                {
                    if (!outputOnlyInResponse)
                    {
                        metadata["output"] = new JsonObject { ["responsesFile"] = _responsesFile };
                    }

                    operation["response"] = new JsonObject { ["@type"] = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput", ["responsesFile"] = _responsesFile };
                }

                if (_error is { } error)
                {
                    operation["error"] = new JsonObject { ["code"] = error.Code, ["message"] = error.Message };
                }
            }

            return operation;
        }
    }
}
