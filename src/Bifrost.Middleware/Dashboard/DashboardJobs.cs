using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace Bifrost.Middleware.Dashboard;

/// <summary>
/// The dashboard's Jobs page API: <c>GET api/jobs</c> lists batches and async jobs of every owner (an operator's view,
/// through <see cref="IJobStore.ListAllAsync"/>), newest first with a cursor; <c>POST api/jobs/{id}/cancel</c> cancels
/// one (a batch as <c>POST /v1/batches/{id}/cancel</c> does, an async job through the store's cancel request). The POST
/// needs the <see cref="CsrfHeader"/> header: a cross-site form cannot send it, and a cross-origin script would need a
/// CORS preflight the dashboard never grants. Owners are shown as stored (a virtual key id or a hashed credential, never a key).
/// </summary>
internal static partial class DashboardJobs
{
    /// <summary>The header (value <c>1</c>) a cancel must carry.</summary>
    public const string CsrfHeader = "X-Bifrost-Dashboard";

    public const int MaxLimit = 500;

    public static void Map(RouteGroupBuilder group)
    {
        var list = BifrostResults.Guard(null, ListAsync);
        var cancel = BifrostResults.Guard(null, CancelAsync);
        group.MapGet("/api/jobs", (HttpContext context) => list(context)).ExcludeFromDescription();
        group.MapPost("/api/jobs/{id}/cancel", (HttpContext context) => cancel(context)).ExcludeFromDescription();
    }

    internal static async Task ListAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var type = Text(query, "kind");
        if (type is not (null or "batch" or "async"))
        {
            throw BifrostErrors.InvalidValue("kind must be batch or async.", "kind");
        }

        bool? unfinished = Text(query, "state") switch
        {
            null => null,
            "active" => true,
            "finished" => false,
            _ => throw BifrostErrors.InvalidValue("state must be active or finished.", "state"),
        };
        var limit = 100;
        if (Text(query, "limit") is { } limitText && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
        {
            throw BifrostErrors.InvalidValue($"limit must be an integer from 1 to {MaxLimit}.", "limit");
        }

        var after = Text(query, "after");
        var services = context.RequestServices;
        var store = services.GetRequiredService<IJobStore>();
        IReadOnlyList<JobRecord> page;
        try
        {
            page = await store.ListAllAsync(
                type == "batch" ? BatchJobHandler.JobKind : null,
                type == "async" ? BatchJobHandler.JobKind : null,
                unfinished,
                limit + 1,
                after,
                context.RequestAborted).ConfigureAwait(false);
        }
        catch (NotSupportedException)
        {
            throw BifrostException.Gateway(501, BifrostErrors.ApiErrorType, "job_listing_not_supported", $"The job store ({store.GetType().Name}) cannot list the jobs of every owner: it does not implement IJobStore.ListAllAsync.");
        }

        var batches = services.GetRequiredService<BatchService>();
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var rows = page.Take(limit).Select(job => Row(job, batches, now)).ToList();
        var answer = new DashboardJobList { Data = rows, HasMore = page.Count > limit, NextAfter = page.Count > limit ? rows[^1].Id : null };
        await BifrostResults.WriteJsonAsync(context, answer, DashboardJobsJsonContext.Default.DashboardJobList).ConfigureAwait(false);
    }

    internal static async Task CancelAsync(HttpContext context)
    {
        if (context.Request.Headers[CsrfHeader].ToString() != "1")
        {
            throw BifrostException.Gateway(403, "permission_error", "dashboard_header_required", $"A dashboard cancel must carry the header '{CsrfHeader}: 1' (the dashboard page sends it; a cross-site form cannot).");
        }

        var id = context.Request.RouteValues["id"] as string ?? string.Empty;
        var services = context.RequestServices;
        var store = services.GetRequiredService<IJobStore>();
        var batches = services.GetRequiredService<BatchService>();
        var time = services.GetRequiredService<TimeProvider>();
        var ct = context.RequestAborted;
        var job = await store.GetAsync(id, ct).ConfigureAwait(false)
            ?? throw BifrostErrors.NotFound("job_not_found", $"No job '{id}' (it may have expired).", "id");
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Bifrost.Middleware.Dashboard.DashboardJobs");
        Log.CancelRequested(logger, job.Id, job.Kind, job.Owner);
        if (job.Kind == BatchJobHandler.JobKind)
        {
            // The batch API's own cancel, as the batch's owner: same answers (cancelling, cancelled, 409 batch_not_cancellable).
            await batches.CancelAsync(job.Owner, job.Id, ct).ConfigureAwait(false);
        }
        else if (!job.IsFinished && !job.CancellationRequested)
        {
            var updated = await store.RequestCancellationAsync(job.Id, ct).ConfigureAwait(false)
                ?? throw BifrostErrors.NotFound("job_not_found", $"No job '{id}' (it may have expired).", "id");
            if (updated.IsFinished && updated.Status != JobStatus.Cancelled)
            {
                throw NotCancellable(updated); // it ended between the read and the request
            }

            if (!updated.IsFinished)
            {
                services.GetRequiredService<IJobCancellationSignal>().CancellationRequested(job.Id);
            }
            else if (job.Status == JobStatus.Pending)
            {
                services.GetRequiredService<Diagnostics.OperationalMetrics>().JobFinished(job.Kind, "cancelled"); // it never ran: cancelled here, not by a worker
            }
        }
        else if (job.IsFinished)
        {
            throw NotCancellable(job);
        }

        var now = await store.GetAsync(job.Id, ct).ConfigureAwait(false) ?? job;
        await BifrostResults.WriteJsonAsync(context, Row(now, batches, time.GetUtcNow()), DashboardJobsJsonContext.Default.DashboardJobRow).ConfigureAwait(false);
    }

    private static BifrostException NotCancellable(JobRecord job) =>
        BifrostErrors.Conflict("job_not_cancellable", $"Job '{job.Id}' is already {StatusName(job)} and cannot be cancelled.", "id");

    /// <summary>One row: the job's times and state; for a batch, its batch object's status, endpoint, model and counts (as <c>/v1/batches</c> answers them).</summary>
    internal static DashboardJobRow Row(JobRecord job, BatchService batches, DateTimeOffset now)
    {
        var finishedAt = job.IsFinished ? job.CompletedAt : null;
        var row = new DashboardJobRow
        {
            Id = job.Id,
            Type = job.Kind == BatchJobHandler.JobKind ? "batch" : "async",
            Kind = job.Kind,
            Status = StatusName(job),
            Owner = job.Owner,
            CreatedAt = job.CreatedAt,
            StartedAt = job.StartedAt,
            FinishedAt = finishedAt,
            WaitedMs = Milliseconds(job.CreatedAt, job.StartedAt ?? finishedAt ?? now),
            RanMs = job.StartedAt is { } started ? Milliseconds(started, finishedAt ?? now) : null,
            Attempts = job.Attempts,
            CancellationRequested = job.CancellationRequested,
            Cancellable = !job.IsFinished && !job.CancellationRequested,
            ErrorCode = job.Status is JobStatus.Failed or JobStatus.Cancelled ? ErrorCode(job.Result) : null,
        };
        if (row.Type != "batch")
        {
            return row;
        }

        BatchObject batch;
        try
        {
            batch = batches.Compose(job, null);
        }
        catch (JsonException)
        {
            return row; // not a batch this version can read: the job's own state only
        }

        row.Status = batch.Status;
        row.Cancellable = batch.Status is BatchStatus.Validating or BatchStatus.InProgress;
        row.Endpoint = batch.Endpoint;
        row.Model = batch.ExtraFields?.ModelRequested;
        row.Provider = batch.ExtraFields?.Provider;
        row.RequestCounts = batch.RequestCounts;
        row.ErrorCode = batch.Errors?.Data.FirstOrDefault()?.Code ?? row.ErrorCode;
        return row;
    }

    private static string StatusName(JobRecord job) => job.Status switch
    {
        JobStatus.Pending or JobStatus.Processing when job.CancellationRequested => "cancelling",
        JobStatus.Pending => "pending",
        JobStatus.Processing => "processing",
        JobStatus.Completed => "completed",
        JobStatus.Failed => "failed",
        _ => "cancelled",
    };

    private static long Milliseconds(DateTimeOffset from, DateTimeOffset to) => Math.Max(0, (long)(to - from).TotalMilliseconds);

    private static string? ErrorCode(ReadOnlyMemory<byte>? body)
    {
        if (body is not { Length: > 0 } bytes)
        {
            return null;
        }

        try
        {
            var error = JsonSerializer.Deserialize(bytes.Span, BifrostJson.Context.BifrostError);
            return error?.Error.Code ?? error?.Error.Type;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? Text(IQueryCollection query, string name) => query[name].ToString() is { Length: > 0 } text ? text : null;

    private static partial class Log
    {
        [LoggerMessage(EventId = 940, Level = LogLevel.Information, Message = "Dashboard: cancel requested for job {JobId} ({Kind}) of owner {Owner}.")]
        public static partial void CancelRequested(ILogger logger, string jobId, string kind, string owner);
    }
}

/// <summary>A page of <c>GET api/jobs</c>.</summary>
internal sealed class DashboardJobList
{
    public string Object { get; } = "list";

    public required IReadOnlyList<DashboardJobRow> Data { get; init; }

    public bool HasMore { get; init; }

    /// <summary>The <c>after</c> of the next page (the last row's id), or null on the last page.</summary>
    public string? NextAfter { get; init; }
}

/// <summary>A job as the Jobs page shows it.</summary>
internal sealed class DashboardJobRow
{
    public required string Id { get; init; }

    /// <summary><c>batch</c> or <c>async</c>.</summary>
    public required string Type { get; init; }

    /// <summary>The job kind: <c>batch</c>, or the async job's operation (<c>chat_completion</c>, ...).</summary>
    public required string Kind { get; init; }

    /// <summary>A batch's status as <c>/v1/batches</c> answers it; an async job's pending, processing, cancelling, completed, failed or cancelled.</summary>
    public required string Status { get; set; }

    public required string Owner { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? StartedAt { get; init; }

    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>From creation to the first start (or to now while it waits).</summary>
    public long? WaitedMs { get; init; }

    /// <summary>From the first start to the end (or to now while it runs).</summary>
    public long? RanMs { get; init; }

    public int Attempts { get; init; }

    public bool CancellationRequested { get; init; }

    /// <summary>Whether the cancel button applies (a batch validating or in progress; an async job not finished and not already cancelling).</summary>
    public bool Cancellable { get; set; }

    public string? ErrorCode { get; set; }

    public string? Endpoint { get; set; }

    public string? Model { get; set; }

    public string? Provider { get; set; }

    public BatchRequestCounts? RequestCounts { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(DashboardJobList))]
[JsonSerializable(typeof(DashboardJobRow))]
internal sealed partial class DashboardJobsJsonContext : JsonSerializerContext;
