using Azure.Core;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Azure.Tests;

/// <summary>Hands out token-1, token-2, ... valid for <see cref="Lifetime"/> on a fake clock; counts calls; can be held or made to fail.</summary>
public sealed class FakeTokenCredential(FakeTimeProvider time) : TokenCredential
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public TimeSpan Lifetime { get; set; } = TimeSpan.FromHours(1);

    public List<string[]> Scopes { get; } = [];

    /// <summary>When set, each call waits for it.</summary>
    public TaskCompletionSource? Gate { get; set; }

    public Exception? Failure { get; set; }

    public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
        GetTokenAsync(requestContext, cancellationToken).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken)
    {
        var n = Interlocked.Increment(ref _calls);
        lock (Scopes)
        {
            Scopes.Add(requestContext.Scopes);
        }

        if (Gate is { } gate)
        {
            await gate.Task.WaitAsync(cancellationToken);
        }

        if (Failure is { } failure)
        {
            throw failure;
        }

        return new AccessToken("token-" + n, time.GetUtcNow() + Lifetime);
    }
}
