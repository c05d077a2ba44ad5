using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.RequestLog;

namespace Bifrost.Middleware.Endpoints.Anthropic;

/// <summary>
/// The handlers of the Anthropic-compatible routes: <c>POST v1/messages</c> (JSON or SSE) and
/// <c>POST v1/messages/count_tokens</c>, run through <see cref="IBifrostClient"/> (routing, fallbacks, governance,
/// telemetry, the request log) as chat completions and input-token counts, answered in Anthropic's shapes.
/// </summary>
internal static partial class AnthropicEndpoints
{
    /// <summary>The request types the routes report (telemetry, logs).</summary>
    internal const string MessagesRequestType = "anthropic_messages";

    internal const string CountTokensRequestType = "anthropic_count_tokens";

    public static async Task MessagesAsync(HttpContext context)
    {
        var request = await BifrostResults.ReadJsonAsync(context, AnthropicJsonContext.Wire.AnthropicRequest).ConfigureAwait(false);
        var chat = AnthropicInbound.ToChat(request, forCounting: false);
        RequestLogCaller.Enter(context);
        var client = context.RequestServices.GetRequiredService<IBifrostClient>();
        var cancellationToken = context.RequestAborted;
        if (chat.Stream == true)
        {
            await AnthropicStreamWriter.WriteAsync(context, client.ChatCompletionStreamAsync(chat, cancellationToken), request.Model!, chat.Stop, cancellationToken).ConfigureAwait(false);
            return;
        }

        var response = await client.ChatCompletionAsync(chat, cancellationToken).ConfigureAwait(false);
        await BifrostResults.WriteJsonAsync(context, AnthropicInbound.FromChat(response, request.Model!, chat.Stop), AnthropicJsonContext.Wire.AnthropicResponse).ConfigureAwait(false);
    }

    /// <summary>The gateway's input-token counting (the provider's count where it has one, else the local estimate) as <c>{"input_tokens": n}</c>.</summary>
    public static async Task CountTokensAsync(HttpContext context)
    {
        var request = await BifrostResults.ReadJsonAsync(context, AnthropicJsonContext.Wire.AnthropicRequest).ConfigureAwait(false);
        var chat = AnthropicInbound.ToChat(request, forCounting: true);

        // The chat shape → the Responses shape the counting takes (the same normalization as Bifrost's chat-shaped count_tokens).
        var shaped = new ChatCompletionRequest { Model = chat.Model, Messages = chat.Messages, Tools = chat.Tools };
        var responses = JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(shaped, BifrostJson.Context.ChatCompletionRequest), BifrostJson.Context.ResponsesRequest)!;
        ChatShapedTokenCount.Normalize(responses);
        if (chat.ReasoningEffort is { } effort)
        {
            responses.Reasoning = new ResponsesReasoning { Effort = effort };
        }

        RequestLogCaller.Enter(context);
        var counted = await context.RequestServices.GetRequiredService<IBifrostClient>().CountInputTokensAsync(responses, context.RequestAborted).ConfigureAwait(false);
        await BifrostResults.WriteJsonAsync(context, new AnthropicCountTokensResponse { InputTokens = counted.InputTokens }, AnthropicJsonContext.Wire.AnthropicCountTokensResponse).ConfigureAwait(false);
    }

    /// <summary>Any other path under the prefix: 405 for a known path with another method, else 404 <c>not_found_error</c>.</summary>
    public static Task UnknownRouteAsync(HttpContext context)
    {
        var path = context.Request.RouteValues.TryGetValue("path", out var value) ? value as string ?? string.Empty : string.Empty;
        var relative = (path.StartsWith("v1/", StringComparison.OrdinalIgnoreCase) ? path[3..] : path).TrimEnd('/');
        if (relative.Equals("messages", StringComparison.OrdinalIgnoreCase) || relative.Equals("messages/count_tokens", StringComparison.OrdinalIgnoreCase))
        {
            context.Response.Headers.Allow = "POST";
            throw BifrostErrors.MethodNotAllowed($"{context.Request.Method} is not allowed on {context.Request.Path}.");
        }

        throw BifrostErrors.NotFound("unknown_url", $"Unknown route: {context.Request.Method} {context.Request.Path}.");
    }

    /// <summary>
    /// The safety net of every Anthropic route: the virtual key is read first (governance on); a
    /// <see cref="BifrostException"/> is answered in Anthropic's envelope with its status (and Retry-After); the client
    /// going away ends the request quietly; any other exception is logged and answered 500 <c>api_error</c>.
    /// </summary>
    public static RequestDelegate Guard(VirtualKeyStore keys, RequestDelegate handler) => async context =>
    {
        context.Response.Headers.TryAdd(BifrostResults.RequestIdHeader, context.TraceIdentifier);
        try
        {
            if (keys.Mode != GovernanceMode.Off)
            {
                try
                {
                    GovernanceCaller.Authenticate(context, keys); // x-api-key / Authorization / x-bf-vk carrying an sk-bf- key
                }
                catch (BifrostException ex)
                {
                    context.RequestServices.GetRequiredService<Diagnostics.OperationalMetrics>().GovernanceRefused(ex);
                    throw;
                }
            }

            await handler(context).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; the upstream call was cancelled with it.
        }
        catch (BifrostException ex) when (!context.Response.HasStarted)
        {
            await WriteErrorAsync(context, ex).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
        {
            await WriteErrorAsync(context, BifrostErrors.ServerLimit(ex)).ConfigureAwait(false);
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            await WriteErrorAsync(context, BifrostResults.Unexpected(context, ex)).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _ = BifrostResults.Unexpected(context, ex, afterStart: true);
            context.Abort();
        }
    };

    /// <summary>Writes <c>{"type":"error","error":{"type","message"}}</c> with the error's status (and Retry-After on 429/503/529).</summary>
    public static Task WriteErrorAsync(HttpContext context, BifrostException exception)
    {
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Bifrost.Middleware.Endpoints.Anthropic");
        var body = AnthropicInbound.Error(exception);
        Log.Refused(logger, context.Request.Method, context.Request.Path, exception.StatusCode, body.Error!.Type!, exception.Message);
        if (exception.RetryAfter is { } retryAfter && exception.StatusCode is 429 or 503 or 529)
        {
            context.Response.Headers.RetryAfter = ((long)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return BifrostResults.WriteJsonAsync(context, body, AnthropicJsonContext.Wire.AnthropicErrorResponse, exception.StatusCode);
    }

    private static partial class Log
    {
        [LoggerMessage(1240, LogLevel.Information, "Anthropic route {Method} {Path} answered {Status} {ErrorType}: {Message}")]
        public static partial void Refused(ILogger logger, string method, PathString path, int status, string errorType, string message);
    }
}
