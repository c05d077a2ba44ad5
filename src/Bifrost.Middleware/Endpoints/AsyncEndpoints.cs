using System.Globalization;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// Bifrost's async inference: the <c>x-bf-async</c> / <c>x-bf-async-id</c> headers on the inference routes, and
/// the job-envelope routes <c>POST v1/async/{route}</c> (202) and <c>GET v1/async/{route}/{job_id}</c>.
/// Both share one store: a job submitted one way can be polled the other way.
/// </summary>
internal static class AsyncEndpoints
{
    public const string AsyncHeader = "x-bf-async";
    public const string AsyncIdHeader = "x-bf-async-id";
    public const string TtlHeader = "x-bf-async-job-result-ttl";

    /// <summary>The chunk in which stored results are copied to the response.</summary>
    private const int CopyBufferSize = 64 * 1024;

    // What follows the stored body in the envelope: no body ("result": null, "error": null), after an error, after a result.
    private static readonly byte[] NoBodyTail = "null,\"error\":null}"u8.ToArray();
    private static readonly byte[] ErrorTail = "}"u8.ToArray();
    private static readonly byte[] ResultTail = ",\"error\":null}"u8.ToArray();

    public static bool IsAsyncRequested(HttpContext context) =>
        context.Request.Headers.TryGetValue(AsyncHeader, out var value)
        && (string.Equals(value.ToString(), "true", StringComparison.OrdinalIgnoreCase) || value.ToString() == "1");

    public static string? AsyncId(HttpContext context) =>
        context.Request.Headers.TryGetValue(AsyncIdHeader, out var value) && !string.IsNullOrWhiteSpace(value.ToString()) ? value.ToString().Trim() : null;

    /// <summary>Stores the request as a job (after admission control) and returns it.</summary>
    public static async Task<JobRecord> SubmitAsync(HttpContext context, string kind, ReadOnlyMemory<byte> payload)
    {
        var jobs = context.RequestServices.GetRequiredService<AsyncJobService>();
        var owner = Governance.GovernanceCaller.OwnerOf(context);
        var ttl = ParseTtl(context, jobs.Options);
        return await jobs.SubmitAsync(kind, payload, owner, ttl, context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>The caller's job of this kind with its result as a stream (the caller disposes it), or a 404 <see cref="BifrostException"/>.</summary>
    public static async Task<JobResultReader> OpenAsync(HttpContext context, string id, string kind)
    {
        var jobs = context.RequestServices.GetRequiredService<AsyncJobService>();
        var owner = Governance.GovernanceCaller.OwnerOf(context);
        return await jobs.OpenResultAsync(id, kind, owner, context.RequestAborted).ConfigureAwait(false) ?? throw NotFound(id);
    }

    /// <summary>
    /// Answers an <c>x-bf-async-id</c> poll: the stored result or error as the synchronous call would have (its bytes
    /// copied from the store's stream, never parsed), else the route's empty shape with 200 (as Bifrost).
    /// </summary>
    public static async Task WritePollAsync(HttpContext context, JobResultReader reader, Func<JobRecord, Task> writePending)
    {
        var job = reader.Job;
        if (job.IsFinished && reader.Result is { } body)
        {
            // A stored error status is answered as a valid error status even if an older version stored another.
            context.Response.StatusCode = job.Status == JobStatus.Completed ? job.StatusCode ?? StatusCodes.Status200OK : BifrostException.ErrorStatus(job.StatusCode ?? StatusCodes.Status500InternalServerError);
            context.Response.ContentType = "application/json";
            context.Response.ContentLength = reader.ResultLength;
            await body.CopyToAsync(context.Response.Body, CopyBufferSize, context.RequestAborted).ConfigureAwait(false);
            return;
        }

        await writePending(job).ConfigureAwait(false);
    }

    /// <summary><c>POST v1/async/{route}</c>: 202 <c>{id, status: "pending", created_at}</c>.</summary>
    public static Task WriteAcceptedAsync(HttpContext context, JobRecord job)
    {
        context.Response.StatusCode = StatusCodes.Status202Accepted;
        context.Response.ContentType = "application/json";
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, BifrostJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id", job.Id);
            writer.WriteString("status", "pending");
            writer.WriteString("created_at", Rfc3339(job.CreatedAt));
            writer.WriteEndObject();
        }

        return context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).AsTask();
    }

    /// <summary>
    /// <c>GET v1/async/{route}/{job_id}</c>: the job envelope, 202 while the job is pending or processing, 200 once it
    /// finished (as Bifrost). The stored result (or error) is copied from the store's stream between the envelope's
    /// fields, never parsed or buffered whole.
    /// </summary>
    public static async Task WriteEnvelopeAsync(HttpContext context, JobResultReader reader)
    {
        var job = reader.Job;
        context.Response.StatusCode = job.IsFinished ? StatusCodes.Status200OK : StatusCodes.Status202Accepted;
        context.Response.ContentType = "application/json";
        var body = job.IsFinished ? reader.Result : null;
        var isError = job.Status is JobStatus.Failed or JobStatus.Cancelled;
        var head = new System.Buffers.ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(head, BifrostJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id", job.Id);
            writer.WriteString("status", StatusName(job.Status));
            writer.WriteString("created_at", Rfc3339(job.CreatedAt));
            WriteTime(writer, "completed_at", job.CompletedAt);
            WriteTime(writer, "expires_at", job.ExpiresAt);
            if (job.StatusCode is { } status)
            {
                writer.WriteNumber("status_code", job.Status is JobStatus.Failed or JobStatus.Cancelled ? BifrostException.ErrorStatus(status) : status);
            }
            else
            {
                writer.WriteNull("status_code");
            }

            if (body is not null && isError)
            {
                writer.WriteNull("result");
            }

            writer.WritePropertyName(body is not null && isError ? "error" : "result");
            writer.Flush();
        }

        // The head ends with the name of the property that holds the stored body: "...,"result":" or "...,"error":".
        var tail = body is null ? NoBodyTail : isError ? ErrorTail : ResultTail;
        if (reader.ResultLength is { } length && body is not null)
        {
            context.Response.ContentLength = head.WrittenCount + length + tail.Length;
        }

        await context.Response.Body.WriteAsync(head.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
        if (body is not null)
        {
            await body.CopyToAsync(context.Response.Body, CopyBufferSize, context.RequestAborted).ConfigureAwait(false);
        }

        await context.Response.Body.WriteAsync(tail, context.RequestAborted).ConfigureAwait(false);
    }

    public static string StatusName(JobStatus status) => status switch
    {
        JobStatus.Pending => "pending",
        JobStatus.Processing => "processing",
        JobStatus.Completed => "completed",
        _ => "failed",
    };

    private static BifrostException NotFound(string id)
    {
        return BifrostErrors.NotFound("job_not_found", $"No async job '{id}' (it does not exist, expired, or belongs to another caller).", AsyncIdHeader);
    }

    private static TimeSpan? ParseTtl(HttpContext context, JobsOptions options)
    {
        if (!context.Request.Headers.TryGetValue(TtlHeader, out var value) || string.IsNullOrWhiteSpace(value.ToString()))
        {
            return null;
        }

        if (!long.TryParse(value.ToString().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds <= 0)
        {
            throw BifrostErrors.InvalidValue($"'{TtlHeader}' must be a positive number of seconds.", TtlHeader);
        }

        var ttl = TimeSpan.FromSeconds(Math.Min(seconds, (long)options.MaxResultTtl.TotalSeconds));
        return ttl;
    }

    private static void WriteTime(Utf8JsonWriter writer, string name, DateTimeOffset? value)
    {
        if (value is { } time)
        {
            writer.WriteString(name, Rfc3339(time));
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    private static string Rfc3339(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
