using System.Globalization;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.OpenAI;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Conformance;

/// <summary>The OpenAI-compatible adapter against the adapter conformance suite, over HTTP to a scripted fake OpenAI upstream.</summary>
public class OpenAICompatibleAdapterConformanceTests : ProviderAdapterConformanceTests<IProviderAdapter>
{
    private LocalServer _server = null!;
    private ServiceProvider _services = null!;
    private ProviderScript _script = new();

    public override async ValueTask InitializeAsync()
    {
        _server = await LocalServer.StartAsync(Map);
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _server.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override ValueTask<IProviderAdapter> CreateAdapterAsync() =>
        ValueTask.FromResult<IProviderAdapter>(_services.GetRequiredService<OpenAICompatibleAdapter>());

    protected override ProviderContext CreateContext() =>
        new("openai", new ProviderOptions { BaseUrl = _server.Address + "/v1" }, "gpt-test", "sk-test");

    protected override ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request)
    {
        _script = script;
        return ValueTask.FromResult(true);
    }

    /// <summary>A minimal OpenAI: chat completions (JSON and SSE), embeddings, legacy completions (JSON and SSE), models.</summary>
    private void Map(WebApplication app)
    {
        app.MapPost("/v1/chat/completions", async (HttpContext context) =>
        {
            var request = (await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted))!;
            if (await FailAsync(context))
            {
                return;
            }

            var model = request["model"]!.GetValue<string>();
            var reply = _script.Reply;
            var pieces = reply.Split(' ').Select((w, i) => i == 0 ? w : " " + w).ToList();
            if (request["stream"]?.GetValue<bool>() != true)
            {
                await context.Response.WriteAsJsonAsync(new JsonObject
                {
                    ["id"] = "chatcmpl-fake",
                    ["object"] = "chat.completion",
                    ["created"] = 1,
                    ["model"] = model,
                    ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply }, ["finish_reason"] = "stop" }),
                    ["usage"] = new JsonObject { ["prompt_tokens"] = 10, ["completion_tokens"] = pieces.Count, ["total_tokens"] = 10 + pieces.Count },
                });
                return;
            }

            JsonObject Chunk(JsonObject delta, string? finish) => new()
            {
                ["id"] = "chatcmpl-fake",
                ["object"] = "chat.completion.chunk",
                ["created"] = 1,
                ["model"] = model,
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
            };

            var chunks = new List<JsonObject> { Chunk(new JsonObject { ["role"] = "assistant", ["content"] = string.Empty }, null) };
            chunks.AddRange(pieces.Select(p => Chunk(new JsonObject { ["content"] = p }, null)));
            chunks.Add(Chunk(new JsonObject(), "stop"));
            if (request["stream_options"]?["include_usage"]?.GetValue<bool>() == true)
            {
                chunks.Add(new JsonObject { ["id"] = "chatcmpl-fake", ["object"] = "chat.completion.chunk", ["created"] = 1, ["model"] = model, ["choices"] = new JsonArray(), ["usage"] = new JsonObject { ["prompt_tokens"] = 10, ["completion_tokens"] = pieces.Count, ["total_tokens"] = 10 + pieces.Count } });
            }

            await StreamAsync(context, chunks);
        });
        app.MapPost("/v1/completions", async (HttpContext context) =>
        {
            var request = (await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted))!;
            JsonObject Completion(string text, string? finish) => new()
            {
                ["id"] = "cmpl-fake",
                ["object"] = "text_completion",
                ["created"] = 1,
                ["model"] = request["model"]!.GetValue<string>(),
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["text"] = text, ["finish_reason"] = finish }),
            };

            if (request["stream"]?.GetValue<bool>() == true)
            {
                await StreamAsync(context, [Completion("some", null), Completion(" thing", "stop")]);
                return;
            }

            var body = Completion("something", "stop");
            body["usage"] = new JsonObject { ["prompt_tokens"] = 1, ["completion_tokens"] = 1, ["total_tokens"] = 2 };
            await context.Response.WriteAsJsonAsync(body);
        });
        app.MapPost("/v1/embeddings", () => Results.Json(new JsonObject
        {
            ["object"] = "list",
            ["model"] = "text-embedding-fake",
            ["data"] = new JsonArray(new JsonObject { ["object"] = "embedding", ["index"] = 0, ["embedding"] = new JsonArray(0.1, 0.2) }),
            ["usage"] = new JsonObject { ["prompt_tokens"] = 1, ["total_tokens"] = 1 },
        }));
        app.MapGet("/v1/models", () => Results.Json(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject { ["id"] = "gpt-test", ["object"] = "model", ["created"] = 0, ["owned_by"] = "fake" }),
        }));
    }

    private async Task<bool> FailAsync(HttpContext context)
    {
        if (_script.ResponseDelay > TimeSpan.Zero)
        {
            await Task.Delay(_script.ResponseDelay, context.RequestAborted);
        }

        if (_script.FailWithStatus is not { } status)
        {
            return false;
        }

        context.Response.StatusCode = status;
        if (_script.RetryAfter is { } retryAfter)
        {
            context.Response.Headers.RetryAfter = ((int)retryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        }

        await context.Response.WriteAsJsonAsync(new JsonObject { ["error"] = new JsonObject { ["message"] = _script.FailWithMessage, ["type"] = status >= 500 ? "server_error" : "invalid_request_error", ["code"] = null } });
        return true;
    }

    private async Task StreamAsync(HttpContext context, List<JsonObject> events)
    {
        context.Response.ContentType = "text/event-stream";
        for (var i = 0; i < events.Count; i++)
        {
            if (i > 0 && _script.ChunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(_script.ChunkDelay, context.RequestAborted);
            }

            await context.Response.WriteAsync("data: " + events[i].ToJsonString() + "\n\n", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }

        await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
    }
}
