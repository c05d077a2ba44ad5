using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Azure;

/// <summary>
/// A fake Azure OpenAI resource on 127.0.0.1 (Kestrel), answering as the docs describe:
/// the v1 API <c>/openai/v1/chat/completions</c> (deployment in the body's <c>model</c>) and the deployment URLs
/// <c>/openai/deployments/{deployment}/chat/completions?api-version=</c> (https://learn.microsoft.com/azure/ai-foundry/openai/reference,
/// https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle); auth by <c>api-key</c> or
/// <c>Authorization: Bearer</c> (Entra ID); <c>prompt_filter_results</c> / <c>content_filter_results</c> in answers and
/// chunks, and the 400 <c>content_filter</c> error with <c>innererror.content_filter_result</c>
/// (https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter). Records every request.
/// </summary>
public sealed class FakeAzureOpenAIUpstream : IAsyncDisposable
{
    public const string ApiKey = "azure-key-0123456789abcdef";

    private LocalServer _server = null!;

    /// <summary>The resource endpoint, e.g. <c>http://127.0.0.1:5123</c>.</summary>
    public string Endpoint { get; private set; } = string.Empty;

    public ConcurrentQueue<Recorded> Requests { get; } = new();

    /// <summary>Files uploaded: purpose and content.</summary>
    public ConcurrentQueue<(string Purpose, string Content)> Uploads { get; } = new();

    /// <summary>Batches created: id, the endpoint asked for, the input lines, polls, cancel asked.</summary>
    public ConcurrentDictionary<string, FakeBatch> Batches { get; } = new();

    /// <summary>Polls after which a batch is completed.</summary>
    public int CompleteAfterPolls { get; set; } = 1;

    /// <summary>
    /// Batch objects as the how-to's samples for <c>2024-07-01-preview</c> show them: ISO 8601 times and a capitalized
    /// status (<c>"created_at": "2024-07-19T17:13:57.2491382+00:00"</c>, <c>"status": "Validating"</c>), null counts.
    /// </summary>
    public bool IsoBatchTimes { get; set; }

    /// <summary>When set, a 429 names its wait only in the message (no retry-after-ms, no Retry-After).</summary>
    public int? ThrottleWithMessageOnly { get; set; }

    private readonly ConcurrentDictionary<string, string> _files = new();

    /// <summary>Bearer tokens accepted besides the api-key.</summary>
    public ConcurrentDictionary<string, bool> Tokens { get; } = new();

    /// <summary>The conformance script, if any.</summary>
    public ProviderScript? Script { get; set; }

    /// <summary>When set, the prompt is "filtered": a 400 content_filter error.</summary>
    public bool FilterPrompt { get; set; }

    /// <summary>When set, the output is "filtered": finish_reason content_filter.</summary>
    public bool FilterOutput { get; set; }

    public static async Task<FakeAzureOpenAIUpstream> StartAsync()
    {
        var upstream = new FakeAzureOpenAIUpstream();
        upstream._server = await LocalServer.StartAsync(app =>
        {
            app.Map("/{**path}", upstream.HandleAsync);
        });
        upstream.Endpoint = upstream._server.Address;
        return upstream;
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    private async Task HandleAsync(HttpContext context)
    {
        JsonNode? body = null;
        if (context.Request.ContentType?.StartsWith("application/json", StringComparison.Ordinal) == true)
        {
            body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        }

        var path = context.Request.Path.Value!;
        var recorded = new Recorded(context.Request.Method, path, context.Request.Query["api-version"].FirstOrDefault(), context.Request.Headers["api-key"].FirstOrDefault(), context.Request.Headers.Authorization.FirstOrDefault(), body);
        Requests.Enqueue(recorded);

        var authorized = recorded.ApiKeyHeader == ApiKey
            || (recorded.Authorization is { } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) && Tokens.ContainsKey(auth["Bearer ".Length..]));
        if (!authorized)
        {
            await ErrorAsync(context, 401, new JsonObject { ["code"] = "401", ["message"] = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource." });
            return;
        }

        string? deployment;
        string operation;
        if (path == "/openai/models" || path == "/openai/v1/models")
        {
            await context.Response.WriteAsJsonAsync(new JsonObject { ["object"] = "list", ["data"] = new JsonArray(new JsonObject { ["id"] = "gpt-4o", ["object"] = "model", ["created"] = 1, ["owned_by"] = "system", ["status"] = "succeeded" }) });
            return;
        }
        else if (BatchRoute(path) is { } route)
        {
            // the batch API: https://learn.microsoft.com/azure/ai-foundry/openai/how-to/batch (dated: {resource}/openai/files
            // and /openai/batches with api-version) and https://learn.microsoft.com/azure/foundry/reference/rest/batches-create-batch
            // (v1: {resource}/openai/v1/files and /openai/v1/batches)
            if ((recorded.ApiVersion is null) != route.V1)
            {
                await ErrorAsync(context, 404, new JsonObject { ["code"] = "404", ["message"] = "Resource not found" });
                return;
            }

            await BatchAsync(context, route.Remainder, body, recorded.ApiVersion);
            return;
        }
        else if (path == "/openai/responses")
        {
            // the Responses API on a dated (preview) version: {resource}/openai/responses?api-version=2025-03-01-preview with the
            // deployment as model (https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses, REST tab)
            if (recorded.ApiVersion is null)
            {
                await ErrorAsync(context, 404, new JsonObject { ["code"] = "404", ["message"] = "Resource not found" });
                return;
            }

            operation = "responses";
            deployment = body?["model"]?.GetValue<string>();
        }
        else if (path.StartsWith("/openai/v1/", StringComparison.Ordinal))
        {
            operation = path["/openai/v1/".Length..];
            deployment = body?["model"]?.GetValue<string>();
        }
        else if (path.StartsWith("/openai/deployments/", StringComparison.Ordinal))
        {
            var rest = path["/openai/deployments/".Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            deployment = Uri.UnescapeDataString(rest[..slash]);
            operation = rest[(slash + 1)..];
            if (recorded.ApiVersion is null)
            {
                await ErrorAsync(context, 404, new JsonObject { ["code"] = "404", ["message"] = "Resource not found" });
                return;
            }
        }
        else
        {
            await ErrorAsync(context, 404, new JsonObject { ["code"] = "404", ["message"] = "Resource not found" });
            return;
        }

        if (Script is { } script)
        {
            if (script.ResponseDelay > TimeSpan.Zero)
            {
                await Task.Delay(script.ResponseDelay, context.RequestAborted);
            }

            if (script.FailWithStatus is { } status)
            {
                if (script.RetryAfter is { } retryAfter)
                {
                    context.Response.Headers.RetryAfter = ((int)retryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
                }

                await ErrorAsync(context, status, new JsonObject { ["code"] = status.ToString(CultureInfo.InvariantCulture), ["message"] = script.FailWithMessage });
                return;
            }
        }

        if (ThrottleWithMessageOnly is { } wait)
        {
            // Azure's 429 names the wait in its message (https://learn.microsoft.com/answers/questions/2140040/); here without the headers.
            ThrottleWithMessageOnly = null;
            await ErrorAsync(context, 429, new JsonObject
            {
                ["code"] = "429",
                ["message"] = $"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {wait} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
            });
            return;
        }

        if (FilterPrompt)
        {
            await ErrorAsync(context, 400, new JsonObject
            {
                ["message"] = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
                ["type"] = null,
                ["param"] = "prompt",
                ["code"] = "content_filter",
                ["status"] = 400,
                ["innererror"] = new JsonObject
                {
                    ["code"] = "ResponsibleAIPolicyViolation",
                    ["content_filter_result"] = new JsonObject
                    {
                        ["hate"] = Severity(false, "safe"),
                        ["jailbreak"] = new JsonObject { ["filtered"] = true, ["detected"] = true },
                        ["self_harm"] = Severity(false, "safe"),
                        ["sexual"] = Severity(false, "safe"),
                        ["violence"] = Severity(false, "safe"),
                    },
                },
            });
            return;
        }

        switch (operation)
        {
            case "chat/completions":
                await ChatAsync(context, body!, deployment ?? string.Empty);
                return;
            case "completions":
                await CompletionAsync(context, body!, deployment ?? string.Empty);
                return;
            case "responses":
                await ResponsesAsync(context, body!, deployment ?? string.Empty);
                return;
            case "embeddings":
                await context.Response.WriteAsJsonAsync(new JsonObject
                {
                    ["object"] = "list",
                    ["model"] = deployment,
                    ["data"] = new JsonArray(new JsonObject { ["object"] = "embedding", ["index"] = 0, ["embedding"] = new JsonArray(0.25, 0.5) }),
                    ["usage"] = new JsonObject { ["prompt_tokens"] = 2, ["total_tokens"] = 2 },
                });
                return;
            default:
                await ErrorAsync(context, 404, new JsonObject { ["code"] = "404", ["message"] = "Resource not found" });
                return;
        }
    }

    private async Task ChatAsync(HttpContext context, JsonNode request, string deployment)
    {
        var reply = FilterOutput ? "Partial" : Script?.Reply ?? "Hello from Azure.";
        var pieces = reply.Split(' ').Select((w, i) => i == 0 ? w : " " + w).ToList();
        var finish = FilterOutput ? "content_filter" : "stop";
        if (request["stream"]?.GetValue<bool>() != true)
        {
            await context.Response.WriteAsJsonAsync(new JsonObject
            {
                ["id"] = "chatcmpl-azure",
                ["object"] = "chat.completion",
                ["created"] = 1,
                ["model"] = "gpt-4o-2024-11-20",
                ["prompt_filter_results"] = new JsonArray(new JsonObject { ["prompt_index"] = 0, ["content_filter_results"] = Categories(false) }),
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply },
                    ["finish_reason"] = finish,
                    ["content_filter_results"] = Categories(FilterOutput),
                }),
                ["usage"] = new JsonObject { ["prompt_tokens"] = 10, ["completion_tokens"] = pieces.Count, ["total_tokens"] = 10 + pieces.Count },
                ["x_deployment"] = deployment,
            });
            return;
        }

        // Azure's stream: first a chunk with no choices, an empty id and model, and the prompt's filter results.
        var events = new List<JsonObject>
        {
            new() { ["id"] = string.Empty, ["object"] = string.Empty, ["created"] = 0, ["model"] = string.Empty, ["choices"] = new JsonArray(), ["prompt_filter_results"] = new JsonArray(new JsonObject { ["prompt_index"] = 0, ["content_filter_results"] = Categories(false) }) },
        };
        JsonObject Chunk(JsonObject delta, string? finishReason, JsonObject? filter = null)
        {
            var choice = new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finishReason };
            if (filter is not null)
            {
                choice["content_filter_results"] = filter;
            }

            return new() { ["id"] = "chatcmpl-azure", ["object"] = "chat.completion.chunk", ["created"] = 1, ["model"] = "gpt-4o-2024-11-20", ["choices"] = new JsonArray(choice) };
        }

        events.Add(Chunk(new JsonObject { ["role"] = "assistant", ["content"] = string.Empty }, null));
        events.AddRange(pieces.Select(p => Chunk(new JsonObject { ["content"] = p }, null, Categories(false))));
        events.Add(Chunk(new JsonObject(), finish, Categories(FilterOutput)));
        if (request["stream_options"]?["include_usage"]?.GetValue<bool>() == true)
        {
            events.Add(new JsonObject { ["id"] = "chatcmpl-azure", ["object"] = "chat.completion.chunk", ["created"] = 1, ["model"] = "gpt-4o-2024-11-20", ["choices"] = new JsonArray(), ["usage"] = new JsonObject { ["prompt_tokens"] = 10, ["completion_tokens"] = pieces.Count, ["total_tokens"] = 10 + pieces.Count } });
        }

        context.Response.ContentType = "text/event-stream";
        for (var i = 0; i < events.Count; i++)
        {
            if (i > 1 && Script?.ChunkDelay is { } delay && delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, context.RequestAborted);
            }

            await context.Response.WriteAsync("data: " + events[i].ToJsonString() + "\n\n", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }

        await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
    }

    private static async Task ResponsesAsync(HttpContext context, JsonNode request, string deployment)
    {
        JsonObject Response(string status) => new()
        {
            ["id"] = "resp_azure",
            ["object"] = "response",
            ["created_at"] = 1,
            ["status"] = status,
            ["model"] = deployment,
            ["output"] = status == "completed"
                ? new JsonArray(new JsonObject
                {
                    ["type"] = "message",
                    ["id"] = "msg_azure",
                    ["status"] = "completed",
                    ["role"] = "assistant",
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "output_text", ["text"] = "Hello from Azure Responses.", ["annotations"] = new JsonArray() }),
                })
                : new JsonArray(),
            ["usage"] = status == "completed" ? new JsonObject { ["input_tokens"] = 5, ["output_tokens"] = 4, ["total_tokens"] = 9 } : null,
        };

        if (request["stream"]?.GetValue<bool>() != true)
        {
            await context.Response.WriteAsJsonAsync(Response("completed"));
            return;
        }

        context.Response.ContentType = "text/event-stream";
        var events = new[]
        {
            new JsonObject { ["type"] = "response.created", ["sequence_number"] = 0, ["response"] = Response("in_progress") },
            new JsonObject { ["type"] = "response.output_text.delta", ["sequence_number"] = 1, ["item_id"] = "msg_azure", ["output_index"] = 0, ["content_index"] = 0, ["delta"] = "Hello from Azure Responses." },
            new JsonObject { ["type"] = "response.completed", ["sequence_number"] = 2, ["response"] = Response("completed") },
        };
        foreach (var evt in events)
        {
            await context.Response.WriteAsync("event: " + evt["type"]!.GetValue<string>() + "\ndata: " + evt.ToJsonString() + "\n\n", context.RequestAborted);
        }
    }

    private static async Task CompletionAsync(HttpContext context, JsonNode request, string deployment)
    {
        JsonObject Completion(string text, string? finish) => new()
        {
            ["id"] = "cmpl-azure",
            ["object"] = "text_completion",
            ["created"] = 1,
            ["model"] = deployment,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["text"] = text, ["finish_reason"] = finish }),
        };

        if (request["stream"]?.GetValue<bool>() == true)
        {
            context.Response.ContentType = "text/event-stream";
            foreach (var chunk in new[] { Completion("some", null), Completion(" thing", "stop") })
            {
                await context.Response.WriteAsync("data: " + chunk.ToJsonString() + "\n\n", context.RequestAborted);
            }

            await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
            return;
        }

        var body = Completion("something", "stop");
        body["usage"] = new JsonObject { ["prompt_tokens"] = 1, ["completion_tokens"] = 1, ["total_tokens"] = 2 };
        await context.Response.WriteAsJsonAsync(body);
    }

    private static (bool V1, string Remainder)? BatchRoute(string path)
    {
        foreach (var (prefix, v1) in new[] { ("/openai/v1/", true), ("/openai/", false) })
        {
            if (path.StartsWith(prefix, StringComparison.Ordinal))
            {
                var rest = path[prefix.Length..];
                if (rest is "files" or "batches" || rest.StartsWith("files/", StringComparison.Ordinal) || rest.StartsWith("batches/", StringComparison.Ordinal))
                {
                    return (v1, rest);
                }
            }
        }

        return null;
    }

    private async Task BatchAsync(HttpContext context, string rest, JsonNode? body, string? apiVersion)
    {
        if (rest == "files")
        {
            var form = await context.Request.ReadFormAsync(context.RequestAborted);
            var content = await new StreamReader(form.Files[0].OpenReadStream()).ReadToEndAsync(context.RequestAborted);
            Uploads.Enqueue((form["purpose"].ToString(), content));
            var id = "file-azure-" + Uploads.Count;
            _files[id] = content;
            await context.Response.WriteAsJsonAsync(new JsonObject { ["id"] = id, ["object"] = "file", ["purpose"] = "batch", ["status"] = "processed", ["bytes"] = content.Length });
            return;
        }

        if (rest.StartsWith("files/", StringComparison.Ordinal) && rest.EndsWith("/content", StringComparison.Ordinal))
        {
            var id = rest["files/".Length..^"/content".Length];
            if (!_files.TryGetValue(id, out var content))
            {
                await ErrorAsync(context, 404, new JsonObject { ["code"] = "404", ["message"] = "File not found" });
                return;
            }

            context.Response.ContentType = "application/octet-stream";
            await context.Response.WriteAsync(content, context.RequestAborted);
            return;
        }

        FakeBatch? batch;
        if (rest == "batches")
        {
            var inputId = body?["input_file_id"]?.GetValue<string>() ?? string.Empty;
            var lines = _files.TryGetValue(inputId, out var input) ? input.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList() : [];
            batch = new FakeBatch("batch_azure_" + (Batches.Count + 1), body?["endpoint"]?.GetValue<string>() ?? string.Empty, inputId, apiVersion, lines);
            Batches[batch.Id] = batch;
        }
        else
        {
            var id = rest["batches/".Length..];
            var cancel = id.EndsWith("/cancel", StringComparison.Ordinal);
            id = cancel ? id[..^"/cancel".Length] : id;
            if (!Batches.TryGetValue(id, out batch))
            {
                await ErrorAsync(context, 404, new JsonObject { ["code"] = "404", ["message"] = "Batch not found" });
                return;
            }

            if (cancel)
            {
                batch.CancelRequested = true;
                batch.PollsAtCancel = batch.Polls;
            }
            else
            {
                batch.Polls++;
            }
        }

        await context.Response.WriteAsJsonAsync(Describe(batch));
    }

    private JsonObject Describe(FakeBatch batch)
    {
        var status = batch.CancelRequested ? (batch.Polls > batch.PollsAtCancel ? "cancelled" : "cancelling") : batch.Polls >= CompleteAfterPolls ? "completed" : batch.Polls == 0 ? "validating" : "in_progress";

        string? outputId = null;
        if (status == "completed")
        {
            // One output line per input line, as the how-to's output sample: the response body names the base model.
            outputId = "file-azure-out-" + batch.Id;
            _files.TryAdd(outputId, string.Concat(batch.Lines.Select(line => new JsonObject
            {
                ["custom_id"] = line["custom_id"]!.GetValue<string>(),
                ["response"] = new JsonObject
                {
                    ["body"] = new JsonObject
                    {
                        ["id"] = "chatcmpl-azure-batch",
                        ["object"] = "chat.completion",
                        ["created"] = 1,
                        ["model"] = "gpt-4o-2024-08-06",
                        ["choices"] = new JsonArray(new JsonObject
                        {
                            ["index"] = 0,
                            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = "batched by " + line["body"]!["model"]!.GetValue<string>() },
                            ["finish_reason"] = "stop",
                            ["content_filter_results"] = Categories(false),
                        }),
                        ["usage"] = new JsonObject { ["prompt_tokens"] = 1_000_000, ["completion_tokens"] = 1_000_000, ["total_tokens"] = 2_000_000 },
                    },
                    ["request_id"] = "req-azure",
                    ["status_code"] = 200,
                },
                ["error"] = null,
            }.ToJsonString() + "\n")));
        }

        var done = status == "completed" ? batch.Lines.Count : 0;
        var counts = new JsonObject { ["total"] = batch.Lines.Count, ["completed"] = done, ["failed"] = 0 };
        if (IsoBatchTimes)
        {
            counts = new JsonObject { ["total"] = null, ["completed"] = null, ["failed"] = null };
            if (done > 0)
            {
                counts = new JsonObject { ["total"] = batch.Lines.Count, ["completed"] = done, ["failed"] = 0 };
            }
        }

        return new JsonObject
        {
            ["id"] = batch.Id,
            ["object"] = "batch",
            ["endpoint"] = batch.Endpoint,
            ["input_file_id"] = batch.InputFileId,
            ["completion_window"] = "24h",
            ["status"] = IsoBatchTimes ? char.ToUpperInvariant(status[0]) + status[1..] : status,
            ["output_file_id"] = outputId,
            ["error_file_id"] = null,
            ["created_at"] = IsoBatchTimes ? "2024-07-19T17:13:57.2491382+00:00" : 1721409237,
            ["expires_at"] = IsoBatchTimes ? "2024-07-20T17:13:57.1918498+00:00" : 1721495637,
            ["errors"] = null,
            ["metadata"] = null,
            ["request_counts"] = counts,
        };
    }

    private static JsonObject Severity(bool filtered, string severity) => new() { ["filtered"] = filtered, ["severity"] = severity };

    private static JsonObject Categories(bool violence) => new()
    {
        ["hate"] = Severity(false, "safe"),
        ["self_harm"] = Severity(false, "safe"),
        ["sexual"] = Severity(false, "safe"),
        ["violence"] = Severity(violence, violence ? "high" : "safe"),
    };

    private static async Task ErrorAsync(HttpContext context, int status, JsonObject error)
    {
        context.Response.StatusCode = status;
        await context.Response.WriteAsJsonAsync(new JsonObject { ["error"] = error });
    }

    /// <summary>A batch the fake runs.</summary>
    public sealed class FakeBatch(string id, string endpoint, string inputFileId, string? apiVersion, List<JsonNode> lines)
    {
        public string Id { get; } = id;

        public string Endpoint { get; } = endpoint;

        public string InputFileId { get; } = inputFileId;

        public string? ApiVersion { get; } = apiVersion;

        public List<JsonNode> Lines { get; } = lines;

        public int Polls { get; set; }

        public bool CancelRequested { get; set; }

        public int PollsAtCancel { get; set; }
    }

    /// <summary>One request as received.</summary>
    public sealed record Recorded(string Method, string Path, string? ApiVersion, string? ApiKeyHeader, string? Authorization, JsonNode? Body);
}
