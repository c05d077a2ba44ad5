namespace Bifrost.Middleware.Batches;

/// <summary>The body of <c>POST batches</c>.</summary>
internal sealed class BatchCreateRequest
{
    public string? InputFileId { get; set; }

    public string? Endpoint { get; set; }

    public string? CompletionWindow { get; set; }

    public IDictionary<string, string>? Metadata { get; set; }

    /// <summary>Bifrost extension: the <c>provider/model</c> for lines whose body names no model.</summary>
    public string? Model { get; set; }

    /// <summary>Bifrost's inline requests (<c>custom_id</c>, <c>method</c>, <c>url</c>, <c>body</c> each), instead of <c>input_file_id</c>.</summary>
    public List<System.Text.Json.JsonElement>? Requests { get; set; }
}

/// <summary>The job payload of a batch: its initial object and the default model.</summary>
internal sealed class BatchSpec
{
    public BatchObject Batch { get; set; } = new();

    public string? Model { get; set; }
}

/// <summary>What a running batch saves as its job progress: the batch object, and where a native batch runs.</summary>
internal sealed class BatchProgress
{
    public BatchObject Batch { get; set; } = new();

    public string? NativeProvider { get; set; }

    public string? NativeBatchId { get; set; }

    public bool NativeCancelSent { get; set; }
}

internal sealed class BatchListResponse
{
    public string Object { get; set; } = "list";

    public IList<BatchObject> Data { get; set; } = [];

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FirstId { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? LastId { get; set; }

    public bool HasMore { get; set; }
}

internal static class BatchStatus
{
    public const string Validating = "validating";
    public const string InProgress = "in_progress";
    public const string Finalizing = "finalizing";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Expired = "expired";
    public const string Cancelling = "cancelling";
    public const string Cancelled = "cancelled";
}
