using System.Data.Common;
using Bifrost.Middleware.RequestLog;

namespace Bifrost.Middleware;

/// <summary>
/// A request-log row as the database stores read it: the columns in the order of the stores' SELECT (id, time in UTC
/// ticks, owner, key id, operation, source, provider, model, status, error code, latency, time to first chunk, tokens
/// in and out, cost, job, batch, custom id, request id, response id, request and response content). Shared by the
/// SQLite and PostgreSQL request-log stores (compiled into each, so it stays internal); the cost column's type differs,
/// so each store reads it.
/// </summary>
internal static class RequestLogRows
{
    public static RequestLogEntry Map(DbDataReader row, Func<DbDataReader, int, decimal?> cost) => new()
    {
        Id = row.GetString(0),
        Time = new DateTimeOffset(Math.Clamp(row.GetInt64(1), DateTimeOffset.MinValue.UtcTicks, DateTimeOffset.MaxValue.UtcTicks), TimeSpan.Zero),
        Owner = Text(row, 2),
        VirtualKeyId = Text(row, 3),
        Operation = row.GetString(4),
        Source = row.GetString(5),
        Provider = Text(row, 6),
        Model = Text(row, 7),
        Status = row.GetInt32(8),
        ErrorCode = Text(row, 9),
        LatencyMs = row.GetInt64(10),
        TimeToFirstChunkMs = Number(row, 11),
        InputTokens = Number(row, 12),
        OutputTokens = Number(row, 13),
        CostUsd = cost(row, 14),
        JobId = Text(row, 15),
        BatchId = Text(row, 16),
        CustomId = Text(row, 17),
        RequestId = Text(row, 18),
        ResponseId = Text(row, 19),
        RequestContent = Text(row, 20),
        ResponseContent = Text(row, 21),
    };

    public static string? Text(DbDataReader row, int ordinal) => row.IsDBNull(ordinal) ? null : row.GetString(ordinal);

    public static long? Number(DbDataReader row, int ordinal) => row.IsDBNull(ordinal) ? null : row.GetInt64(ordinal);
}
