using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Diagnostics;

namespace Bifrost.Middleware.Endpoints;

/// <summary>Reading requests and writing answers and errors in the wire format, with our own JSON context.</summary>
internal static class BifrostResults
{
    /// <summary>The response header that carries the request id (<see cref="HttpContext.TraceIdentifier"/>) of a Bifrost route.</summary>
    public const string RequestIdHeader = "x-request-id";

    /// <summary>The <see cref="HttpContext.Items"/> key of the current route's request type (set by <see cref="Guard"/>).</summary>
    private static readonly object RequestTypeKey = new();

    /// <summary>First path segments of OpenAI (and Bifrost) APIs this gateway does not serve: 400 <c>unsupported_operation</c>, not <c>unknown_url</c>.</summary>
    internal static readonly HashSet<string> UnsupportedOpenAIRoutes = new(StringComparer.OrdinalIgnoreCase)
    {
        "assistants", "threads", "vector_stores", "containers", "fine_tuning", "fine-tunes", "uploads", "realtime", "evals",
        "audio", "images", "videos", "ocr", "conversations", "chatkit", "organization", "graders", "edits", "engines",
    };

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>Reads a JSON body; bad input becomes a 400 (or 413) <see cref="BifrostException"/>, never a 500.</summary>
    public static async ValueTask<T> ReadJsonAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo)
        where T : class
    {
        T? value;
        try
        {
            value = await BufferedJson.DeserializeAsync(context.Request.Body, context.Request.ContentLength, typeInfo, context.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            throw BifrostException.InvalidJson(ex);
        }
        catch (BadHttpRequestException ex)
        {
            throw BifrostErrors.ServerLimit(ex);
        }

        return value ?? throw BifrostErrors.InvalidRequest("invalid_json", "The request body must be a JSON object.");
    }

    /// <summary><see cref="ReadJsonAsync"/>, keeping the body's bytes when it was read whole (<see cref="BufferedJson.DeserializeKeepingBytesAsync"/>; the caller releases them).</summary>
    public static async ValueTask<(T Value, RequestBytes? Bytes)> ReadJsonKeepingBytesAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo)
        where T : class
    {
        T? value;
        RequestBytes? bytes;
        try
        {
            (value, bytes) = await BufferedJson.DeserializeKeepingBytesAsync(context.Request.Body, context.Request.ContentLength, typeInfo, context.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            throw BifrostException.InvalidJson(ex);
        }
        catch (BadHttpRequestException ex)
        {
            throw BifrostErrors.ServerLimit(ex);
        }

        if (value is null)
        {
            bytes?.Release();
            throw BifrostErrors.InvalidRequest("invalid_json", "The request body must be a JSON object.");
        }

        return (value, bytes);
    }

    /// <summary>
    /// Writes <paramref name="value"/> as <c>application/json</c> with a Content-Length: serialized whole into a pooled
    /// buffer first, then sent in one write (no chunked framing, no second send for the terminating chunk).
    /// </summary>
    public static Task WriteJsonAsync<T>(HttpContext context, T value, JsonTypeInfo<T> typeInfo, int statusCode = StatusCodes.Status200OK)
    {
        var buffer = new PooledBufferWriter();
        try
        {
            var writer = t_writer ??= new Utf8JsonWriter(buffer, BifrostJson.WriterOptions);
            writer.Reset(buffer);
            try
            {
                JsonSerializer.Serialize(writer, value, typeInfo);
            }
            finally
            {
                writer.Reset();
            }

            var response = context.Response;
            response.StatusCode = statusCode;
            response.ContentType = "application/json";
            response.ContentLength = buffer.WrittenCount;
            var write = response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
            if (write.IsCompletedSuccessfully)
            {
                buffer.Dispose();
                return Task.CompletedTask;
            }

            return AwaitWriteAsync(write, buffer);
        }
        catch
        {
            buffer.Dispose();
            throw;
        }

        static async Task AwaitWriteAsync(ValueTask write, PooledBufferWriter buffer)
        {
            using (buffer)
            {
                await write.ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The safety net of every Bifrost route (<c>MapBifrost</c> wraps each delegate in it, so no route can forget it): a
    /// <see cref="BifrostException"/> is answered with its own status; the client going away ends the request quietly;
    /// any other exception is logged once with its stack and answered 500 <c>internal_error</c> in the Bifrost shape with
    /// the request id (also in the <c>x-request-id</c> header) — or, once the answer has started, the connection is aborted.
    /// Streams end with an error event themselves (<see cref="Sse"/>), so an exception rarely gets here after the start.
    /// </summary>
    public static RequestDelegate Guard(string? requestType, RequestDelegate handler) => async context =>
    {
        if (requestType is not null)
        {
            context.Items[RequestTypeKey] = requestType;
        }

        context.Response.Headers.TryAdd(RequestIdHeader, context.TraceIdentifier);
        try
        {
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
            // The server's own limits (body size, a client that sends too slowly), met while reading a body.
            await WriteErrorAsync(context, BifrostErrors.ServerLimit(ex)).ConfigureAwait(false);
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            var error = Unexpected(context, ex);
            context.Response.Headers[RequestIdHeader] = context.TraceIdentifier;
            await WriteErrorAsync(context, error).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.RequestCrashedAfterStart(Logger(context), context.Request.Method, context.Request.Path, context.TraceIdentifier, "the connection is aborted", ex);
            context.Abort();
        }
    };

    /// <summary>Logs an unexpected exception (once, with its stack) and returns the 500 <c>internal_error</c> that answers it.</summary>
    public static BifrostException Unexpected(HttpContext context, Exception exception, bool afterStart = false)
    {
        if (afterStart)
        {
            Log.RequestCrashedAfterStart(Logger(context), context.Request.Method, context.Request.Path, context.TraceIdentifier, "the stream ends with an error event", exception);
        }
        else
        {
            Log.RequestCrashed(Logger(context), context.Request.Method, context.Request.Path, context.TraceIdentifier, exception);
        }

        var error = BifrostErrors.Internal("internal_error", $"The gateway failed unexpectedly (request id {context.TraceIdentifier}); the error is logged under that id.");
        error.Error.EventId = context.TraceIdentifier;
        return error;
    }

    /// <summary>The request type of the current Bifrost route, if known.</summary>
    public static string? RequestType(HttpContext context) => context.Items.TryGetValue(RequestTypeKey, out var type) ? type as string : null;

    private static ILogger Logger(HttpContext context) =>
        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Bifrost.Middleware.Endpoints");

    /// <summary>Writes an error in the Bifrost shape with its status (and Retry-After when the provider gave one); every error carries <c>extra_fields</c>.</summary>
    public static Task WriteErrorAsync(HttpContext context, BifrostException exception)
    {
        exception.Error.StatusCode = exception.StatusCode;
        // One place fills the request type of every route's error: the operation's, unless the error already names one.
        var extra = exception.Error.ExtraFields ??= new BifrostExtraFields();
        extra.RequestType ??= RequestType(context);
        Log.RequestRejected(Logger(context), context.Request.Method, context.Request.Path, exception.StatusCode, exception.Message);
        if (exception.RetryAfter is { } retryAfter && exception.StatusCode is 429 or 503)
        {
            context.Response.Headers.RetryAfter = ((long)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return WriteJsonAsync(context, exception.Error, BifrostJson.Context.BifrostError, exception.StatusCode);
    }

    /// <summary>A 405 for a route that exists with other methods (e.g. GET on an inference route without <c>x-bf-async-id</c>).</summary>
    public static Task MethodNotAllowedAsync(HttpContext context, string allow)
    {
        context.Response.Headers.Allow = allow;
        return WriteErrorAsync(context, BifrostErrors.MethodNotAllowed($"{context.Request.Method} is not allowed on {context.Request.Path}."));
    }

    /// <summary>Any other path under the prefix: 405 for a known route with another method, else 404 <c>unknown_url</c>.</summary>
    public static Task UnknownRouteAsync(HttpContext context)
    {
        var path = context.Request.RouteValues.TryGetValue("path", out var value) ? value as string ?? string.Empty : string.Empty;
        // Routing matches paths case-insensitively, so the known routes are looked up the same way.
        var relative = path.StartsWith("v1/", StringComparison.OrdinalIgnoreCase) ? path[3..] : path;
        var known = context.RequestServices.GetRequiredService<Operations.OperationRegistry>().KnownRoutes.TryGetValue(relative.TrimEnd('/'), out var route);
        if (known)
        {
            context.Response.Headers.Allow = route.Allow;
            context.Items[RequestTypeKey] = route.RequestType;
        }

        var segment = relative.Split('/', 2)[0];
        var error = known
            ? BifrostErrors.MethodNotAllowed($"{context.Request.Method} is not allowed on {context.Request.Path}.")
            : UnsupportedOpenAIRoutes.Contains(segment)
            ? BifrostErrors.UnsupportedOperation($"'{segment}' ({context.Request.Method} {context.Request.Path}) is not supported by this gateway.")
            : BifrostErrors.NotFound("unknown_url", $"Unknown route: {context.Request.Method} {context.Request.Path}.");
        return WriteErrorAsync(context, error);
    }
}
