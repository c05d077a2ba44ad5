using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Jobs;

/// <summary>Submits jobs: admission control, then the store (durable before the reply), then the doorbell.</summary>
internal sealed class AsyncJobService(IJobStore store, JobDoorbell doorbell, IOptions<BifrostOptions> options)
{
    private readonly JobsOptions _options = options.Value.Jobs;

    public JobsOptions Options => _options;

    public IJobStore Store => store;

    public async Task<JobRecord> SubmitAsync(string kind, ReadOnlyMemory<byte> payload, string owner, TimeSpan? resultTtl, CancellationToken cancellationToken, string? id = null)
    {
        var unfinished = await store.CountUnfinishedAsync(cancellationToken).ConfigureAwait(false);
        if (unfinished >= _options.MaxQueuedJobs)
        {
            throw new BifrostException(new BifrostError
            {
                IsBifrostError = true,
                StatusCode = 429,
                Error = new BifrostErrorDetail
                {
                    Type = "rate_limit_error",
                    Code = "job_queue_full",
                    Message = $"The job queue is full ({unfinished} unfinished jobs, limit {_options.MaxQueuedJobs}). Retry later.",
                },
            })
            {
                RetryAfter = _options.QueueFullRetryAfter,
                IsRetryable = true,
            };
        }

        var job = await store.EnqueueAsync(
            new NewJob
            {
                Id = id ?? Guid.CreateVersion7().ToString(),
                Kind = kind,
                Owner = owner,
                Payload = payload,
                ResultTtl = resultTtl ?? _options.ResultTtl,
                MaxAttempts = _options.MaxAttempts,
            },
            cancellationToken).ConfigureAwait(false);
        doorbell.Ring();
        return job;
    }

    /// <summary>The caller's job of this kind, or null (unknown, expired, another owner's, another route's: all look the same, 404).</summary>
    public async Task<JobRecord?> FindAsync(string id, string kind, string owner, CancellationToken cancellationToken)
    {
        var job = await store.GetAsync(id, cancellationToken).ConfigureAwait(false);
        return job is not null && job.Owner == owner && job.Kind == kind ? job : null;
    }
}
