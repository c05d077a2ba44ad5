using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>A request a fake upstream received: method, path, query, headers (names lower-cased) and JSON body.</summary>
public sealed record UpstreamRequest(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers, JsonObject? Body)
{
    /// <summary>Reads the request as a fake upstream records it (the body parsed as a JSON object when there is one).</summary>
    public static async Task<UpstreamRequest> ReadAsync(HttpContext context)
    {
        JsonObject? body = null;
        if (context.Request.ContentLength is > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            body = (await JsonNode.ParseAsync(context.Request.Body))?.AsObject();
        }

        return new UpstreamRequest(
            context.Request.Method,
            context.Request.Path.Value!,
            context.Request.QueryString.Value ?? string.Empty,
            context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()),
            body);
    }
}
