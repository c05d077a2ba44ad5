using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Jobs;

/// <summary>
/// Wakes idle workers when a job is stored. Only a hint: the store is the truth and workers also poll it,
/// so a ring that finds the channel full (<see cref="BoundedChannelFullMode.Wait"/> + <c>TryWrite</c>) loses nothing.
/// </summary>
/// <remarks>
/// <para>At most <c>Jobs:Workers</c> rings wait to be taken: more could only wake workers that already looked at the
/// queue after those jobs were stored, and each such wake is a pick that finds nothing.</para>
/// <para>A job stored for an owner that already runs its <c>Jobs:MaxRunningPerOwner</c> jobs on this instance wakes
/// nobody (<see cref="Ring(string)"/>): no worker could claim it now. The owner is marked instead, and the worker that
/// ends one of its jobs, which looks at the queue at once, rings if that look took another owner's job (so an idle
/// worker looks for the marked owner's next job); see <see cref="TakeDeferred"/>.</para>
/// </remarks>
internal sealed class JobDoorbell(TimeProvider time, IOptions<BifrostOptions>? options = null) : IJobDoorbell
{
    private readonly Channel<byte> _channel = Channel.CreateBounded<byte>(new BoundedChannelOptions(Math.Max(1, options?.Value.Jobs.Workers ?? 1024))
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = false,
        SingleWriter = false,
    });

    private readonly ConcurrentDictionary<string, byte> _deferred = new(StringComparer.Ordinal);
    private Func<string, bool>? _ownerAtCap;
    private long _suppressed;

    /// <summary>Rings not sent because the job's owner was at its cap on this instance (for tests and figures).</summary>
    public long Suppressed => Interlocked.Read(ref _suppressed);

    /// <summary>Rings waiting to be taken (at most <c>Jobs:Workers</c>).</summary>
    public int Pending => _channel.Reader.Count;

    public void Ring() => _channel.Writer.TryWrite(0);

    /// <summary>
    /// A job of <paramref name="owner"/> was stored: rings, unless this instance's workers already run as many of the
    /// owner's jobs as one owner may run (then the owner is marked for <see cref="TakeDeferred"/>).
    /// </summary>
    public void Ring(string owner)
    {
        if (_ownerAtCap is { } atCap && atCap(owner))
        {
            _deferred[owner] = 0;
            Interlocked.Increment(ref _suppressed);

            // Ended meanwhile? Then the worker that ended it may have looked for a marked owner already: ring after all.
            if (!atCap(owner) && _deferred.TryRemove(owner, out _))
            {
                Ring();
            }

            return;
        }

        Ring();
    }

    /// <summary>Set by the workers: whether an owner already runs as many jobs here as one owner may.</summary>
    internal void UseOwnerCap(Func<string, bool> ownerAtCap) => _ownerAtCap = ownerAtCap;

    /// <summary>Whether a ring for <paramref name="owner"/> was held back since the last call (and clears the mark).</summary>
    internal bool TakeDeferred(string owner) => !_deferred.IsEmpty && _deferred.TryRemove(owner, out _);

    /// <summary>Whether a ring for <paramref name="owner"/> is held back.</summary>
    internal bool IsDeferred(string owner) => _deferred.ContainsKey(owner);

    /// <summary>Waits for a ring or until <paramref name="timeout"/> passed.</summary>
    public async ValueTask WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_channel.Reader.TryRead(out _))
        {
            return;
        }

        using var timer = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        try
        {
            if (await _channel.Reader.WaitToReadAsync(linked.Token).ConfigureAwait(false))
            {
                _channel.Reader.TryRead(out _);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // poll interval elapsed
        }
    }
}
