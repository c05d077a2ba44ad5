using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>
/// A fake Anthropic API on 127.0.0.1 (Kestrel): <c>/v1/messages</c> (JSON and the real SSE event sequence),
/// <c>/v1/messages/count_tokens</c>, <c>/v1/models</c> (paged) and the Message Batches API with JSONL results.
/// It records every request; answers are scripted per test.
/// </summary>
public sealed class FakeAnthropicUpstream : IAsyncDisposable
{
    private LocalServer _server = null!;
    private int _messageCounter;
    private int _batchCounter;

    /// <summary>The server's root, e.g. <c>http://127.0.0.1:5123</c> (the adapter adds <c>/v1</c>).</summary>
    public string BaseUrl { get; private set; } = string.Empty;

    public ConcurrentQueue<UpstreamRequest> Requests { get; } = new();

    /// <summary>The conformance script for <c>/v1/messages</c>.</summary>
    public ProviderScript? Script { get; set; }

    /// <summary>One-shot failures answered (in order) before normal answers on <c>/v1/messages</c>.</summary>
    public ConcurrentQueue<Failure> Failures { get; } = new();

    /// <summary>Builds the message answering a request (its content, stop_reason and usage); default: an echo of the last user text.</summary>
    public Func<JsonObject, JsonObject>? Respond { get; set; }

    /// <summary>The raw JSON text to send instead of a non-streamed message (for broken answers).</summary>
    public Func<JsonObject, string>? RawMessage { get; set; }

    /// <summary>Events to send instead of a message's normal event sequence (for broken streams).</summary>
    public Func<JsonObject, IEnumerable<string>>? RawStream { get; set; }

    public int CountTokensResult { get; set; } = 42;

    public List<string> Models { get; set; } = ["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"];

    public ConcurrentDictionary<string, FakeBatch> Batches { get; } = new();

    public int CompleteAfterPolls { get; set; } = 2;

    public IEnumerable<UpstreamRequest> MessageRequests => Requests.Where(r => r.Path == "/v1/messages");

    public static async Task<FakeAnthropicUpstream> StartAsync()
    {
        var upstream = new FakeAnthropicUpstream();
        upstream._server = await LocalServer.StartAsync(app =>
        {
            app.MapPost("/v1/messages", (HttpContext context) => upstream.MessagesAsync(context));
            app.MapPost("/v1/messages/count_tokens", async (HttpContext context) =>
            {
                await upstream.RecordAsync(context);
                return Results.Json(new JsonObject { ["input_tokens"] = upstream.CountTokensResult });
            });
            app.MapGet("/v1/models", async (HttpContext context) =>
            {
                await upstream.RecordAsync(context);
                var after = context.Request.Query["after_id"].ToString();
                var start = string.IsNullOrEmpty(after) ? 0 : upstream.Models.IndexOf(after) + 1;
                var page = upstream.Models.Skip(start).Take(2).ToList();
                var data = new JsonArray([.. page.Select(id => (JsonNode)new JsonObject { ["type"] = "model", ["id"] = id, ["display_name"] = id.ToUpperInvariant(), ["created_at"] = "2025-01-01T00:00:00Z" })]);
                return Results.Json(new JsonObject { ["data"] = data, ["has_more"] = start + page.Count < upstream.Models.Count, ["first_id"] = page.FirstOrDefault(), ["last_id"] = page.LastOrDefault() });
            });
            app.MapPost("/v1/messages/batches", (HttpContext context) => upstream.CreateBatchAsync(context));
            app.MapGet("/v1/messages/batches/{id}", async (HttpContext context, string id) =>
            {
                await upstream.RecordAsync(context);
                if (!upstream.Batches.TryGetValue(id, out var batch))
                {
                    return Results.Json(Error("not_found_error", "No such batch."), statusCode: 404);
                }

                batch.Polls++;
                return Results.Json(upstream.Describe(batch));
            });
            app.MapPost("/v1/messages/batches/{id}/cancel", async (HttpContext context, string id) =>
            {
                await upstream.RecordAsync(context);
                var batch = upstream.Batches[id];
                batch.CancelRequested = true;
                return Results.Json(upstream.Describe(batch));
            });
            app.MapGet("/v1/messages/batches/{id}/results", async (HttpContext context, string id) =>
            {
                await upstream.RecordAsync(context);
                var batch = upstream.Batches[id];
                context.Response.ContentType = "application/binary";
                foreach (var line in BatchResults(batch))
                {
                    await context.Response.WriteAsync(line.ToJsonString() + "\n");
                }
            });
        });
        upstream.BaseUrl = upstream._server.Address;
        return upstream;
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    public static JsonObject Error(string type, string message) =>
        new() { ["type"] = "error", ["error"] = new JsonObject { ["type"] = type, ["message"] = message } };

    public static string ErrorType(int status) => status switch
    {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };

    /// <summary>A message with the given content blocks.</summary>
    public static JsonObject Message(JsonArray content, string stopReason = "end_turn", int input = 12, int output = 7, int cacheCreation = 0, int cacheRead = 0) => new()
    {
        ["content"] = content,
        ["stop_reason"] = stopReason,
        ["stop_sequence"] = null,
        ["usage"] = new JsonObject { ["input_tokens"] = input, ["output_tokens"] = output, ["cache_creation_input_tokens"] = cacheCreation, ["cache_read_input_tokens"] = cacheRead },
    };

    public static JsonObject TextBlock(string text) => new() { ["type"] = "text", ["text"] = text };

    public static string LastUserText(JsonObject request)
    {
        var messages = request["messages"]!.AsArray();
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i]!["role"]!.GetValue<string>() != "user")
            {
                continue;
            }

            if (messages[i]!["content"] is JsonValue text)
            {
                return text.GetValue<string>(); // Anthropic takes a string as one text block
            }

            foreach (var block in messages[i]!["content"]!.AsArray())
            {
                if (block!["type"]!.GetValue<string>() == "text")
                {
                    return block["text"]!.GetValue<string>();
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

    private async Task MessagesAsync(HttpContext context)
    {
        var request = (await RecordAsync(context))!;
        var script = Script;
        if (script is { ResponseDelay: var delay } && delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, context.RequestAborted);
        }

        Failure? failure = Failures.TryDequeue(out var queued) ? queued
            : script?.FailWithStatus is { } status ? new Failure(status, ErrorType(status), script.FailWithMessage, script.RetryAfter)
            : null;
        if (failure is not null)
        {
            context.Response.StatusCode = failure.Status;
            if (failure.RetryAfter is { } retryAfter)
            {
                context.Response.Headers.RetryAfter = ((int)retryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            }

            await context.Response.WriteAsJsonAsync(Error(failure.Type, failure.Message));
            return;
        }

        var message = Respond?.Invoke(request) ?? Message(new JsonArray(TextBlock(script?.Reply ?? "echo: " + LastUserText(request))), output: 9);
        message["id"] ??= "msg_fake_" + Interlocked.Increment(ref _messageCounter).ToString(CultureInfo.InvariantCulture);
        message["type"] = "message";
        message["role"] = "assistant";
        message["model"] ??= request["model"]!.GetValue<string>();

        if (request["stream"]?.GetValue<bool>() != true)
        {
            if (RawMessage is { } raw)
            {
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(raw(message), context.RequestAborted);
                return;
            }

            await context.Response.WriteAsJsonAsync(message);
            return;
        }

        context.Response.ContentType = "text/event-stream";
        var events = RawStream?.Invoke(message) ?? Events(message);
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

    public static string Sse(JsonObject data) => $"event: {data["type"]!.GetValue<string>()}\ndata: {data.ToJsonString()}\n\n";

    /// <summary>The event sequence the real API sends for a message: start, ping, each block (start, deltas, stop), message_delta, message_stop.</summary>
    public static IEnumerable<string> Events(JsonObject message)
    {
        var usage = message["usage"]!.AsObject();
        yield return Sse(new JsonObject
        {
            ["type"] = "message_start",
            ["message"] = new JsonObject
            {
                ["id"] = message["id"]!.DeepClone(),
                ["type"] = "message",
                ["role"] = "assistant",
                ["model"] = message["model"]!.DeepClone(),
                ["content"] = new JsonArray(),
                ["stop_reason"] = null,
                ["stop_sequence"] = null,
                ["usage"] = new JsonObject
                {
                    ["input_tokens"] = usage["input_tokens"]!.DeepClone(),
                    ["cache_creation_input_tokens"] = usage["cache_creation_input_tokens"]?.DeepClone() ?? 0,
                    ["cache_read_input_tokens"] = usage["cache_read_input_tokens"]?.DeepClone() ?? 0,
                    ["output_tokens"] = 1,
                },
            },
        });
        yield return Sse(new JsonObject { ["type"] = "ping" });
        var blocks = message["content"]!.AsArray();
        for (var i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i]!.AsObject();
            var type = block["type"]!.GetValue<string>();
            JsonObject start = type switch
            {
                "text" => new JsonObject { ["type"] = "text", ["text"] = string.Empty },
                "tool_use" => new JsonObject { ["type"] = "tool_use", ["id"] = block["id"]!.DeepClone(), ["name"] = block["name"]!.DeepClone(), ["input"] = new JsonObject() },
                "thinking" => new JsonObject { ["type"] = "thinking", ["thinking"] = string.Empty, ["signature"] = string.Empty },
                _ => (JsonObject)block.DeepClone(),
            };
            yield return Sse(new JsonObject { ["type"] = "content_block_start", ["index"] = i, ["content_block"] = start });
            switch (type)
            {
                case "text":
                    foreach (var piece in Pieces(block["text"]!.GetValue<string>()))
                    {
                        yield return Sse(new JsonObject { ["type"] = "content_block_delta", ["index"] = i, ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = piece } });
                    }

                    break;
                case "tool_use":
                    var json = block["input"]!.ToJsonString();
                    var half = json.Length / 2;
                    foreach (var piece in new[] { string.Empty, json[..half], json[half..] })
                    {
                        yield return Sse(new JsonObject { ["type"] = "content_block_delta", ["index"] = i, ["delta"] = new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = piece } });
                    }

                    break;
                case "thinking":
                    foreach (var piece in Pieces(block["thinking"]!.GetValue<string>()))
                    {
                        yield return Sse(new JsonObject { ["type"] = "content_block_delta", ["index"] = i, ["delta"] = new JsonObject { ["type"] = "thinking_delta", ["thinking"] = piece } });
                    }

                    yield return Sse(new JsonObject { ["type"] = "content_block_delta", ["index"] = i, ["delta"] = new JsonObject { ["type"] = "signature_delta", ["signature"] = block["signature"]!.DeepClone() } });
                    break;
            }

            yield return Sse(new JsonObject { ["type"] = "content_block_stop", ["index"] = i });
        }

        yield return Sse(new JsonObject
        {
            ["type"] = "message_delta",
            ["delta"] = new JsonObject { ["stop_reason"] = message["stop_reason"]!.DeepClone(), ["stop_sequence"] = null },
            ["usage"] = new JsonObject { ["output_tokens"] = usage["output_tokens"]!.DeepClone() },
        });
        yield return Sse(new JsonObject { ["type"] = "message_stop" });
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

    private async Task CreateBatchAsync(HttpContext context)
    {
        var body = (await RecordAsync(context))!;
        var requests = body["requests"]!.AsArray().Select(r => r!.AsObject()).ToList();
        var batch = new FakeBatch("msgbatch_" + Interlocked.Increment(ref _batchCounter).ToString(CultureInfo.InvariantCulture), requests);
        Batches[batch.Id] = batch;
        await context.Response.WriteAsJsonAsync(Describe(batch));
    }

    private JsonObject Describe(FakeBatch batch)
    {
        var cancelled = batch.CancelRequested;
        var ended = cancelled ? batch.Polls > batch.PollsAtCancel : batch.Polls >= CompleteAfterPolls;
        if (cancelled && batch.PollsAtCancel < 0)
        {
            batch.PollsAtCancel = batch.Polls;
            ended = false;
        }

        var status = ended ? "ended" : cancelled ? "canceling" : "in_progress";
        var counts = new JsonObject { ["processing"] = batch.Requests.Count, ["succeeded"] = 0, ["errored"] = 0, ["canceled"] = 0, ["expired"] = 0 };
        if (ended)
        {
            counts["processing"] = 0;
            foreach (var line in BatchResults(batch))
            {
                var type = line["result"]!["type"]!.GetValue<string>();
                counts[type] = counts[type]!.GetValue<int>() + 1;
            }
        }

        return new JsonObject
        {
            ["id"] = batch.Id,
            ["type"] = "message_batch",
            ["processing_status"] = status,
            ["request_counts"] = counts,
            ["created_at"] = "2025-06-01T10:00:00Z",
            ["expires_at"] = "2025-06-02T10:00:00Z",
            ["ended_at"] = ended ? "2025-06-01T10:05:00Z" : null,
            ["cancel_initiated_at"] = cancelled ? "2025-06-01T10:01:00Z" : null,
            ["archived_at"] = null,
            ["results_url"] = ended ? $"{BaseUrl}/v1/messages/batches/{batch.Id}/results" : null,
        };
    }

    /// <summary>Results: a request whose last user text contains "fail" errors; a cancelled batch's requests are canceled; others echo.</summary>
    private static IEnumerable<JsonObject> BatchResults(FakeBatch batch)
    {
        foreach (var request in batch.Requests)
        {
            var customId = request["custom_id"]!.GetValue<string>();
            var parameters = request["params"]!.AsObject();
            var text = LastUserText(parameters);
            JsonObject result;
            if (batch.CancelRequested)
            {
                result = new JsonObject { ["type"] = "canceled" };
            }
            else if (text.Contains("fail", StringComparison.Ordinal))
            {
                result = new JsonObject { ["type"] = "errored", ["error"] = Error("invalid_request_error", "scripted batch error") };
            }
            else
            {
                var message = Message(new JsonArray(TextBlock("batch: " + text)), input: 10, output: 3);
                message["id"] = "msg_batch_" + customId;
                message["type"] = "message";
                message["role"] = "assistant";
                message["model"] = parameters["model"]!.DeepClone();
                result = new JsonObject { ["type"] = "succeeded", ["message"] = message };
            }

            yield return new JsonObject { ["custom_id"] = customId, ["result"] = result };
        }
    }


    public sealed record Failure(int Status, string Type, string Message, TimeSpan? RetryAfter = null);

    public sealed class FakeBatch(string id, List<JsonObject> requests)
    {
        public string Id { get; } = id;

        public List<JsonObject> Requests { get; } = requests;

        public int Polls { get; set; }

        public bool CancelRequested { get; set; }

        public int PollsAtCancel { get; set; } = -1;
    }
}
