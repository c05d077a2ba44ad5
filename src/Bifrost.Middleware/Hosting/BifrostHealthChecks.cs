using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Bifrost.Middleware.Hosting;

/// <summary>What the gateway's health checks share.</summary>
internal static class BifrostHealth
{
    /// <summary>How long a store may take to answer a check before it counts as failed.</summary>
    public static readonly TimeSpan StoreTimeout = TimeSpan.FromSeconds(10);

    public const string NotAdded = "The Bifrost gateway is not registered (services.AddBifrost(...) was not called).";

    /// <summary>The failure status the host registered for the check (Unhealthy unless it chose otherwise).</summary>
    public static HealthCheckResult Failed(HealthCheckContext context, string description, Exception? exception = null) =>
        new(context.Registration.FailureStatus, description, exception);

    public static bool IsTimeout(Exception ex, CancellationToken cancellationToken) => ex is OperationCanceledException && cancellationToken.IsCancellationRequested;
}

/// <summary>The job store answers a cheap read (how many jobs are unfinished).</summary>
internal sealed class JobStoreHealthCheck(IServiceProvider services) : IHealthCheck
{
    public const string Name = "bifrost_job_store";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            if (services.GetService<IJobStore>() is not { } store)
            {
                return BifrostHealth.Failed(context, BifrostHealth.NotAdded);
            }

            var unfinished = await store.CountUnfinishedAsync(cancellationToken).ConfigureAwait(false);
            return HealthCheckResult.Healthy(
                $"The job store answers ({unfinished} unfinished jobs).",
                new Dictionary<string, object> { ["unfinished_jobs"] = unfinished });
        }
        catch (Exception ex) when (!BifrostHealth.IsTimeout(ex, cancellationToken))
        {
            return BifrostHealth.Failed(context, $"The job store cannot be read: {ex.Message}", ex);
        }
    }
}

/// <summary>The job workers' hosted service is running: started, not stopped, its loop not faulted.</summary>
internal sealed class JobWorkersHealthCheck(IServiceProvider services) : IHealthCheck
{
    public const string Name = "bifrost_job_workers";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            if (services.GetService<JobProcessor>() is not { } workers)
            {
                return Task.FromResult(BifrostHealth.Failed(context, BifrostHealth.NotAdded));
            }

            var result = workers.ExecuteTask switch
            {
                null => BifrostHealth.Failed(context, "The job workers have not started (the host is not running, or it is still starting)."),
                { IsFaulted: true } faulted => BifrostHealth.Failed(context, "The job workers stopped with an error.", faulted.Exception?.GetBaseException()),
                { IsCompleted: true } => BifrostHealth.Failed(context, "The job workers have stopped (the host is stopping)."),
                _ => HealthCheckResult.Healthy(
                    $"The job workers run ({workers.RunningCount} jobs running on this instance).",
                    new Dictionary<string, object> { ["running_jobs"] = workers.RunningCount }),
            };
            return Task.FromResult(result);
        }
        catch (Exception ex)
        {
            return Task.FromResult(BifrostHealth.Failed(context, $"The job workers cannot be checked: {ex.Message}", ex));
        }
    }
}

/// <summary>The file store takes a write: a two-byte probe file is saved and deleted.</summary>
internal sealed class FileStoreHealthCheck(IServiceProvider services) : IHealthCheck
{
    public const string Name = "bifrost_file_store";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        IFileStore? store = null;
        string? id = null;
        try
        {
            store = services.GetService<IFileStore>();
            if (store is null)
            {
                return BifrostHealth.Failed(context, BifrostHealth.NotAdded);
            }

            id = "file-health-" + Guid.NewGuid().ToString("N");
            using var probe = new MemoryStream("ok"u8.ToArray(), writable: false);
            await store.SaveAsync(new NewFile { Id = id, Filename = "health-probe.txt", Purpose = "health", Owner = "bifrost:health" }, probe, 16, cancellationToken).ConfigureAwait(false);
            var deleted = await store.DeleteAsync(id, cancellationToken).ConfigureAwait(false);
            id = null;
            return deleted
                ? HealthCheckResult.Healthy("The file store takes writes.")
                : BifrostHealth.Failed(context, "The file store took a probe file but could not find it to delete it.");
        }
        catch (Exception ex) when (!BifrostHealth.IsTimeout(ex, cancellationToken))
        {
            return BifrostHealth.Failed(context, $"The file store is not writable: {ex.Message}", ex);
        }
        finally
        {
            if (id is not null && store is not null)
            {
                await DeleteQuietlyAsync(store, id).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Removes a probe a failed check may have left (a failure here changes nothing in the answer).</summary>
    private static async Task DeleteQuietlyAsync(IFileStore store, string id)
    {
        try
        {
            await store.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // the check already reports the store as failing
        }
    }
}
