using System.Threading.Channels;

namespace Bifrost.Middleware.Jobs;

/// <summary>
/// Wakes idle workers when a job is stored. Only a hint: the store is the truth and workers also poll it,
/// so a ring that finds the channel full (<see cref="BoundedChannelFullMode.Wait"/> + <c>TryWrite</c>) loses nothing.
/// </summary>
internal sealed class JobDoorbell(TimeProvider time) : IJobDoorbell
{
    private readonly Channel<byte> _channel = Channel.CreateBounded<byte>(new BoundedChannelOptions(1024)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = false,
        SingleWriter = false,
    });

    public void Ring() => _channel.Writer.TryWrite(0);

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
