using System.Globalization;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// Reads an image edit or variation upload (<c>multipart/form-data</c>, OpenAI's form): the small fields with a bound each,
/// and the <c>image</c> / <c>image[]</c> and <c>mask</c> parts each spooled to a temporary file (never to memory; deleted
/// with the response). All files together may hold up to the smaller of <c>Files:MaxUploadBytes</c> and
/// <see cref="Operations.InferenceOperations.MaxImageUploadBytes"/> (413 past it); at most <see cref="Operations.InferenceOperations.MaxEditImages"/>
/// images; an image part whose declared media type is not an image is a 400. The spooled files are sent upstream as
/// streams, and again from their start on a retry or fallback.
/// </summary>
internal static class ImageUpload
{
    private static readonly string[] ImageTypes = ["image/png", "image/jpeg", "image/jpg", "image/webp", "application/octet-stream"];

    public static Task<ImageEditRequest> ReadEditAsync(HttpContext context) => ReadAsync(context, variation: false);

    public static Task<ImageEditRequest> ReadVariationAsync(HttpContext context) => ReadAsync(context, variation: true);

    private static async Task<ImageEditRequest> ReadAsync(HttpContext context, bool variation)
    {
        var cancellationToken = context.RequestAborted;
        if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            throw BifrostException.Gateway(StatusCodes.Status415UnsupportedMediaType, BifrostErrors.InvalidRequestType, "unsupported_media_type", "The request must be multipart/form-data with an 'image' part" + (variation ? "." : ", a 'prompt' field and a 'model' field."));
        }

        var limit = Math.Min(context.RequestServices.GetRequiredService<IOptions<BifrostOptions>>().Value.Files.MaxUploadBytes, Operations.InferenceOperations.MaxImageUploadBytes);
        var reader = new MultipartReader(MultipartUpload.Boundary(context.Request.ContentType), context.Request.Body)
        {
            HeadersCountLimit = MultipartUpload.MaxHeadersPerPart,
            HeadersLengthLimit = MultipartUpload.MaxHeaderBytesPerPart,
        };
        var request = new ImageEditRequest();
        var parts = 0;
        long total = 0;
        MultipartSection? section;
        while ((section = await MultipartUpload.NextSectionAsync(reader, cancellationToken).ConfigureAwait(false)) is not null)
        {
            if (++parts > MultipartUpload.MaxParts + Operations.InferenceOperations.MaxEditImages)
            {
                throw MultipartUpload.Invalid($"The upload has more than {MultipartUpload.MaxParts + Operations.InferenceOperations.MaxEditImages} parts.", null);
            }

            var disposition = ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var parsed) ? parsed : null;
            var name = disposition is null ? null : HeaderUtilities.RemoveQuotes(disposition.Name).Value;
            var body = new MultipartSectionStream(section.Body);
            if (name is "image" or "image[]" or "mask")
            {
                var param = name == "mask" ? "mask" : "image";
                if (name == "mask" ? request.Mask is not null : request.Images.Count >= (variation ? 1 : Operations.InferenceOperations.MaxEditImages))
                {
                    throw BifrostErrors.InvalidValue(
                        name == "mask" ? "Only one 'mask' part is allowed." : variation ? "A variation takes one 'image'." : $"At most {Operations.InferenceOperations.MaxEditImages} images may be edited at once.",
                        param);
                }

                if (section.ContentType is { } declared && MediaTypeHeaderValue.TryParse(declared, out var type) && Array.IndexOf(ImageTypes, type.MediaType.Value?.ToLowerInvariant()) < 0)
                {
                    throw BifrostErrors.InvalidValue($"The '{name}' part must be a PNG, JPEG or WebP image; its content type is '{MultipartUpload.Shorten(declared)}'.", param);
                }

                var spooled = TempFiles.Create();
                context.Response.RegisterForDisposeAsync(spooled);
                long bytes;
                try
                {
                    bytes = await Files.LimitedCopy.CopyAsync(body, spooled, limit - total, cancellationToken).ConfigureAwait(false);
                }
                catch (BifrostException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
                {
                    throw BifrostException.Gateway(StatusCodes.Status413PayloadTooLarge, BifrostErrors.InvalidRequestType, "file_too_large", $"The uploaded images are larger than the limit of {limit} bytes in all.", param);
                }

                total += bytes;
                spooled.Position = 0;
                var file = new ImageFile(spooled, MultipartUpload.Filename(disposition!), section.ContentType) { Length = bytes };
                if (name == "mask")
                {
                    request.Mask = file;
                }
                else
                {
                    request.Images.Add(file);
                }

                continue;
            }

            var value = await MultipartUpload.ReadFieldAsync(body, name, cancellationToken).ConfigureAwait(false);
            switch (name)
            {
                case "model":
                    request.Model = value.Trim();
                    break;
                case "prompt":
                    request.Prompt = value;
                    break;
                case "n":
                    request.N = int.TryParse(value.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : throw BifrostErrors.InvalidType("'n' must be an integer.", "n");
                    break;
                case "size":
                    request.Size = value.Trim();
                    break;
                case "quality":
                    request.Quality = value.Trim();
                    break;
                case "response_format":
                    request.ResponseFormat = value.Trim();
                    break;
                case "background":
                    request.Background = value.Trim();
                    break;
                case "output_format":
                    request.OutputFormat = value.Trim();
                    break;
                case "user":
                    request.User = value;
                    break;
                case "stream":
                    // OpenAI's form sends a boolean as "true" / "false" (streamed edits; variations do not stream, RequestValidator says so).
                    request.Stream = bool.TryParse(value.Trim(), out var stream) ? stream : throw BifrostErrors.InvalidType("'stream' must be true or false.", "stream");
                    break;
                case "partial_images":
                    request.PartialImages = int.TryParse(value.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var partial) ? partial : throw BifrostErrors.InvalidType("'partial_images' must be an integer.", "partial_images");
                    break;
                case "fallbacks" or "fallbacks[]":
                    (request.Fallbacks ??= []).Add(value.Trim());
                    break;
                case null or "":
                    break; // a part without a name carries nothing to forward
                default:
                    // Other fields (e.g. input_fidelity, output_compression) reach the provider as they were sent.
                    (request.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))[name] = JsonSerializer.SerializeToElement(value, BifrostJson.Context.String);
                    break;
            }
        }

        return request;
    }
}
