using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Http.Features;

namespace Bifrost.Middleware.Bedrock.Tests;

/// <summary>
/// A fake Bedrock control plane and a fake S3 (path-style), each on its own loopback Kestrel, speaking the documented wire
/// formats: <c>POST /model-invocation-job</c> → <c>{"jobArn"}</c>
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateModelInvocationJob.html), <c>GET
/// /model-invocation-job/{jobIdentifier}</c> → the job with <c>status</c>, <c>message</c>, the data configs and record counts
/// (API_GetModelInvocationJob.html), <c>POST /model-invocation-job/{jobIdentifier}/stop</c> (API_StopModelInvocationJob.html);
/// S3 <c>PUT</c>/<c>GET /{bucket}/{key}</c> (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html,
/// API_GetObject.html; errors as <c>&lt;Error&gt;&lt;Code&gt;…</c> XML). A job reads its input records
/// (<c>{"recordId","modelInput"}</c>) from the fake S3 and, when it ends, writes <c>{output}/{job id}/input.jsonl.out</c> with
/// <c>{"recordId","modelInput","modelOutput"}</c> or <c>"error": {"errorCode","errorMessage"}</c> per record
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-results.html), the <c>modelOutput</c> being the
/// InvokeModel answer of the job's model: Claude's Messages response
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html), Amazon Nova's
/// <c>{"output": {"message": {"role", "content": [{"text"}]}}, "stopReason", "usage": {"inputTokens", "outputTokens",
/// "totalTokens"}}</c> (https://docs.aws.amazon.com/nova/latest/userguide/using-invoke-api.html), Meta Llama's
/// <c>{"generation", "prompt_token_count", "generation_token_count", "stop_reason"}</c>
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html) or Titan Text Embeddings V2's
/// <c>{"embedding", "inputTextTokenCount"}</c> (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html). Every request is checked with
/// <see cref="Verify"/> (SigV4: service <c>bedrock</c> with the path encoded again, or <c>s3</c> with the path as sent and
/// <c>x-amz-content-sha256</c> matching the body) and refused with a 403 when it fails.
/// </summary>
public sealed class FakeBedrockBatchUpstream : IAsyncDisposable
{
    public const string Account = "123456789012";
    private LocalServer _control = null!;
    private LocalServer _s3 = null!;
    private int _jobs;

    public string ControlPlaneUrl { get; private set; } = string.Empty;

    public string S3Url { get; private set; } = string.Empty;

    public ConcurrentQueue<Recorded> Requests { get; } = new();

    /// <summary>S3 objects by <c>{bucket}/{key}</c>.</summary>
    public ConcurrentDictionary<string, byte[]> Objects { get; } = new();

    public ConcurrentDictionary<string, Job> Jobs { get; } = new();

    /// <summary>Checks each request (service, request); a non-null result is answered as a 403 with that message.</summary>
    public Func<string, Recorded, string?>? Verify { get; set; }

    /// <summary>Polls of a job before it ends (default 2).</summary>
    public int CompleteAfterPolls { get; set; } = 2;

    /// <summary>When set, jobs end <c>Failed</c> with this message, without output.</summary>
    public string? FailJobWith { get; set; }

    /// <summary>When set, jobs end <c>PartiallyCompleted</c> with only this many records in their output.</summary>
    public int? PartialRecords { get; set; }

    /// <summary>When set, <c>CreateModelInvocationJob</c> answers this status with <c>{"message"}</c>.</summary>
    public (int Status, string Message)? CreateFailure { get; set; }

    public static async Task<FakeBedrockBatchUpstream> StartAsync()
    {
        var fake = new FakeBedrockBatchUpstream();
        fake._control = await LocalServer.StartAsync(app => app.Run(context => fake.HandleControlAsync(context)));
        fake._s3 = await LocalServer.StartAsync(app => app.Run(context => fake.HandleS3Async(context)));
        fake.ControlPlaneUrl = fake._control.Address;
        fake.S3Url = fake._s3.Address;
        return fake;
    }

    public async ValueTask DisposeAsync()
    {
        await _control.DisposeAsync();
        await _s3.DisposeAsync();
    }

    private static async Task<Recorded> RecordAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        return new Recorded(
            context.Request.Method,
            context.Features.Get<IHttpRequestFeature>()!.RawTarget,
            context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()),
            buffer.ToArray());
    }

    private async Task HandleControlAsync(HttpContext context)
    {
        var request = await RecordAsync(context);
        Requests.Enqueue(request with { Service = "bedrock" });
        if (Verify?.Invoke("bedrock", request) is { } refusal)
        {
            await JsonErrorAsync(context, 403, refusal);
            return;
        }

        var segments = request.RawTarget.Split('?')[0].Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (request.Method == "POST" && segments is ["model-invocation-job"])
        {
            if (CreateFailure is { } failure)
            {
                await JsonErrorAsync(context, failure.Status, failure.Message);
                return;
            }

            var body = JsonNode.Parse(request.Body)!.AsObject();
            var id = "job" + Interlocked.Increment(ref _jobs).ToString("D9", System.Globalization.CultureInfo.InvariantCulture);
            var job = new Job($"arn:aws:bedrock:eu-west-3:{Account}:model-invocation-job/{id}", id, body);
            var inputUri = body["inputDataConfig"]!["s3InputDataConfig"]!["s3Uri"]!.GetValue<string>();
            if (!Objects.TryGetValue(inputUri["s3://".Length..], out var input))
            {
                await JsonErrorAsync(context, 400, "The input S3 object does not exist.");
                return;
            }

            job.Records.AddRange(Encoding.UTF8.GetString(input).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()));
            Jobs[job.Arn] = job;
            await context.Response.WriteAsJsonAsync(new JsonObject { ["jobArn"] = job.Arn });
            return;
        }

        if (segments.Length is 2 or 3 && segments[0] == "model-invocation-job" && Jobs.TryGetValue(Uri.UnescapeDataString(segments[1]), out var found))
        {
            if (segments.Length == 3 && segments[2] == "stop" && request.Method == "POST")
            {
                found.StopRequested = true;
                context.Response.StatusCode = 200;
                return;
            }

            if (segments.Length == 2 && request.Method == "GET")
            {
                await context.Response.WriteAsJsonAsync(Poll(found));
                return;
            }
        }

        await JsonErrorAsync(context, 404, "The specified job was not found.", "ResourceNotFoundException");
    }

    private JsonObject Poll(Job job)
    {
        lock (job)
        {
            job.Polls++;
            if (job.Status is "Submitted" or "InProgress" or "Stopping")
            {
                if (job.StopRequested)
                {
                    job.Status = job.Status == "Stopping" ? "Stopped" : "Stopping";
                }
                else if (job.Polls >= CompleteAfterPolls)
                {
                    End(job);
                }
                else
                {
                    job.Status = "InProgress";
                }
            }

            var input = job.Body["inputDataConfig"]!.DeepClone();
            var output = job.Body["outputDataConfig"]!.DeepClone();
            var answer = new JsonObject
            {
                ["jobArn"] = job.Arn,
                ["jobName"] = job.Body["jobName"]!.DeepClone(),
                ["modelId"] = job.Body["modelId"]!.DeepClone(),
                ["roleArn"] = job.Body["roleArn"]!.DeepClone(),
                ["status"] = job.Status,
                ["submitTime"] = "2026-12-06T10:00:00.123Z",
                ["lastModifiedTime"] = "2026-12-06T10:05:00Z",
                ["inputDataConfig"] = input,
                ["outputDataConfig"] = output,
                ["timeoutDurationInHours"] = job.Body["timeoutDurationInHours"]?.DeepClone(),
                ["jobExpirationTime"] = "2026-12-07T10:00:00Z",
                ["totalRecordCount"] = job.Records.Count,
                ["processedRecordCount"] = job.Succeeded + job.Failed,
                ["successRecordCount"] = job.Succeeded,
                ["errorRecordCount"] = job.Failed,
            };
            if (job.Message is not null)
            {
                answer["message"] = job.Message;
            }

            if (job.Status is "Completed" or "PartiallyCompleted" or "Failed" or "Stopped" or "Expired")
            {
                answer["endTime"] = "2026-12-06T11:00:00Z";
            }

            return answer;
        }
    }

    /// <summary>Ends the job: reads its records from S3, answers each (an echo, or an error for "please fail"), writes the output object.</summary>
    private void End(Job job)
    {
        var inputUri = job.Body["inputDataConfig"]!["s3InputDataConfig"]!["s3Uri"]!.GetValue<string>();
        var records = job.Records;
        if (FailJobWith is { } message)
        {
            job.Status = "Failed";
            job.Message = message;
            return;
        }

        var run = PartialRecords is { } partial ? records.Take(partial).ToList() : records;
        var lines = new StringBuilder();
        var modelId = job.Body["modelId"]!.GetValue<string>();
        foreach (var record in run)
        {
            var input = record["modelInput"]!;
            var text = InputText(modelId, input);
            var line = new JsonObject { ["recordId"] = record["recordId"]!.DeepClone(), ["modelInput"] = input.DeepClone() };
            if (text.Contains("please fail", StringComparison.Ordinal))
            {
                line["error"] = new JsonObject { ["errorCode"] = 400, ["errorMessage"] = "scripted record error" };
                job.Failed++;
            }
            else
            {
                line["modelOutput"] = ModelOutput(modelId, record, text, job.Succeeded);
                job.Succeeded++;
            }

            lines.Append(line.ToJsonString()).Append('\n');
        }

        var outputUri = job.Body["outputDataConfig"]!["s3OutputDataConfig"]!["s3Uri"]!.GetValue<string>()["s3://".Length..].TrimEnd('/');
        var inputName = inputUri[(inputUri.LastIndexOf('/') + 1)..];
        Objects[$"{outputUri}/{job.Id}/{inputName}.out"] = Encoding.UTF8.GetBytes(lines.ToString());
        job.Status = PartialRecords is null ? "Completed" : "PartiallyCompleted";
    }

    /// <summary>The text a record's answer echoes: the last message's text, Llama's prompt after its last user header, or Titan's input text.</summary>
    private static string InputText(string modelId, JsonNode input)
    {
        if (modelId.Contains("meta.llama", StringComparison.Ordinal))
        {
            var prompt = input["prompt"]!.GetValue<string>();
            var start = prompt.LastIndexOf("<|start_header_id|>user<|end_header_id|>\n\n", StringComparison.Ordinal) + "<|start_header_id|>user<|end_header_id|>\n\n".Length;
            return prompt[start..prompt.IndexOf("<|eot_id|>", start, StringComparison.Ordinal)];
        }

        if (modelId.Contains("titan-embed", StringComparison.Ordinal))
        {
            return input["inputText"]!.GetValue<string>();
        }

        var content = input["messages"]!.AsArray()[^1]!["content"]!;
        return content is JsonValue ? content.GetValue<string>() : content[0]!["text"]!.GetValue<string>();
    }

    /// <summary>The job's model's InvokeModel answer for one record; a text with "too long" stops at the token limit.</summary>
    private static JsonObject ModelOutput(string modelId, JsonObject record, string text, int succeeded)
    {
        var limit = text.Contains("too long", StringComparison.Ordinal);
        if (modelId.Contains("amazon.nova", StringComparison.Ordinal))
        {
            return new JsonObject
            {
                ["output"] = new JsonObject { ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = new JsonArray(new JsonObject { ["text"] = "nova: " + text }) } },
                ["stopReason"] = limit ? "max_tokens" : "end_turn",
                ["usage"] = new JsonObject { ["inputTokens"] = 7, ["outputTokens"] = 2, ["totalTokens"] = 9 },
            };
        }

        if (modelId.Contains("meta.llama", StringComparison.Ordinal))
        {
            return new JsonObject { ["generation"] = "llama: " + text, ["prompt_token_count"] = 11, ["generation_token_count"] = 4, ["stop_reason"] = limit ? "length" : "stop" };
        }

        if (modelId.Contains("titan-embed", StringComparison.Ordinal))
        {
            var dimensions = record["modelInput"]!["dimensions"]?.GetValue<int>() ?? 3;
            return new JsonObject { ["embedding"] = new JsonArray([.. Enumerable.Range(0, dimensions).Select(i => JsonValue.Create(text.Length + (i / 10f)))]), ["inputTextTokenCount"] = text.Length };
        }

        // Claude's InvokeModel answer (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html)
        return new JsonObject
        {
            ["id"] = "msg_" + record["recordId"]!.GetValue<string>().Length.ToString(System.Globalization.CultureInfo.InvariantCulture) + "_" + succeeded.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["type"] = "message",
            ["role"] = "assistant",
            ["model"] = "claude-3-5-sonnet-20240620",
            ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "batch: " + text }),
            ["stop_reason"] = "end_turn",
            ["stop_sequence"] = null,
            ["usage"] = new JsonObject { ["input_tokens"] = 10, ["output_tokens"] = 3 },
        };
    }

    private async Task HandleS3Async(HttpContext context)
    {
        var request = await RecordAsync(context);
        Requests.Enqueue(request with { Service = "s3" });
        var declared = request.Headers.GetValueOrDefault("x-amz-content-sha256");
        if (declared != Convert.ToHexStringLower(SHA256.HashData(request.Body)))
        {
            await XmlErrorAsync(context, 400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
            return;
        }

        if (Verify?.Invoke("s3", request) is { } refusal)
        {
            await XmlErrorAsync(context, 403, "SignatureDoesNotMatch", refusal);
            return;
        }

        var path = Uri.UnescapeDataString(request.RawTarget.Split('?')[0].TrimStart('/'));
        switch (request.Method)
        {
            case "PUT":
                Objects[path] = request.Body;
                context.Response.Headers.ETag = "\"" + Convert.ToHexStringLower(MD5.HashData(request.Body)) + "\"";
                return;
            case "GET" when Objects.TryGetValue(path, out var bytes):
                context.Response.ContentType = "application/octet-stream";
                await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
                return;
            default:
                await XmlErrorAsync(context, 404, "NoSuchKey", "The specified key does not exist.");
                return;
        }
    }

    private static async Task JsonErrorAsync(HttpContext context, int status, string message, string? type = null)
    {
        context.Response.StatusCode = status;
        context.Response.Headers["x-amzn-ErrorType"] = (type ?? (status == 403 ? "AccessDeniedException" : "ValidationException")) + ":http://internal.amazon.com/coral/com.amazon.bedrock/";
        await context.Response.WriteAsJsonAsync(new JsonObject { ["message"] = message });
    }

    private static async Task XmlErrorAsync(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/xml";
        await context.Response.WriteAsync($"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{System.Net.WebUtility.HtmlEncode(message)}</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>");
    }

    /// <summary>A request as received: method, raw target (still percent-encoded), headers (lower-case names), body; the service that served it.</summary>
    public sealed record Recorded(string Method, string RawTarget, IReadOnlyDictionary<string, string> Headers, byte[] Body, string Service = "")
    {
        public JsonObject Json => JsonNode.Parse(Body)!.AsObject();
    }

    public sealed class Job(string arn, string id, JsonObject body)
    {
        public string Arn { get; } = arn;

        public string Id { get; } = id;

        public JsonObject Body { get; } = body;

        public string Status { get; set; } = "Submitted";

        public string? Message { get; set; }

        public int Polls { get; set; }

        public bool StopRequested { get; set; }

        public List<JsonObject> Records { get; } = [];

        public int Succeeded { get; set; }

        public int Failed { get; set; }
    }
}
