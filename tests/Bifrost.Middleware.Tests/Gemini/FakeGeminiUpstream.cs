using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>
/// A fake Gemini API (Google AI Studio, <c>/v1beta</c>) on 127.0.0.1 (Kestrel), speaking the documented wire format:
/// <c>models/{model}:generateContent</c> and <c>:streamGenerateContent?alt=sse</c> (https://ai.google.dev/api/generate-content:
/// each SSE event a whole GenerateContentResponse, cumulative usageMetadata, finishReason on the last event, no end marker),
/// <c>:embedContent</c> / <c>:batchEmbedContents</c> (https://ai.google.dev/api/embeddings), <c>:countTokens</c>
/// (https://ai.google.dev/api/tokens), <c>GET models</c> paged with <c>pageToken</c>/<c>nextPageToken</c>
/// (https://ai.google.dev/api/models), and Google's error body with ErrorInfo/RetryInfo details
/// (https://ai.google.dev/gemini-api/docs/troubleshooting), Imagen's <c>:predict</c> and media generateContent answers
/// (FakeGeminiUpstream.Media.cs). It checks <c>x-goog-api-key</c> and records every request.
/// </summary>
public sealed partial class FakeGeminiUpstream : IAsyncDisposable
{
    public const string Key = "AIza-test-key-0123456789";

    private LocalServer _server = null!;
    private int _counter;

    /// <summary>The API root including the version, e.g. <c>http://127.0.0.1:5123/v1beta</c>.</summary>
    public string BaseUrl { get; private set; } = string.Empty;

    public ConcurrentQueue<UpstreamRequest> Requests { get; } = new();

    /// <summary>The conformance script for generateContent / streamGenerateContent.</summary>
    public ProviderScript? Script { get; set; }

    /// <summary>One-shot failures answered (in order) before normal answers to generateContent / streamGenerateContent.</summary>
    public ConcurrentQueue<Failure> Failures { get; } = new();

    /// <summary>Builds the GenerateContentResponse answering a request; default: an echo of the last user text.</summary>
    public Func<JsonObject, JsonObject>? Respond { get; set; }

    /// <summary>SSE events to send instead of the response's normal events (for broken streams).</summary>
    public Func<JsonObject, IEnumerable<string>>? RawStream { get; set; }

    public int CountTokensResult { get; set; } = 42;

    public List<string> Models { get; set; } = ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-embedding-001"];

    public IEnumerable<UpstreamRequest> GenerateRequests => Requests.Where(r => r.Path.EndsWith(":generateContent", StringComparison.Ordinal) || r.Path.EndsWith(":streamGenerateContent", StringComparison.Ordinal));

    public static async Task<FakeGeminiUpstream> StartAsync()
    {
        var upstream = new FakeGeminiUpstream();
        upstream._server = await LocalServer.StartAsync(app =>
        {
            app.MapPost("/v1beta/models/{**rest}", (HttpContext context, string rest) => upstream.ModelMethodAsync(context, rest));
            upstream.MapBatches(app);
            app.MapGet("/v1beta/models", async (HttpContext context) =>
            {
                await upstream.RecordAsync(context);
                var token = context.Request.Query["pageToken"].ToString();
                var start = string.IsNullOrEmpty(token) ? 0 : int.Parse(token, CultureInfo.InvariantCulture);
                var page = upstream.Models.Skip(start).Take(2).ToList();
                var models = new JsonArray([.. page.Select(id => (JsonNode)new JsonObject
                {
                    ["name"] = "models/" + id,
                    ["displayName"] = id.ToUpperInvariant(),
                    ["inputTokenLimit"] = 1048576,
                    ["supportedGenerationMethods"] = new JsonArray("generateContent", "countTokens"),
                })]);
                var body = new JsonObject { ["models"] = models };
                if (start + page.Count < upstream.Models.Count)
                {
                    body["nextPageToken"] = (start + page.Count).ToString(CultureInfo.InvariantCulture);
                }

                return Results.Json(body);
            });
        });
        upstream.BaseUrl = upstream._server.Address + "/v1beta";
        return upstream;
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    /// <summary>Google's status name of an HTTP status (https://ai.google.dev/gemini-api/docs/troubleshooting).</summary>
    public static string GoogleStatus(int status) => status switch
    {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };

    /// <summary>Google's error body: <c>{"error":{"code","message","status","details":[ErrorInfo?, RetryInfo?]}}</c>.</summary>
    public static JsonObject Error(int status, string message, string? reason = null, TimeSpan? retryDelay = null)
    {
        var details = new JsonArray();
        if (reason is not null)
        {
            details.Add(new JsonObject { ["@type"] = "type.googleapis.com/google.rpc.ErrorInfo", ["reason"] = reason, ["domain"] = "googleapis.com" });
        }

        if (retryDelay is { } delay)
        {
            details.Add(new JsonObject { ["@type"] = "type.googleapis.com/google.rpc.RetryInfo", ["retryDelay"] = delay.TotalSeconds.ToString(CultureInfo.InvariantCulture) + "s" });
        }

        return new JsonObject { ["error"] = new JsonObject { ["code"] = status, ["message"] = message, ["status"] = GoogleStatus(status), ["details"] = details } };
    }

    /// <summary>A response with one candidate of the given parts.</summary>
    public static JsonObject Response(JsonArray parts, string finishReason = "STOP", int prompt = 12, int candidates = 9, int? thoughts = null, int? cached = null)
    {
        var usage = new JsonObject { ["promptTokenCount"] = prompt, ["candidatesTokenCount"] = candidates, ["totalTokenCount"] = prompt + candidates + (thoughts ?? 0) };
        if (thoughts is { } t)
        {
            usage["thoughtsTokenCount"] = t;
        }

        if (cached is { } c)
        {
            usage["cachedContentTokenCount"] = c;
        }

        return new JsonObject
        {
            ["candidates"] = new JsonArray(new JsonObject { ["content"] = new JsonObject { ["role"] = "model", ["parts"] = parts }, ["finishReason"] = finishReason, ["index"] = 0 }),
            ["usageMetadata"] = usage,
        };
    }

    public static JsonObject Text(string text) => new() { ["text"] = text };

    public static string LastUserText(JsonObject request)
    {
        var contents = request["contents"]!.AsArray();
        for (var i = contents.Count - 1; i >= 0; i--)
        {
            if (contents[i]!["role"]?.GetValue<string>() != "user")
            {
                continue;
            }

            foreach (var part in contents[i]!["parts"]!.AsArray())
            {
                if (part!["text"] is { } text)
                {
                    return text.GetValue<string>();
                }
            }
        }

        return string.Empty;
    }

    private async Task<JsonObject?> RecordAsync(HttpContext context)
    {
        var request = await UpstreamRequest.ReadAsync(context);
        Requests.Enqueue(request);
        return request.Body;
    }

    private async Task ModelMethodAsync(HttpContext context, string rest)
    {
        var request = (await RecordAsync(context))!;
        var colon = rest.LastIndexOf(':');
        var model = colon < 0 ? rest : rest[..colon];
        var method = colon < 0 ? string.Empty : rest[(colon + 1)..];
        if (context.Request.Headers["x-goog-api-key"].ToString() != Key)
        {
            // https://ai.google.dev/gemini-api/docs/troubleshooting: a bad key is a 400 with ErrorInfo reason API_KEY_INVALID
            await WriteErrorAsync(context, 400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID", null);
            return;
        }

        switch (method)
        {
            case "generateContent":
            case "streamGenerateContent":
                await GenerateAsync(context, request, model, stream: method == "streamGenerateContent");
                return;
            case "countTokens":
                await context.Response.WriteAsJsonAsync(new JsonObject { ["totalTokens"] = CountTokensResult });
                return;
            case "predict":
                var (imagenStatus, imagen) = Imagen(request);
                context.Response.StatusCode = imagenStatus;
                await context.Response.WriteAsJsonAsync(imagen);
                return;
            case "embedContent":
                await context.Response.WriteAsJsonAsync(new JsonObject { ["embedding"] = Embedding(request) });
                return;
            case "batchGenerateContent":
                await CreateBatchAsync(context, request, model);
                return;
            case "batchEmbedContents":
                var embeddings = new JsonArray([.. request["requests"]!.AsArray().Select(r => (JsonNode)Embedding(r!.AsObject()))]);
                await context.Response.WriteAsJsonAsync(new JsonObject { ["embeddings"] = embeddings });
                return;
            default:
                await WriteErrorAsync(context, 404, $"Method '{method}' not found.", null, null);
                return;
        }
    }

    /// <summary>A deterministic vector: component j = text length + j/4, with outputDimensionality components (default 3).</summary>
    private static JsonObject Embedding(JsonObject request)
    {
        var text = request["content"]!["parts"]![0]!["text"]!.GetValue<string>();
        var dimensions = request["outputDimensionality"]?.GetValue<int>() ?? 3;
        return new JsonObject { ["values"] = new JsonArray([.. Enumerable.Range(0, dimensions).Select(j => (JsonNode)(text.Length + (j / 4.0)))]) };
    }

    private static async Task WriteErrorAsync(HttpContext context, int status, string message, string? reason, TimeSpan? retryDelay)
    {
        context.Response.StatusCode = status;
        await context.Response.WriteAsJsonAsync(Error(status, message, reason, retryDelay));
    }

    private async Task GenerateAsync(HttpContext context, JsonObject request, string model, bool stream)
    {
        var script = Script;
        if (script is { ResponseDelay: var delay } && delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, context.RequestAborted);
        }

        Failure? failure = Failures.TryDequeue(out var queued) ? queued
            : script?.FailWithStatus is { } status ? new Failure(status, script.FailWithMessage, null, script.RetryAfter)
            : null;
        if (failure is not null)
        {
            await WriteErrorAsync(context, failure.Status, failure.Message, failure.Reason, failure.RetryDelay);
            return;
        }

        if (Respond is null && !stream && Media(request) is { } media)
        {
            context.Response.StatusCode = media.Status;
            await context.Response.WriteAsJsonAsync(media.Body);
            return;
        }

        var response = Respond?.Invoke(request) ?? Response(new JsonArray(Text(script?.Reply ?? "echo: " + LastUserText(request))));
        response["modelVersion"] ??= model;
        response["responseId"] ??= "resp_fake_" + Interlocked.Increment(ref _counter).ToString(CultureInfo.InvariantCulture);
        if (!stream)
        {
            await context.Response.WriteAsJsonAsync(response);
            return;
        }

        if (context.Request.Query["alt"] != "sse")
        {
            // without alt=sse the endpoint answers one JSON array, not events
            await context.Response.WriteAsJsonAsync(new JsonArray(response));
            return;
        }

        context.Response.ContentType = "text/event-stream";
        var first = true;
        foreach (var evt in RawStream?.Invoke(response) ?? Events(response))
        {
            if (!first && script is { ChunkDelay: var chunkDelay } && chunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(chunkDelay, context.RequestAborted);
            }

            first = false;
            await context.Response.WriteAsync(evt, context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }
    }

    public static string Sse(JsonNode data) => $"data: {data.ToJsonString()}\r\n\r\n";

    /// <summary>
    /// The events the real API sends for a response: the text of the single candidate word by word, each event with the
    /// usage so far (cumulative: the prompt count, candidates growing); function calls whole in the last event, which has
    /// the finish reason and the final usage.
    /// </summary>
    public static IEnumerable<string> Events(JsonObject response)
    {
        var candidate = response["candidates"]![0]!.AsObject();
        var usage = response["usageMetadata"]!.AsObject();
        var parts = candidate["content"]!["parts"]!.AsArray();
        var pieces = new List<JsonObject>();
        var calls = new List<JsonObject>();
        foreach (var part in parts)
        {
            var obj = part!.AsObject();
            if (obj["text"] is { } text)
            {
                foreach (var piece in Pieces(text.GetValue<string>()))
                {
                    var copy = (JsonObject)obj.DeepClone();
                    copy["text"] = piece;
                    pieces.Add(copy);
                }
            }
            else
            {
                calls.Add((JsonObject)obj.DeepClone());
            }
        }

        for (var i = 0; i < pieces.Count; i++)
        {
            var last = i == pieces.Count - 1 && calls.Count == 0;
            yield return Sse(Event(response, new JsonArray(pieces[i]), last ? candidate["finishReason"]!.DeepClone() : null, last ? (JsonObject)usage.DeepClone() : PartialUsage(usage, i + 1)));
        }

        if (calls.Count > 0 || pieces.Count == 0)
        {
            yield return Sse(Event(response, new JsonArray([.. calls]), candidate["finishReason"]!.DeepClone(), (JsonObject)usage.DeepClone()));
        }
    }

    private static JsonObject PartialUsage(JsonObject usage, int candidates) => new()
    {
        ["promptTokenCount"] = usage["promptTokenCount"]!.DeepClone(),
        ["candidatesTokenCount"] = candidates,
        ["totalTokenCount"] = usage["promptTokenCount"]!.GetValue<int>() + candidates,
    };

    private static JsonObject Event(JsonObject response, JsonArray parts, JsonNode? finishReason, JsonObject usage)
    {
        var candidate = new JsonObject { ["content"] = new JsonObject { ["role"] = "model", ["parts"] = parts }, ["index"] = 0 };
        if (finishReason is not null)
        {
            candidate["finishReason"] = finishReason;
        }

        return new JsonObject
        {
            ["candidates"] = new JsonArray(candidate),
            ["usageMetadata"] = usage,
            ["modelVersion"] = response["modelVersion"]!.DeepClone(),
            ["responseId"] = response["responseId"]!.DeepClone(),
        };
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


    /// <summary>A scripted failure: the HTTP status, the message, an ErrorInfo reason and a RetryInfo delay.</summary>
    public sealed record Failure(int Status, string Message, string? Reason = null, TimeSpan? RetryDelay = null);
}
