using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Anthropic;
using Bifrost.Middleware.Tests.Gemini;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>
/// A fake Vertex AI (<c>/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}</c>) on
/// 127.0.0.1 (Kestrel), per Google's REST reference:
/// <list type="bullet">
/// <item>publisher <c>google</c>: <c>:generateContent</c> and <c>:streamGenerateContent?alt=sse</c>
/// (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent,
/// .../streamGenerateContent — the same GenerateContentResponse as AI Studio, so the Gemini fake's shapes are reused),
/// <c>:countTokens</c> with contents / systemInstruction / tools at the top level (.../countTokens), and <c>:predict</c> for
/// text embeddings, <c>instances[].content</c> → <c>predictions[].embeddings.{values, statistics.token_count}</c>
/// (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api);</item>
/// <item>publisher <c>anthropic</c>: <c>:rawPredict</c> / <c>:streamRawPredict</c> with the Messages body without <c>model</c>
/// and with <c>anthropic_version: vertex-2023-10-16</c>, answered with Anthropic's message / SSE events
/// (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude — the Anthropic fake's shapes), and
/// <c>publishers/anthropic/models/count-tokens:rawPredict</c> with the model in the body → <c>{"input_tokens"}</c>
/// (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/count-tokens).</item>
/// </list>
/// It checks <c>Authorization: Bearer</c> (a 401 in Google's envelope otherwise) and records every request. Express mode
/// (https://cloud.google.com/vertex-ai/generative-ai/docs/start/express-mode/vertex-ai-express-mode-api-reference):
/// <c>/v1/publishers/google/models/{model}:{method}</c> without project and location, the API key in <c>x-goog-api-key</c>
/// (a bad key: 400 <c>API_KEY_INVALID</c>, as the Gemini API answers).
/// </summary>
public sealed partial class FakeVertexUpstream : IAsyncDisposable
{
    public const string Token = "ya29.test-access-token-0123456789";

    public const string ExpressKey = "AQ.express-test-key-0123456789";

    private LocalServer _server = null!;
    private int _counter;

    /// <summary>The API root including the version, e.g. <c>http://127.0.0.1:5123/v1</c>.</summary>
    public string BaseUrl { get; private set; } = string.Empty;

    /// <summary>The bearer tokens accepted (default: <see cref="Token"/>).</summary>
    public ConcurrentDictionary<string, bool> ValidTokens { get; } = new(StringComparer.Ordinal) { [Token] = true };

    public ConcurrentQueue<UpstreamRequest> Requests { get; } = new();

    /// <summary>The conformance script for the chat methods of both publishers.</summary>
    public ProviderScript? Script { get; set; }

    /// <summary>One-shot failures answered (in order) before normal answers to the chat methods.</summary>
    public ConcurrentQueue<Failure> Failures { get; } = new();

    /// <summary>Builds the Gemini GenerateContentResponse answering a request; default: an echo of the last user text.</summary>
    public Func<JsonObject, JsonObject>? RespondGemini { get; set; }

    /// <summary>Builds the Anthropic message answering a request; default: an echo of the last user text.</summary>
    public Func<JsonObject, JsonObject>? RespondClaude { get; set; }

    /// <summary>SSE events to send instead of the normal ones (for broken streams), for either publisher.</summary>
    public Func<JsonObject, IEnumerable<string>>? RawStream { get; set; }

    public int CountTokensResult { get; set; } = 42;

    /// <summary>The chat requests of both publishers (generateContent, streamGenerateContent, rawPredict, streamRawPredict).</summary>
    public IEnumerable<UpstreamRequest> ChatRequests => Requests.Where(r => r.Path.EndsWith("generateContent", StringComparison.OrdinalIgnoreCase) || r.Path.EndsWith("Predict", StringComparison.Ordinal));

    public static async Task<FakeVertexUpstream> StartAsync()
    {
        var upstream = new FakeVertexUpstream();
        upstream._server = await LocalServer.StartAsync(app =>
        {
            app.MapPost("/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{**rest}", (HttpContext context, string publisher, string rest) => upstream.ModelMethodAsync(context, publisher, rest, express: false));
            app.MapPost("/v1/publishers/{publisher}/models/{**rest}", (HttpContext context, string publisher, string rest) => upstream.ModelMethodAsync(context, publisher, rest, express: true));
            upstream.MapBatches(app);
            upstream.MapModelGarden(app);
        });
        upstream.BaseUrl = upstream._server.Address + "/v1";
        upstream.StorageBaseUrl = upstream._server.Address;
        return upstream;
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    private async Task ModelMethodAsync(HttpContext context, string publisher, string rest, bool express)
    {
        var request = await UpstreamRequest.ReadAsync(context);
        Requests.Enqueue(request);
        var body = request.Body ?? [];
        var colon = rest.LastIndexOf(':');
        var model = colon < 0 ? rest : rest[..colon];
        var method = colon < 0 ? string.Empty : rest[(colon + 1)..];
        var authorization = context.Request.Headers.Authorization.ToString();
        if (express && context.Request.Headers["x-goog-api-key"].ToString() != ExpressKey)
        {
            await WriteGoogleErrorAsync(context, new Failure(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"));
            return;
        }

        if (!express && (!authorization.StartsWith("Bearer ", StringComparison.Ordinal) || !ValidTokens.ContainsKey(authorization["Bearer ".Length..])))
        {
            // https://cloud.google.com/docs/authentication/troubleshoot-adc: a missing or expired token is 401 UNAUTHENTICATED
            await WriteGoogleErrorAsync(context, new Failure(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."));
            return;
        }

        switch (publisher, method)
        {
            case ("google", "generateContent"):
            case ("google", "streamGenerateContent"):
                await GenerateAsync(context, body, model, stream: method == "streamGenerateContent");
                return;
            case ("google", "countTokens"):
                if (body.ContainsKey("generateContentRequest") || body["contents"] is null)
                {
                    await WriteGoogleErrorAsync(context, new Failure(400, "Invalid JSON payload received. Unknown name \"generateContentRequest\"."));
                    return;
                }

                await context.Response.WriteAsJsonAsync(new JsonObject { ["totalTokens"] = CountTokensResult, ["totalBillableCharacters"] = CountTokensResult * 4 });
                return;
            case ("google", "predict") when IsImagen(body):
                // Imagen (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api): the Gemini fake's answer
                var (imagenStatus, imagen) = FakeGeminiUpstream.Imagen(body);
                context.Response.StatusCode = imagenStatus;
                await context.Response.WriteAsJsonAsync(imagen);
                return;
            case ("google", "predict"):
                var predictions = new JsonArray([.. body["instances"]!.AsArray().Select(i => (JsonNode)Prediction(i!.AsObject(), body["parameters"]?["outputDimensionality"]?.GetValue<int>() ?? 3))]);
                await context.Response.WriteAsJsonAsync(new JsonObject { ["predictions"] = predictions });
                return;
            case ("anthropic", "rawPredict") when model == "count-tokens":
                // https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/count-tokens: the model in the body
                if (body["model"] is null || body["anthropic_version"]?.GetValue<string>() != "vertex-2023-10-16" || body.ContainsKey("max_tokens"))
                {
                    context.Response.StatusCode = 400;
                    await context.Response.WriteAsJsonAsync(FakeAnthropicUpstream.Error("invalid_request_error", "model and anthropic_version: vertex-2023-10-16 are required; max_tokens: Extra inputs are not permitted"));
                    return;
                }

                await context.Response.WriteAsJsonAsync(new JsonObject { ["input_tokens"] = CountTokensResult });
                return;
            case ("anthropic", "rawPredict"):
            case ("anthropic", "streamRawPredict"):
                await ClaudeAsync(context, body, model, stream: method == "streamRawPredict");
                return;
            default:
                await WriteGoogleErrorAsync(context, new Failure(404, $"Publisher Model `projects/p/locations/l/publishers/{publisher}/models/{model}` not found or method '{method}' not supported."));
                return;
        }
    }

    private static bool IsImagen(JsonObject body) => body["instances"] is JsonArray { Count: > 0 } instances && instances[0]?["prompt"] is not null;

    /// <summary>A deterministic vector (component j = text length + j/4) and token_count = words in the text.</summary>
    private static JsonObject Prediction(JsonObject instance, int dimensions)
    {
        var text = instance["content"]!.GetValue<string>();
        return new JsonObject
        {
            ["embeddings"] = new JsonObject
            {
                ["values"] = new JsonArray([.. Enumerable.Range(0, dimensions).Select(j => (JsonNode)(text.Length + (j / 4.0)))]),
                ["statistics"] = new JsonObject { ["token_count"] = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length, ["truncated"] = false },
            },
        };
    }

    private Failure? NextFailure(bool claude)
    {
        if (Failures.TryDequeue(out var queued))
        {
            return queued;
        }

        return Script?.FailWithStatus is { } status
            ? new Failure(status, Script.FailWithMessage, RetryDelay: Script.RetryAfter, Anthropic: claude)
            : null;
    }

    private async Task GenerateAsync(HttpContext context, JsonObject request, string model, bool stream)
    {
        if (Script is { ResponseDelay: var delay } && delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, context.RequestAborted);
        }

        if (NextFailure(claude: false) is { } failure)
        {
            await WriteGoogleErrorAsync(context, failure);
            return;
        }

        if (RespondGemini is null && !stream && FakeGeminiUpstream.Media(request) is { } media)
        {
            // speech, image and audio-input answers as on the Gemini API (the same GenerateContentResponse)
            context.Response.StatusCode = media.Status;
            await context.Response.WriteAsJsonAsync(media.Body);
            return;
        }

        var response = RespondGemini?.Invoke(request) ?? FakeGeminiUpstream.Response(new JsonArray(FakeGeminiUpstream.Text(Script?.Reply ?? "echo: " + FakeGeminiUpstream.LastUserText(request))));
        response["modelVersion"] ??= model;
        response["responseId"] ??= "vertex_resp_" + Interlocked.Increment(ref _counter).ToString(CultureInfo.InvariantCulture);
        if (!stream)
        {
            await context.Response.WriteAsJsonAsync(response);
            return;
        }

        if (context.Request.Query["alt"] != "sse")
        {
            await context.Response.WriteAsJsonAsync(new JsonArray(response));
            return;
        }

        await WriteEventsAsync(context, RawStream?.Invoke(response) ?? FakeGeminiUpstream.Events(response));
    }

    private async Task ClaudeAsync(HttpContext context, JsonObject request, string model, bool stream)
    {
        if (request.ContainsKey("model") || request["anthropic_version"]?.GetValue<string>() != "vertex-2023-10-16")
        {
            // Claude on Vertex takes the model from the URL and requires anthropic_version in the body
            context.Response.StatusCode = 400;
            await context.Response.WriteAsJsonAsync(FakeAnthropicUpstream.Error("invalid_request_error", "anthropic_version: vertex-2023-10-16 is required and model: Extra inputs are not permitted"));
            return;
        }

        if (Script is { ResponseDelay: var delay } && delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, context.RequestAborted);
        }

        if (NextFailure(claude: true) is { } failure)
        {
            if (!failure.Anthropic)
            {
                await WriteGoogleErrorAsync(context, failure);
                return;
            }

            context.Response.StatusCode = failure.Status;
            if (failure.RetryDelay is { } retryAfter)
            {
                context.Response.Headers.RetryAfter = ((int)retryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            }

            await context.Response.WriteAsJsonAsync(FakeAnthropicUpstream.Error(FakeAnthropicUpstream.ErrorType(failure.Status), failure.Message));
            return;
        }

        var message = RespondClaude?.Invoke(request) ?? FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock(Script?.Reply ?? "echo: " + FakeAnthropicUpstream.LastUserText(request))), output: 9);
        message["id"] ??= "msg_vrtx_" + Interlocked.Increment(ref _counter).ToString(CultureInfo.InvariantCulture);
        message["type"] = "message";
        message["role"] = "assistant";
        message["model"] ??= model;
        if (request["stream"]?.GetValue<bool>() == true != stream)
        {
            context.Response.StatusCode = 400;
            await context.Response.WriteAsJsonAsync(FakeAnthropicUpstream.Error("invalid_request_error", "stream must match the method (rawPredict / streamRawPredict)."));
            return;
        }

        if (!stream)
        {
            await context.Response.WriteAsJsonAsync(message);
            return;
        }

        await WriteEventsAsync(context, RawStream?.Invoke(message) ?? FakeAnthropicUpstream.Events(message));
    }

    private async Task WriteEventsAsync(HttpContext context, IEnumerable<string> events)
    {
        context.Response.ContentType = "text/event-stream";
        var first = true;
        foreach (var evt in events)
        {
            if (!first && Script is { ChunkDelay: var chunkDelay } && chunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(chunkDelay, context.RequestAborted);
            }

            first = false;
            await context.Response.WriteAsync(evt, context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }
    }

    private static async Task WriteGoogleErrorAsync(HttpContext context, Failure failure)
    {
        context.Response.StatusCode = failure.Status;
        await context.Response.WriteAsJsonAsync(FakeGeminiUpstream.Error(failure.Status, failure.Message, failure.Reason, failure.RetryDelay));
    }

    /// <summary>A scripted failure: status, message, ErrorInfo reason, retry delay; for Claude models in Anthropic's shape unless <paramref name="Anthropic"/> is false (Vertex's own front end).</summary>
    public sealed record Failure(int Status, string Message, string? Reason = null, TimeSpan? RetryDelay = null, bool Anthropic = false);
}
