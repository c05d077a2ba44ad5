namespace Bifrost.Middleware;

/// <summary>
/// The default <see cref="IJobStore"/>: everything in process memory, lost on restart. Use a durable store
/// (SQLite, PostgreSQL) when jobs must survive restarts or be shared by several instances.
/// </summary>
public sealed class InMemoryJobStore : IJobStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _jobs = new(StringComparer.Ordinal);
    private readonly PriorityQueue<string, (DateTimeOffset NotBefore, long Sequence)> _ready = new();
    private readonly PriorityQueue<(string Id, long Version), DateTimeOffset> _leases = new();
    private readonly TimeProvider _time;
    private long _sequence;
    private long _unfinished;

    /// <summary>Creates a store that reads the time from <paramref name="timeProvider"/>.</summary>
    /// <param name="timeProvider">The clock (tests pass a fake one).</param>
    public InMemoryJobStore(TimeProvider timeProvider)
    {
        _time = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
    }

    /// <inheritdoc />
    public ValueTask<JobRecord> EnqueueAsync(NewJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var now = _time.GetUtcNow();
        var entry = new Entry
        {
            Id = job.Id,
            Kind = job.Kind,
            Owner = job.Owner,
            Payload = job.Payload.ToArray(),
            ResultTtl = job.ResultTtl,
            MaxAttempts = Math.Max(1, job.MaxAttempts),
            CreatedAt = now,
        };
        lock (_lock)
        {
            if (!_jobs.TryAdd(job.Id, entry))
            {
                throw new InvalidOperationException($"A job with id '{job.Id}' already exists.");
            }

            entry.Sequence = ++_sequence;
            entry.ReadySequence = entry.Sequence;
            _ready.Enqueue(job.Id, (now, entry.ReadySequence));
            _unfinished++;
            return ValueTask.FromResult(entry.Snapshot());
        }
    }

    /// <inheritdoc />
    public ValueTask<JobRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(_jobs.TryGetValue(id, out var entry) && !IsExpired(entry, _time.GetUtcNow()) ? entry.Snapshot() : null);
        }
    }

    /// <inheritdoc />
    public ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            // A job whose worker died (lease expired) first: it has waited longest.
            while (_leases.TryPeek(out var leased, out var expiry) && expiry <= now)
            {
                _leases.Dequeue();
                if (_jobs.TryGetValue(leased.Id, out var entry) && entry.Status == JobStatus.Processing && entry.Version == leased.Version && entry.LeaseExpiresAt <= now)
                {
                    return ValueTask.FromResult<JobLease?>(Claim(entry, workerId, leaseDuration, now));
                }
            }

            while (_ready.TryPeek(out var id, out var priority))
            {
                if (!_jobs.TryGetValue(id, out var entry) || entry.Status != JobStatus.Pending || entry.ReadySequence != priority.Sequence)
                {
                    _ready.Dequeue(); // stale: cancelled, expired, or re-queued with a newer position
                    continue;
                }

                if (priority.NotBefore > now)
                {
                    // The earliest ready job is not due yet; a later-enqueued one may be due, so look further only if needed.
                    return ValueTask.FromResult<JobLease?>(ClaimFirstDue(workerId, leaseDuration, now));
                }

                _ready.Dequeue();
                return ValueTask.FromResult<JobLease?>(Claim(entry, workerId, leaseDuration, now));
            }
        }

        return ValueTask.FromResult<JobLease?>(null);
    }

    /// <inheritdoc />
    public ValueTask<bool> RenewLeaseAsync(JobLease lease, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (!IsCurrent(lease, now, out var entry))
            {
                return ValueTask.FromResult(false);
            }

            entry.LeaseExpiresAt = now + leaseDuration;
            _leases.Enqueue((entry.Id, entry.Version), entry.LeaseExpiresAt.Value);
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> SaveProgressAsync(JobLease lease, ReadOnlyMemory<byte> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var copy = progress.ToArray();
        lock (_lock)
        {
            if (!IsCurrent(lease, _time.GetUtcNow(), out var entry))
            {
                return ValueTask.FromResult(false);
            }

            entry.Progress = copy;
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> CompleteAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Finish(lease, JobStatus.Completed, outcome));

    /// <inheritdoc />
    public ValueTask<bool> FailAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Finish(lease, JobStatus.Failed, outcome));

    /// <inheritdoc />
    public ValueTask<bool> MarkCancelledAsync(JobLease lease, JobOutcome outcome, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Finish(lease, JobStatus.Cancelled, outcome));

    /// <inheritdoc />
    public ValueTask<bool> ReleaseAsync(JobLease lease, DateTimeOffset? notBefore, bool countAttempt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (!IsCurrent(lease, now, out var entry))
            {
                return ValueTask.FromResult(false);
            }

            entry.Status = JobStatus.Pending;
            entry.LeaseOwner = null;
            entry.LeaseExpiresAt = null;
            entry.NotBefore = notBefore;
            if (countAttempt)
            {
                entry.Attempts++;
            }

            entry.ReadySequence = ++_sequence;
            _ready.Enqueue(entry.Id, (notBefore ?? now, entry.ReadySequence));
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask<JobRecord?> RequestCancellationAsync(string id, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (!_jobs.TryGetValue(id, out var entry) || IsExpired(entry, now))
            {
                return ValueTask.FromResult<JobRecord?>(null);
            }

            if (entry.Status == JobStatus.Pending && entry.Progress is null)
            {
                entry.Status = JobStatus.Cancelled;
                entry.CompletedAt = now;
                entry.ExpiresAt = now + entry.ResultTtl;
                entry.StatusCode = 499;
                _unfinished--;
            }
            else if (entry.Status is JobStatus.Processing or JobStatus.Pending)
            {
                // Running, or started before and waiting to resume: its handler finishes the cancellation (e.g. a batch keeps its partial output).
                entry.CancellationRequested = true;
            }

            return ValueTask.FromResult<JobRecord?>(entry.Snapshot());
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<JobRecord>> ListAsync(string owner, string? kind, int limit, string? after, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            long? afterSequence = after is not null && _jobs.TryGetValue(after, out var cursor) ? cursor.Sequence : null;
            IReadOnlyList<JobRecord> page = [.. _jobs.Values
                .Where(e => e.Owner == owner && (kind is null || e.Kind == kind) && !IsExpired(e, now) && (afterSequence is null || e.Sequence < afterSequence))
                .OrderByDescending(e => e.Sequence)
                .Take(Math.Max(0, limit))
                .Select(e => e.Snapshot())];
            return ValueTask.FromResult(page);
        }
    }

    /// <inheritdoc />
    public ValueTask<int> ExpireAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var expired = _jobs.Values.Where(e => IsExpired(e, now)).Select(e => e.Id).ToList();
            foreach (var id in expired)
            {
                _jobs.Remove(id);
            }

            return ValueTask.FromResult(expired.Count);
        }
    }

    /// <inheritdoc />
    public ValueTask<long> CountUnfinishedAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(_unfinished);
        }
    }

    private JobLease? ClaimFirstDue(string workerId, TimeSpan leaseDuration, DateTimeOffset now)
    {
        // Rare path (retries waiting for their backoff at the head): find the oldest due pending job by scanning.
        Entry? best = null;
        foreach (var entry in _jobs.Values)
        {
            if (entry.Status == JobStatus.Pending && (entry.NotBefore is null || entry.NotBefore <= now) && (best is null || entry.ReadySequence < best.ReadySequence))
            {
                best = entry;
            }
        }

        return best is null ? null : Claim(best, workerId, leaseDuration, now);
    }

    private JobLease Claim(Entry entry, string workerId, TimeSpan leaseDuration, DateTimeOffset now)
    {
        entry.Status = JobStatus.Processing;
        entry.Version++;
        entry.LeaseOwner = workerId;
        entry.LeaseExpiresAt = now + leaseDuration;
        entry.StartedAt ??= now;
        entry.NotBefore = null;
        _leases.Enqueue((entry.Id, entry.Version), entry.LeaseExpiresAt.Value);
        return new JobLease(entry.Snapshot(), workerId);
    }

    private bool Finish(JobLease lease, JobStatus status, JobOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (!IsCurrent(lease, now, out var entry))
            {
                return false;
            }

            // A recorded cancel request wins over the run's own ending: the client was told the job is being cancelled.
            entry.Status = entry.CancellationRequested && status is JobStatus.Completed or JobStatus.Failed ? JobStatus.Cancelled : status;
            entry.StatusCode = outcome.StatusCode;
            entry.Result = outcome.Body.ToArray();
            entry.CompletedAt = now;
            entry.ExpiresAt = now + entry.ResultTtl;
            entry.LeaseOwner = null;
            entry.LeaseExpiresAt = null;
            _unfinished--;
            return true;
        }
    }

    /// <summary>A lease is current while the job is processing under the same version and the lease has not run out.</summary>
    private bool IsCurrent(JobLease lease, DateTimeOffset now, out Entry entry)
    {
        if (_jobs.TryGetValue(lease.JobId, out entry!) && entry.Status == JobStatus.Processing && entry.Version == lease.Version)
        {
            return entry.LeaseExpiresAt > now;
        }

        return false;
    }

    private static bool IsExpired(Entry entry, DateTimeOffset now) =>
        entry.Status is JobStatus.Completed or JobStatus.Failed or JobStatus.Cancelled && entry.ExpiresAt <= now;

    private sealed class Entry
    {
        public required string Id { get; init; }

        public required string Kind { get; init; }

        public required string Owner { get; init; }

        public required byte[] Payload { get; init; }

        public required TimeSpan ResultTtl { get; init; }

        public required int MaxAttempts { get; init; }

        public required DateTimeOffset CreatedAt { get; init; }

        public long Sequence { get; set; }

        public long ReadySequence { get; set; }

        public JobStatus Status { get; set; }

        public long Version { get; set; }

        public int Attempts { get; set; }

        public DateTimeOffset? StartedAt { get; set; }

        public DateTimeOffset? CompletedAt { get; set; }

        public DateTimeOffset? ExpiresAt { get; set; }

        public DateTimeOffset? NotBefore { get; set; }

        public string? LeaseOwner { get; set; }

        public DateTimeOffset? LeaseExpiresAt { get; set; }

        public bool CancellationRequested { get; set; }

        public int? StatusCode { get; set; }

        public byte[]? Result { get; set; }

        public byte[]? Progress { get; set; }

        public JobRecord Snapshot() => new()
        {
            Id = Id,
            Kind = Kind,
            Owner = Owner,
            Payload = Payload,
            Status = Status,
            Version = Version,
            Attempts = Attempts,
            MaxAttempts = MaxAttempts,
            CreatedAt = CreatedAt,
            StartedAt = StartedAt,
            CompletedAt = CompletedAt,
            ExpiresAt = ExpiresAt,
            ResultTtl = ResultTtl,
            NotBefore = NotBefore,
            LeaseOwner = LeaseOwner,
            LeaseExpiresAt = LeaseExpiresAt,
            CancellationRequested = CancellationRequested,
            StatusCode = StatusCode,
            Result = Result is { } result ? new ReadOnlyMemory<byte>(result) : (ReadOnlyMemory<byte>?)null,
            Progress = Progress is { } progress ? new ReadOnlyMemory<byte>(progress) : (ReadOnlyMemory<byte>?)null,
        };
    }
}
