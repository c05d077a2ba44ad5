using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace Bifrost.Middleware.Dashboard;

/// <summary>
/// The dashboard's routes: the page and its assets, embedded in the assembly (no CDN, works offline), and the JSON it
/// polls. Secure by default: unless the host puts its own authorization on the returned builder, only requests from the
/// local machine (loopback), addressed to <c>localhost</c> or a loopback address, are answered; the others get 403 in the
/// Bifrost error shape. No secret is ever shown: the
/// overview holds counts, latencies, tokens, costs, provider names, models and error codes only.
/// </summary>
internal static class DashboardEndpoints
{
    private static readonly (string Name, string ContentType)[] Assets =
    [
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
    ];

    public static void Map(RouteGroupBuilder group)
    {
        group.AddEndpointFilter(LocalOnlyAsync);
        group.MapGet("/", static (HttpContext context) =>
            context.Request.Path.Value is { } path && !path.EndsWith('/')
                ? Results.Redirect(context.Request.PathBase + path + "/" + context.Request.QueryString) // so the page's relative links resolve under the prefix
                : Asset(context, "index.html")).ExcludeFromDescription();
        foreach (var (name, _) in Assets)
        {
            var file = name;
            group.MapGet("/" + file, (HttpContext context) => Asset(context, file)).ExcludeFromDescription();
        }

        group.MapGet("/api/overview", static (DashboardStats stats) => TypedResults.Json(stats.Snapshot(), DashboardJsonContext.Default.DashboardOverview)).ExcludeFromDescription();

        // The request log, as the admin API answers it (same filters, cursor and shapes; bad values 400).
        var list = BifrostResults.Guard(null, RequestLog.RequestLogAdminEndpoints.ListAsync);
        var get = BifrostResults.Guard(null, RequestLog.RequestLogAdminEndpoints.GetAsync);
        group.MapGet("/api/requests", (HttpContext context) => list(context)).ExcludeFromDescription();
        group.MapGet("/api/requests/{id}", (HttpContext context) => get(context)).ExcludeFromDescription();

        // Jobs and batches of every owner, and their cancel (POST with the dashboard's CSRF header).
        DashboardJobs.Map(group);
    }

    private static IResult Asset(HttpContext context, string name)
    {
        var (_, contentType) = Assets.First(a => a.Name == name);
        var stream = typeof(DashboardEndpoints).Assembly.GetManifestResourceStream("Bifrost.Middleware.Dashboard.Assets." + name);
        if (stream is null)
        {
            return Results.NotFound();
        }

        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Content-Type-Options"] = "nosniff";
        context.Response.Headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
        return Results.Stream(stream, contentType);
    }

    /// <summary>Answers only local requests unless the endpoint carries the host's own authorization.</summary>
    private static ValueTask<object?> LocalOnlyAsync(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        var authorized = context.GetEndpoint()?.Metadata.GetMetadata<IAuthorizeData>() is not null;
        if (authorized || (IsLocal(context.Connection) && IsLocalHostName(context.Request.Host)))
        {
            return next(invocation);
        }

        var error = BifrostException.Gateway(403, "permission_error", "dashboard_local_only", "The Bifrost dashboard answers only local requests addressed to localhost or a loopback address unless the host adds its own authorization (MapBifrostDashboard(...).RequireAuthorization(...)).", null);
        return ValueTask.FromResult<object?>(TypedResults.Json(error.Error, BifrostJson.Context.BifrostError, statusCode: 403));
    }

    /// <summary>
    /// The name the browser used must be local too: a page from another site whose name is re-pointed at 127.0.0.1 (DNS
    /// rebinding) reaches the dashboard from a loopback address, as its own origin, but with its own name in Host.
    /// </summary>
    private static bool IsLocalHostName(HostString host)
    {
        var name = host.Host;
        if (name.Length == 0 || name.Equals("localhost", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return IPAddress.TryParse(name.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address);
    }

    private static bool IsLocal(ConnectionInfo connection) =>
        connection.RemoteIpAddress is null // in-process (TestServer)
        || IPAddress.IsLoopback(connection.RemoteIpAddress)
        || (connection.LocalIpAddress is not null && connection.RemoteIpAddress.Equals(connection.LocalIpAddress));
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(DashboardOverview))]
internal sealed partial class DashboardJsonContext : JsonSerializerContext;
