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
    // The ledger: a ring buffer (grown by doubling up to MaxUsageRecords), oldest at _usageStart; appending is an array
    // store under the lock, with no node allocated per record.
    private UsageRecord[] _usage = new UsageRecord[16];
    private int _usageStart;
    private int _usageCount;
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
                AddUsage(record);
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
            var matches = UsageNewestFirst().Where(r => Matches(r, query) && (query.Before is not { } before || r.Time < before))
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
            for (var i = 0; i < _usageCount; i++)
            {
                var r = UsageAt(i);
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

    /// <summary>Under the lock: appends a record, dropping the oldest once <see cref="MaxUsageRecords"/> are held.</summary>
    private void AddUsage(UsageRecord record)
    {
        if (_usageCount == _usage.Length && _usage.Length < MaxUsageRecords)
        {
            var grown = new UsageRecord[Math.Min(MaxUsageRecords, _usage.Length * 2)];
            for (var i = 0; i < _usageCount; i++)
            {
                grown[i] = UsageAt(i);
            }

            _usage = grown;
            _usageStart = 0;
        }

        if (_usageCount < _usage.Length)
        {
            _usage[(_usageStart + _usageCount) % _usage.Length] = record;
            _usageCount++;
        }
        else
        {
            _usage[_usageStart] = record; // full: the oldest is overwritten
            _usageStart = (_usageStart + 1) % _usage.Length;
        }
    }

    /// <summary>Under the lock: the <paramref name="index"/>-th record, oldest first.</summary>
    private UsageRecord UsageAt(int index) => _usage[(_usageStart + index) % _usage.Length];

    private IEnumerable<UsageRecord> UsageNewestFirst()
    {
        for (var i = _usageCount - 1; i >= 0; i--)
        {
            yield return UsageAt(i);
        }
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
