namespace Bifrost.Middleware.Providers;

/// <summary>
/// An attempt's timeout as a token: the caller's token, also cancelled when the provider's <see cref="ProviderOptions.Timeout"/>
/// expires (on the injected clock) unless <see cref="Disarm"/> was called first. A stream disarms it at its first chunk, so the
/// timeout bounds the wait for the stream to start, not the stream.
/// </summary>
/// <remarks>
/// On the system clock, one source linked to the caller's token (none when it cannot be cancelled) with the timeout as its
/// own timer: one source, one timer and at most one registration per attempt. On another clock (tests'
/// <c>FakeTimeProvider</c>), a timeout source on that clock, linked with the caller's token.
/// </remarks>
internal sealed class AttemptDeadline : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly CancellationTokenSource? _timeout;
    private readonly CancellationToken _caller;
    private bool _disarmed;

    public AttemptDeadline(ProviderContext context, TimeProvider time, CancellationToken cancellationToken)
    {
        _caller = cancellationToken;
        if (ReferenceEquals(time, TimeProvider.System))
        {
            _source = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : new CancellationTokenSource();
            _source.CancelAfter(context.Options.Timeout);
        }
        else
        {
            _timeout = new CancellationTokenSource(context.Options.Timeout, time);
            _source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _timeout.Token);
        }
    }

    /// <summary>Cancelled by the caller, or when the timeout expires before <see cref="Disarm"/>.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>
    /// The timeout expired before <see cref="Disarm"/>. On the system clock, a token cancelled while the caller's is too
    /// counts as the caller's cancellation (the callers check the caller's token first anyway).
    /// </summary>
    public bool Expired => !_disarmed && (_timeout is { } timeout
        ? timeout.IsCancellationRequested
        : _source.IsCancellationRequested && !_caller.IsCancellationRequested);

    /// <summary>The timeout no longer applies (a stream's chunk arrived).</summary>
    public void Disarm()
    {
        if (!_disarmed)
        {
            _disarmed = true;
            (_timeout ?? _source).CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    public void Dispose()
    {
        _source.Dispose();
        _timeout?.Dispose();
    }
}
