namespace Bifrost.Middleware.Governance;

/// <summary>What a <see cref="GovernanceEntity"/> is.</summary>
public enum GovernanceEntityKind
{
    /// <summary>A virtual key.</summary>
    VirtualKey = 0,

    /// <summary>A team.</summary>
    Team = 1,

    /// <summary>A customer.</summary>
    Customer = 2,
}

/// <summary>
/// A virtual key, team or customer created through the admin API. <see cref="Definition"/> is its definition as UTF-8
/// JSON in the admin API's shape (for a key: the hash of its secret, never the plaintext); stores keep it as an opaque document.
/// </summary>
public sealed class GovernanceEntity
{
    /// <summary>The kind.</summary>
    public required GovernanceEntityKind Kind { get; init; }

    /// <summary>The id (unique per kind).</summary>
    public required string Id { get; init; }

    /// <summary>The definition (UTF-8 JSON).</summary>
    public required ReadOnlyMemory<byte> Definition { get; init; }

    /// <summary>The version: 1 when created, + 1 with every update.</summary>
    public long Version { get; init; }

    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it was last changed.</summary>
    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>One settled request in the usage ledger.</summary>
public sealed class UsageRecord
{
    /// <summary>When the request settled.</summary>
    public required DateTimeOffset Time { get; init; }

    /// <summary>The request's id when it has one (the response id, or the job's id for async work and batch lines).</summary>
    public string? RequestId { get; init; }

    /// <summary>The virtual key's id, or null for calls without one.</summary>
    public string? VirtualKeyId { get; init; }

    /// <summary>The key's team, if any.</summary>
    public string? Team { get; init; }

    /// <summary>The key's customer, if any.</summary>
    public string? Customer { get; init; }

    /// <summary>The provider that answered (or was tried last).</summary>
    public required string Provider { get; init; }

    /// <summary>The model, without the provider.</summary>
    public required string Model { get; init; }

    /// <summary>The operation (Bifrost's request type, e.g. <c>chat_completion</c>, <c>chat_completion_stream</c>).</summary>
    public required string Operation { get; init; }

    /// <summary>How it came: <c>sync</c>, <c>stream</c>, <c>async</c> or <c>batch</c>.</summary>
    public required string Source { get; init; }

    /// <summary>Input (prompt) tokens, including cached ones.</summary>
    public long InputTokens { get; init; }

    /// <summary>Output (completion) tokens, including reasoning ones.</summary>
    public long OutputTokens { get; init; }

    /// <summary>Input tokens read from the provider's cache.</summary>
    public long CachedInputTokens { get; init; }

    /// <summary>Reasoning tokens.</summary>
    public long ReasoningTokens { get; init; }

    /// <summary>The cost in USD, or null when the model's price is unknown (never a made-up figure).</summary>
    public decimal? CostUsd { get; init; }

    /// <summary>The HTTP status of the outcome (200 for success).</summary>
    public int Status { get; init; }

    /// <summary>How long the request took.</summary>
    public TimeSpan Duration { get; init; }
}

/// <summary>A filter over the usage ledger; every property set must match.</summary>
public sealed class UsageQuery
{
    /// <summary>The virtual key's id.</summary>
    public string? VirtualKeyId { get; init; }

    /// <summary>The team.</summary>
    public string? Team { get; init; }

    /// <summary>The customer.</summary>
    public string? Customer { get; init; }

    /// <summary>The provider.</summary>
    public string? Provider { get; init; }

    /// <summary>The model (without the provider).</summary>
    public string? Model { get; init; }

    /// <summary>Records at or after this time.</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>Records before this time.</summary>
    public DateTimeOffset? To { get; init; }

    /// <summary>For paging <see cref="IGovernanceStore.ListUsageAsync"/>: records strictly older than this time.</summary>
    public DateTimeOffset? Before { get; init; }

    /// <summary>At most this many records (<see cref="IGovernanceStore.ListUsageAsync"/>). Default 100.</summary>
    public int Limit { get; init; } = 100;
}

/// <summary>Totals over ledger records.</summary>
/// <param name="Requests">How many records.</param>
/// <param name="InputTokens">Input tokens.</param>
/// <param name="OutputTokens">Output tokens.</param>
/// <param name="CachedInputTokens">Cached input tokens.</param>
/// <param name="ReasoningTokens">Reasoning tokens.</param>
/// <param name="CostUsd">The sum of the known costs.</param>
/// <param name="UnknownCostRequests">How many records had no known cost (not in <paramref name="CostUsd"/>).</param>
public sealed record UsageTotals(long Requests, long InputTokens, long OutputTokens, long CachedInputTokens, long ReasoningTokens, decimal CostUsd, long UnknownCostRequests)
{
    /// <summary>No records.</summary>
    public static UsageTotals Empty { get; } = new(0, 0, 0, 0, 0, 0m, 0);
}

/// <summary>One scope's window and limits in an admission (<see cref="IGovernanceCounterStore.TryAdmitAsync"/>).</summary>
/// <param name="Scope">The scope (opaque to stores).</param>
/// <param name="WindowStart">The window's start.</param>
/// <param name="WindowEnd">The window's end (a lifetime budget uses <see cref="DateTimeOffset.MaxValue"/>).</param>
/// <param name="MaxRequests">Requests allowed in the window, or null.</param>
/// <param name="MaxTokens">Tokens allowed in the window, or null.</param>
/// <param name="MaxCostUsd">Spend allowed in the window, or null.</param>
/// <param name="ReservedTokens">Tokens added to the window when admitted (the request's estimate; settled later with the real usage).</param>
/// <param name="ReservedCostUsd">Cost added to the window when admitted (the estimate's cost; settled later).</param>
public readonly record struct GovernanceCounterCheck(string Scope, DateTimeOffset WindowStart, DateTimeOffset WindowEnd, long? MaxRequests, long? MaxTokens, decimal? MaxCostUsd, long ReservedTokens = 0, decimal ReservedCostUsd = 0m);

/// <summary>Tokens and cost settled into one scope's window: the real usage minus what was reserved at admission (may be negative).</summary>
/// <param name="Scope">The scope.</param>
/// <param name="WindowStart">The window's start.</param>
/// <param name="WindowEnd">The window's end.</param>
/// <param name="Tokens">Tokens to add.</param>
/// <param name="CostUsd">Cost to add.</param>
public readonly record struct GovernanceCounterCharge(string Scope, DateTimeOffset WindowStart, DateTimeOffset WindowEnd, long Tokens, decimal CostUsd);

/// <summary>A window's counts.</summary>
/// <param name="Requests">Requests admitted.</param>
/// <param name="Tokens">Tokens settled.</param>
/// <param name="CostUsd">Cost settled.</param>
public readonly record struct GovernanceCounts(long Requests, long Tokens, decimal CostUsd);

/// <summary>The answer of <see cref="IGovernanceCounterStore.TryAdmitAsync"/>.</summary>
/// <param name="Admitted">Whether the request was admitted (and counted).</param>
/// <param name="RefusedIndex">When refused, the index of the first check that refused it; else -1.</param>
/// <param name="Counts">When refused, that window's counts.</param>
public readonly record struct GovernanceAdmission(bool Admitted, int RefusedIndex, GovernanceCounts Counts)
{
    /// <summary>Admitted.</summary>
    public static GovernanceAdmission Allowed { get; } = new(true, -1, default);
}
