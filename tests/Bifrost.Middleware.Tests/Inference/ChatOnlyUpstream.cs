using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>
/// A fake OpenAI-compatible upstream on 127.0.0.1 (Kestrel) that speaks only <c>POST /v1/chat/completions</c> (JSON,
/// or SSE when <c>stream: true</c>) and records every request it gets. With <see cref="NativeResponses"/> set it also
/// serves <c>POST /v1/responses</c> (JSON or SSE) and <c>POST /v1/responses/input_tokens</c>; embeddings and legacy
/// completions only when their handlers are set. Anything else is a 404.
/// </summary>
internal sealed class ChatOnlyUpstream : IAsyncDisposable
{
    private WebApplication _app = null!;

    /// <summary>e.g. <c>http://127.0.0.1:12345/v1</c>.</summary>
    public string BaseUrl { get; private set; } = string.Empty;

    /// <summary>Every request, in arrival order.</summary>
    public ConcurrentQueue<Recorded> Requests { get; } = new();

    /// <summary>The chat answer for a non-streaming request (default: echo of the last message's text).</summary>
    public Func<JsonObject, JsonObject> ChatReply { get; set; } = request => Completion(request, "upstream: " + LastText(request), "stop");

    /// <summary>The chat chunks for a streaming request (default: the reply word by word, then a usage chunk).</summary>
    public Func<JsonObject, IEnumerable<JsonObject>> ChatStream { get; set; } = request => TextChunks(request, ["upstream", ":", " streamed"], "stop");

    /// <summary>Whether the Responses endpoints exist.</summary>
    public bool NativeResponses { get; set; }

    public Func<JsonObject, JsonObject> ResponsesReply { get; set; } = _ => throw new InvalidOperationException("no ResponsesReply");

    public Func<JsonObject, IEnumerable<JsonObject>> ResponsesStream { get; set; } = _ => throw new InvalidOperationException("no ResponsesStream");

    /// <summary>Answer of <c>responses/input_tokens</c>: status and body.</summary>
    public Func<JsonObject, (int Status, JsonObject Body)> InputTokens { get; set; } = _ => (200, new JsonObject { ["object"] = "response.input_tokens", ["input_tokens"] = 4242 });

    /// <summary>Optional <c>POST /v1/embeddings</c> (null: 404, the default).</summary>
    public Func<JsonObject, JsonObject>? EmbeddingsReply { get; set; }

    /// <summary>Optional <c>POST /v1/moderations</c>: the raw JSON answer (null: 404, the default).</summary>
    public Func<JsonObject, string>? ModerationsReply { get; set; }

    /// <summary>Optional <c>POST /v1/images/generations</c>: the raw JSON answer (null: 404, the default).</summary>
    public Func<JsonObject, string>? ImagesReply { get; set; }

    /// <summary>Optional <c>POST /v1/rerank</c>: the raw JSON answer (null: 404, the default).</summary>
    public Func<JsonObject, string>? RerankReply { get; set; }

    /// <summary>Optional <c>POST /v1/completions</c> (null: 404, the default).</summary>
    public Func<JsonObject, JsonObject>? CompletionsReply { get; set; }

    /// <summary>Optional streamed <c>POST /v1/completions</c> (null: 404, the default).</summary>
    public Func<JsonObject, IEnumerable<JsonObject>>? CompletionsStream { get; set; }

    public IEnumerable<Recorded> To(string path) => Requests.Where(r => r.Path == path);

    public static async Task<ChatOnlyUpstream> StartAsync()
    {
        var upstream = new ChatOnlyUpstream();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.Run(upstream.HandleAsync);
        await app.StartAsync();
        upstream._app = app;
        upstream.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/v1";
        return upstream;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? string.Empty;
        JsonObject? body = null;
        if (HttpMethods.IsPost(context.Request.Method))
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            var text = await reader.ReadToEndAsync(context.RequestAborted);
            body = text.Length == 0 ? null : JsonNode.Parse(text) as JsonObject;
        }

        Requests.Enqueue(new Recorded(context.Request.Method, path, body, context.Request.Headers.Authorization.ToString(), context.Request.Headers.Accept.ToString()));
        var stream = body?["stream"]?.GetValueKind() == JsonValueKind.True;
        switch (path)
        {
            case "/v1/chat/completions" when body is not null:
                if (stream)
                {
                    await WriteSseAsync(context, ChatStream(body).Select(c => ((string?)null, c)), done: true);
                }
                else
                {
                    await context.Response.WriteAsJsonAsync(ChatReply(body), context.RequestAborted);
                }

                return;
            case "/v1/responses" when body is not null && NativeResponses:
                if (stream)
                {
                    await WriteSseAsync(context, ResponsesStream(body).Select(e => ((string?)e["type"]!.GetValue<string>(), e)), done: false);
                }
                else
                {
                    await context.Response.WriteAsJsonAsync(ResponsesReply(body), context.RequestAborted);
                }

                return;
            case "/v1/responses/input_tokens" when body is not null && NativeResponses:
                var (status, answer) = InputTokens(body);
                context.Response.StatusCode = status;
                await context.Response.WriteAsJsonAsync(answer, context.RequestAborted);
                return;
            case "/v1/embeddings" when body is not null && EmbeddingsReply is { } embeddings:
                await context.Response.WriteAsJsonAsync(embeddings(body), context.RequestAborted);
                return;
            case "/v1/moderations" when body is not null && ModerationsReply is { } moderations:
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(moderations(body), context.RequestAborted);
                return;
            case "/v1/images/generations" when body is not null && ImagesReply is { } images:
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(images(body), context.RequestAborted);
                return;
            case "/v1/rerank" when body is not null && RerankReply is { } rerank:
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(rerank(body), context.RequestAborted);
                return;
            case "/v1/completions" when body is not null && stream && CompletionsStream is { } completionsStream:
                await WriteSseAsync(context, completionsStream(body).Select(c => ((string?)null, c)), done: true);
                return;
            case "/v1/completions" when body is not null && !stream && CompletionsReply is { } completions:
                await context.Response.WriteAsJsonAsync(completions(body), context.RequestAborted);
                return;
            default:
                context.Response.StatusCode = 404;
                await context.Response.WriteAsJsonAsync(
                    new JsonObject { ["error"] = new JsonObject { ["message"] = $"fake upstream: no route {context.Request.Method} {path}", ["type"] = "invalid_request_error", ["code"] = "unknown_url" } },
                    context.RequestAborted);
                return;
        }
    }

    private static async Task WriteSseAsync(HttpContext context, IEnumerable<(string? Event, JsonObject Data)> events, bool done)
    {
        context.Response.ContentType = "text/event-stream";
        foreach (var (name, data) in events)
        {
            var text = (name is null ? string.Empty : $"event: {name}\n") + $"data: {data.ToJsonString()}\n\n";
            await context.Response.WriteAsync(text, context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }

        if (done)
        {
            await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
        }
    }

    public static string LastText(JsonObject request)
    {
        var messages = request["messages"]!.AsArray();
        var content = messages[^1]!["content"];
        return content switch
        {
            JsonValue value => value.GetValue<string>(),
            JsonArray parts => string.Concat(parts.Select(p => p!["text"]?.GetValue<string>())),
            _ => string.Empty,
        };
    }

    /// <summary>A <c>chat.completion</c> with one choice; usage 11 prompt + 7 completion tokens.</summary>
    public static JsonObject Completion(JsonObject request, string? content, string finishReason, JsonArray? toolCalls = null)
    {
        var message = new JsonObject { ["role"] = "assistant", ["content"] = content };
        if (toolCalls is not null)
        {
            message["tool_calls"] = toolCalls;
        }

        return new JsonObject
        {
            ["id"] = "chatcmpl-up1",
            ["object"] = "chat.completion",
            ["created"] = 1_700_000_000,
            ["model"] = request["model"]!.GetValue<string>(),
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = message, ["finish_reason"] = finishReason }),
            ["usage"] = new JsonObject { ["prompt_tokens"] = 11, ["completion_tokens"] = 7, ["total_tokens"] = 18 },
        };
    }

    /// <summary>Chat chunks: a role chunk, one chunk per text piece, a finish chunk, and a usage chunk (9 + 3 tokens) when asked for.</summary>
    public static IEnumerable<JsonObject> TextChunks(JsonObject request, string[] pieces, string finishReason)
    {
        yield return Chunk(request, new JsonObject { ["role"] = "assistant", ["content"] = string.Empty }, null);
        foreach (var piece in pieces)
        {
            yield return Chunk(request, new JsonObject { ["content"] = piece }, null);
        }

        yield return Chunk(request, new JsonObject(), finishReason);
        if (request["stream_options"]?["include_usage"]?.GetValueKind() == JsonValueKind.True)
        {
            yield return UsageChunk(request, 9, 3);
        }
    }

    public static JsonObject Chunk(JsonObject request, JsonObject delta, string? finishReason) => new()
    {
        ["id"] = "chatcmpl-up2",
        ["object"] = "chat.completion.chunk",
        ["created"] = 1_700_000_000,
        ["model"] = request["model"]!.GetValue<string>(),
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finishReason }),
    };

    public static JsonObject UsageChunk(JsonObject request, int prompt, int completion) => new()
    {
        ["id"] = "chatcmpl-up2",
        ["object"] = "chat.completion.chunk",
        ["created"] = 1_700_000_000,
        ["model"] = request["model"]!.GetValue<string>(),
        ["choices"] = new JsonArray(),
        ["usage"] = new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion },
    };

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>One request the upstream got.</summary>
    public sealed record Recorded(string Method, string Path, JsonObject? Body, string Authorization, string Accept);
}
