namespace Bifrost.Middleware.Governance;

/// <summary>
/// The default <see cref="IGovernanceStore"/>: entities and the usage ledger in this process (lost at exit). The ledger
/// keeps at most <see cref="MaxUsageRecords"/> records, dropping the oldest.
/// </summary>
internal sealed class InMemoryGovernanceStore(TimeProvider time) : IGovernanceStore
{
    /// <summary>The most ledger records kept.</summary>
    public const int MaxUsageRecords = 100_000;

    private readonly Lock _gate = new();
    private readonly Dictionary<(GovernanceEntityKind, string), GovernanceEntity> _entities = [];
    private readonly LinkedList<UsageRecord> _usage = new();
    private long _revision;

    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_revision);
        }
    }

    public ValueTask<IReadOnlyList<GovernanceEntity>> ListEntitiesAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<GovernanceEntity>>([.. _entities.Values]);
        }
    }

    public ValueTask<GovernanceEntity?> GetEntityAsync(GovernanceEntityKind kind, string id, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_entities.GetValueOrDefault((kind, id)));
        }
    }

    public ValueTask<bool> CreateEntityAsync(GovernanceEntity entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (!_entities.TryAdd((entity.Kind, entity.Id), Copy(entity, 1, now, now)))
            {
                return ValueTask.FromResult(false);
            }

            _revision++;
            return ValueTask.FromResult(true);
        }
    }

    public ValueTask<GovernanceEntity?> UpdateEntityAsync(GovernanceEntity entity, long expectedVersion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (!_entities.TryGetValue((entity.Kind, entity.Id), out var stored) || stored.Version != expectedVersion)
            {
                return ValueTask.FromResult<GovernanceEntity?>(null);
            }

            var updated = Copy(entity, stored.Version + 1, stored.CreatedAt, now);
            _entities[(entity.Kind, entity.Id)] = updated;
            _revision++;
            return ValueTask.FromResult<GovernanceEntity?>(updated);
        }
    }

    public ValueTask<bool> DeleteEntityAsync(GovernanceEntityKind kind, string id, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_entities.Remove((kind, id)))
            {
                return ValueTask.FromResult(false);
            }

            _revision++;
            return ValueTask.FromResult(true);
        }
    }

    public ValueTask AppendUsageAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        lock (_gate)
        {
            foreach (var record in records)
            {
                _usage.AddLast(record);
                if (_usage.Count > MaxUsageRecords)
                {
                    _usage.RemoveFirst();
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<UsageRecord>> ListUsageAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var limit = Math.Max(0, query.Limit);
        lock (_gate)
        {
            // Newest first; of records with the same time, the last appended first (as the SQLite store's seq).
            var matches = _usage.Reverse().Where(r => Matches(r, query) && (query.Before is not { } before || r.Time < before))
                .OrderByDescending(static r => r.Time)
                .Take(limit)
                .ToArray();
            return ValueTask.FromResult<IReadOnlyList<UsageRecord>>(matches);
        }
    }

    public ValueTask<UsageTotals> SumUsageAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        long requests = 0, input = 0, output = 0, cached = 0, reasoning = 0, unknown = 0;
        var cost = 0m;
        lock (_gate)
        {
            foreach (var r in _usage)
            {
                if (!Matches(r, query))
                {
                    continue;
                }

                requests++;
                input += r.InputTokens;
                output += r.OutputTokens;
                cached += r.CachedInputTokens;
                reasoning += r.ReasoningTokens;
                if (r.CostUsd is { } c)
                {
                    cost += c;
                }
                else
                {
                    unknown++;
                }
            }
        }

        return ValueTask.FromResult(new UsageTotals(requests, input, output, cached, reasoning, cost, unknown));
    }

    internal static bool Matches(UsageRecord r, UsageQuery q) =>
        (q.VirtualKeyId is null || string.Equals(r.VirtualKeyId, q.VirtualKeyId, StringComparison.Ordinal))
        && (q.Team is null || string.Equals(r.Team, q.Team, StringComparison.Ordinal))
        && (q.Customer is null || string.Equals(r.Customer, q.Customer, StringComparison.Ordinal))
        && (q.Provider is null || string.Equals(r.Provider, q.Provider, StringComparison.OrdinalIgnoreCase))
        && (q.Model is null || string.Equals(r.Model, q.Model, StringComparison.Ordinal))
        && (q.From is not { } from || r.Time >= from)
        && (q.To is not { } to || r.Time < to);

    private static GovernanceEntity Copy(GovernanceEntity entity, long version, DateTimeOffset created, DateTimeOffset updated) => new()
    {
        Kind = entity.Kind,
        Id = entity.Id,
        Definition = entity.Definition.ToArray(),
        Version = version,
        CreatedAt = created,
        UpdatedAt = updated,
    };
}
