namespace Bifrost.Middleware.Providers;

/// <summary>
/// An attempt's timeout as a token: the caller's token, also cancelled when the provider's <see cref="ProviderOptions.Timeout"/>
/// expires (on the injected clock) unless <see cref="Disarm"/> was called first. A stream disarms it at its first chunk, so the
/// timeout bounds the wait for the stream to start, not the stream.
/// </summary>
internal sealed class AttemptDeadline : IDisposable
{
    private readonly CancellationTokenSource _timeout;
    private readonly CancellationTokenSource _linked;
    private bool _disarmed;

    public AttemptDeadline(ProviderContext context, TimeProvider time, CancellationToken cancellationToken)
    {
        _timeout = new CancellationTokenSource(context.Options.Timeout, time);
        _linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _timeout.Token);
    }

    /// <summary>Cancelled by the caller, or when the timeout expires before <see cref="Disarm"/>.</summary>
    public CancellationToken Token => _linked.Token;

    /// <summary>The timeout expired before <see cref="Disarm"/> (whatever the caller's token did).</summary>
    public bool Expired => !_disarmed && _timeout.IsCancellationRequested;

    /// <summary>The timeout no longer applies (a stream's chunk arrived).</summary>
    public void Disarm()
    {
        if (!_disarmed)
        {
            _disarmed = true;
            _timeout.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    public void Dispose()
    {
        _linked.Dispose();
        _timeout.Dispose();
    }
}
