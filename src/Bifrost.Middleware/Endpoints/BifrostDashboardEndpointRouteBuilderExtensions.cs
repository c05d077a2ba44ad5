using System.Diagnostics.CodeAnalysis;
using Bifrost.Middleware.Dashboard;
using Bifrost.Middleware.Hosting;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Bifrost dashboard (a small web UI over the gateway's traffic) on the host's routing.</summary>
public static class BifrostDashboardEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the dashboard under <paramref name="prefix"/>: a page served from the package (no CDN, works offline) with
    /// requests per second, latency p50/p95/p99, error rate, tokens and cost over the last 15 minutes, by provider and
    /// model, and each provider's attempts and last errors — this instance's traffic, from the gateway's own meter.
    /// Secure by default: only local requests are answered, unless the host puts its own authorization on the returned
    /// builder (<c>.RequireAuthorization("admin")</c>), which then applies to every request. No secret is ever shown.
    /// </summary>
    /// <param name="endpoints">The route builder (the <c>WebApplication</c>).</param>
    /// <param name="prefix">The route prefix. Default <c>/bifrost</c>.</param>
    /// <returns>A builder for conventions that apply to every dashboard endpoint (<c>RequireAuthorization</c>, ...).</returns>
    /// <exception cref="InvalidOperationException"><c>AddBifrost</c> was not called.</exception>
    public static IEndpointConventionBuilder MapBifrostDashboard(this IEndpointRouteBuilder endpoints, [StringSyntax("Route")] string prefix = "/bifrost")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        if (endpoints.ServiceProvider.GetService<BifrostMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'builder.Services.AddBifrost(...)' before calling 'MapBifrostDashboard'.");
        }

        endpoints.ServiceProvider.GetRequiredService<DashboardStats>().Start();
        var group = endpoints.MapGroup(prefix).WithMetadata(BifrostEndpointMetadata.Instance);
        DashboardEndpoints.Map(group);
        return group;
    }
}
