using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Diagnostics;
using Bifrost.Middleware.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Bifrost.Middleware.Endpoints;

/// <summary>Reading requests and writing answers and errors in the wire format, with our own JSON context.</summary>
internal static class BifrostResults
{
    /// <summary>The routes under the prefix (with or without <c>v1/</c>) and their methods, for 405 answers and their <c>Allow</c> header.</summary>
    internal static readonly Dictionary<string, string> KnownRoutes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["chat/completions"] = "POST",
        ["completions"] = "POST",
        ["embeddings"] = "POST",
        ["responses"] = "POST",
        ["responses/input_tokens"] = "POST",
        ["count_tokens"] = "POST",
        ["models"] = "GET",
        ["files"] = "GET, POST",
        ["batches"] = "GET, POST",
        ["async/chat/completions"] = "POST",
        ["async/completions"] = "POST",
        ["async/embeddings"] = "POST",
        ["async/responses"] = "POST",
    };

    /// <summary>First path segments of OpenAI (and Bifrost) APIs this gateway does not serve: 400 <c>unsupported_operation</c>, not <c>unknown_url</c>.</summary>
    internal static readonly HashSet<string> UnsupportedOpenAIRoutes = new(StringComparer.OrdinalIgnoreCase)
    {
        "assistants", "threads", "vector_stores", "containers", "fine_tuning", "fine-tunes", "uploads", "realtime", "evals",
        "audio", "images", "moderations", "videos", "rerank", "ocr", "conversations", "chatkit", "organization", "graders", "edits", "engines",
    };

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>Reads a JSON body; bad input becomes a 400 (or 413) <see cref="BifrostException"/>, never a 500.</summary>
    public static async ValueTask<T> ReadJsonAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo, string requestType)
        where T : class
    {
        T? value;
        try
        {
            value = await BufferedJson.DeserializeAsync(context.Request.Body, context.Request.ContentLength, typeInfo, context.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            throw WithType(BifrostException.Gateway(400, "invalid_request_error", "invalid_json", $"The request body is not valid JSON for this route: {ex.Message}", ex.Path is { Length: > 1 } path ? path.TrimStart('$', '.') : null), requestType);
        }
        catch (BadHttpRequestException ex)
        {
            var code = ex.StatusCode == StatusCodes.Status413PayloadTooLarge ? "request_too_large" : "bad_request";
            throw WithType(BifrostException.Gateway(ex.StatusCode, ex.StatusCode == 413 ? "request_too_large" : "invalid_request_error", code, ex.Message), requestType);
        }

        return value ?? throw WithType(BifrostException.Gateway(400, "invalid_request_error", "invalid_json", "The request body must be a JSON object."), requestType);
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

    /// <summary>Writes an error in the Bifrost shape with its status (and Retry-After when the provider gave one).</summary>
    public static Task WriteErrorAsync(HttpContext context, BifrostException exception)
    {
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Bifrost.Middleware.Endpoints");
        Log.RequestRejected(logger, context.Request.Method, context.Request.Path, exception.StatusCode, exception.Message);
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
        return WriteErrorAsync(context, BifrostException.Gateway(405, "invalid_request_error", "method_not_allowed", $"{context.Request.Method} is not allowed on {context.Request.Path}."));
    }

    public static Task UnknownRouteAsync(HttpContext context)
    {
        var path = context.Request.RouteValues.TryGetValue("path", out var value) ? value as string ?? string.Empty : string.Empty;
        // Routing matches paths case-insensitively, so the known routes are looked up the same way.
        var relative = path.StartsWith("v1/", StringComparison.OrdinalIgnoreCase) ? path[3..] : path;
        var known = KnownRoutes.TryGetValue(relative.TrimEnd('/'), out var allow);
        if (known)
        {
            context.Response.Headers.Allow = allow;
        }

        var segment = relative.Split('/', 2)[0];
        var error = known
            ? BifrostException.Gateway(405, "invalid_request_error", "method_not_allowed", $"{context.Request.Method} is not allowed on {context.Request.Path}.")
            : UnsupportedOpenAIRoutes.Contains(segment)
            ? BifrostException.Gateway(400, "invalid_request_error", "unsupported_operation", $"'{segment}' ({context.Request.Method} {context.Request.Path}) is not supported by this gateway.")
            : BifrostException.Gateway(404, "invalid_request_error", "unknown_url", $"Unknown route: {context.Request.Method} {context.Request.Path}.");
        return WriteErrorAsync(context, error);
    }

    private static BifrostException WithType(BifrostException exception, string requestType)
    {
        exception.Error.ExtraFields = new BifrostExtraFields { RequestType = requestType };
        return exception;
    }
}
