namespace Bifrost.Middleware.RequestLog;

/// <summary>
/// The default request-log store: a ring buffer of the newest <c>capacity</c> entries (the oldest is overwritten), with an
/// index by id. Memory is bounded by the capacity (<see cref="RequestLogOptions.MaxEntries"/>) whatever the traffic; the
/// log is lost with the process. The array grows (doubling) up to the capacity as entries come, so a large
/// <c>MaxEntries</c> costs memory only once it fills. A query scans the ring and sorts the matches.
/// </summary>
internal sealed class InMemoryRequestLogStore : IRequestLogStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _slots; // id → slot
    private readonly int _capacity;
    private RequestLogEntry?[] _ring;
    private int _next; // the slot the next entry takes
    private int _count;

    public InMemoryRequestLogStore(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _ring = new RequestLogEntry?[Math.Min(capacity, 1024)];
        _slots = new Dictionary<string, int>(Math.Min(capacity, 1024), StringComparer.Ordinal);
    }

    /// <summary>The entries held now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    public int Capacity => _capacity;

    public ValueTask AppendAsync(IReadOnlyList<RequestLogEntry> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var entry in entries)
        {
            ArgumentNullException.ThrowIfNull(entry);
        }

        lock (_lock)
        {
            foreach (var entry in entries)
            {
                if (_slots.ContainsKey(entry.Id))
                {
                    continue; // ids are unique: a repeated append keeps the first
                }

                if (_count == _ring.Length && _ring.Length < _capacity)
                {
                    // Not full yet: entries fill [0, count) in order, so growing keeps the ring's order.
                    Array.Resize(ref _ring, (int)Math.Min((long)_ring.Length * 2, _capacity));
                    _next = _count;
                }

                if (_ring[_next] is { } evicted)
                {
                    _slots.Remove(evicted.Id);
                }
                else
                {
                    _count++;
                }

                _ring[_next] = entry;
                _slots[entry.Id] = _next;
                _next = (_next + 1) % _ring.Length;
            }
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<RequestLogPage> QueryAsync(RequestLogQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(query.Limit, 1, nameof(query));
        cancellationToken.ThrowIfCancellationRequested();
        var matches = new List<RequestLogEntry>();
        lock (_lock)
        {
            foreach (var entry in _ring)
            {
                if (entry is not null && query.IsPastCursor(entry) && query.Matches(entry))
                {
                    matches.Add(entry);
                }
            }
        }

        matches.Sort(RequestLogQuery.Compare);
        if (matches.Count > query.Limit + 1)
        {
            matches.RemoveRange(query.Limit + 1, matches.Count - query.Limit - 1);
        }

        return ValueTask.FromResult(RequestLogPage.Of(query, matches));
    }

    public ValueTask<RequestLogEntry?> GetAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        lock (_lock)
        {
            return ValueTask.FromResult(_slots.TryGetValue(id, out var slot) ? _ring[slot] : null);
        }
    }

    public ValueTask<long> PruneAsync(DateTimeOffset olderThan, long maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        lock (_lock)
        {
            var kept = new List<RequestLogEntry>(_count);
            foreach (var entry in _ring)
            {
                if (entry is not null && entry.Time >= olderThan)
                {
                    kept.Add(entry);
                }
            }

            if (kept.Count == _count && _count <= maxCount)
            {
                return ValueTask.FromResult(0L);
            }

            kept.Sort(RequestLogQuery.Compare); // newest first
            if (kept.Count > maxCount)
            {
                kept.RemoveRange((int)maxCount, kept.Count - (int)maxCount);
            }

            var removed = _count - kept.Count;
            Array.Clear(_ring);
            _slots.Clear();
            _count = 0;
            _next = 0;
            for (var i = kept.Count - 1; i >= 0; i--) // oldest first, so the oldest is overwritten first again
            {
                _ring[_next] = kept[i];
                _slots[kept[i].Id] = _next;
                _next = (_next + 1) % _ring.Length;
                _count++;
            }

            return ValueTask.FromResult((long)removed);
        }
    }
}
