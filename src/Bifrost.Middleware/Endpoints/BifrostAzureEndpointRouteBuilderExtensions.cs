using System.Diagnostics.CodeAnalysis;
using Bifrost.Middleware;
using Bifrost.Middleware.Hosting;
using Bifrost.Middleware.Operations;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Azure OpenAI-compatible inbound routes on the host's routing.</summary>
public static class BifrostAzureEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps Azure OpenAI's data-plane routes under <paramref name="prefix"/>, as Bifrost serves them:
    /// <c>{prefix}/openai/deployments/{deployment}/chat/completions</c>, <c>.../completions</c> and <c>.../embeddings</c>
    /// (and every other registered operation Azure has a deployment route for whose body is JSON), so an app built on the
    /// Azure OpenAI SDK (<c>AzureOpenAIClient</c> with the endpoint <c>https://host{prefix}</c>) calls the gateway
    /// unchanged. The deployment only sets the model (<see cref="AzureInboundOptions.Deployments"/>; a deployment not
    /// configured is the model itself, and <c>deployments/{provider}/{model}/...</c> names the provider); the rest is the
    /// OpenAI-shaped route's: streaming, <c>x-bf-async</c>, governance (<c>api-key: sk-bf-...</c> is read as the virtual
    /// key, like <c>x-bf-vk</c>), plugins, telemetry and the error shape (Azure's error envelope is OpenAI's). The
    /// <c>api-version</c> query is accepted and not used (<see cref="AzureInboundOptions.RequireApiVersion"/> makes it
    /// required). Other paths under <c>{prefix}/openai/deployments</c> answer 405 or 404 in the Bifrost error shape.
    /// The routes are not described in OpenAPI documents (their OpenAI-shaped twins are).
    /// </summary>
    /// <param name="endpoints">The route builder (the <c>WebApplication</c>).</param>
    /// <param name="prefix">The route prefix, the Azure SDK's endpoint path. Default <c>/openai</c> (Bifrost's: the same base URL as the OpenAI SDK's, so the routes are <c>/openai/openai/deployments/...</c>).</param>
    /// <returns>A builder for conventions that apply to every Azure route (<c>RequireAuthorization</c>, <c>RequireRateLimiting</c>, ...).</returns>
    /// <exception cref="InvalidOperationException"><c>AddBifrost</c> was not called.</exception>
    public static IEndpointConventionBuilder MapBifrostAzure(this IEndpointRouteBuilder endpoints, [StringSyntax("Route")] string prefix = "/openai")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        if (endpoints.ServiceProvider.GetService<BifrostMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'builder.Services.AddBifrost(...)' before calling 'MapBifrostAzure'.");
        }

        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<BifrostOptions>>().Value;
        var azure = options.AzureInbound;
        var operations = endpoints.ServiceProvider.GetRequiredService<OperationRegistry>();
        var keys = endpoints.ServiceProvider.GetRequiredService<Bifrost.Middleware.Governance.VirtualKeyStore>();
        var deployments = new AzureDeployments(azure);
        var sourcesBefore = endpoints.DataSources.Count;
        var group = endpoints.MapGroup(prefix.TrimEnd('/') + "/openai/deployments").WithMetadata(BifrostEndpointMetadata.Instance);
        var bodyLimit = new RequestSizeLimitAttribute(options.MaxRequestBodySize);
        var known = new Dictionary<string, SortedSet<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var path in AzureDeployments.Paths)
        {
            foreach (var operation in operations.Operations)
            {
                foreach (var route in operation.RoutesWithModelFrom(path, deployments.ModelOf))
                {
                    var handler = deployments.CheckApiVersion(keys.Mode == GovernanceMode.Off ? route.Handler : BifrostEndpointRouteBuilderExtensions.WithVirtualKey(keys, route.Handler));
                    foreach (var (template, suffix) in (ReadOnlySpan<(string, string)>)[("/{deployment}/", string.Empty), ("/{provider}/{deployment}/", " (provider in the path)")])
                    {
                        var builder = group.MapMethods(template + route.Path, [route.Method], BifrostResults.Guard(operation.Name, handler))
                            .WithDisplayName($"Bifrost Azure {route.DisplayName}{suffix}");

                        // OpenAPI describes the deployment form once; the provider-in-the-path form is the same contract.
                        if (suffix.Length == 0)
                        {
                            var root = prefix.TrimEnd('/') + "/openai/deployments";
                            OpenApiMetadata.Describe(
                                builder,
                                root + "/{deployment}",
                                operation,
                                route with { Summary = "Azure OpenAI-compatible " + (route.Summary ?? operation.Summary) },
                                footer: $"The deployment maps to a provider/model (AzureInbound); the api-version query is {(azure.RequireApiVersion ? "required" : "accepted (required when AzureInbound:RequireApiVersion is set)")}, any version. Also served at {root}/{{provider}}/{{deployment}}/{route.Path}. Errors are in the Bifrost shape (error, extra_fields).");
                            builder.WithMetadata(deployments.ApiVersionParameter());
                        }
                        else
                        {
                            builder.ExcludeFromDescription();
                        }
                        if (route.Body == RouteBody.Json)
                        {
                            builder.WithMetadata(bodyLimit);
                        }
                    }

                    if (route.Advertised)
                    {
                        if (!known.TryGetValue(route.Path, out var methods))
                        {
                            known[route.Path] = methods = new SortedSet<string>(StringComparer.Ordinal);
                        }

                        methods.Add(route.Method);
                    }
                }
            }
        }

        var allow = known.ToDictionary(static p => p.Key, static p => string.Join(", ", p.Value), StringComparer.OrdinalIgnoreCase);
        group.Map("/{**path}", BifrostResults.Guard(null, context => UnknownRouteAsync(context, allow))).WithDisplayName("Bifrost Azure unknown route").ExcludeFromDescription();

        // Checked at start with every convention the host adds, like MapBifrost's endpoints.
        var checkedSources = endpoints.ServiceProvider.GetRequiredService<BifrostEndpointSources>();
        foreach (var source in endpoints.DataSources.Skip(sourcesBefore))
        {
            checkedSources.Add(source);
        }

        return group;
    }

    /// <summary>A path under <c>deployments/</c> no route took: 405 when it ends with a served path (another method), else 404 <c>unknown_url</c>.</summary>
    private static Task UnknownRouteAsync(HttpContext context, Dictionary<string, string> allow)
    {
        var path = (context.Request.RouteValues.TryGetValue("path", out var value) ? value as string : null)?.TrimEnd('/') ?? string.Empty;
        foreach (var (served, methods) in allow)
        {
            // deployment/served or provider/deployment/served
            if (path.EndsWith("/" + served, StringComparison.OrdinalIgnoreCase) && path.Length > served.Length + 1 && path.AsSpan(0, path.Length - served.Length - 1).Count('/') <= 1)
            {
                return BifrostResults.MethodNotAllowedAsync(context, methods);
            }
        }

        return BifrostResults.WriteErrorAsync(context, BifrostErrors.NotFound("unknown_url", $"Unknown route: {context.Request.Method} {context.Request.Path}."));
    }
}
