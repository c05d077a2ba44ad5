using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Hashing;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Http.Features;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>
/// A fake Amazon Bedrock Runtime on 127.0.0.1 (Kestrel) speaking the documented wire format:
/// <c>POST /model/{modelId}/converse</c> (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html),
/// <c>POST /model/{modelId}/converse-stream</c> answering <c>application/vnd.amazon.eventstream</c> frames
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html,
/// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html: messageStart,
/// contentBlockStart/Delta/Stop, messageStop, metadata; exception frames), and <c>POST /model/{modelId}/invoke</c> for
/// Titan Text Embeddings (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html) and
/// Cohere Embed (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html), InvokeModel for Amazon Nova
/// Canvas and Titan Image Generator text-to-image (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html:
/// <c>{"images": [base64], "error"}</c>, the content filters of https://docs.aws.amazon.com/nova/latest/userguide/image-gen-errors.html),
/// the control plane's <c>GET /foundation-models</c> (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_ListFoundationModels.html)
/// and <c>GET /inference-profiles</c> paged by <c>nextToken</c> (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_ListInferenceProfiles.html),
/// and Agents for Amazon Bedrock Runtime's <c>POST /rerank</c> (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_agent-runtime_Rerank.html:
/// <c>{"results": [{"index", "relevanceScore"}], "nextToken"}</c>) — all on one address, as a proxy BaseUrl serves them. Errors are
/// <c>{"message":"..."}</c> with the type in <c>x-amzn-ErrorType</c>. It records every request with its raw target (the
/// model id as sent, still percent-encoded) and body bytes; <see cref="Verify"/> may refuse a request (e.g. a bad signature).
/// </summary>
public sealed class FakeBedrockUpstream : IAsyncDisposable
{
    private LocalServer _server = null!;
    private int _counter;

    public string BaseUrl { get; private set; } = string.Empty;

    public ConcurrentQueue<Recorded> Requests { get; } = new();

    /// <summary>The conformance script for converse and converse-stream.</summary>
    public ProviderScript? Script { get; set; }

    /// <summary>One-shot failures answered (in order) before normal answers on every route.</summary>
    public ConcurrentQueue<Failure> Failures { get; } = new();

    /// <summary>Builds the Converse answer; default: an echo of the last user text.</summary>
    public Func<JsonObject, JsonObject>? Respond { get; set; }

    /// <summary>Frames to send instead of the answer's normal event sequence (broken streams, exception frames).</summary>
    public Func<JsonObject, IEnumerable<byte[]>>? RawStream { get; set; }

    /// <summary>Checks each request before it is answered; a non-null result is answered as a 403 with that message.</summary>
    public Func<Recorded, string?>? Verify { get; set; }

    // gaps: refusals with their own status and AWS error type (e.g. a 403 ExpiredTokenException for an expired session token).

    /// <summary>Checks each request after <see cref="Verify"/>; a non-null failure is answered as it says.</summary>
    public Func<Recorded, Failure?>? Refuse { get; set; }

    public IEnumerable<Recorded> ChatRequests => Requests.Where(r => r.Operation is "converse" or "converse-stream");

    /// <summary>ListFoundationModels' <c>modelSummaries</c>.</summary>
    public JsonArray FoundationModels { get; set; } = [];

    /// <summary>ListInferenceProfiles' pages of <c>inferenceProfileSummaries</c> (page i's <c>nextToken</c> is <c>page-{i+1}</c>).</summary>
    public List<JsonArray> InferenceProfilePages { get; } = [];

    /// <summary>How many rerank results one answer carries before a <c>nextToken</c> (default: all).</summary>
    public int? RerankPageSize { get; set; }

    /// <summary>The <c>error</c> of an image answer (output filter), with how many images it drops.</summary>
    public (string Error, int Dropped)? ImageFilter { get; set; }

    /// <summary>The base64 of the fake PNG bytes for image <paramref name="i"/> of a prompt.</summary>
    public static string ImageBase64(string prompt, int i, long? seed) => Convert.ToBase64String(Encoding.UTF8.GetBytes($"\u0089PNG {prompt} #{i} seed={seed}"));

    /// <summary>The fake reranker's score of a document: the share of the query's words it contains (ties: the later document higher, so order is not trivial).</summary>
    public static double RerankScore(string query, string document, int index)
    {
        var words = query.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var hits = words.Count(w => document.Contains(w, StringComparison.OrdinalIgnoreCase));
        return Math.Round((double)hits / words.Length, 3) + (index * 0.0001);
    }

    public static async Task<FakeBedrockUpstream> StartAsync()
    {
        var upstream = new FakeBedrockUpstream();
        upstream._server = await LocalServer.StartAsync(app =>
        {
            app.MapPost("/model/{model}/{operation}", (HttpContext context) => upstream.HandleAsync(context));
            app.MapGet("/foundation-models", (HttpContext context) => upstream.HandleServiceAsync(context, "foundation-models"));
            app.MapGet("/inference-profiles", (HttpContext context) => upstream.HandleServiceAsync(context, "inference-profiles"));
            app.MapPost("/rerank", (HttpContext context) => upstream.HandleServiceAsync(context, "rerank"));
        });
        upstream.BaseUrl = upstream._server.Address;
        return upstream;
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    /// <summary>A Converse answer: <c>{"output":{"message":{"role":"assistant","content":[...]}},"stopReason","usage","metrics"}</c>.</summary>
    public static JsonObject Answer(JsonArray content, string stopReason = "end_turn", int input = 12, int output = 7, int? cacheRead = null, int? cacheWrite = null)
    {
        var usage = new JsonObject { ["inputTokens"] = input, ["outputTokens"] = output, ["totalTokens"] = input + output + (cacheRead ?? 0) + (cacheWrite ?? 0) };
        if (cacheRead is not null)
        {
            usage["cacheReadInputTokens"] = cacheRead;
        }

        if (cacheWrite is not null)
        {
            usage["cacheWriteInputTokens"] = cacheWrite;
        }

        return new JsonObject
        {
            ["output"] = new JsonObject { ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content } },
            ["stopReason"] = stopReason,
            ["usage"] = usage,
            ["metrics"] = new JsonObject { ["latencyMs"] = 321 },
        };
    }

    public static JsonObject Text(string text) => new() { ["text"] = text };

    public static JsonObject ToolUse(string id, string name, JsonObject input) => new() { ["toolUse"] = new JsonObject { ["toolUseId"] = id, ["name"] = name, ["input"] = input } };

    public static string LastUserText(JsonObject request)
    {
        var messages = request["messages"]!.AsArray();
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i]!["role"]!.GetValue<string>() != "user")
            {
                continue;
            }

            foreach (var block in messages[i]!["content"]!.AsArray())
            {
                if (block!["text"] is { } text)
                {
                    return text.GetValue<string>();
                }
            }
        }

        return string.Empty;
    }

    /// <summary>
    /// One event-stream frame: <c>[total u32][headers u32][prelude CRC32][headers][payload][message CRC32]</c>, string
    /// headers (type 7) — the layout of AWSSDK.Core's EventStreamMessage and the Smithy event-stream specification.
    /// </summary>
    public static byte[] Frame(IEnumerable<(string Name, string Value)> headers, byte[] payload)
    {
        var headerBytes = new List<byte>();
        foreach (var (name, value) in headers)
        {
            var n = Encoding.UTF8.GetBytes(name);
            var v = Encoding.UTF8.GetBytes(value);
            headerBytes.Add((byte)n.Length);
            headerBytes.AddRange(n);
            headerBytes.Add(7);
            headerBytes.Add((byte)(v.Length >> 8));
            headerBytes.Add((byte)v.Length);
            headerBytes.AddRange(v);
        }

        var total = 12 + headerBytes.Count + payload.Length + 4;
        var frame = new byte[total];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)total);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), (uint)headerBytes.Count);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(8), Crc32.HashToUInt32(frame.AsSpan(0, 8)));
        headerBytes.CopyTo(frame, 12);
        payload.CopyTo(frame, 12 + headerBytes.Count);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(total - 4), Crc32.HashToUInt32(frame.AsSpan(0, total - 4)));
        return frame;
    }

    /// <summary>An event frame (<c>:message-type: event</c>) with a JSON payload.</summary>
    public static byte[] Event(string eventType, JsonObject payload) =>
        Frame([(":event-type", eventType), (":content-type", "application/json"), (":message-type", "event")], Encoding.UTF8.GetBytes(payload.ToJsonString()));

    /// <summary>An exception frame (<c>:message-type: exception</c>) with <c>{"message"}</c>.</summary>
    public static byte[] Exception(string exceptionType, string message) =>
        Frame([(":exception-type", exceptionType), (":content-type", "application/json"), (":message-type", "exception")], Encoding.UTF8.GetBytes(new JsonObject { ["message"] = message }.ToJsonString()));

    /// <summary>The event sequence of a Converse answer, as ConverseStream sends it.</summary>
    public static IEnumerable<byte[]> Events(JsonObject answer)
    {
        yield return Event("messageStart", new JsonObject { ["role"] = "assistant" });
        var blocks = answer["output"]!["message"]!["content"]!.AsArray();
        for (var i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i]!.AsObject();
            if (block["toolUse"] is JsonObject use)
            {
                yield return Event("contentBlockStart", new JsonObject { ["contentBlockIndex"] = i, ["start"] = new JsonObject { ["toolUse"] = new JsonObject { ["toolUseId"] = use["toolUseId"]!.DeepClone(), ["name"] = use["name"]!.DeepClone() } } });
                var input = use["input"]!.ToJsonString();
                var half = input.Length / 2;
                foreach (var piece in new[] { input[..half], input[half..] })
                {
                    yield return Event("contentBlockDelta", new JsonObject { ["contentBlockIndex"] = i, ["delta"] = new JsonObject { ["toolUse"] = new JsonObject { ["input"] = piece } } });
                }
            }
            else if (block["reasoningContent"] is JsonObject reasoning)
            {
                yield return Event("contentBlockDelta", new JsonObject { ["contentBlockIndex"] = i, ["delta"] = new JsonObject { ["reasoningContent"] = new JsonObject { ["text"] = reasoning["reasoningText"]!["text"]!.DeepClone() } } });
            }
            else
            {
                foreach (var piece in Pieces(block["text"]!.GetValue<string>()))
                {
                    yield return Event("contentBlockDelta", new JsonObject { ["contentBlockIndex"] = i, ["delta"] = new JsonObject { ["text"] = piece } });
                }
            }

            yield return Event("contentBlockStop", new JsonObject { ["contentBlockIndex"] = i });
        }

        yield return Event("messageStop", new JsonObject { ["stopReason"] = answer["stopReason"]!.DeepClone() });
        yield return Event("metadata", new JsonObject { ["usage"] = answer["usage"]!.DeepClone(), ["metrics"] = new JsonObject { ["latencyMs"] = 321 } });
    }

    /// <summary>Word pieces: "Hello", " world", "!".</summary>
    public static IEnumerable<string> Pieces(string text)
    {
        var start = 0;
        while (start < text.Length)
        {
            var i = start;
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            while (i < text.Length && !char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            yield return text[start..i];
            start = i;
        }
    }

    /// <summary>The AWS error type a status stands for, as <c>x-amzn-ErrorType</c> carries it.</summary>
    public static string ErrorType(int status) => status switch
    {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    };

    private async Task HandleAsync(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()!.RawTarget;
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var bytes = buffer.ToArray();
        var body = bytes.Length > 0 ? JsonNode.Parse(bytes)!.AsObject() : null;
        var path = raw.Split('?')[0];
        var segments = path.Split('/');
        var recorded = new Recorded(
            context.Request.Method,
            raw,
            Uri.UnescapeDataString(segments[2]),
            segments[3],
            context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()),
            bytes,
            body);
        Requests.Enqueue(recorded);
        if (Verify?.Invoke(recorded) is { } refusal)
        {
            await WriteErrorAsync(context, new Failure(403, refusal, Type: "InvalidSignatureException"));
            return;
        }

        if (Refuse?.Invoke(recorded) is { } refused403)
        {
            await WriteErrorAsync(context, refused403);
            return;
        }

        switch (recorded.Operation)
        {
            case "converse" or "converse-stream":
                await ChatAsync(context, recorded, body!);
                break;
            case "count-tokens":
                if (Failures.TryDequeue(out var refused))
                {
                    await WriteErrorAsync(context, refused);
                    return;
                }

                // https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokens.html: {"inputTokens": n}; here, words of the text blocks
                var words = body!["input"]!["converse"]!.ToJsonString().Split("\"text\":\"").Skip(1).Sum(t => t.Split('"')[0].Split(' ').Length);
                await context.Response.WriteAsJsonAsync(new JsonObject { ["inputTokens"] = words });
                break;
            case "invoke":
                if (Failures.TryDequeue(out var failure))
                {
                    await WriteErrorAsync(context, failure);
                    return;
                }

                if (recorded.ModelId.Contains("nova-canvas", StringComparison.Ordinal) || recorded.ModelId.Contains("titan-image", StringComparison.Ordinal))
                {
                    await context.Response.WriteAsJsonAsync(Images(body!));
                    return;
                }

                await context.Response.WriteAsJsonAsync(Embed(context, recorded.ModelId, body!));
                break;
            default:
                context.Response.StatusCode = 404;
                break;
        }
    }

    private JsonObject Images(JsonObject body)
    {
        var prompt = body["textToImageParams"]!["text"]!.GetValue<string>();
        var config = body["imageGenerationConfig"]!;
        var count = config["numberOfImages"]!.GetValue<int>();
        var seed = config["seed"]?.GetValue<long>();
        var dropped = ImageFilter?.Dropped ?? 0;
        var answer = new JsonObject { ["images"] = new JsonArray([.. Enumerable.Range(0, count - dropped).Select(i => (JsonNode)ImageBase64(prompt, i, seed))]) };
        if (ImageFilter is { } filter)
        {
            answer["error"] = filter.Error;
        }

        return answer;
    }

    /// <summary>The control plane's listings and the agent runtime's rerank, recorded with the operation as the route's name.</summary>
    private async Task HandleServiceAsync(HttpContext context, string operation)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()!.RawTarget;
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var bytes = buffer.ToArray();
        var body = bytes.Length > 0 ? JsonNode.Parse(bytes)!.AsObject() : null;
        var recorded = new Recorded(context.Request.Method, raw, string.Empty, operation, context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()), bytes, body);
        Requests.Enqueue(recorded);
        if (Verify?.Invoke(recorded) is { } refusal)
        {
            await WriteErrorAsync(context, new Failure(403, refusal, Type: "InvalidSignatureException"));
            return;
        }

        if ((Refuse?.Invoke(recorded) ?? (Failures.TryDequeue(out var queued) ? queued : null)) is { } failure)
        {
            await WriteErrorAsync(context, failure);
            return;
        }

        context.Response.Headers["x-amzn-RequestId"] = "req-" + Interlocked.Increment(ref _counter).ToString(CultureInfo.InvariantCulture);
        switch (operation)
        {
            case "foundation-models":
                await context.Response.WriteAsJsonAsync(new JsonObject { ["modelSummaries"] = FoundationModels.DeepClone() });
                break;
            case "inference-profiles":
                var token = context.Request.Query["nextToken"].ToString();
                var page = token.Length == 0 ? 0 : int.Parse(token["page-".Length..], CultureInfo.InvariantCulture);
                var profiles = new JsonObject { ["inferenceProfileSummaries"] = page < InferenceProfilePages.Count ? InferenceProfilePages[page].DeepClone() : new JsonArray() };
                if (page + 1 < InferenceProfilePages.Count)
                {
                    profiles["nextToken"] = "page-" + (page + 1).ToString(CultureInfo.InvariantCulture);
                }

                await context.Response.WriteAsJsonAsync(profiles);
                break;
            default:
                await context.Response.WriteAsJsonAsync(Rerank(body!));
                break;
        }
    }

    /// <summary>Scores every source, best first, <c>numberOfResults</c> of them, paged by <see cref="RerankPageSize"/> (<c>nextToken</c> = the offset).</summary>
    private JsonObject Rerank(JsonObject body)
    {
        var query = body["queries"]![0]!["textQuery"]!["text"]!.GetValue<string>();
        var sources = body["sources"]!.AsArray().Select(s => s!["inlineDocumentSource"]!["textDocument"]!["text"]!.GetValue<string>()).ToList();
        var wanted = body["rerankingConfiguration"]!["bedrockRerankingConfiguration"]!["numberOfResults"]?.GetValue<int>() ?? sources.Count;
        var ranked = sources.Select((text, i) => (Index: i, Score: RerankScore(query, text, i))).OrderByDescending(r => r.Score).Take(wanted).ToList();
        var offset = body["nextToken"] is { } next ? int.Parse(next.GetValue<string>(), CultureInfo.InvariantCulture) : 0;
        var size = RerankPageSize ?? ranked.Count;
        var answer = new JsonObject { ["results"] = new JsonArray([.. ranked.Skip(offset).Take(size).Select(r => (JsonNode)new JsonObject { ["index"] = r.Index, ["relevanceScore"] = r.Score })]) };
        if (offset + size < ranked.Count)
        {
            answer["nextToken"] = (offset + size).ToString(CultureInfo.InvariantCulture);
        }

        return answer;
    }

    private static JsonObject Embed(HttpContext context, string model, JsonObject body)
    {
        if (model.Contains("titan", StringComparison.Ordinal))
        {
            var text = body["inputText"]!.GetValue<string>();
            var dimensions = body["dimensions"]?.GetValue<int>() ?? 3;
            return new JsonObject
            {
                ["embedding"] = new JsonArray([.. Enumerable.Range(0, dimensions).Select(d => (JsonNode)(d == 0 ? text.Length : 0.5))]),
                ["inputTextTokenCount"] = text.Split(' ').Length,
            };
        }

        var texts = body["texts"]!.AsArray();
        context.Response.Headers["X-Amzn-Bedrock-Input-Token-Count"] = (texts.Count * 4).ToString(CultureInfo.InvariantCulture);
        return new JsonObject
        {
            ["id"] = "emb-1",
            ["embeddings"] = new JsonObject { ["float"] = new JsonArray([.. texts.Select((t, i) => (JsonNode)new JsonArray(i, t!.GetValue<string>().Length, 0.25))]) },
            ["texts"] = texts.DeepClone(),
            ["response_type"] = "embeddings_by_type",
        };
    }

    private async Task ChatAsync(HttpContext context, Recorded recorded, JsonObject request)
    {
        var script = Script;
        if (script is { ResponseDelay: var delay } && delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, context.RequestAborted);
        }

        var failure = Failures.TryDequeue(out var queued) ? queued
            : script?.FailWithStatus is { } status ? new Failure(status, script.FailWithMessage, script.RetryAfter)
            : null;
        if (failure is not null)
        {
            await WriteErrorAsync(context, failure);
            return;
        }

        var answer = Respond?.Invoke(request) ?? Answer(new JsonArray(Text(script?.Reply ?? "echo: " + LastUserText(request))), output: 9);
        context.Response.Headers["x-amzn-RequestId"] = "req-" + Interlocked.Increment(ref _counter).ToString(CultureInfo.InvariantCulture);
        if (recorded.Operation == "converse")
        {
            await context.Response.WriteAsJsonAsync(answer);
            return;
        }

        context.Response.ContentType = "application/vnd.amazon.eventstream";
        var first = true;
        foreach (var frame in RawStream?.Invoke(answer) ?? Events(answer))
        {
            if (!first && script is { ChunkDelay: var chunkDelay } && chunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(chunkDelay, context.RequestAborted);
            }

            first = false;
            await context.Response.Body.WriteAsync(frame, context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }
    }

    private static async Task WriteErrorAsync(HttpContext context, Failure failure)
    {
        context.Response.StatusCode = failure.Status;
        context.Response.Headers["x-amzn-ErrorType"] = (failure.Type ?? ErrorType(failure.Status)) + ":http://internal.amazon.com/coral/com.amazon.bedrock/";
        if (failure.RetryAfter is { } retryAfter)
        {
            context.Response.Headers.RetryAfter = ((int)retryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        }

        await context.Response.WriteAsJsonAsync(new JsonObject { ["message"] = failure.Message });
    }

    /// <summary>A request as received: the raw target (model id still percent-encoded), the decoded model id, headers (lower-case names) and body.</summary>
    public sealed record Recorded(string Method, string RawTarget, string ModelId, string Operation, IReadOnlyDictionary<string, string> Headers, byte[] BodyBytes, JsonObject? Body);

    public sealed record Failure(int Status, string Message, TimeSpan? RetryAfter = null, string? Type = null);
}
