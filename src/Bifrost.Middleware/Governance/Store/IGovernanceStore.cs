namespace Bifrost.Middleware.Governance;

/// <summary>
/// Where governance keeps what is not in configuration: the virtual keys, teams and customers created through the
/// admin API (<c>MapBifrostAdmin</c>), and the usage ledger (one <see cref="UsageRecord"/> per settled request).
/// In memory by default; SQLite (<c>UseSqliteGovernanceStore</c>) for one instance, PostgreSQL
/// (<c>UsePostgreSqlGovernanceStore</c>) for several instances sharing one database.
/// </summary>
/// <remarks>
/// <para>Contract every implementation keeps:</para>
/// <list type="bullet">
/// <item>Entities are keyed by (<see cref="GovernanceEntity.Kind"/>, <see cref="GovernanceEntity.Id"/>); ids are compared ordinally.</item>
/// <item><see cref="CreateEntityAsync"/> stores a new entity with version 1 and returns false (changing nothing) when one with the same kind and id exists.</item>
/// <item><see cref="UpdateEntityAsync"/> replaces an entity only while its stored version is the expected one (a compare-and-set), storing version + 1.</item>
/// <item><see cref="GetRevisionAsync"/> changes (grows) with every successful create, update and delete, as seen by every instance sharing the store, so instances reload their snapshot of the keys when it moved.</item>
/// <item><see cref="AppendUsageAsync"/> stores all the records or throws; the gateway calls it from a background writer, never on a request's path.</item>
/// <item>All times come from the <see cref="TimeProvider"/> the store was given.</item>
/// </list>
/// </remarks>
public interface IGovernanceStore
{
    /// <summary>A number that grows with every change of the entities (any instance sharing the store).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken);

    /// <summary>Every stored entity of every kind.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyList<GovernanceEntity>> ListEntitiesAsync(CancellationToken cancellationToken);

    /// <summary>Reads one entity, or null when it does not exist.</summary>
    /// <param name="kind">The kind.</param>
    /// <param name="id">The id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<GovernanceEntity?> GetEntityAsync(GovernanceEntityKind kind, string id, CancellationToken cancellationToken);

    /// <summary>Stores a new entity (its <see cref="GovernanceEntity.Version"/> is stored as 1). False when one with the same kind and id exists.</summary>
    /// <param name="entity">The entity.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<bool> CreateEntityAsync(GovernanceEntity entity, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces an entity's definition when its stored version is <paramref name="expectedVersion"/>; returns the stored
    /// entity (version + 1, <see cref="GovernanceEntity.UpdatedAt"/> now), or null when it does not exist or its version moved.
    /// </summary>
    /// <param name="entity">The entity with its new definition.</param>
    /// <param name="expectedVersion">The version the caller read.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<GovernanceEntity?> UpdateEntityAsync(GovernanceEntity entity, long expectedVersion, CancellationToken cancellationToken);

    /// <summary>Deletes an entity. False when it did not exist.</summary>
    /// <param name="kind">The kind.</param>
    /// <param name="id">The id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<bool> DeleteEntityAsync(GovernanceEntityKind kind, string id, CancellationToken cancellationToken);

    /// <summary>Appends settled requests to the usage ledger.</summary>
    /// <param name="records">The records.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask AppendUsageAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken);

    /// <summary>The ledger's records matching a query, newest first, at most <see cref="UsageQuery.Limit"/>.</summary>
    /// <param name="query">The filter.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyList<UsageRecord>> ListUsageAsync(UsageQuery query, CancellationToken cancellationToken);

    /// <summary>The totals of the ledger's records matching a query (<see cref="UsageQuery.Limit"/> and <see cref="UsageQuery.Before"/> ignored).</summary>
    /// <param name="query">The filter.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<UsageTotals> SumUsageAsync(UsageQuery query, CancellationToken cancellationToken);
}

/// <summary>
/// The counters budgets and rate limits are checked against, per scope (an opaque string such as <c>budget:vk:team-a</c>)
/// and window. By default they live in the process (seeded from the usage ledger, so a budget's spend survives a
/// restart with a durable store); the PostgreSQL store shares them between instances
/// (<c>UsePostgreSqlGovernanceStore</c>), so several instances enforce one limit together.
/// </summary>
/// <remarks>
/// <para>Contract: <see cref="TryAdmitAsync"/> is atomic over all its checks — either every check passes and each of
/// their windows counts one more request, or the first failing check is reported and nothing changes — also under
/// concurrent calls from several instances. A check passes when the window's requests are below
/// <see cref="GovernanceCounterCheck.MaxRequests"/>, its tokens below <see cref="GovernanceCounterCheck.MaxTokens"/> and its
/// cost below <see cref="GovernanceCounterCheck.MaxCostUsd"/> (each when set); an admitted request adds 1 request,
/// <see cref="GovernanceCounterCheck.ReservedTokens"/> and <see cref="GovernanceCounterCheck.ReservedCostUsd"/> to each
/// window, and <see cref="SettleAsync"/> later adds the difference to the real usage. A window is identified by
/// (scope, start, end); a window whose end passed may be forgotten.</para>
/// <para>The lists passed to <see cref="TryAdmitAsync"/> and <see cref="SettleAsync"/> are the caller's: a store must not
/// keep them once the call has completed (the governance layer reuses them when a call completes synchronously).</para>
/// </remarks>
public interface IGovernanceCounterStore
{
    /// <summary>Admits one request against every check, or reports the first that refuses it (changing nothing).</summary>
    /// <param name="checks">The scopes' windows and limits.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<GovernanceAdmission> TryAdmitAsync(IReadOnlyList<GovernanceCounterCheck> checks, CancellationToken cancellationToken);

    /// <summary>Adds the tokens and cost of settled requests to their windows (creating a window that does not exist yet).</summary>
    /// <param name="charges">The charges.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask SettleAsync(IReadOnlyList<GovernanceCounterCharge> charges, CancellationToken cancellationToken);

    /// <summary>A window's counts (zero when it has none).</summary>
    /// <param name="scope">The scope.</param>
    /// <param name="windowStart">The window's start.</param>
    /// <param name="windowEnd">The window's end.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<GovernanceCounts> GetCountsAsync(string scope, DateTimeOffset windowStart, DateTimeOffset windowEnd, CancellationToken cancellationToken);
}
