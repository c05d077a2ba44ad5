using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Operations;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.RequestLog;

namespace Bifrost.Middleware.Endpoints.Anthropic;

/// <summary>
/// The handlers of the Anthropic-compatible routes: <c>POST v1/messages</c> (JSON, SSE, or an <c>x-bf-async</c> job) and
/// <c>POST v1/messages/count_tokens</c>, run through the gateway pipeline as the <see cref="AnthropicOperations"/>
/// (routing, fallbacks, governance, telemetry, the request log), answered in Anthropic's shapes: the provider's own
/// answer when an Anthropic provider serves the call (native passthrough), converted from chat for the others.
/// </summary>
internal static partial class AnthropicEndpoints
{
    /// <summary>The request types the routes report (telemetry, logs).</summary>
    internal static readonly string MessagesRequestType = AnthropicOperations.Messages.Name;

    internal static readonly string CountTokensRequestType = AnthropicOperations.CountTokens.Name;

    /// <summary>The last sentence of the routes' OpenAPI descriptions.</summary>
    internal const string OpenApiFooter = "Also served without the version. Errors are in Anthropic's shape ({\"type\":\"error\",\"error\":{\"type\",\"message\"}}).";

    /// <summary>The request headers the routes read, named in OpenAPI as optional header parameters.</summary>
    internal static readonly string[] AcceptedHeaders = [AnthropicHeaders.Version, AnthropicHeaders.Beta, "x-api-key", "x-bf-vk", "x-bf-async", "x-bf-async-id"];

    /// <summary>What the routes do with the headers (the OpenAPI descriptions' part on them).</summary>
    internal const string HeadersDescription =
        "Headers: anthropic-beta (comma-separated) and anthropic-version are forwarded on the native path (anthropic-beta merged after the provider's configured betas; on bedrock moved into the body as anthropic_beta; on vertex anthropic_version is Vertex's own) and ignored when converted; "
        + "x-api-key (or Authorization, x-bf-vk) is read as a virtual key when governance is on and never forwarded (the provider's key is used).";

    /// <summary><c>POST v1/messages</c> for OpenAPI.</summary>
    internal static readonly OperationRoute MessagesRoute = new("POST", "v1/messages", MessagesAsync, "Anthropic messages")
    {
        Body = RouteBody.Json,
        RequestBodyType = typeof(AnthropicRequest),
        ResponseType = typeof(AnthropicResponse),
        ContentTypes = ["application/json", "text/event-stream"],
        ErrorStatuses = [401, 404, .. EndpointOperations.Upstream, 529],
        Summary = "Anthropic Messages (create a message)",
        Description = "Anthropic's Messages API, routed by provider/model (with optional \"fallbacks\"): sent as written to an anthropic provider and to Claude on vertex (rawPredict) and bedrock (InvokeModel) (native passthrough), converted through chat completions for any other model. "
            + "With \"stream\": true the answer is Anthropic's server-sent events. With the header x-bf-async: true the call is queued as an async job and answered at once with the pending message (its id); send the same route with x-bf-async-id to poll it. "
            + HeadersDescription,
    };

    /// <summary><c>POST v1/messages/count_tokens</c> for OpenAPI.</summary>
    internal static readonly OperationRoute CountTokensRoute = new("POST", "v1/messages/count_tokens", CountTokensAsync, "Anthropic count_tokens")
    {
        Body = RouteBody.Json,
        RequestBodyType = typeof(AnthropicRequest),
        ResponseType = typeof(AnthropicCountTokensResponse),
        ErrorStatuses = [401, 404, .. EndpointOperations.Upstream, 529],
        Summary = "Anthropic token counting",
        Description = "Counts a Messages request's input tokens: the provider's own count where the request is native (anthropic, Claude on vertex and bedrock; the body sent as written), else the gateway's input-token counting. "
            + HeadersDescription,
    };

    public static async Task MessagesAsync(HttpContext context)
    {
        var operation = AnthropicOperations.Messages;
        var registry = context.RequestServices.GetRequiredService<ProviderRegistry>();
        if (AsyncEndpoints.AsyncId(context) is { } jobId)
        {
            // Bifrost's async on the integration routes: the same route polled with x-bf-async-id answers 200 with the
            // pending message (its id) until the job ends, then the message or the error as the synchronous call would.
            await using var reader = await AsyncEndpoints.OpenAsync(context, jobId, operation.Name).ConfigureAwait(false);
            await PollAsync(context, reader, registry).ConfigureAwait(false);
            return;
        }

        var request = await BifrostResults.ReadJsonAsync(context, operation.RequestInfo).ConfigureAwait(false);
        ForwardHeaders(context, request); // before a job is stored: the job carries them
        if (AsyncEndpoints.IsAsyncRequested(context))
        {
            if (request.Stream)
            {
                throw BifrostErrors.InvalidRequest("async_stream_not_supported", "Async inference (x-bf-async) is not compatible with \"stream\": true.", "stream");
            }

            operation.CheckSubmit(registry, request);
            var job = await AsyncEndpoints.SubmitAsync(context, operation.Name, JsonSerializer.SerializeToUtf8Bytes(request, operation.RequestInfo)).ConfigureAwait(false);
            await BifrostResults.WriteJsonAsync(context, operation.Pending(job, request, registry.BareModel(request.Model)), operation.ResponseInfo).ConfigureAwait(false);
            return;
        }

        RequestLogCaller.Enter(context);
        CacheHeaders.Enter(context); // the x-bf-cache-* headers and the tenant, for the response cache (when it is on)
        var cancellationToken = context.RequestAborted;
        if (request.Stream)
        {
            await AnthropicSse.WriteAsync(context, operation.StreamAsync(context.RequestServices, request, cancellationToken), cancellationToken).ConfigureAwait(false);
            return;
        }

        var response = await operation.RunAsync(context.RequestServices, request, cancellationToken).ConfigureAwait(false);
        await BifrostResults.WriteJsonAsync(context, response, operation.ResponseInfo).ConfigureAwait(false);
    }

    /// <summary>A job's message as stored, its error in Anthropic's envelope, or the pending message while it runs.</summary>
    private static async Task PollAsync(HttpContext context, JobResultReader reader, ProviderRegistry registry)
    {
        var job = reader.Job;
        if (job.IsFinished && job.Status != JobStatus.Completed && reader.Result is { } stored)
        {
            var error = await JsonSerializer.DeserializeAsync(stored, BifrostJson.Context.BifrostError, context.RequestAborted).ConfigureAwait(false);
            throw error is null ? BifrostErrors.ProviderError(500, BifrostErrors.ApiErrorType, "job_failed", "The job failed.") : new BifrostException(error);
        }

        await AsyncEndpoints.WritePollAsync(context, reader, pending =>
        {
            AnthropicMessagesRequest? request = null;
            try
            {
                request = JsonSerializer.Deserialize(pending.Payload.Span, AnthropicOperations.Messages.RequestInfo);
            }
            catch (JsonException)
            {
                // unreadable: the pending message has no model
            }

            var shape = AnthropicOperations.Messages.Pending(pending, request, request is null ? null : registry.BareModel(request.Model));
            return BifrostResults.WriteJsonAsync(context, shape, AnthropicOperations.Messages.ResponseInfo);
        }).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>{"input_tokens": n}</c>: an Anthropic provider counts the caller's own body (native passthrough); for any other
    /// provider the gateway's input-token counting (the provider's count where it has one, else the local estimate).
    /// </summary>
    public static async Task CountTokensAsync(HttpContext context)
    {
        var request = await BifrostResults.ReadJsonAsync(context, AnthropicOperations.CountTokens.RequestInfo).ConfigureAwait(false);
        ForwardHeaders(context, request);
        AnthropicInbound.Check(request, forCounting: true);
        var registry = context.RequestServices.GetRequiredService<ProviderRegistry>();
        var resolved = registry.Resolve(request.Model, "model");
        if (AnthropicOperations.IsNative(resolved.Provider.Adapter, resolved.Model))
        {
            RequestLogCaller.Enter(context);
            var native = await context.RequestServices.GetRequiredService<GatewayPipeline>().SendAsync(AnthropicOperations.CountTokens, request, context.RequestAborted).ConfigureAwait(false);
            await BifrostResults.WriteJsonAsync(context, native, AnthropicOperations.CountTokens.ResponseInfo).ConfigureAwait(false);
            return;
        }

        var chat = AnthropicInbound.ToChat(request.Parsed, forCounting: true);

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

    /// <summary>
    /// The caller's <c>anthropic-version</c> and <c>anthropic-beta</c> headers onto the request (they replace any the body's
    /// gateway field carried): the native path forwards them; a converted request ignores them.
    /// </summary>
    private static void ForwardHeaders(HttpContext context, AnthropicMessagesRequest request)
    {
        var headers = context.Request.Headers;
        request.SetHeaders(headers[AnthropicHeaders.Version].FirstOrDefault(static v => !string.IsNullOrWhiteSpace(v)), headers[AnthropicHeaders.Beta]);
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
