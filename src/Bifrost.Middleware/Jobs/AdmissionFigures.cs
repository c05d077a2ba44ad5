using System.Collections.Concurrent;

namespace Bifrost.Middleware.Jobs;

/// <summary>
/// The figures admission control compares with the limits — the store's unfinished jobs, and each owner's unfinished jobs
/// and stored bytes — read from the store at most once per <see cref="Reuse"/> and carried forward in between by this
/// instance's own submissions, so a submit does not pay a count over the whole queue and a sum over the owner's jobs
/// (in a database store, both grow with the backlog).
/// </summary>
/// <remarks>
/// <para>On one instance the carried figure never falls below the truth (jobs finishing or expiring only lower it; a
/// submission racing a read may be counted twice), so a request it admits is admissible. A request it would refuse is
/// checked again against figures read fresh: a refusal is always decided on the store's own figures.</para>
/// <para>What another instance sharing the store submitted, and the result bytes of jobs finished, since the last read
/// are not seen until the next read, at most <see cref="Reuse"/> later: several instances may overshoot the limits by
/// what they admit in that time, as they may by their concurrent submissions anyway.</para>
/// </remarks>
internal sealed class AdmissionFigures(IJobStore store, TimeProvider time)
{
    /// <summary>How long figures read from the store are carried forward before they are read again.</summary>
    public static readonly TimeSpan Reuse = TimeSpan.FromSeconds(1);

    /// <summary>Owners whose figures are kept at most (a bound, not an eviction policy: the figures are cheap to read again).</summary>
    private const int MaxOwners = 10_000;

    private readonly ConcurrentDictionary<string, Carried> _owners = new(StringComparer.Ordinal);
    private Carried? _queue;

    /// <summary>The store's unfinished jobs: carried forward, or read now when <paramref name="fresh"/> or too old.</summary>
    public async ValueTask<long> UnfinishedAsync(bool fresh, CancellationToken cancellationToken)
    {
        if (!fresh && Volatile.Read(ref _queue) is { IsRead: true } carried && !IsStale(carried))
        {
            return carried.Jobs;
        }

        // Published before the read, so a submission stored while the read runs is counted (twice at worst, never not).
        var read = new Carried(time.GetTimestamp());
        Volatile.Write(ref _queue, read);
        read.SetRead(await store.CountUnfinishedAsync(cancellationToken).ConfigureAwait(false), 0);
        return read.Jobs;
    }

    /// <summary>The owner's unfinished jobs and stored bytes: carried forward, or read now when <paramref name="fresh"/> or too old.</summary>
    public async ValueTask<(long UnfinishedJobs, long StoredBytes)> OwnerAsync(string owner, bool fresh, CancellationToken cancellationToken)
    {
        if (!fresh && _owners.TryGetValue(owner, out var carried) && carried.IsRead && !IsStale(carried))
        {
            return (carried.Jobs, carried.Bytes);
        }

        if (_owners.Count >= MaxOwners)
        {
            _owners.Clear();
        }

        // Published before the read, as above.
        var read = new Carried(time.GetTimestamp());
        _owners[owner] = read;
        var usage = await store.GetOwnerUsageAsync(owner, cancellationToken).ConfigureAwait(false);
        read.SetRead(usage.UnfinishedJobs, usage.StoredBytes);
        return (read.Jobs, read.Bytes);
    }

    /// <summary>Counts a job this instance stored into the figures carried forward.</summary>
    public void Stored(string owner, long payloadBytes)
    {
        Volatile.Read(ref _queue)?.Add(1, 0);
        if (_owners.TryGetValue(owner, out var carried))
        {
            carried.Add(1, payloadBytes);
        }
    }

    private bool IsStale(Carried carried) => time.GetElapsedTime(carried.ReadAt) >= Reuse;

    /// <summary>Figures read from the store (started at <see cref="ReadAt"/>) plus what this instance stored since the read started.</summary>
    private sealed class Carried(long readAt)
    {
        private long _jobs;
        private long _bytes;
        private volatile bool _read;

        public long ReadAt { get; } = readAt;

        /// <summary>Whether the store's figures are in (until then, the object only collects this instance's submissions).</summary>
        public bool IsRead => _read;

        public long Jobs => Interlocked.Read(ref _jobs);

        public long Bytes => Interlocked.Read(ref _bytes);

        public void SetRead(long jobs, long bytes)
        {
            Interlocked.Add(ref _jobs, jobs);
            Interlocked.Add(ref _bytes, bytes);
            _read = true;
        }

        public void Add(long jobs, long bytes)
        {
            Interlocked.Add(ref _jobs, jobs);
            Interlocked.Add(ref _bytes, bytes);
        }
    }
}
