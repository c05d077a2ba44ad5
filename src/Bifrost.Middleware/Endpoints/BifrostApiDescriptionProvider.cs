using Microsoft.AspNetCore.Mvc.ApiExplorer;
using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace Bifrost.Middleware.Endpoints;

/// <summary>Marks the described Bifrost endpoints (endpoint metadata), for <see cref="BifrostApiDescriptionProvider"/>.</summary>
internal sealed class BifrostRouteMetadata
{
    public static readonly BifrostRouteMetadata Instance = new();
}

/// <summary>
/// Declares the route parameters (<c>{file_id}</c>, <c>{batch_id}</c>, <c>{job_id}</c>, and any in the prefix) of the
/// described Bifrost routes as path parameters. The ApiExplorer takes parameters from the handler's signature, and a
/// Bifrost handler takes only the <c>HttpContext</c> (it reads route values itself), so without this a document would
/// have path templates with undeclared parameters.
/// </summary>
internal sealed class BifrostApiDescriptionProvider : IApiDescriptionProvider
{
    private static readonly ModelMetadata StringMetadata = new EmptyModelMetadataProvider().GetMetadataForType(typeof(string));

    /// <summary>Runs after the framework's endpoint provider (-1100), whose descriptions it completes in <see cref="OnProvidersExecuted"/>.</summary>
    public int Order => -1000;

    public void OnProvidersExecuting(ApiDescriptionProviderContext context)
    {
    }

    public void OnProvidersExecuted(ApiDescriptionProviderContext context)
    {
        foreach (var description in context.Results)
        {
            if (description.RelativePath is not { } path || description.ActionDescriptor.EndpointMetadata?.Contains(BifrostRouteMetadata.Instance) != true)
            {
                continue;
            }

            foreach (var name in RouteParameters(path))
            {
                if (description.ParameterDescriptions.Any(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)))
                {
                    continue;
                }

                description.ParameterDescriptions.Add(new ApiParameterDescription
                {
                    Name = name,
                    Source = BindingSource.Path,
                    Type = typeof(string),
                    ModelMetadata = StringMetadata,
                    IsRequired = true,
                    RouteInfo = new ApiParameterRouteInfo { IsOptional = false },
                });
            }
        }
    }

    /// <summary>The names of the <c>{name}</c> (or <c>{name:constraint}</c>) segments of a route template.</summary>
    internal static IEnumerable<string> RouteParameters(string template)
    {
        var start = template.IndexOf('{', StringComparison.Ordinal);
        while (start >= 0)
        {
            var end = template.IndexOf('}', start);
            if (end < 0)
            {
                yield break;
            }

            var name = template[(start + 1)..end].TrimStart('*');
            var cut = name.IndexOfAny([':', '=', '?']);
            yield return cut < 0 ? name : name[..cut];
            start = template.IndexOf('{', end);
        }
    }
}
