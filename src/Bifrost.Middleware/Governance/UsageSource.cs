namespace Bifrost.Middleware.Governance;

/// <summary>
/// How the current call came, for the usage ledger: the job worker marks async jobs (<c>async</c>, with the job's id)
/// and batch lines (<c>batch</c>, with the batch's id and the line's <c>custom_id</c> for the request log) in an
/// <see cref="AsyncLocal{T}"/>; calls without a mark are <c>sync</c> or <c>stream</c>.
/// </summary>
internal sealed record UsageSource(string Source, string? RequestId)
{
    /// <summary>The batch of a batch line.</summary>
    public string? BatchId { get; init; }

    /// <summary>The batch line's <c>custom_id</c>.</summary>
    public string? CustomId { get; init; }

    public const string Sync = "sync";
    public const string Stream = "stream";
    public const string Async = "async";
    public const string Batch = "batch";

    private static readonly AsyncLocal<UsageSource?> CurrentSource = new();

    /// <summary>The mark of the current flow (set inside an async method, it ends when the method returns).</summary>
    public static UsageSource? Current
    {
        get => CurrentSource.Value;
        set => CurrentSource.Value = value;
    }
}
