using System.ClientModel;
using System.ClientModel.Primitives;
using System.Globalization;

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

    internal BifrostAsyncJob(string id, AsyncRoute route, BifrostAsyncOptions options, T? result)
    {
        Id = id;
        _route = route;
        _options = options;
        _result = result;
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
        return (await PollOnceAsync(cancellationToken).ConfigureAwait(false)).Result;
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
        var wait = _options.PollInterval;
        try
        {
            while (true)
            {
                await Task.Delay(wait, _options.TimeProvider, linked.Token).ConfigureAwait(false);
                var (result, retryAfter) = await PollOnceAsync(linked.Token).ConfigureAwait(false);
                if (result is not null)
                {
                    return result;
                }

                wait = retryAfter ?? _options.PollInterval;
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"The Bifrost job '{Id}' did not finish within {_options.Timeout}. It still runs on the gateway: poll it again by its id.");
        }
    }

    private async Task<(T? Result, TimeSpan? RetryAfter)> PollOnceAsync(CancellationToken cancellationToken)
    {
        if (_result is not null)
        {
            return (_result, null);
        }

        var request = new RequestOptions { CancellationToken = cancellationToken };
        request.AddHeader(AsyncRoute.AsyncIdHeader, Id);
        var answer = await _route.Send(BinaryContent.Create(EmptyBody), request).ConfigureAwait(false);
        var response = answer.GetRawResponse();
        _result = _route.ReadResult<T>(response.Content);
        return (_result, _result is null ? RetryAfter(response) : null);
    }

    /// <summary>The poll answer's <c>Retry-After</c> (delta-seconds or an HTTP date), if any.</summary>
    private TimeSpan? RetryAfter(PipelineResponse response)
    {
        if (!response.Headers.TryGetValue("Retry-After", out var value) || string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds))
        {
            return TimeSpan.FromSeconds(seconds);
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date)
            ? Max(date - _options.TimeProvider.GetUtcNow(), TimeSpan.Zero)
            : null;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
