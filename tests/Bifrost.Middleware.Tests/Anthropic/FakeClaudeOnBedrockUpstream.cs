using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Bedrock;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Http.Features;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>
/// A fake Bedrock Runtime serving Claude through InvokeModel on 127.0.0.1, per AWS's documented wire format:
/// <c>POST /model/{modelId}/invoke</c> (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html)
/// takes the Anthropic Messages body with <c>anthropic_version: bedrock-2023-05-31</c>, no <c>model</c>, no <c>stream</c>,
/// betas as <c>anthropic_beta</c> (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html)
/// and answers Anthropic's message; <c>/invoke-with-response-stream</c>
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html) answers
/// <c>application/vnd.amazon.eventstream</c> frames, <c>:event-type: chunk</c> with <c>{"bytes": base64 of one Anthropic
/// stream event}</c> (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_PayloadPart.html), or exception
/// frames; <c>/count-tokens</c> with <c>{"input":{"invokeModel":{"body": base64}}}</c> answers <c>{"inputTokens"}</c>
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelTokensRequest.html). Errors are
/// <c>{"message"}</c> with the type in <c>x-amzn-ErrorType</c>. It records every request.
/// </summary>
public sealed class FakeClaudeOnBedrockUpstream : IAsyncDisposable
{
    private LocalServer _server = null!;

    public string BaseUrl { get; private set; } = string.Empty;

    public ConcurrentQueue<FakeBedrockUpstream.Recorded> Requests { get; } = new();

    /// <summary>One-shot failures (status, AWS error type, message) answered in order before normal answers.</summary>
    public ConcurrentQueue<(int Status, string Type, string Message)> Failures { get; } = new();

    /// <summary>The message answering a request (before <c>id</c>, <c>type</c>, <c>role</c>, <c>model</c> are filled in).</summary>
    public Func<JsonObject, JsonObject>? Respond { get; set; }

    /// <summary>Frames sent instead of the message's event sequence.</summary>
    public Func<JsonObject, IEnumerable<byte[]>>? RawStream { get; set; }

    public int CountTokensResult { get; set; } = 57;

    public static async Task<FakeClaudeOnBedrockUpstream> StartAsync()
    {
        var upstream = new FakeClaudeOnBedrockUpstream();
        upstream._server = await LocalServer.StartAsync(app => app.MapPost("/model/{model}/{operation}", (HttpContext context) => upstream.HandleAsync(context)));
        upstream.BaseUrl = upstream._server.Address;
        return upstream;
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    /// <summary>A <c>chunk</c> frame carrying one Anthropic stream event.</summary>
    public static byte[] Chunk(JsonObject evt) =>
        FakeBedrockUpstream.Event("chunk", new JsonObject { ["bytes"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(evt.ToJsonString())) });

    /// <summary>The Anthropic stream events of a message (the Anthropic fake's sequence), each as a chunk frame.</summary>
    public static IEnumerable<byte[]> Chunks(JsonObject message) =>
        FakeAnthropicUpstream.Events(message).Select(sse => Chunk(JsonNode.Parse(sse.Split("data: ")[1].Trim())!.AsObject()));

    private async Task HandleAsync(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()!.RawTarget;
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var bytes = buffer.ToArray();
        var body = bytes.Length > 0 ? JsonNode.Parse(bytes)!.AsObject() : null;
        var segments = raw.Split('?')[0].Split('/');
        var recorded = new FakeBedrockUpstream.Recorded(
            context.Request.Method, raw, Uri.UnescapeDataString(segments[2]), segments[3],
            context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()), bytes, body);
        Requests.Enqueue(recorded);
        if (Failures.TryDequeue(out var failure))
        {
            await ErrorAsync(context, failure.Status, failure.Type, failure.Message);
            return;
        }

        switch (recorded.Operation)
        {
            case "count-tokens":
                var invokeBody = JsonNode.Parse(Convert.FromBase64String(body!["input"]!["invokeModel"]!["body"]!.GetValue<string>()))!.AsObject();
                if (Invalid(invokeBody) is { } countProblem)
                {
                    await ErrorAsync(context, 400, "ValidationException", countProblem);
                    return;
                }

                await context.Response.WriteAsJsonAsync(new JsonObject { ["inputTokens"] = CountTokensResult });
                return;
            case "invoke" or "invoke-with-response-stream":
                if (Invalid(body!) is { } problem)
                {
                    await ErrorAsync(context, 400, "ValidationException", problem);
                    return;
                }

                var message = Respond?.Invoke(body!) ?? FakeAnthropicUpstream.Message(new JsonArray(FakeAnthropicUpstream.TextBlock("echo: " + FakeAnthropicUpstream.LastUserText(body!))), output: 9);
                message["id"] ??= "msg_bdrk_01";
                message["type"] = "message";
                message["role"] = "assistant";
                message["model"] ??= "claude-sonnet-4-5-20250929";
                if (recorded.Operation == "invoke")
                {
                    await context.Response.WriteAsJsonAsync(message);
                    return;
                }

                context.Response.ContentType = "application/vnd.amazon.eventstream";
                foreach (var frame in RawStream?.Invoke(message) ?? Chunks(message))
                {
                    await context.Response.Body.WriteAsync(frame, context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                }

                return;
            default:
                await ErrorAsync(context, 404, "UnknownOperationException", "Unknown operation " + recorded.Operation);
                return;
        }
    }

    /// <summary>What Bedrock refuses in a Claude body: a model or stream field, a missing or wrong anthropic_version, no max_tokens.</summary>
    private static string? Invalid(JsonObject body) =>
        body.ContainsKey("model") ? "extraneous key [model] is not permitted"
        : body.ContainsKey("stream") ? "extraneous key [stream] is not permitted"
        : body["anthropic_version"]?.GetValue<string>() != "bedrock-2023-05-31" ? "anthropic_version: bedrock-2023-05-31 is required"
        : !body.ContainsKey("max_tokens") ? "required key [max_tokens] not found"
        : null;

    private static async Task ErrorAsync(HttpContext context, int status, string type, string message)
    {
        context.Response.StatusCode = status;
        context.Response.Headers["x-amzn-ErrorType"] = type + ":http://internal.amazon.com/coral/com.amazon.bedrock/";
        await context.Response.WriteAsJsonAsync(new JsonObject { ["message"] = message });
    }
}
