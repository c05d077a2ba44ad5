using Bifrost.Middleware.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the gateway's health checks to the host's own (<c>services.AddHealthChecks().AddBifrost()</c>, then <c>app.MapHealthChecks(...)</c>).</summary>
public static class BifrostHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds three checks: <c>bifrost_job_store</c> (the job store answers a cheap read; tags <c>bifrost</c>, <c>ready</c>),
    /// <c>bifrost_job_workers</c> (the job workers' hosted service runs and has not faulted; tags <c>bifrost</c>, <c>live</c>)
    /// and <c>bifrost_file_store</c> (a small probe file can be written to the file store and deleted; tags <c>bifrost</c>,
    /// <c>ready</c>). A failing check is <see cref="HealthStatus.Unhealthy"/> with a description; the checks never throw.
    /// Filter by tag to split readiness from liveness (<c>Predicate = r =&gt; r.Tags.Contains("ready")</c>).
    /// </summary>
    /// <param name="builder">The host's health checks builder.</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddBifrost(this IHealthChecksBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddCheck<JobStoreHealthCheck>(JobStoreHealthCheck.Name, null, ["bifrost", "ready"], BifrostHealth.StoreTimeout);
        builder.AddCheck<JobWorkersHealthCheck>(JobWorkersHealthCheck.Name, null, ["bifrost", "live"]);
        builder.AddCheck<FileStoreHealthCheck>(FileStoreHealthCheck.Name, null, ["bifrost", "ready"], BifrostHealth.StoreTimeout);
        return builder;
    }
}
