using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace Bifrost.Middleware.RequestLog;

/// <summary>
/// The request log in the admin API (<c>MapBifrostAdmin</c>): <c>GET requests</c> lists entries newest first with
/// filters and a cursor, <c>GET requests/{id}</c> reads one. snake_case JSON; a bad query value is a 400 in the Bifrost
/// error shape, an unknown id a 404.
/// </summary>
internal static class RequestLogAdminEndpoints
{
    public static void Map(RouteGroupBuilder group)
    {
        group.MapMethods("/requests", ["GET"], BifrostResults.Guard(null, ListAsync)).WithDisplayName("Bifrost admin list requests").ExcludeFromDescription();
        group.MapMethods("/requests/{id}", ["GET"], BifrostResults.Guard(null, GetAsync)).WithDisplayName("Bifrost admin get request").ExcludeFromDescription();
    }

    internal static async Task ListAsync(HttpContext context)
    {
        var query = Parse(context.Request.Query);
        var log = context.RequestServices.GetRequiredService<IBifrostRequestLog>();
        var page = await log.QueryAsync(query, context.RequestAborted).ConfigureAwait(false);
        var answer = new RequestLogListAnswer
        {
            Data = page.Entries,
            HasMore = page.Next is not null,
            NextCursor = page.Next is { CursorTime: { } time, CursorId: { } id } ? Cursor(time, id) : null,
        };
        await BifrostResults.WriteJsonAsync(context, answer, RequestLogJsonContext.Default.RequestLogListAnswer).ConfigureAwait(false);
    }

    internal static async Task GetAsync(HttpContext context)
    {
        var id = context.Request.RouteValues["id"] as string ?? string.Empty;
        var log = context.RequestServices.GetRequiredService<IBifrostRequestLog>();
        var entry = await log.GetAsync(id, context.RequestAborted).ConfigureAwait(false)
            ?? throw BifrostErrors.NotFound("request_not_found", $"No request '{id}' in the request log (it may have been pruned).", "id");
        await BifrostResults.WriteJsonAsync(context, entry, RequestLogJsonContext.Default.RequestLogEntry).ConfigureAwait(false);
    }

    /// <summary>The query of <c>GET requests</c>: <c>from</c>, <c>to</c>, <c>provider</c>, <c>model</c>, <c>status</c> (429 or 4xx), <c>owner</c>, <c>virtual_key</c>, <c>operation</c>, <c>source</c>, <c>batch_id</c>, <c>cursor</c>, <c>limit</c>.</summary>
    internal static RequestLogQuery Parse(IQueryCollection query)
    {
        var from = Time(query, "from");
        var to = Time(query, "to");
        if (from is not null && to is not null && from >= to)
        {
            throw BifrostErrors.InvalidValue("from must be before to.", "from");
        }

        int? status = null;
        int? statusClass = null;
        if (Text(query, "status") is { } statusText)
        {
            if (statusText.Length == 3 && statusText[0] is >= '1' and <= '5' && (statusText[1..] is "xx" or "XX"))
            {
                statusClass = statusText[0] - '0';
            }
            else if (int.TryParse(statusText, NumberStyles.None, CultureInfo.InvariantCulture, out var exact) && exact is >= 100 and <= 599)
            {
                status = exact;
            }
            else
            {
                throw BifrostErrors.InvalidValue("status must be an HTTP status (100 to 599) or a class such as 4xx.", "status");
            }
        }

        var source = Text(query, "source");
        if (source is not null and not (RequestLogEntry.SourceSync or RequestLogEntry.SourceStream or RequestLogEntry.SourceAsync or RequestLogEntry.SourceBatch))
        {
            throw BifrostErrors.InvalidValue("source must be sync, stream, async or batch.", "source");
        }

        var limit = 100;
        if (Text(query, "limit") is { } limitText && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > RequestLogQuery.MaxLimit))
        {
            throw BifrostErrors.InvalidValue($"limit must be an integer from 1 to {RequestLogQuery.MaxLimit}.", "limit");
        }

        DateTimeOffset? cursorTime = null;
        string? cursorId = null;
        if (Text(query, "cursor") is { } cursor)
        {
            var dot = cursor.IndexOf('.', StringComparison.Ordinal);
            if (dot <= 0 || dot == cursor.Length - 1
                || !long.TryParse(cursor.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                || ticks > DateTimeOffset.MaxValue.UtcTicks)
            {
                throw BifrostErrors.InvalidValue("cursor is not a cursor of this API (use next_cursor of the previous page).", "cursor");
            }

            cursorTime = new DateTimeOffset(ticks, TimeSpan.Zero);
            cursorId = cursor[(dot + 1)..];
        }

        return new RequestLogQuery
        {
            From = from,
            To = to,
            Provider = Text(query, "provider"),
            Model = Text(query, "model"),
            Status = status,
            StatusClass = statusClass,
            Owner = Text(query, "owner"),
            VirtualKeyId = Text(query, "virtual_key"),
            Operation = Text(query, "operation"),
            Source = source,
            BatchId = Text(query, "batch_id"),
            CursorTime = cursorTime,
            CursorId = cursorId,
            Limit = limit,
        };
    }

    internal static string Cursor(DateTimeOffset time, string id) => time.UtcTicks.ToString(CultureInfo.InvariantCulture) + "." + id;

    private static string? Text(IQueryCollection query, string name) => query[name].ToString() is { Length: > 0 } text ? text : null;

    private static DateTimeOffset? Time(IQueryCollection query, string name) =>
        Text(query, name) is not { } text ? null
        : DateTimeOffset.TryParse(text.Replace(' ', '+'), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time) ? time // an unescaped '+' of an offset arrives as a space
        : throw BifrostErrors.InvalidValue($"{name} must be a time in ISO 8601 (2026-01-31T00:00:00Z).", name);
}

/// <summary>The answer of <c>GET requests</c>.</summary>
internal sealed class RequestLogListAnswer
{
    public string Object { get; } = "list";

    public required IReadOnlyList<RequestLogEntry> Data { get; init; }

    public bool HasMore { get; init; }

    /// <summary>The <c>cursor</c> of the next page, or null on the last page.</summary>
    public string? NextCursor { get; init; }
}

/// <summary>The request log's JSON: snake_case, every field written (null when unknown), so a page has one shape.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RequestLogListAnswer))]
[JsonSerializable(typeof(RequestLogEntry))]
internal sealed partial class RequestLogJsonContext : JsonSerializerContext;
