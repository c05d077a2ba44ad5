using System.ClientModel;
using System.ClientModel.Primitives;

namespace Bifrost.Middleware.Client;

/// <summary>
/// A request running as a job on a Bifrost gateway (<c>x-bf-async</c>): its <see cref="Id"/>, and polls with
/// <c>x-bf-async-id</c> on the same route to the SDK's typed result. Made by the <c>Submit...</c> and <c>Get...Job</c>
/// extensions of <see cref="BifrostAsyncClientExtensions"/>.
/// </summary>
/// <typeparam name="T">The SDK's result type (<c>ChatCompletion</c>, <c>OpenAIEmbeddingCollection</c>, <c>ResponseResult</c>).</typeparam>
public sealed class BifrostAsyncJob<T>
    where T : class
{
    private static readonly BinaryData EmptyBody = BinaryData.FromString("{}");

    private readonly AsyncRoute _route;
    private readonly BifrostAsyncOptions _options;
    private T? _result;
    private TimeSpan? _retryAfter;

    internal BifrostAsyncJob(string id, AsyncRoute route, BifrostAsyncOptions options, T? result, TimeSpan? retryAfter)
    {
        Id = id;
        _route = route;
        _options = options;
        _result = result;
        _retryAfter = retryAfter;
    }

    /// <summary>The job id: keep it to poll the job later (from another process too) with the <c>Get...Job</c> extensions.</summary>
    public string Id { get; }

    /// <summary>
    /// Polls once. Returns the typed result when the job completed, <see langword="null"/> while it is pending or running.
    /// </summary>
    /// <param name="cancellationToken">Cancels the poll.</param>
    /// <returns>The result, or <see langword="null"/> while the job runs.</returns>
    /// <exception cref="ClientResultException">The job failed (the gateway's status and error body, as the synchronous call
    /// would have answered), or the id is unknown, expired or another caller's (404).</exception>
    public async Task<T?> PollAsync(CancellationToken cancellationToken = default)
    {
        if (_result is not null)
        {
            return _result;
        }

        var request = new RequestOptions { CancellationToken = cancellationToken };
        request.AddHeader(AsyncRoute.AsyncIdHeader, Id);
        var response = (await _route.Send(BinaryContent.Create(EmptyBody), request).ConfigureAwait(false)).GetRawResponse();
        _result = _route.ReadResult<T>(response.Content);
        _retryAfter = AsyncRoute.RetryAfter(response, _options.TimeProvider);
        return _result;
    }

    /// <summary>
    /// Polls every <see cref="BifrostAsyncOptions.PollInterval"/> (or the gateway's <c>Retry-After</c>) until the job
    /// finishes, for at most <see cref="BifrostAsyncOptions.Timeout"/>.
    /// </summary>
    /// <param name="cancellationToken">Stops polling (the job goes on: poll it again by <see cref="Id"/>).</param>
    /// <returns>The typed result.</returns>
    /// <exception cref="ClientResultException">The job failed: <see cref="ClientResultException.Status"/> is the gateway's
    /// status and <c>GetRawResponse().Content</c> its error body (the Bifrost error shape).</exception>
    /// <exception cref="TimeoutException">The job did not finish within the timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<T> WaitForResultAsync(CancellationToken cancellationToken = default)
    {
        if (_result is not null)
        {
            return _result;
        }

        using var timeout = _options.Timeout == Timeout.InfiniteTimeSpan
            ? new CancellationTokenSource()
            : new CancellationTokenSource(_options.Timeout, _options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            while (true)
            {
                await Task.Delay(_retryAfter ?? _options.PollInterval, _options.TimeProvider, linked.Token).ConfigureAwait(false);
                if (await PollAsync(linked.Token).ConfigureAwait(false) is { } result)
                {
                    return result;
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"The Bifrost job '{Id}' did not finish within {_options.Timeout}. It still runs on the gateway: poll it again by its id.");
        }
    }
}
