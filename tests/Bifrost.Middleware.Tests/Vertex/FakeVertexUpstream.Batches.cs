using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Anthropic;
using Bifrost.Middleware.Tests.Gemini;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>
/// The fake's batch prediction jobs and Cloud Storage, on the same loopback server:
/// <list type="bullet">
/// <item>Cloud Storage JSON API (https://cloud.google.com/storage/docs/json_api/v1/objects/insert,
/// .../objects/get, .../objects/list): <c>POST /upload/storage/v1/b/{bucket}/o?uploadType=media&amp;name=…</c> stores the
/// bytes and answers the object resource; <c>GET /storage/v1/b/{bucket}/o/{escaped name}?alt=media</c> answers them (404 in
/// Google's envelope when missing); <c>GET /storage/v1/b/{bucket}/o?prefix=…[&amp;pageToken=…]</c> lists names by prefix,
/// <see cref="ListPageSize"/> per page with <c>nextPageToken</c>;</item>
/// <item>batch prediction jobs (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs):
/// create checks <c>model</c> (<c>publishers/google/models/…</c>), <c>inputConfig</c> (<c>jsonl</c>, an existing
/// <c>gcsSource</c> object) and <c>outputConfig</c> (<c>jsonl</c>, <c>gcsDestination.outputUriPrefix</c>) and answers the job
/// <c>JOB_STATE_PENDING</c>; get answers it, and after <see cref="CompleteAfterPolls"/> gets runs it: every input line
/// becomes a line of <c>{outputUriPrefix}/prediction-model-…/predictions.jsonl</c>
/// (https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage: the request
/// echoed, <c>response</c> for a succeeded row, error details in <c>status</c> otherwise), state <c>JOB_STATE_SUCCEEDED</c>,
/// <c>outputInfo.gcsOutputDirectory</c>, <c>completionStats</c> as int64 strings; <c>:cancel</c> answers <c>{}</c> and
/// cancels a job that has not run.</item>
/// </list>
/// Claude jobs (<c>publishers/anthropic/models/…</c>, https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude-batch)
/// read <c>{"custom_id", "request"}</c> rows whose request is the Anthropic Messages body with
/// <c>anthropic_version: vertex-2023-10-16</c> and no <c>model</c> (a row without them fails the job) and write each row's
/// columns back with <c>response</c> (a Messages response, "batch: {text}", 12 + 7 tokens) and <c>status</c>.
/// A line whose last user text contains "please fail" fails with a status text holding Google's error envelope
/// (400 INVALID_ARGUMENT, "scripted batch error"); others are answered "batch: {text}" with 10 + 3 tokens.
/// </summary>
public sealed partial class FakeVertexUpstream
{
    /// <summary>The Cloud Storage API root (the server's address).</summary>
    public string StorageBaseUrl { get; private set; } = string.Empty;

    /// <summary>Stored objects by <c>{bucket}/{name}</c>.</summary>
    public ConcurrentDictionary<string, string> Objects { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, FakeJob> Jobs { get; } = new(StringComparer.Ordinal);

    /// <summary>Gets of a job before it runs. Default 1.</summary>
    public int CompleteAfterPolls { get; set; } = 1;

    /// <summary>When set, a job fails with this gRPC code and message instead of running.</summary>
    public (int Code, string Message)? FailJobWith { get; set; }

    /// <summary>When set, job creation answers this failure.</summary>
    public Failure? CreateJobFailure { get; set; }

    /// <summary>Objects per page of <c>objects.list</c>. Default 2 (so listings page).</summary>
    public int ListPageSize { get; set; } = 2;

    public sealed class FakeJob
    {
        public required string Id { get; init; }

        public required JsonObject Resource { get; init; }

        public int Polls { get; set; }

        public bool CancelRequested { get; set; }
    }

    private void MapBatches(WebApplication app)
    {
        app.MapPost("/upload/storage/v1/b/{bucket}/o", UploadAsync);
        app.MapGet("/storage/v1/b/{bucket}/o", ListAsync);
        app.MapGet("/storage/v1/b/{bucket}/o/{**name}", DownloadAsync);
        app.MapPost("/v1/projects/{project}/locations/{location}/batchPredictionJobs", CreateJobAsync);
        app.MapGet("/v1/projects/{project}/locations/{location}/batchPredictionJobs/{job}", GetJobAsync);
        app.MapPost("/v1/projects/{project}/locations/{location}/batchPredictionJobs/{job}", CancelJobAsync);
    }

    private async Task<bool> AuthorizedAsync(HttpContext context)
    {
        var authorization = context.Request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.Ordinal) && ValidTokens.ContainsKey(authorization["Bearer ".Length..]))
        {
            return true;
        }

        await WriteGoogleErrorAsync(context, new Failure(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."));
        return false;
    }

    private static UpstreamRequest Record(HttpContext context, JsonObject? body = null) => new(
        context.Request.Method,
        context.Request.Path.Value!,
        context.Request.QueryString.Value ?? string.Empty,
        context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()),
        body);

    private async Task UploadAsync(HttpContext context, string bucket)
    {
        Requests.Enqueue(Record(context));
        if (!await AuthorizedAsync(context))
        {
            return;
        }

        var name = context.Request.Query["name"].ToString();
        if (context.Request.Query["uploadType"] != "media" || name.Length == 0)
        {
            await WriteGoogleErrorAsync(context, new Failure(400, "uploadType=media and name are required."));
            return;
        }

        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(context.RequestAborted);
        Objects[bucket + "/" + name] = text;
        await context.Response.WriteAsJsonAsync(new JsonObject { ["kind"] = "storage#object", ["name"] = name, ["bucket"] = bucket, ["size"] = Encoding.UTF8.GetByteCount(text).ToString(CultureInfo.InvariantCulture), ["contentType"] = context.Request.ContentType });
    }

    private async Task DownloadAsync(HttpContext context, string bucket)
    {
        Requests.Enqueue(Record(context));
        if (!await AuthorizedAsync(context))
        {
            return;
        }

        // The object name is one escaped path segment (https://cloud.google.com/storage/docs/request-endpoints#encoding).
        var raw = context.Request.Path.Value!;
        var escaped = raw[(raw.IndexOf("/o/", StringComparison.Ordinal) + 3)..];
        if (escaped.Contains('/', StringComparison.Ordinal) || context.Request.Query["alt"] != "media")
        {
            await WriteGoogleErrorAsync(context, new Failure(404, "No such object (the name must be escaped, with alt=media)."));
            return;
        }

        if (!Objects.TryGetValue(bucket + "/" + Uri.UnescapeDataString(escaped), out var text))
        {
            await WriteGoogleErrorAsync(context, new Failure(404, $"No such object: {bucket}/{Uri.UnescapeDataString(escaped)}"));
            return;
        }

        context.Response.ContentType = "application/octet-stream";
        await context.Response.WriteAsync(text, context.RequestAborted);
    }

    private async Task ListAsync(HttpContext context, string bucket)
    {
        Requests.Enqueue(Record(context));
        if (!await AuthorizedAsync(context))
        {
            return;
        }

        var prefix = bucket + "/" + context.Request.Query["prefix"];
        var start = int.TryParse(context.Request.Query["pageToken"], CultureInfo.InvariantCulture, out var token) ? token : 0;
        var names = Objects.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).Select(k => k[(bucket.Length + 1)..]).ToList();
        var page = names.Skip(start).Take(ListPageSize).ToList();
        var answer = new JsonObject { ["kind"] = "storage#objects", ["items"] = new JsonArray([.. page.Select(n => (JsonNode)new JsonObject { ["name"] = n, ["bucket"] = bucket })]) };
        if (start + ListPageSize < names.Count)
        {
            answer["nextPageToken"] = (start + ListPageSize).ToString(CultureInfo.InvariantCulture);
        }

        await context.Response.WriteAsJsonAsync(answer);
    }

    private async Task CreateJobAsync(HttpContext context, string project, string location)
    {
        var request = await UpstreamRequest.ReadAsync(context);
        Requests.Enqueue(request);
        if (!await AuthorizedAsync(context))
        {
            return;
        }

        if (CreateJobFailure is { } failure)
        {
            await WriteGoogleErrorAsync(context, failure);
            return;
        }

        var body = request.Body!;
        var inputUri = body["inputConfig"]?["gcsSource"]?["uris"]?[0]?.GetValue<string>() ?? string.Empty;
        if (body["model"]?.GetValue<string>() is not { } model || !(model.StartsWith("publishers/google/models/", StringComparison.Ordinal) || model.StartsWith("publishers/anthropic/models/claude-", StringComparison.Ordinal))
            || body["inputConfig"]?["instancesFormat"]?.GetValue<string>() != "jsonl"
            || !inputUri.StartsWith("gs://", StringComparison.Ordinal) || !Objects.ContainsKey(inputUri["gs://".Length..])
            || body["outputConfig"]?["predictionsFormat"]?.GetValue<string>() != "jsonl"
            || body["outputConfig"]?["gcsDestination"]?["outputUriPrefix"]?.GetValue<string>() is not { } output || !output.StartsWith("gs://", StringComparison.Ordinal))
        {
            await WriteGoogleErrorAsync(context, new Failure(400, "Invalid batch prediction job: model, jsonl inputConfig with an existing gcsSource, jsonl outputConfig with gcsDestination are required."));
            return;
        }

        var id = (7_000_000_000_000L + Interlocked.Increment(ref _counter)).ToString(CultureInfo.InvariantCulture);
        var resource = body.DeepClone().AsObject();
        resource["name"] = $"projects/{project}/locations/{location}/batchPredictionJobs/{id}";
        resource["state"] = "JOB_STATE_PENDING";
        resource["createTime"] = "2026-12-06T10:00:00.123456Z";
        Jobs[id] = new FakeJob { Id = id, Resource = resource };
        await context.Response.WriteAsJsonAsync(resource);
    }

    private async Task GetJobAsync(HttpContext context, string job)
    {
        Requests.Enqueue(Record(context));
        if (!await AuthorizedAsync(context))
        {
            return;
        }

        if (!Jobs.TryGetValue(job, out var fake))
        {
            await WriteGoogleErrorAsync(context, new Failure(404, $"BatchPredictionJob {job} not found."));
            return;
        }

        lock (fake)
        {
            var state = fake.Resource["state"]!.GetValue<string>();
            if (state is "JOB_STATE_PENDING" or "JOB_STATE_RUNNING" && !fake.CancelRequested && ++fake.Polls > CompleteAfterPolls)
            {
                Run(fake);
            }
            else if (state is "JOB_STATE_PENDING" or "JOB_STATE_RUNNING")
            {
                fake.Resource["state"] = fake.CancelRequested ? "JOB_STATE_CANCELLED" : "JOB_STATE_RUNNING";
                if (fake.CancelRequested)
                {
                    fake.Resource["endTime"] = "2026-12-06T10:05:00Z";
                }
            }
        }

        await context.Response.WriteAsJsonAsync(fake.Resource);
    }

    private async Task CancelJobAsync(HttpContext context, string job)
    {
        Requests.Enqueue(Record(context));
        if (!await AuthorizedAsync(context))
        {
            return;
        }

        if (!job.EndsWith(":cancel", StringComparison.Ordinal) || !Jobs.TryGetValue(job[..^":cancel".Length], out var fake))
        {
            await WriteGoogleErrorAsync(context, new Failure(404, $"No method or job {job}."));
            return;
        }

        lock (fake)
        {
            fake.CancelRequested = true;
        }

        await context.Response.WriteAsJsonAsync(new JsonObject());
    }

    /// <summary>Runs a job: reads its input object and writes one prediction line per input line.</summary>
    private void Run(FakeJob job)
    {
        var resource = job.Resource;
        if (FailJobWith is { } failure)
        {
            resource["state"] = "JOB_STATE_FAILED";
            resource["error"] = new JsonObject { ["code"] = failure.Code, ["message"] = failure.Message };
            resource["endTime"] = "2026-12-06T10:05:00Z";
            return;
        }

        var input = Objects[resource["inputConfig"]!["gcsSource"]!["uris"]![0]!.GetValue<string>()["gs://".Length..]];
        var output = new StringBuilder();
        int succeeded = 0, failed = 0, index = 0;
        var claude = resource["model"]!.GetValue<string>().StartsWith("publishers/anthropic/", StringComparison.Ordinal);
        foreach (var line in input.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (claude)
            {
                var row = JsonNode.Parse(line)!.AsObject();
                var body = row["request"]!.AsObject();
                if (row["custom_id"] is null || body["anthropic_version"]?.GetValue<string>() != "vertex-2023-10-16" || body.ContainsKey("model") || body["max_tokens"] is null)
                {
                    resource["state"] = "JOB_STATE_FAILED";
                    resource["error"] = new JsonObject { ["code"] = 3, ["message"] = "Invalid Claude batch row: custom_id, request with anthropic_version vertex-2023-10-16 and max_tokens, no model." };
                    return;
                }

                var said = FakeAnthropicUpstream.LastUserText(body);
                var result = row.DeepClone().AsObject();
                if (said.Contains("please fail", StringComparison.Ordinal))
                {
                    result["status"] = """Bad Request: {"error": {"code": 400, "message": "scripted batch error", "status": "INVALID_ARGUMENT"}}""";
                    failed++;
                }
                else
                {
                    var message = FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock("batch: " + said)), stopReason: said.Contains("too long", StringComparison.Ordinal) ? "max_tokens" : "end_turn");
                    message["id"] = $"msg_vrtx_{job.Id}_{index}";
                    message["type"] = "message";
                    message["role"] = "assistant";
                    message["model"] = resource["model"]!.GetValue<string>()["publishers/anthropic/models/".Length..];
                    result["response"] = message;
                    result["status"] = string.Empty;
                    succeeded++;
                }

                output.Append(result.ToJsonString()).Append('\n');
                index++;
                continue;
            }

            var request = JsonNode.Parse(line)!["request"]!.AsObject();
            var text = FakeGeminiUpstream.LastUserText(request);
            var prediction = new JsonObject { ["processed_time"] = "2026-12-06T10:04:00.000+00:00", ["request"] = request.DeepClone() };
            if (text.Contains("please fail", StringComparison.Ordinal))
            {
                prediction["status"] = """Bad Request: {"error": {"code": 400, "message": "scripted batch error", "status": "INVALID_ARGUMENT"}}""";
                failed++;
            }
            else
            {
                var response = FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text("batch: " + text)), prompt: 10, candidates: 3);
                response["responseId"] = $"resp_{job.Id}_{index}";
                response["modelVersion"] = resource["model"]!.GetValue<string>()["publishers/google/models/".Length..] + "-001";
                prediction["status"] = string.Empty;
                prediction["response"] = response;
                succeeded++;
            }

            output.Append(prediction.ToJsonString()).Append('\n');
            index++;
        }

        var directory = resource["outputConfig"]!["gcsDestination"]!["outputUriPrefix"]!.GetValue<string>() + "/prediction-model-2026-12-06T10:00:00.123456Z";
        var path = directory["gs://".Length..];
        Objects[path + "/predictions.jsonl"] = output.ToString();
        Objects[path + "/errors_stats.json"] = "{}"; // not a predictions file: not read
        resource["state"] = "JOB_STATE_SUCCEEDED";
        resource["endTime"] = "2026-12-06T10:05:00Z";
        resource["outputInfo"] = new JsonObject { ["gcsOutputDirectory"] = directory };
        resource["completionStats"] = new JsonObject
        {
            ["successfulCount"] = succeeded.ToString(CultureInfo.InvariantCulture),
            ["failedCount"] = failed.ToString(CultureInfo.InvariantCulture),
            ["incompleteCount"] = "0",
        };
    }
}
