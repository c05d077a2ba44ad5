using System.Globalization;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// Reads a transcription or translation upload (<c>multipart/form-data</c>): the small fields with a bound each, and the
/// <c>file</c> part spooled to a temporary file (never to memory; deleted with the response), up to the smaller of
/// <c>Files:MaxUploadBytes</c> and OpenAI's 25 MB (413 past it). The spooled file is sent upstream as a stream, and again
/// from its start on a retry or fallback.
/// </summary>
internal static class AudioUpload
{
    public static async Task<TranscriptionRequest> ReadAsync(HttpContext context)
    {
        var cancellationToken = context.RequestAborted;
        if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            throw BifrostException.Gateway(StatusCodes.Status415UnsupportedMediaType, BifrostErrors.InvalidRequestType, "unsupported_media_type", "The request must be multipart/form-data with a 'file' part and a 'model' field.");
        }

        var limit = Math.Min(context.RequestServices.GetRequiredService<IOptions<BifrostOptions>>().Value.Files.MaxUploadBytes, Operations.AudioOperations.MaxAudioUploadBytes);
        var reader = new MultipartReader(MultipartUpload.Boundary(context.Request.ContentType), context.Request.Body)
        {
            HeadersCountLimit = MultipartUpload.MaxHeadersPerPart,
            HeadersLengthLimit = MultipartUpload.MaxHeaderBytesPerPart,
        };
        var request = new TranscriptionRequest();
        var parts = 0;
        MultipartSection? section;
        while ((section = await MultipartUpload.NextSectionAsync(reader, cancellationToken).ConfigureAwait(false)) is not null)
        {
            if (++parts > MultipartUpload.MaxParts)
            {
                throw MultipartUpload.Invalid($"The upload has more than {MultipartUpload.MaxParts} parts.", null);
            }

            var disposition = ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var parsed) ? parsed : null;
            var name = disposition is null ? null : HeaderUtilities.RemoveQuotes(disposition.Name).Value;
            var body = new MultipartSectionStream(section.Body);
            if (name == "file")
            {
                if (request.File is not null)
                {
                    throw BifrostErrors.InvalidValue("Only one 'file' part is allowed.", "file");
                }

                request.Filename = MultipartUpload.Filename(disposition!);
                request.FileContentType = section.ContentType;
                var spooled = TempFiles.Create();
                context.Response.RegisterForDisposeAsync(spooled);
                request.File = spooled;
                request.FileBytes = await Files.LimitedCopy.CopyAsync(body, spooled, limit, cancellationToken).ConfigureAwait(false);
                spooled.Position = 0;
                continue;
            }

            var value = await MultipartUpload.ReadFieldAsync(body, name, cancellationToken).ConfigureAwait(false);
            switch (name)
            {
                case "model":
                    request.Model = value.Trim();
                    break;
                case "language":
                    request.Language = value;
                    break;
                case "prompt":
                    request.Prompt = value;
                    break;
                case "response_format":
                    request.ResponseFormat = value.Trim();
                    break;
                case "temperature":
                    request.Temperature = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var temperature)
                        ? temperature
                        : throw BifrostErrors.InvalidType("'temperature' must be a number.", "temperature");
                    break;
                case "timestamp_granularities[]" or "timestamp_granularities":
                    (request.TimestampGranularities ??= []).Add(value.Trim());
                    break;
                case "stream":
                    request.Stream = bool.TryParse(value.Trim(), out var stream) ? stream : throw BifrostErrors.InvalidType("'stream' must be true or false.", "stream");
                    break;
                case null or "":
                    break; // a part without a name carries nothing to forward
                default:
                    // Other fields (e.g. include[], chunking_strategy) reach the provider as they were sent.
                    (request.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))[name] = JsonSerializer.SerializeToElement(value, BifrostJson.Context.String);
                    break;
            }
        }

        return request;
    }
}
