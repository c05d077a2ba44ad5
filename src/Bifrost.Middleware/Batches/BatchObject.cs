namespace Bifrost.Middleware.Batches;

/// <summary>An OpenAI batch object, with Bifrost's fields (<c>request_counts.succeeded/expired/canceled/pending</c>, <c>extra_fields</c>).</summary>
public sealed class BatchObject
{
    /// <summary>The batch id (<c>batch_...</c>).</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>Always <c>batch</c>.</summary>
    public string Object { get; set; } = "batch";

    /// <summary>The endpoint every line calls, e.g. <c>/v1/chat/completions</c>.</summary>
    public string Endpoint { get; set; } = string.Empty;

    /// <summary>Why the batch failed validation, if it did.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public BatchErrors? Errors { get; set; }

    /// <summary>The input file.</summary>
    public string InputFileId { get; set; } = string.Empty;

    /// <summary>Always <c>24h</c>.</summary>
    public string CompletionWindow { get; set; } = "24h";

    /// <summary><c>validating</c>, <c>in_progress</c>, <c>finalizing</c>, <c>completed</c>, <c>failed</c>, <c>expired</c>, <c>cancelling</c>, <c>cancelled</c>.</summary>
    public string Status { get; set; } = "validating";

    /// <summary>The file with the successful lines, once the batch ended.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? OutputFileId { get; set; }

    /// <summary>The file with the failed (and expired / cancelled) lines, once the batch ended.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? ErrorFileId { get; set; }

    /// <summary>Unix seconds.</summary>
    public long CreatedAt { get; set; }

    /// <summary>Unix seconds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? InProgressAt { get; set; }

    /// <summary>Unix seconds: end of the completion window.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? ExpiresAt { get; set; }

    /// <summary>Unix seconds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? FinalizingAt { get; set; }

    /// <summary>Unix seconds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? CompletedAt { get; set; }

    /// <summary>Unix seconds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? FailedAt { get; set; }

    /// <summary>Unix seconds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? ExpiredAt { get; set; }

    /// <summary>Unix seconds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? CancellingAt { get; set; }

    /// <summary>Unix seconds.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? CancelledAt { get; set; }

    /// <summary>Progress by line.</summary>
    public BatchRequestCounts RequestCounts { get; set; } = new();

    /// <summary>Up to 16 caller-defined string pairs.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IDictionary<string, string>? Metadata { get; set; }

    /// <summary>Set only by providers whose native batch APIs use it.</summary>
    public string? ProcessingStatus { get; set; }

    /// <summary>Set only by providers whose native batch APIs use it.</summary>
    public string? ResultsUrl { get; set; }

    /// <summary>Set only by providers whose native batch APIs use it.</summary>
    public string? OperationName { get; set; }

    /// <summary>Gateway metadata.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }
}

/// <summary>A batch's progress by line.</summary>
public sealed class BatchRequestCounts
{
    /// <summary>Lines in the input file.</summary>
    public int Total { get; set; }

    /// <summary>Lines that completed successfully (as OpenAI counts them).</summary>
    public int Completed { get; set; }

    /// <summary>Lines that failed.</summary>
    public int Failed { get; set; }

    /// <summary>Lines that succeeded (same as <see cref="Completed"/>).</summary>
    public int Succeeded { get; set; }

    /// <summary>Lines not run before the completion window ended.</summary>
    public int Expired { get; set; }

    /// <summary>Lines not run because the batch was cancelled.</summary>
    public int Canceled { get; set; }

    /// <summary>Lines still to run.</summary>
    public int Pending { get; set; }
}

/// <summary>Validation errors of a failed batch.</summary>
public sealed class BatchErrors
{
    /// <summary>Always <c>list</c>.</summary>
    public string Object { get; set; } = "list";

    /// <summary>The errors.</summary>
    public IList<BatchError> Data { get; set; } = [];
}

/// <summary>One validation error.</summary>
public sealed class BatchError
{
    /// <summary>A machine-readable code.</summary>
    public string? Code { get; set; }

    /// <summary>What is wrong.</summary>
    public string? Message { get; set; }

    /// <summary>The field at fault.</summary>
    public string? Param { get; set; }

    /// <summary>The input line (from 1).</summary>
    public int? Line { get; set; }
}
