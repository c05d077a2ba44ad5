using Microsoft.AspNetCore.Mvc.ApiExplorer;
using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace Bifrost.Middleware.Endpoints;

/// <summary>Marks a described Bifrost endpoint (endpoint metadata) with its request body, for <see cref="BifrostApiDescriptionProvider"/>.</summary>
/// <param name="BodyType">The request body type (null: none).</param>
/// <param name="ContentType">The request body's content type.</param>
internal sealed record BifrostRouteMetadata(Type? BodyType, string? ContentType)
{
    public static readonly BifrostRouteMetadata NoBody = new(null, null);
}

/// <summary>A query parameter of a described Bifrost route (endpoint metadata; several may be added), for <see cref="BifrostApiDescriptionProvider"/>.</summary>
/// <param name="Name">The parameter's name.</param>
/// <param name="Required">Whether the route refuses a call without it.</param>
/// <param name="DescriptionSource">A method whose first parameter carries the parameter's <see cref="System.ComponentModel.DescriptionAttribute"/> (how the ApiExplorer's consumers read a description).</param>
internal sealed record BifrostQueryParameterMetadata(string Name, bool Required, System.Reflection.MethodInfo DescriptionSource);

/// <summary>Marks a described Bifrost endpoint with the optional request headers it reads, for <see cref="BifrostApiDescriptionProvider"/>.</summary>
/// <param name="Names">The header names.</param>
internal sealed record BifrostHeaderMetadata(params string[] Names);

/// <summary>
/// Declares the request body, the optional request headers (<see cref="BifrostHeaderMetadata"/>) and the route parameters (<c>{file_id}</c>, <c>{batch_id}</c>, <c>{job_id}</c>, and any in the prefix) of the
/// described Bifrost routes as path parameters. The ApiExplorer takes parameters from the handler's signature, and a
/// Bifrost handler takes only the <c>HttpContext</c> (it reads route values itself), so without this a document would
/// have path templates with undeclared parameters.
/// </summary>
internal sealed class BifrostApiDescriptionProvider : IApiDescriptionProvider
{
    private static readonly EmptyModelMetadataProvider Metadata = new();
    private static readonly ModelMetadata StringMetadata = Metadata.GetMetadataForType(typeof(string));

    /// <summary>Runs after the framework's endpoint provider (-1100), whose descriptions it completes in <see cref="OnProvidersExecuted"/>.</summary>
    public int Order => -1000;

    public void OnProvidersExecuting(ApiDescriptionProviderContext context)
    {
    }

    public void OnProvidersExecuted(ApiDescriptionProviderContext context)
    {
        foreach (var description in context.Results)
        {
            if (description.RelativePath is not { } path || description.ActionDescriptor.EndpointMetadata?.OfType<BifrostRouteMetadata>().LastOrDefault() is not { } route)
            {
                continue;
            }

            if (route is { BodyType: { } type, ContentType: { } contentType } && !description.ParameterDescriptions.Any(p => p.Source == BindingSource.Body))
            {
                description.ParameterDescriptions.Add(new ApiParameterDescription
                {
                    Name = type.Name,
                    Source = BindingSource.Body,
                    Type = type,
                    ModelMetadata = Metadata.GetMetadataForType(type),
                    IsRequired = true,
                });
                description.SupportedRequestFormats.Add(new ApiRequestFormat { MediaType = contentType });
            }

            foreach (var query in description.ActionDescriptor.EndpointMetadata.OfType<BifrostQueryParameterMetadata>())
            {
                if (description.ParameterDescriptions.Any(p => string.Equals(p.Name, query.Name, StringComparison.OrdinalIgnoreCase)))
                {
                    continue;
                }

                var info = query.DescriptionSource.GetParameters()[0];
                description.ParameterDescriptions.Add(new ApiParameterDescription
                {
                    Name = query.Name,
                    Source = BindingSource.Query,
                    Type = typeof(string),
                    ModelMetadata = StringMetadata,
                    IsRequired = query.Required,
                    ParameterDescriptor = new Microsoft.AspNetCore.Mvc.Controllers.ControllerParameterDescriptor { Name = query.Name, ParameterType = typeof(string), ParameterInfo = info },
                });
            }

            foreach (var header in description.ActionDescriptor.EndpointMetadata.OfType<BifrostHeaderMetadata>().SelectMany(static h => h.Names))
            {
                if (!description.ParameterDescriptions.Any(p => p.Source == BindingSource.Header && string.Equals(p.Name, header, StringComparison.OrdinalIgnoreCase)))
                {
                    description.ParameterDescriptions.Add(new ApiParameterDescription { Name = header, Source = BindingSource.Header, Type = typeof(string), ModelMetadata = StringMetadata, IsRequired = false });
                }
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
