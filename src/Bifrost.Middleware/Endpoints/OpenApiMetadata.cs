using System.Globalization;
using System.Text;
using Bifrost.Middleware.Operations;
using Microsoft.AspNetCore.Builder;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// The OpenAPI metadata of a Bifrost route, from its <see cref="OperationRoute"/>: request body, success and error
/// statuses (errors in the Bifrost shape), tag, summary, description and a unique endpoint name. Only framework
/// metadata types are used, so any generator that reads the ApiExplorer (Microsoft.AspNetCore.OpenApi, Swashbuckle)
/// describes the routes; the library references no OpenAPI package.
/// </summary>
internal static class OpenApiMetadata
{
    private static readonly string[] Json = ["application/json"];

    /// <summary>Adds the route's description to <paramref name="builder"/> (the <c>/v1</c> copy: the one that is described).</summary>
    /// <param name="builder">The endpoint.</param>
    /// <param name="prefix">The route prefix (names the operation id).</param>
    /// <param name="operation">The operation (tag, summary).</param>
    /// <param name="route">The route.</param>
    /// <param name="errorType">The error body type (default: <see cref="BifrostError"/>; Anthropic's envelope on the <c>/anthropic</c> routes).</param>
    /// <param name="footer">The description's last sentence (default: where the unversioned copy is, and the Bifrost error shape).</param>
    public static void Describe(IEndpointConventionBuilder builder, string prefix, BifrostOperation operation, OperationRoute route, Type? errorType = null, string? footer = null)
    {
        // The ApiExplorer describes only endpoints that carry a MethodInfo; the handler's takes only the HttpContext, so
        // everything else comes from the metadata below, and the request body and route parameters from
        // BifrostApiDescriptionProvider: IAcceptsMetadata would also make routing refuse other content types (415/405),
        // where the handlers answer them with a 400 in the Bifrost shape.
        var body = route.Body switch
        {
            RouteBody.Json => new BifrostRouteMetadata(route.RequestBodyType, "application/json"),
            RouteBody.Upload => new BifrostRouteMetadata(route.RequestBodyType ?? typeof(FileUploadForm), "multipart/form-data"),
            _ => BifrostRouteMetadata.NoBody,
        };
        builder.WithMetadata(route.Handler.Method, body)
            .WithName(EndpointName(prefix, route))
            .WithTags(operation.Tag)
            .WithSummary(route.Summary ?? Capitalize(operation.Summary))
            .WithDescription(Description(prefix, route, footer));

        // No type (file content, batch results): the body is described as bytes in the route's content types.
        var type = route.ResponseType ?? typeof(Stream);
        builder.WithMetadata(new ProducesResponseTypeMetadata(route.SuccessStatus, type, route.ContentTypes));
        if (route.PendingStatus is { } pending)
        {
            builder.WithMetadata(new ProducesResponseTypeMetadata(pending, type, route.ContentTypes));
        }

        foreach (var status in ErrorStatuses(route))
        {
            builder.WithMetadata(new ProducesResponseTypeMetadata(status, errorType ?? typeof(BifrostError), Json));
        }
    }

    /// <summary>The error statuses the route answers: 500 always, 400 and 413 with a body, 404 with an id, and the route's own.</summary>
    internal static SortedSet<int> ErrorStatuses(OperationRoute route)
    {
        var statuses = new SortedSet<int>(route.ErrorStatuses) { StatusCodes.Status500InternalServerError };
        if (route.Body != RouteBody.None)
        {
            statuses.Add(StatusCodes.Status400BadRequest);
            statuses.Add(StatusCodes.Status413PayloadTooLarge);
        }

        if (route.Path.Contains('{', StringComparison.Ordinal))
        {
            statuses.Add(StatusCodes.Status404NotFound);
        }

        return statuses;
    }

    /// <summary>
    /// A name unique in the application (endpoint names must be): <c>bifrost_{prefix}_{method}_{path}</c> in
    /// identifier characters, e.g. <c>bifrost_openai_post_chat_completions</c>. Only the <c>/v1</c> copy is named.
    /// </summary>
    internal static string EndpointName(string prefix, OperationRoute route)
    {
        var name = new StringBuilder("bifrost");
        foreach (var part in (ReadOnlySpan<string>)[prefix, route.Method, route.Path])
        {
            name.Append('_');
            foreach (var c in part.ToLowerInvariant())
            {
                if (char.IsAsciiLetterOrDigit(c))
                {
                    name.Append(c);
                }
                else if (name[^1] != '_')
                {
                    name.Append('_');
                }
            }

            while (name[^1] == '_')
            {
                name.Length--;
            }
        }

        return name.ToString();
    }

    private static string Description(string prefix, OperationRoute route, string? footer)
    {
        var text = new StringBuilder();
        if (!string.IsNullOrEmpty(route.Description))
        {
            text.Append(route.Description).Append(' ');
        }

        if (footer is not null)
        {
            return text.Append(footer).ToString();
        }

        var unversioned = prefix.TrimEnd('/') + "/" + route.Path;
        text.Append(CultureInfo.InvariantCulture, $"Also served without the version, at {unversioned}. Errors are in the Bifrost shape (error, extra_fields).");
        return text.ToString();
    }

    private static string Capitalize(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];
}

/// <summary>The multipart form of a file upload, for OpenAPI (the upload is streamed, never bound to this type).</summary>
internal sealed class FileUploadForm
{
    /// <summary>The file (a JSONL of batch requests for purpose <c>batch</c>).</summary>
    public required IFormFile File { get; init; }

    /// <summary>The purpose: <c>batch</c>, ...</summary>
    public required string Purpose { get; init; }
}

/// <summary>The multipart form of a transcription or translation, for OpenAPI (the upload is streamed, never bound to this type).</summary>
internal sealed class AudioUploadForm
{
    /// <summary>The audio (at most 25 MB, or <c>Files:MaxUploadBytes</c> when lower).</summary>
    public required IFormFile File { get; init; }

    /// <summary>The model, as <c>provider/model</c>.</summary>
    public required string Model { get; init; }

    /// <summary>The audio's language (ISO-639-1; transcriptions only).</summary>
    public string? Language { get; init; }

    /// <summary>Text to guide the model.</summary>
    public string? Prompt { get; init; }

    /// <summary><c>json</c>, <c>text</c>, <c>srt</c>, <c>verbose_json</c> or <c>vtt</c>.</summary>
    public string? ResponseFormat { get; init; }

    /// <summary>0 to 1.</summary>
    public double? Temperature { get; init; }

    /// <summary>Transcriptions only: stream <c>transcript.text.delta</c> events.</summary>
    public bool? Stream { get; init; }
}

/// <summary>The multipart form of an image edit or variation, for OpenAPI (the upload is streamed, never bound to this type).</summary>
internal sealed class ImageUploadForm
{
    /// <summary>The image (edits: up to 16 as <c>image[]</c>; at most 50 MB in all, or <c>Files:MaxUploadBytes</c> when lower).</summary>
    public required IFormFile Image { get; init; }

    /// <summary>The model, as <c>provider/model</c>.</summary>
    public required string Model { get; init; }

    /// <summary>Edits: the description of the edit.</summary>
    public string? Prompt { get; init; }

    /// <summary>Edits: a PNG whose transparent areas say where to edit.</summary>
    public IFormFile? Mask { get; init; }

    /// <summary>How many images (1 to 10).</summary>
    public int? N { get; init; }

    /// <summary>The size, e.g. <c>1024x1024</c>.</summary>
    public string? Size { get; init; }

    /// <summary><c>url</c> or <c>b64_json</c>.</summary>
    public string? ResponseFormat { get; init; }

    /// <summary>Edits: stream <c>image_edit.partial_image</c> / <c>image_edit.completed</c> events.</summary>
    public bool? Stream { get; init; }

    /// <summary>Edits, streamed: partial images before each final one (0 to 3).</summary>
    public int? PartialImages { get; init; }
}
