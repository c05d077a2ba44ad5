using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Bifrost.Middleware.Azure.Tests;

/// <summary>
/// A fake Azure OpenAI resource taking Entra ID tokens: <c>POST /openai/v1/chat/completions</c> answers 200 when
/// <c>Authorization: Bearer {token}</c> names an accepted token, else 401 as Azure does
/// (https://learn.microsoft.com/azure/ai-foundry/openai/how-to/managed-identity,
/// https://learn.microsoft.com/azure/ai-foundry/openai/reference). Records the Authorization and api-key headers.
/// </summary>
public sealed class FakeAzureUpstream : IAsyncDisposable
{
    private WebApplication _app = null!;

    public string Endpoint { get; private set; } = string.Empty;

    public ConcurrentDictionary<string, bool> AcceptedTokens { get; } = new();

    public ConcurrentQueue<(string? Authorization, string? ApiKey)> Requests { get; } = new();

    public static async Task<FakeAzureUpstream> StartAsync()
    {
        var upstream = new FakeAzureUpstream();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapPost("/openai/v1/chat/completions", (HttpContext context) =>
        {
            var authorization = context.Request.Headers.Authorization.FirstOrDefault();
            upstream.Requests.Enqueue((authorization, context.Request.Headers["api-key"].FirstOrDefault()));
            if (authorization is null || !authorization.StartsWith("Bearer ", StringComparison.Ordinal) || !upstream.AcceptedTokens.ContainsKey(authorization["Bearer ".Length..]))
            {
                return Results.Json(new JsonObject { ["error"] = new JsonObject { ["code"] = "401", ["message"] = "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired." } }, statusCode: 401);
            }

            return Results.Json(new JsonObject
            {
                ["id"] = "chatcmpl-azure",
                ["object"] = "chat.completion",
                ["created"] = 1,
                ["model"] = "gpt-4o",
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = "ok" }, ["finish_reason"] = "stop" }),
                ["usage"] = new JsonObject { ["prompt_tokens"] = 1, ["completion_tokens"] = 1, ["total_tokens"] = 2 },
            });
        });
        await app.StartAsync();
        upstream._app = app;
        upstream.Endpoint = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return upstream;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
