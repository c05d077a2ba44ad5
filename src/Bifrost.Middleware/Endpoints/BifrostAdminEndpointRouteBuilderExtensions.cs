using System.Diagnostics.CodeAnalysis;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Hosting;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Bifrost admin API (virtual keys, teams, customers, usage) on the host's routing.</summary>
public static class BifrostAdminEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the governance admin API under <paramref name="prefix"/>: create, list, get, update (<c>PATCH</c>, JSON merge
    /// patch), delete virtual keys, teams and customers; rotate, deactivate and activate a key; a key's usage from the
    /// ledger; and the request log (<c>GET requests</c> with filters and a cursor, <c>GET requests/{id}</c>). Nothing is mapped unless the host calls this, and the API can create keys: protect it with the returned
    /// builder (<c>.RequireAuthorization("admin")</c>); mapped without any authorization, a warning is logged at start.
    /// Keys and groups from configuration are listed, read-only. A key's secret is answered once, by create and rotate.
    /// </summary>
    /// <param name="endpoints">The route builder (the <c>WebApplication</c>).</param>
    /// <param name="prefix">The route prefix. Default <c>/bifrost/admin</c>.</param>
    /// <returns>A builder for conventions that apply to every admin endpoint (<c>RequireAuthorization</c>, ...).</returns>
    /// <exception cref="InvalidOperationException"><c>AddBifrost</c> was not called.</exception>
    public static IEndpointConventionBuilder MapBifrostAdmin(this IEndpointRouteBuilder endpoints, [StringSyntax("Route")] string prefix = "/bifrost/admin")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        if (endpoints.ServiceProvider.GetService<BifrostMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'builder.Services.AddBifrost(...)' before calling 'MapBifrostAdmin'.");
        }

        var sourcesBefore = endpoints.DataSources.Count;
        var group = endpoints.MapGroup(prefix).WithMetadata(BifrostEndpointMetadata.Instance);
        Bifrost.Middleware.RequestLog.RequestLogAdminEndpoints.Map(group); // GET requests, GET requests/{id}
        GovernanceAdminEndpoints.Map(group);

        // Checked at start with every convention the host adds: authorization it cannot run stops the start, none at all is a warning.
        var checkedSources = endpoints.ServiceProvider.GetRequiredService<BifrostEndpointSources>();
        foreach (var source in endpoints.DataSources.Skip(sourcesBefore))
        {
            checkedSources.AddAdmin(source);
        }

        return group;
    }
}
