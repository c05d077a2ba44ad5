using System.Diagnostics.CodeAnalysis;
using Bifrost.Middleware;
using Bifrost.Middleware.Hosting;
using Bifrost.Middleware.Operations;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Bifrost endpoints on the host's routing.</summary>
public static class BifrostEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the gateway's endpoints under <paramref name="prefix"/>, each both with and without <c>/v1</c>
    /// (<c>/openai/v1/chat/completions</c> and <c>/openai/chat/completions</c>): every registered operation's routes —
    /// chat completions (JSON or SSE), legacy completions, embeddings, the Responses API, input-token counting, models,
    /// files and batches, with async inference (<c>x-bf-async</c> and <c>async/...</c>) on the inference routes. Other
    /// paths under the prefix answer 405 (a known path with another method) or 404, in the Bifrost error shape.
    /// The routes carry OpenAPI metadata (request and response types, success and error statuses, tags, summaries,
    /// unique names), so a host that generates OpenAPI documents (<c>AddOpenApi</c>/<c>MapOpenApi</c>) gets them
    /// described once each, at their <c>/v1</c> path.
    /// The endpoints are built once at start with every convention added to the returned builder: one that requires
    /// authorization in a host without the authorization services or an authentication scheme to challenge with stops
    /// the start with a message saying what to add (instead of answering every request with an empty 500).
    /// </summary>
    /// <param name="endpoints">The route builder (the <c>WebApplication</c>).</param>
    /// <param name="prefix">The route prefix. Default <c>/openai</c>.</param>
    /// <returns>A builder for conventions that apply to every Bifrost endpoint (<c>RequireAuthorization</c>, <c>RequireRateLimiting</c>, ...).</returns>
    /// <exception cref="InvalidOperationException"><c>AddBifrost</c> was not called.</exception>
    public static IEndpointConventionBuilder MapBifrost(this IEndpointRouteBuilder endpoints, [StringSyntax("Route")] string prefix = "/openai")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        if (endpoints.ServiceProvider.GetService<BifrostMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'builder.Services.AddBifrost(...)' before calling 'MapBifrost'.");
        }

        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<BifrostOptions>>().Value;
        var operations = endpoints.ServiceProvider.GetRequiredService<OperationRegistry>();
        var keys = endpoints.ServiceProvider.GetRequiredService<Bifrost.Middleware.Governance.VirtualKeyStore>();
        var sourcesBefore = endpoints.DataSources.Count;
        var group = endpoints.MapGroup(prefix).WithMetadata(BifrostEndpointMetadata.Instance);
        var bodyLimit = new RequestSizeLimitAttribute(options.MaxRequestBodySize);
        var uploadLimit = new RequestSizeLimitAttribute(options.Files.MaxUploadBytes + (1024 * 1024)); // the file plus multipart framing
        foreach (var version in (ReadOnlySpan<string>)["/v1", string.Empty])
        {
            var suffix = version.Length == 0 ? " (no version)" : $" ({version})";
            foreach (var operation in operations.Operations)
            {
                foreach (var route in operation.Routes)
                {
                    var builder = group.MapMethods($"{version}/{route.Path}", [route.Method], BifrostResults.Guard(operation.Name, keys.Mode == GovernanceMode.Off ? route.Handler : WithVirtualKey(keys, route.Handler)))
                        .WithDisplayName($"Bifrost {route.DisplayName}{suffix}");
                    switch (route.Body)
                    {
                        case RouteBody.Json:
                            builder.WithMetadata(bodyLimit);
                            break;
                        case RouteBody.Upload:
                            builder.WithMetadata(uploadLimit).DisableAntiforgery();
                            break;
                    }

                    // OpenAPI describes each route once, at its /v1 path (the one the SDKs call); the unversioned copy is
                    // the same handler and contract, so listing it would double the document and collide operation ids.
                    if (version.Length == 0)
                    {
                        builder.ExcludeFromDescription();
                    }
                    else
                    {
                        OpenApiMetadata.Describe(builder, prefix, operation, route);
                    }
                }
            }
        }

        group.Map("/{**path}", BifrostResults.Guard(null, BifrostResults.UnknownRouteAsync)).WithDisplayName("Bifrost unknown route").ExcludeFromDescription();

        // The host starts only if these endpoints, with every convention it adds after this call (RequireAuthorization, ...),
        // can serve: BifrostStartupCheck builds them at start (an authorization requirement without authorization or
        // authentication services would otherwise answer every request with an empty 500).
        var checkedSources = endpoints.ServiceProvider.GetRequiredService<BifrostEndpointSources>();
        foreach (var source in endpoints.DataSources.Skip(sourcesBefore))
        {
            checkedSources.Add(source);
        }

        return group;
    }

    /// <summary>Reads and checks the request's virtual key before the route runs (governance on): 401s in the Bifrost shape.</summary>
    internal static RequestDelegate WithVirtualKey(Bifrost.Middleware.Governance.VirtualKeyStore keys, RequestDelegate handler) => context =>
    {
        try
        {
            Bifrost.Middleware.Governance.GovernanceCaller.Authenticate(context, keys);
        }
        catch (BifrostException ex)
        {
            context.RequestServices.GetRequiredService<Bifrost.Middleware.Diagnostics.OperationalMetrics>().GovernanceRefused(ex);
            throw;
        }

        return handler(context);
    };
}
