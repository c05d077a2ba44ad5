using System.Collections.Concurrent;
using Bifrost.Middleware.Resilience;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Jobs;

/// <summary>
/// The workers: claim a job with a lease, renew it while the job runs, finish it with a fenced write. A job's
/// failure is recorded on the job and never escapes (it would stop the host). On shutdown the workers stop
/// claiming, let running jobs finish within the host's shutdown timeout, and release the rest to the store so
/// the next start (with a durable store) resumes them.
/// </summary>
internal sealed class JobProcessor : BackgroundService
{
    private readonly IJobStore _store;
    private readonly JobDoorbell _doorbell;
    private readonly Dictionary<string, IJobHandler> _handlers;
    private readonly JobsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<JobProcessor> _logger;
    private readonly CancellationTokenSource _abort = new();
    private readonly ConcurrentDictionary<string, JobLease> _running = new(StringComparer.Ordinal);
    private readonly string _instance = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    private readonly IServiceProvider _services;
    private readonly JobCancellationRegistry _cancellations;
    private readonly Governance.VirtualKeyStore _keys;
    private readonly Diagnostics.OperationalMetrics _metrics;

    public JobProcessor(IJobStore store, JobDoorbell doorbell, IEnumerable<IJobHandler> handlers, Operations.OperationRegistry operations, IOptions<BifrostOptions> options, TimeProvider time, ILogger<JobProcessor> logger, IServiceProvider services, JobCancellationRegistry cancellations)
    {
        _services = services;
        _keys = services.GetRequiredService<Governance.VirtualKeyStore>();
        _cancellations = cancellations;
        _store = store;
        _doorbell = doorbell;
        _handlers = new Dictionary<string, IJobHandler>(StringComparer.Ordinal);
        foreach (var handler in operations.Operations.Select(static o => o.CreateJobHandler()).OfType<IJobHandler>().Concat(handlers))
        {
            _handlers[handler.Kind] = handler; // the last registration of a kind wins
        }

        _options = options.Value.Jobs;
        _time = time;
        _logger = logger;
        _metrics = services.GetRequiredService<Diagnostics.OperationalMetrics>();
        _metrics.TrackRunning(_handlers.Keys, () => _running.Values.Select(static lease => lease.Job.Kind));
        _doorbell.UseOwnerCap(OwnerAtCap);
    }

    /// <summary>Jobs this instance runs right now.</summary>
    public int RunningCount => _running.Count;

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var tasks = new Task[_options.Workers + 1];
        for (var i = 0; i < _options.Workers; i++)
        {
            var workerId = $"{_instance}:{i}";
            tasks[i] = Task.Run(() => WorkAsync(workerId, stoppingToken), CancellationToken.None);
        }

        tasks[^1] = Task.Run(() => SweepAsync(stoppingToken), CancellationToken.None);
        return Task.WhenAll(tasks);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);

        if (ExecuteTask is { IsCompleted: false } running)
        {
            // base.StopAsync returned before the workers finished: the host's shutdown timeout ran out. Running jobs are
            // cancelled and released (not failed). This is done here rather than in a callback registered on the token:
            // base.StopAsync's continuation can run inline in the token's callbacks, before such a registration fires.
            await _abort.CancelAsync().ConfigureAwait(false);

            // Give the cancelled jobs a moment (real time, whatever clock the jobs use) to hand their leases back.
            await Task.WhenAny(running, Task.Delay(TimeSpan.FromSeconds(5), TimeProvider.System, CancellationToken.None)).ConfigureAwait(false);
        }
    }

    public override void Dispose()
    {
        _abort.Dispose();
        base.Dispose();
    }

    private async Task WorkAsync(string workerId, CancellationToken stoppingToken)
    {
        string? ended = null; // the owner whose job this worker just ended
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var lease = await _store.TryClaimAsync(workerId, _options.LeaseDuration, _options.EffectiveMaxRunningPerOwner, stoppingToken).ConfigureAwait(false);
                if (ended is not null)
                {
                    // Jobs of the owner whose job just ended were stored while it was at its cap, without a ring: if this
                    // look took another owner's job, ring so an idle worker looks for them (the owner has a free slot).
                    // Found nothing: nothing is claimable, the mark goes. Took the owner's own job: it may be at its cap
                    // again, the mark stays for the next job of it that ends.
                    if (lease is null)
                    {
                        _doorbell.TakeDeferred(ended);
                    }
                    else if (lease.Job.Owner != ended && _doorbell.TakeDeferred(ended))
                    {
                        _doorbell.Ring();
                    }

                    ended = null;
                }

                if (lease is null)
                {
                    await _doorbell.WaitAsync(_options.PollInterval, stoppingToken).ConfigureAwait(false);
                    continue;
                }

                await RunAsync(lease).ConfigureAwait(false);
                ended = lease.Job.Owner;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // The store failed (e.g. a database blip): log, wait, go on. Never let the worker die.
                JobLog.StoreFailed(_logger, ex);
                try
                {
                    await Task.Delay(_options.PollInterval, _time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    private async Task RunAsync(JobLease lease)
    {
        var job = lease.Job;
        _running[job.Id] = lease;
        _handlers.TryGetValue(job.Kind, out var handler);
        var runStarted = _time.GetTimestamp();
        var run = new RunMetrics(_metrics, job.Kind);
        if (job.Version == 1)
        {
            _metrics.JobStarted(job, _time.GetUtcNow()); // the first claim: the time the job waited in the queue
        }

        // The run's deadline (Jobs:MaxRunDuration), on the injected clock; handlers that bound their own time have none.
        using var deadline = handler?.HasRunDeadline == true ? new CancellationTokenSource(_options.MaxRunDuration, _time) : null;
        using var jobCts = CancellationTokenSource.CreateLinkedTokenSource(_abort.Token, deadline?.Token ?? CancellationToken.None);
        using var cancelRequested = new CancellationTokenSource();

        // A cancel request recorded on this instance (or announced by a shared store) reaches the run at once; the
        // renewal loop's look at the store covers a missed signal.
        using var registration = _cancellations.Register(job.Id, cancelRequested);
        var state = new RunState();
        using var renewal = new CancellationTokenSource();
        var renewTask = RenewAsync(lease, jobCts, cancelRequested, state, renewal.Token);
        try
        {
            if (handler is null)
            {
                run.Failed(await _store.FailAsync(lease, ErrorOutcome(BifrostErrors.Internal("unknown_job_kind", $"No handler for job kind '{job.Kind}'.")), CancellationToken.None).ConfigureAwait(false), "unknown_job_kind");
                return;
            }

            if (job.CancellationRequested)
            {
                await cancelRequested.CancelAsync().ConfigureAwait(false);
            }

            // A job created with a virtual key runs under it: the governance layer re-applies the key's rules.
            Governance.GovernanceCaller.Current = _keys.Mode == GovernanceMode.Off ? null : Governance.GovernanceCaller.FromOwner(job.Owner, _keys);
            RequestLog.RequestLogCaller.Current = new RequestLog.RequestLogCaller(job.Owner, null); // the request log's owner of the job's calls
            JobRunResult result;
            using var span = Diagnostics.GatewayTracing.StartJob(job); // linked to the submit's span; the run's spans are its children
            try
            {
                result = await handler.ExecuteAsync(new JobExecution(lease, _store, _services, cancelRequested.Token), jobCts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (deadline is { IsCancellationRequested: true } && !_abort.IsCancellationRequested && !state.LeaseLost
                && !cancelRequested.IsCancellationRequested && ex is OperationCanceledException or BifrostException)
            {
                // Ran past Jobs:MaxRunDuration: a final failure (a retry would most likely run as long again).
                JobLog.TimedOut(_logger, job.Id, job.Kind, (long)_options.MaxRunDuration.TotalMilliseconds);
                var error = BifrostErrors.Timeout("job_timeout", $"The job ran longer than the gateway allows one job to run (Jobs:MaxRunDuration = {_options.MaxRunDuration}) and was stopped.");
                var failed = await _store.FailAsync(lease, ErrorOutcome(error), CancellationToken.None).ConfigureAwait(false);
                run.Failed(failed, "job_timeout", cancelRequested.IsCancellationRequested);
                if (!failed)
                {
                    JobLog.LeaseLost(_logger, job.Id);
                }

                return;
            }
            catch (Exception ex) when ((jobCts.IsCancellationRequested || cancelRequested.IsCancellationRequested) && ex is OperationCanceledException or BifrostException)
            {
                await OnCancelledAsync(lease, state, cancelRequested.IsCancellationRequested, run).ConfigureAwait(false);
                return;
            }
            catch (BifrostException ex)
            {
                await OnFailedAsync(lease, ex, run, cancelRequested.IsCancellationRequested).ConfigureAwait(false);
                return;
            }
            catch (Exception ex)
            {
                JobLog.JobCrashed(_logger, job.Id, job.Kind, ex);
                run.Failed(await _store.FailAsync(lease, ErrorOutcome(BifrostErrors.Internal("internal_error", $"The job failed unexpectedly (job {job.Id}); the error is logged under that id.")), CancellationToken.None).ConfigureAwait(false), "internal_error", cancelRequested.IsCancellationRequested);
                return;
            }

            var stored = result.Cancelled
                ? await _store.MarkCancelledAsync(lease, result.Outcome, CancellationToken.None).ConfigureAwait(false)
                : await _store.CompleteAsync(lease, result.Outcome, CancellationToken.None).ConfigureAwait(false);
            if (!stored)
            {
                JobLog.LeaseLost(_logger, job.Id);
            }

            // A completion on a job whose cancel was requested is stored cancelled (the store's contract).
            run.Ended(stored, result.Cancelled || cancelRequested.IsCancellationRequested ? "cancelled" : "completed");
        }
        catch (Exception ex)
        {
            JobLog.StoreFailed(_logger, ex);
        }
        finally
        {
            await renewal.CancelAsync().ConfigureAwait(false);
            await renewTask.ConfigureAwait(false);
            _running.TryRemove(job.Id, out _);
            _metrics.JobRunEnded(job.Kind, run.Outcome, _time.GetElapsedTime(runStarted));
        }
    }

    private async Task OnCancelledAsync(JobLease lease, RunState state, bool cancellationRequested, RunMetrics run)
    {
        if (state.LeaseLost)
        {
            JobLog.LeaseLost(_logger, lease.JobId);
            run.Outcome = "lease_lost";
            return;
        }

        if (cancellationRequested && !_abort.IsCancellationRequested)
        {
            var error = BifrostErrors.JobCancelled();
            run.Ended(await _store.MarkCancelledAsync(lease, ErrorOutcome(error), CancellationToken.None).ConfigureAwait(false), "cancelled");
            return;
        }

        // Shutdown: hand the job back untouched so the next start resumes it.
        await _store.ReleaseAsync(lease, null, countAttempt: false, CancellationToken.None).ConfigureAwait(false);
        run.Outcome = "released";
        JobLog.Released(_logger, lease.JobId);
    }

    private async Task OnFailedAsync(JobLease lease, BifrostException error, RunMetrics run, bool cancellationRequested)
    {
        var job = lease.Job;
        // Jobs:MaxAttempts runs at most (a lease lost to a dead worker is not counted: at-least-once), waiting as the one
        // backoff policy says. Each run is one gateway call, itself bounded by the providers' retries and fallbacks: see
        // the README, "Async inference", for the bound on upstream calls per job.
        if (error.IsRetryable && RetryPolicy(job).NextDelay(job.Attempts, error.RetryAfter) is { } delay)
        {
            JobLog.Retrying(_logger, job.Id, job.Attempts + 1, error.StatusCode, (long)delay.TotalMilliseconds);
            await _store.ReleaseAsync(lease, _time.GetUtcNow() + delay, countAttempt: true, CancellationToken.None).ConfigureAwait(false);
            run.Outcome = "retry";
            return;
        }

        run.Failed(await _store.FailAsync(lease, ErrorOutcome(error), CancellationToken.None).ConfigureAwait(false), error.Error.Error.Code ?? error.Error.Error.Type, cancellationRequested);
    }

    /// <summary>
    /// Renews the lease every third of its duration; cancels the job when the lease is lost or cancellation was requested.
    /// A store error does not end the renewals; but once the lease could run out before a renewal succeeds (two thirds
    /// of it without one), the job is stopped as if the lease were lost, so it never runs on next to a worker that
    /// claimed it after the lease ran out (it is resumed by that worker).
    /// </summary>
    private async Task RenewAsync(JobLease lease, CancellationTokenSource jobCts, CancellationTokenSource cancelRequested, RunState state, CancellationToken stop)
    {
        var renewEvery = _options.LeaseDuration / 3;
        var tick = renewEvery < _options.PollInterval ? renewEvery : _options.PollInterval;
        var lastRenewal = _time.GetTimestamp();
        while (true)
        {
            try
            {
                await Task.Delay(tick, _time, stop).ConfigureAwait(false);
                if (_time.GetElapsedTime(lastRenewal) >= renewEvery - (tick / 2))
                {
                    if (!await _store.RenewLeaseAsync(lease, _options.LeaseDuration, stop).ConfigureAwait(false))
                    {
                        state.LeaseLost = true;
                        await jobCts.CancelAsync().ConfigureAwait(false);
                        return;
                    }

                    lastRenewal = _time.GetTimestamp();
                }

                if (!cancelRequested.IsCancellationRequested && await _store.GetAsync(lease.JobId, stop).ConfigureAwait(false) is { CancellationRequested: true })
                {
                    // The handler decides how to stop (a batch finishes its in-flight lines and keeps partial output).
                    await cancelRequested.CancelAsync().ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                JobLog.StoreFailed(_logger, ex);
                if (_time.GetElapsedTime(lastRenewal) >= _options.LeaseDuration - renewEvery)
                {
                    state.LeaseLost = true;
                    await jobCts.CancelAsync().ConfigureAwait(false);
                    return;
                }
            }
        }
    }

    private async Task SweepAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.SweepInterval, _time, stoppingToken).ConfigureAwait(false);
                var removed = await _store.ExpireAsync(stoppingToken).ConfigureAwait(false);
                if (removed > 0)
                {
                    JobLog.Expired(_logger, removed);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                JobLog.StoreFailed(_logger, ex);
            }
        }
    }

    /// <summary>Whether this instance runs as many of <paramref name="owner"/>'s jobs as one owner may run (so it is at its cap everywhere).</summary>
    private bool OwnerAtCap(string owner)
    {
        var cap = _options.EffectiveMaxRunningPerOwner;
        var running = 0;
        foreach (var pair in _running)
        {
            if (pair.Value.Job.Owner == owner && ++running >= cap)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The backoff of a job's retries: <c>Jobs:RetryBaseDelay</c> doubling up to <c>Jobs:RetryMaxDelay</c>, for the job's <c>MaxAttempts</c> runs.</summary>
    private Backoff RetryPolicy(JobRecord job) => new(_options.RetryBaseDelay, _options.RetryMaxDelay, Math.Max(1, job.MaxAttempts) - 1);

    internal static JobOutcome ErrorOutcome(BifrostException error) =>
        new(error.StatusCode, JsonSerializer.SerializeToUtf8Bytes(error.Error, BifrostJson.Context.BifrostError));

    private sealed class RunState
    {
        public volatile bool LeaseLost;
    }

    /// <summary>What a run ended with, for <c>bifrost.job.run.duration</c>; a final status also counts in <c>bifrost.jobs.finished</c>.</summary>
    private sealed class RunMetrics(Diagnostics.OperationalMetrics metrics, string kind)
    {
        /// <summary>The run's outcome: completed, failed, cancelled, retry, released, lease_lost, or error (the store failed).</summary>
        public string Outcome { get; set; } = "error";

        /// <summary>A final status the store accepted (<paramref name="stored"/>) or refused (the lease was lost).</summary>
        public void Ended(bool stored, string status, string? errorType = null)
        {
            if (!stored)
            {
                Outcome = "lease_lost";
                return;
            }

            Outcome = status;
            metrics.JobFinished(kind, status, errorType);
        }

        /// <summary>A failure stored; a job whose cancel was requested is stored cancelled instead (the store's contract).</summary>
        public void Failed(bool stored, string? errorType, bool cancellationRequested = false) =>
            Ended(stored, cancellationRequested ? "cancelled" : "failed", cancellationRequested ? null : errorType ?? "unknown");
    }
}

internal static partial class JobLog
{
    [LoggerMessage(100, LogLevel.Warning, "The job store failed; the worker goes on after a pause.")]
    public static partial void StoreFailed(ILogger logger, Exception exception);

    [LoggerMessage(101, LogLevel.Error, "Job {JobId} ({Kind}) threw an unexpected exception; it is recorded as failed.")]
    public static partial void JobCrashed(ILogger logger, string jobId, string kind, Exception exception);

    [LoggerMessage(102, LogLevel.Warning, "Job {JobId}: the lease was lost (another worker took over or it expired); this run's result is discarded.")]
    public static partial void LeaseLost(ILogger logger, string jobId);

    [LoggerMessage(103, LogLevel.Information, "Job {JobId} released at shutdown; it will be resumed.")]
    public static partial void Released(ILogger logger, string jobId);

    [LoggerMessage(104, LogLevel.Information, "Job {JobId} attempt {Attempt} failed with {StatusCode}; it runs again in {DelayMs} ms.")]
    public static partial void Retrying(ILogger logger, string jobId, int attempt, int statusCode, long delayMs);

    [LoggerMessage(105, LogLevel.Debug, "{Count} expired jobs deleted.")]
    public static partial void Expired(ILogger logger, int count);

    [LoggerMessage(106, LogLevel.Warning, "Job {JobId} ({Kind}) ran longer than Jobs:MaxRunDuration ({MaxRunDurationMs} ms); it was stopped and failed with job_timeout.")]
    public static partial void TimedOut(ILogger logger, string jobId, string kind, long maxRunDurationMs);
}
