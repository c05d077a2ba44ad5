using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>
/// A fake Cohere API on 127.0.0.1 (Kestrel) speaking the documented v2 wire format:
/// <c>POST /v2/chat</c> (https://docs.cohere.com/reference/chat) and its SSE stream
/// (https://docs.cohere.com/reference/chat-stream, https://docs.cohere.com/v2/docs/streaming: message-start,
/// content-start, content-delta, content-end, tool-plan-delta, tool-call-start/-delta/-end, message-end with
/// finish_reason and usage; no [DONE]), <c>POST /v2/embed</c> (https://docs.cohere.com/reference/embed, embeddings by
/// type), <c>POST /v2/rerank</c> (https://docs.cohere.com/reference/rerank) and <c>GET /v1/models</c>
/// (https://docs.cohere.com/reference/list-models, paged by page_token) and <c>POST /v1/tokenize</c> (https://docs.cohere.com/reference/tokenize). Errors are <c>{"message":"..."}</c>
/// (https://docs.cohere.com/errors-reference). It records every request; answers are scripted per test.
/// </summary>
public sealed partial class FakeCohereUpstream : IAsyncDisposable
{
    private LocalServer _server = null!;
    private int _counter;

    /// <summary>The server's root, e.g. <c>http://127.0.0.1:5123</c> (the adapter adds <c>/v2/...</c>).</summary>
    public string BaseUrl { get; private set; } = string.Empty;

    public ConcurrentQueue<UpstreamRequest> Requests { get; } = new();

    /// <summary>The conformance script for <c>/v2/chat</c>.</summary>
    public ProviderScript? Script { get; set; }

    /// <summary>One-shot failures answered (in order) before normal answers on every POST route.</summary>
    public ConcurrentQueue<Failure> Failures { get; } = new();

    /// <summary>Builds the chat answer (message, finish_reason, usage); default: an echo of the last user text.</summary>
    public Func<JsonObject, JsonObject>? Respond { get; set; }

    /// <summary>Events (already framed) to send instead of an answer's normal event sequence (for broken streams).</summary>
    public Func<JsonObject, IEnumerable<string>>? RawStream { get; set; }

    /// <summary>The embed answer; default: a 3-float vector per text ([i, len, 0.5]).</summary>
    public Func<JsonObject, JsonObject>? RespondEmbed { get; set; }

    /// <summary>The rerank answer; default: scores by document length.</summary>
    public Func<JsonObject, JsonObject>? RespondRerank { get; set; }

    public List<(string Name, bool Deprecated)> Models { get; set; } = [("command-a-03-2025", false), ("embed-v4.0", false), ("command-r-03-2024", true), ("rerank-v3.5", false)];

    public IEnumerable<UpstreamRequest> ChatRequests => Requests.Where(r => r.Path == "/v2/chat");

    public static async Task<FakeCohereUpstream> StartAsync()
    {
        var upstream = new FakeCohereUpstream();
        upstream._server = await LocalServer.StartAsync(app =>
        {
            app.MapPost("/v2/chat", (HttpContext context) => upstream.ChatAsync(context));
            upstream.MapEmbedJobs(app); // gaps: datasets and embed jobs
            app.MapPost("/v2/embed", async (HttpContext context) =>
            {
                var request = (await upstream.RecordAsync(context))!;
                if (await upstream.FailAsync(context, null))
                {
                    return;
                }

                var answer = upstream.RespondEmbed?.Invoke(request) ?? DefaultEmbed(request);
                await context.Response.WriteAsJsonAsync(answer);
            });
            app.MapPost("/v2/rerank", async (HttpContext context) =>
            {
                var request = (await upstream.RecordAsync(context))!;
                if (await upstream.FailAsync(context, null))
                {
                    return;
                }

                var answer = upstream.RespondRerank?.Invoke(request) ?? DefaultRerank(request);
                await context.Response.WriteAsJsonAsync(answer);
            });
            app.MapPost("/v1/tokenize", async (HttpContext context) =>
            {
                // https://docs.cohere.com/reference/tokenize: {text (1..65,536 characters), model} → {tokens, token_strings, meta}
                var request = (await upstream.RecordAsync(context))!;
                if (await upstream.FailAsync(context, null))
                {
                    return;
                }

                var text = request["text"]?.GetValue<string>() ?? string.Empty;
                if (text.Length is 0 or > 65536 || request["model"] is null)
                {
                    context.Response.StatusCode = 400;
                    await context.Response.WriteAsJsonAsync(new JsonObject { ["message"] = "invalid request: text must be 1 to 65536 characters and model is required" });
                    return;
                }

                // A deterministic tokenizer: one token per whitespace-separated word.
                var words = text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
                await context.Response.WriteAsJsonAsync(new JsonObject
                {
                    ["tokens"] = new JsonArray([.. words.Select((_, i) => (JsonNode)(1000 + i))]),
                    ["token_strings"] = new JsonArray([.. words.Select(w => (JsonNode)w)]),
                    ["meta"] = new JsonObject { ["api_version"] = new JsonObject { ["version"] = "1" } },
                });
            });
            app.MapGet("/v1/models", async (HttpContext context) =>
            {
                await upstream.RecordAsync(context);
                var token = context.Request.Query["page_token"].ToString();
                var start = string.IsNullOrEmpty(token) ? 0 : int.Parse(token, CultureInfo.InvariantCulture);
                var page = upstream.Models.Skip(start).Take(2).ToList();
                var models = new JsonArray([.. page.Select(m => (JsonNode)new JsonObject
                {
                    ["name"] = m.Name,
                    ["is_deprecated"] = m.Deprecated,
                    ["endpoints"] = new JsonArray(m.Name.StartsWith("embed", StringComparison.Ordinal) ? "embed" : m.Name.StartsWith("rerank", StringComparison.Ordinal) ? "rerank" : "chat"),
                    ["finetuned"] = false,
                    ["context_length"] = 256000,
                    ["features"] = new JsonArray("tools"),
                })]);
                var next = start + page.Count < upstream.Models.Count ? (start + page.Count).ToString(CultureInfo.InvariantCulture) : null;
                var body = new JsonObject { ["models"] = models };
                if (next is not null)
                {
                    body["next_page_token"] = next;
                }

                await context.Response.WriteAsJsonAsync(body);
            });
        });
        upstream.BaseUrl = upstream._server.Address;
        return upstream;
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    /// <summary>A chat answer: <c>{"finish_reason","message":{"role","content":[...],"tool_calls"?},"usage":{"billed_units","tokens"}}</c>.</summary>
    public static JsonObject Answer(JsonArray content, string finishReason = "COMPLETE", int input = 12, int output = 7, JsonArray? toolCalls = null, string? toolPlan = null, int? cached = null)
    {
        var message = new JsonObject { ["role"] = "assistant", ["content"] = content };
        if (toolCalls is not null)
        {
            message["tool_calls"] = toolCalls;
        }

        if (toolPlan is not null)
        {
            message["tool_plan"] = toolPlan;
        }

        var usage = new JsonObject
        {
            // billed_units exclude the prompt overhead Cohere adds; tokens are what the model read and wrote.
            ["billed_units"] = new JsonObject { ["input_tokens"] = input - 2, ["output_tokens"] = output },
            ["tokens"] = new JsonObject { ["input_tokens"] = input, ["output_tokens"] = output },
        };
        if (cached is not null)
        {
            usage["cached_tokens"] = cached;
        }

        return new JsonObject { ["finish_reason"] = finishReason, ["message"] = message, ["usage"] = usage };
    }

    public static JsonObject Text(string text) => new() { ["type"] = "text", ["text"] = text };

    public static JsonObject ToolCall(string id, string name, string arguments) =>
        new() { ["id"] = id, ["type"] = "function", ["function"] = new JsonObject { ["name"] = name, ["arguments"] = arguments } };

    public static string LastUserText(JsonObject request)
    {
        var messages = request["messages"]!.AsArray();
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i]!["role"]!.GetValue<string>() != "user")
            {
                continue;
            }

            var content = messages[i]!["content"]!;
            if (content is JsonValue value)
            {
                return value.GetValue<string>();
            }

            foreach (var block in content.AsArray())
            {
                if (block!["type"]!.GetValue<string>() == "text")
                {
                    return block["text"]!.GetValue<string>();
                }
            }
        }

        return string.Empty;
    }

    /// <summary>An SSE event as Cohere frames it: <c>event:</c> + <c>data:</c>, the JSON's <c>type</c> repeating the event name.</summary>
    public static string Sse(JsonObject data) => $"event: {data["type"]!.GetValue<string>()}\ndata: {data.ToJsonString()}\n\n";

    /// <summary>The event sequence of an answer, as documented (https://docs.cohere.com/v2/docs/streaming).</summary>
    public static IEnumerable<string> Events(string id, JsonObject answer)
    {
        var message = answer["message"]!.AsObject();
        yield return Sse(new JsonObject
        {
            ["id"] = id,
            ["type"] = "message-start",
            ["delta"] = new JsonObject { ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = new JsonArray(), ["tool_plan"] = string.Empty, ["tool_calls"] = new JsonArray(), ["citations"] = new JsonArray() } },
        });
        if (message["tool_plan"] is { } plan)
        {
            foreach (var piece in Pieces(plan.GetValue<string>()))
            {
                yield return Sse(new JsonObject { ["type"] = "tool-plan-delta", ["delta"] = new JsonObject { ["message"] = new JsonObject { ["tool_plan"] = piece } } });
            }
        }

        var blocks = message["content"]!.AsArray();
        for (var i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i]!.AsObject();
            var type = block["type"]!.GetValue<string>();
            var field = type == "thinking" ? "thinking" : "text";
            yield return Sse(new JsonObject { ["type"] = "content-start", ["index"] = i, ["delta"] = new JsonObject { ["message"] = new JsonObject { ["content"] = new JsonObject { ["type"] = type, [field] = string.Empty } } } });
            foreach (var piece in Pieces(block[field]!.GetValue<string>()))
            {
                yield return Sse(new JsonObject { ["type"] = "content-delta", ["index"] = i, ["delta"] = new JsonObject { ["message"] = new JsonObject { ["content"] = new JsonObject { [field] = piece } } } });
            }

            yield return Sse(new JsonObject { ["type"] = "content-end", ["index"] = i });
        }

        var calls = message["tool_calls"]?.AsArray() ?? [];
        for (var i = 0; i < calls.Count; i++)
        {
            var call = calls[i]!.AsObject();
            var arguments = call["function"]!["arguments"]!.GetValue<string>();
            var half = arguments.Length / 2;
            yield return Sse(new JsonObject
            {
                ["type"] = "tool-call-start",
                ["index"] = i,
                ["delta"] = new JsonObject { ["message"] = new JsonObject { ["tool_calls"] = new JsonObject { ["id"] = call["id"]!.DeepClone(), ["type"] = "function", ["function"] = new JsonObject { ["name"] = call["function"]!["name"]!.DeepClone(), ["arguments"] = string.Empty } } } },
            });
            foreach (var piece in new[] { arguments[..half], arguments[half..] })
            {
                yield return Sse(new JsonObject { ["type"] = "tool-call-delta", ["index"] = i, ["delta"] = new JsonObject { ["message"] = new JsonObject { ["tool_calls"] = new JsonObject { ["function"] = new JsonObject { ["arguments"] = piece } } } } });
            }

            yield return Sse(new JsonObject { ["type"] = "tool-call-end", ["index"] = i });
        }

        yield return Sse(new JsonObject
        {
            ["type"] = "message-end",
            ["delta"] = new JsonObject { ["finish_reason"] = answer["finish_reason"]!.DeepClone(), ["usage"] = answer["usage"]!.DeepClone() },
        });
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

    private static JsonObject DefaultEmbed(JsonObject request)
    {
        var texts = request["texts"]!.AsArray();
        var vectors = new JsonArray([.. texts.Select((t, i) => (JsonNode)new JsonArray(i, t!.GetValue<string>().Length, 0.5))]);
        return new JsonObject
        {
            ["id"] = "emb_1",
            ["embeddings"] = new JsonObject { ["float"] = vectors },
            ["texts"] = texts.DeepClone(),
            ["meta"] = new JsonObject { ["api_version"] = new JsonObject { ["version"] = "2" }, ["billed_units"] = new JsonObject { ["input_tokens"] = 5 * texts.Count } },
            ["response_type"] = "embeddings_by_type",
        };
    }

    private static JsonObject DefaultRerank(JsonObject request)
    {
        var documents = request["documents"]!.AsArray().Select(d => d!.GetValue<string>()).ToList();
        var results = documents.Select((d, i) => (Index: i, Score: Math.Round(d.Length / 100.0, 3))).OrderByDescending(r => r.Score).ToList();
        if (request["top_n"] is { } topN)
        {
            results = [.. results.Take(topN.GetValue<int>())];
        }

        return new JsonObject
        {
            ["id"] = "rr_1",
            ["results"] = new JsonArray([.. results.Select(r => (JsonNode)new JsonObject { ["index"] = r.Index, ["relevance_score"] = r.Score })]),
            ["meta"] = new JsonObject { ["api_version"] = new JsonObject { ["version"] = "2" }, ["billed_units"] = new JsonObject { ["search_units"] = 1 } },
        };
    }

    private async Task<JsonObject?> RecordAsync(HttpContext context)
    {
        var request = await UpstreamRequest.ReadAsync(context);
        Requests.Enqueue(request);
        return request.Body;
    }

    private async Task<bool> FailAsync(HttpContext context, ProviderScript? script)
    {
        var failure = Failures.TryDequeue(out var queued) ? queued
            : script?.FailWithStatus is { } status ? new Failure(status, script.FailWithMessage, script.RetryAfter)
            : null;
        if (failure is null)
        {
            return false;
        }

        context.Response.StatusCode = failure.Status;
        if (failure.RetryAfter is { } retryAfter)
        {
            context.Response.Headers.RetryAfter = ((int)retryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        }

        await context.Response.WriteAsJsonAsync(new JsonObject { ["id"] = "err_1", ["message"] = failure.Message });
        return true;
    }

    private async Task ChatAsync(HttpContext context)
    {
        var request = (await RecordAsync(context))!;
        var script = Script;
        if (script is { ResponseDelay: var delay } && delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, context.RequestAborted);
        }

        if (await FailAsync(context, script))
        {
            return;
        }

        var answer = Respond?.Invoke(request) ?? Answer(new JsonArray(Text(script?.Reply ?? "echo: " + LastUserText(request))), output: 9);
        var id = "chat_fake_" + Interlocked.Increment(ref _counter).ToString(CultureInfo.InvariantCulture);
        answer["id"] ??= id;
        if (request["stream"]?.GetValue<bool>() != true)
        {
            await context.Response.WriteAsJsonAsync(answer);
            return;
        }

        context.Response.ContentType = "text/event-stream";
        var events = RawStream?.Invoke(answer) ?? Events(answer["id"]!.GetValue<string>(), answer);
        var first = true;
        foreach (var evt in events)
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


    public sealed record Failure(int Status, string Message, TimeSpan? RetryAfter = null);
}
