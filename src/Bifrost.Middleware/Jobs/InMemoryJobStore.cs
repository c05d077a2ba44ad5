namespace Bifrost.Middleware.Jobs;

/// <summary>
/// The default <see cref="IJobStore"/>: everything in process memory, lost on restart. Use a durable store
/// (SQLite, PostgreSQL) when jobs must survive restarts or be shared by several instances.
/// </summary>
/// <remarks>
/// Pending jobs wait in one queue per owner; a claim looks at the head of each owner's queue and at the processing jobs
/// whose lease ran out, so its cost grows with the owners waiting and the jobs running, not with the jobs queued.
/// </remarks>
public sealed class InMemoryJobStore : IJobStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _jobs = new(StringComparer.Ordinal);
    // Pending jobs per owner, in queue order (ready time, then sequence); stale entries are skipped when they reach the head.
    private readonly Dictionary<string, PriorityQueue<string, (DateTimeOffset NotBefore, long Sequence)>> _ready = new(StringComparer.Ordinal);
    private readonly HashSet<Entry> _processing = [];
    private readonly Dictionary<string, OwnerTally> _owners = new(StringComparer.Ordinal);
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
            TraceParent = job.TraceParent,
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
            Ready(entry, now);
            _unfinished++;
            var tally = Tally(entry.Owner);
            tally.Unfinished++;
            tally.Bytes += entry.Payload.Length;
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
    public ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken) =>
        TryClaimAsync(workerId, leaseDuration, int.MaxValue, cancellationToken);

    /// <inheritdoc />
    public ValueTask<JobLease?> TryClaimAsync(string workerId, TimeSpan leaseDuration, int maxRunningPerOwner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workerId);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRunningPerOwner, 1);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            // Running jobs per owner (live leases); the processing jobs whose lease ran out (their worker died) are candidates.
            var running = new Dictionary<string, int>(StringComparer.Ordinal);
            List<Entry>? expired = null;
            foreach (var entry in _processing)
            {
                if (entry.LeaseExpiresAt > now)
                {
                    running[entry.Owner] = running.GetValueOrDefault(entry.Owner) + 1;
                }
                else
                {
                    (expired ??= []).Add(entry);
                }
            }

            // The oldest claimable job of the owner with the fewest running jobs: (running, ready time, sequence), smallest first.
            Entry? best = null;
            (int Running, DateTimeOffset ReadyAt, long Sequence) bestKey = default;
            PriorityQueue<string, (DateTimeOffset NotBefore, long Sequence)>? bestQueue = null;
            foreach (var entry in expired ?? [])
            {
                var key = (running.GetValueOrDefault(entry.Owner), entry.ReadyAt, entry.ReadySequence);
                if (key.Item1 < maxRunningPerOwner && (best is null || key.CompareTo(bestKey) < 0))
                {
                    (best, bestKey, bestQueue) = (entry, key, null);
                }
            }

            List<string>? drained = null;
            foreach (var (owner, queue) in _ready)
            {
                Entry? head = null;
                var priority = default((DateTimeOffset NotBefore, long Sequence));
                while (queue.TryPeek(out var id, out priority))
                {
                    if (_jobs.TryGetValue(id, out var entry) && entry.Status == JobStatus.Pending && entry.ReadySequence == priority.Sequence)
                    {
                        head = entry;
                        break;
                    }

                    queue.Dequeue(); // stale: cancelled, expired, or re-queued with a newer position
                }

                if (head is null)
                {
                    (drained ??= []).Add(owner);
                    continue;
                }

                // The queue is ordered by ready time: when its head is not due, none of the owner's jobs is.
                var key = (running.GetValueOrDefault(owner), priority.NotBefore, priority.Sequence);
                if (priority.NotBefore <= now && key.Item1 < maxRunningPerOwner && (best is null || key.CompareTo(bestKey) < 0))
                {
                    (best, bestKey, bestQueue) = (head, key, queue);
                }
            }

            foreach (var owner in drained ?? [])
            {
                _ready.Remove(owner);
            }

            if (best is null)
            {
                return ValueTask.FromResult<JobLease?>(null);
            }

            bestQueue?.Dequeue();
            return ValueTask.FromResult<JobLease?>(Claim(best, workerId, leaseDuration, now));
        }
    }

    /// <inheritdoc />
    /// <remarks>Kept as jobs come and go (no scan): a finished job's bytes count until the sweep (<see cref="ExpireAsync"/>) removed it.</remarks>
    public ValueTask<JobOwnerUsage> GetOwnerUsageAsync(string owner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var running = _processing.Count(e => e.Owner == owner && e.LeaseExpiresAt > now);
            return ValueTask.FromResult(_owners.TryGetValue(owner, out var tally)
                ? new JobOwnerUsage(tally.Unfinished, running, tally.Bytes)
                : new JobOwnerUsage(0, running, 0));
        }
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
            _processing.Remove(entry);
            entry.LeaseOwner = null;
            entry.LeaseExpiresAt = null;
            entry.NotBefore = notBefore;
            if (countAttempt)
            {
                entry.Attempts++;
            }

            entry.ReadySequence = ++_sequence;
            Ready(entry, notBefore ?? now);
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
                Tally(entry.Owner).Unfinished--;
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
    public ValueTask<IReadOnlyList<JobRecord>> ListAllAsync(string? kind, string? exceptKind, bool? unfinished, int limit, string? after, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            long? afterSequence = after is not null && _jobs.TryGetValue(after, out var cursor) ? cursor.Sequence : null;
            if (limit <= 0)
            {
                return ValueTask.FromResult<IReadOnlyList<JobRecord>>([]);
            }

            // The newest `limit` matches in one pass (a heap of `limit` entries, oldest on top), not a sort of every job
            // under the store's lock: the dashboard polls this.
            var newest = new PriorityQueue<Entry, long>(Math.Min(limit, 1024));
            foreach (var e in _jobs.Values)
            {
                if ((kind is null || e.Kind == kind) && (exceptKind is null || e.Kind != exceptKind)
                    && (unfinished is null || unfinished == (e.Status is JobStatus.Pending or JobStatus.Processing))
                    && !IsExpired(e, now) && (afterSequence is null || e.Sequence < afterSequence))
                {
                    if (newest.Count < limit)
                    {
                        newest.Enqueue(e, e.Sequence);
                    }
                    else if (newest.TryPeek(out _, out var oldest) && e.Sequence > oldest)
                    {
                        newest.EnqueueDequeue(e, e.Sequence);
                    }
                }
            }

            var page = new JobRecord[newest.Count];
            for (var i = page.Length - 1; i >= 0; i--)
            {
                page[i] = newest.Dequeue().Snapshot(IJobStore.ListAllBodyLimit);
            }

            return ValueTask.FromResult<IReadOnlyList<JobRecord>>(page);
        }
    }

    /// <inheritdoc />
    public ValueTask<int> ExpireAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var expired = _jobs.Values.Where(e => IsExpired(e, now)).ToList();
            foreach (var entry in expired)
            {
                _jobs.Remove(entry.Id);
                var tally = Tally(entry.Owner);
                tally.Bytes -= entry.Payload.Length + (entry.Result?.Length ?? 0);
                if (tally.Bytes == 0 && tally.Unfinished == 0)
                {
                    _owners.Remove(entry.Owner);
                }
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

    private void Ready(Entry entry, DateTimeOffset readyAt)
    {
        entry.ReadyAt = readyAt;
        if (!_ready.TryGetValue(entry.Owner, out var queue))
        {
            _ready[entry.Owner] = queue = new();
        }

        queue.Enqueue(entry.Id, (readyAt, entry.ReadySequence));
    }

    private OwnerTally Tally(string owner)
    {
        if (!_owners.TryGetValue(owner, out var tally))
        {
            _owners[owner] = tally = new OwnerTally();
        }

        return tally;
    }

    private JobLease Claim(Entry entry, string workerId, TimeSpan leaseDuration, DateTimeOffset now)
    {
        entry.Status = JobStatus.Processing;
        entry.Version++;
        entry.LeaseOwner = workerId;
        entry.LeaseExpiresAt = now + leaseDuration;
        entry.StartedAt ??= now;
        entry.NotBefore = null;
        _processing.Add(entry);
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
            _processing.Remove(entry);
            _unfinished--;
            var tally = Tally(entry.Owner);
            tally.Unfinished--;
            tally.Bytes += entry.Result.Length;
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

    /// <summary>An owner's unfinished jobs and stored bytes (payloads + results), kept as jobs come and go.</summary>
    private sealed class OwnerTally
    {
        public long Unfinished { get; set; }

        public long Bytes { get; set; }
    }

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

        public DateTimeOffset ReadyAt { get; set; }

        public string? TraceParent { get; init; }

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

        public JobRecord Snapshot(int bodyLimit = int.MaxValue) => new()
        {
            Id = Id,
            Kind = Kind,
            Owner = Owner,
            Payload = Payload.Length <= bodyLimit ? Payload : ReadOnlyMemory<byte>.Empty,
            TraceParent = TraceParent,
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
            Result = Result is { } result && result.Length <= bodyLimit ? new ReadOnlyMemory<byte>(result) : (ReadOnlyMemory<byte>?)null,
            Progress = Progress is { } progress && progress.Length <= bodyLimit ? new ReadOnlyMemory<byte>(progress) : (ReadOnlyMemory<byte>?)null,
        };
    }
}
