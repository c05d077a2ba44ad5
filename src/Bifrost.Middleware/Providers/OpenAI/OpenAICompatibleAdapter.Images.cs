using System.Globalization;
using System.Net.Http.Headers;

namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>
/// Image edits and variations upstream (issue 17, img): OpenAI's multipart form (<c>POST images/edits</c>,
/// <c>images/variations</c>; https://platform.openai.com/docs/api-reference/images/createEdit and
/// https://platform.openai.com/docs/api-reference/images/createVariation), each upload streamed from the gateway's spooled
/// copy (or an async job's stored bytes); the JSON answer passes through as OpenAI's images response.
/// </summary>
internal sealed partial class OpenAICompatibleAdapter
{
    public Task<ImageResponse> ImageEditAsync(ProviderContext context, ImageEditRequest request, CancellationToken cancellationToken) =>
        ImageUploadAsync(context, "images/edits", request, cancellationToken);

    public Task<ImageResponse> ImageVariationAsync(ProviderContext context, ImageEditRequest request, CancellationToken cancellationToken) =>
        ImageUploadAsync(context, "images/variations", request, cancellationToken);

    /// <summary>
    /// A streamed edit (issue 17, media): the same multipart form with <c>stream=true</c> and <c>partial_images</c>, its
    /// <c>image_edit.partial_image</c> / <c>image_edit.completed</c> events relayed as they arrive
    /// (https://platform.openai.com/docs/api-reference/images/createEdit,
    /// https://developers.openai.com/api/reference/resources/images/edit-streaming-events).
    /// </summary>
    public IAsyncEnumerable<ImageStreamEvent> StreamImageEditAsync(ProviderContext context, ImageEditRequest request, CancellationToken cancellationToken) =>
        StreamAsync(context, () => UploadMessage(context, "images/edits", request, stream: true), BifrostJson.Context.ImageStreamEvent, cancellationToken);

    private Task<ImageResponse> ImageUploadAsync(ProviderContext context, string path, ImageEditRequest request, CancellationToken cancellationToken) =>
        _http.SendForJsonAsync(context, UploadMessage(context, path, request, stream: false), BifrostJson.Context.ImageResponse, cancellationToken);

    /// <summary>OpenAI's multipart form of an edit or variation: the images (and mask) from the gateway's copy, then the fields; or, when the images are references, OpenAI's JSON edit body.</summary>
    private HttpRequestMessage UploadMessage(ProviderContext context, string path, ImageEditRequest request, bool stream)
    {
        var message = CreateRequest(context, HttpMethod.Post, path, stream);
        if (request.Images.Count > 0 && request.Images[0].IsReference)
        {
            message.Content = JsonEditBody(context, request, stream);
            return message;
        }

        var form = new MultipartFormDataContent();
        var imageName = request.Images.Count > 1 ? "image[]" : "image"; // OpenAI's form: one 'image', or several 'image[]'
        foreach (var image in request.Images)
        {
            form.Add(FilePart(image), imageName, image.Filename ?? "image.png");
        }

        if (request.Mask is { } mask)
        {
            form.Add(FilePart(mask), "mask", mask.Filename ?? "mask.png");
        }

        Add(form, "prompt", request.Prompt);
        form.Add(new StringContent(context.Model), "model");
        Add(form, "n", request.N?.ToString(CultureInfo.InvariantCulture));
        Add(form, "size", request.Size);
        Add(form, "quality", request.Quality);
        Add(form, "response_format", request.ResponseFormat);
        Add(form, "background", request.Background);
        Add(form, "output_format", request.OutputFormat);
        Add(form, "user", request.User);
        if (stream)
        {
            form.Add(new StringContent("true"), "stream");
            Add(form, "partial_images", request.PartialImages?.ToString(CultureInfo.InvariantCulture));
        }

        foreach (var (name, value) in request.AdditionalProperties ?? new Dictionary<string, JsonElement>())
        {
            Add(form, name, value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText());
        }

        message.Content = form;
        return message;

        static ImageFileContent FilePart(ImageFile file)
        {
            var content = new ImageFileContent(file);
            content.Headers.ContentType = MediaTypeHeaderValue.TryParse(file.ContentType, out var type) ? type : new MediaTypeHeaderValue("image/png");
            return content;
        }

        static void Add(MultipartFormDataContent form, string name, string? value)
        {
            if (value is not null)
            {
                form.Add(new StringContent(value), name);
            }
        }
    }

    /// <summary>
    /// OpenAI's JSON edit body (issue 17, media; https://platform.openai.com/docs/api-reference/images/createEdit, its
    /// <c>application/json</c> form): <c>images</c> and <c>mask</c> as <c>{"image_url": ...}</c> or <c>{"file_id": ...}</c>,
    /// the other fields as JSON values; fields the gateway does not model pass through as they were sent.
    /// </summary>
    private static ByteArrayContent JsonEditBody(ProviderContext context, ImageEditRequest request, bool stream)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("model", context.Model);
            writer.WriteString("prompt", request.Prompt);
            writer.WriteStartArray("images");
            foreach (var image in request.Images)
            {
                Reference(writer, image);
            }

            writer.WriteEndArray();
            if (request.Mask is { } mask)
            {
                writer.WritePropertyName("mask");
                Reference(writer, mask);
            }

            if (request.N is { } n)
            {
                writer.WriteNumber("n", n);
            }

            Text(writer, "size", request.Size);
            Text(writer, "quality", request.Quality);
            Text(writer, "response_format", request.ResponseFormat);
            Text(writer, "background", request.Background);
            Text(writer, "output_format", request.OutputFormat);
            Text(writer, "user", request.User);
            if (stream)
            {
                writer.WriteBoolean("stream", true);
                if (request.PartialImages is { } partial)
                {
                    writer.WriteNumber("partial_images", partial);
                }
            }

            foreach (var (name, value) in request.AdditionalProperties ?? new Dictionary<string, JsonElement>())
            {
                writer.WritePropertyName(name);
                value.WriteTo(writer);
            }

            writer.WriteEndObject();
        }

        var content = new ByteArrayContent(buffer.WrittenMemory.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;

        static void Reference(Utf8JsonWriter writer, ImageFile image)
        {
            writer.WriteStartObject();
            if (image.ImageUrl is { } url)
            {
                writer.WriteString("image_url", url);
            }
            else
            {
                writer.WriteString("file_id", image.FileId);
            }

            writer.WriteEndObject();
        }

        static void Text(Utf8JsonWriter writer, string name, string? value)
        {
            if (value is not null)
            {
                writer.WriteString(name, value);
            }
        }
    }
}

/// <summary>
/// An uploaded image as a request part: written from the image's start each time it is sent, and never disposed with the
/// request (the gateway's spooled copy outlives an attempt, so a retry or fallback sends it again).
/// </summary>
internal sealed class ImageFileContent(ImageFile file) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context, CancellationToken cancellationToken)
    {
        var source = file.OpenRead();
        await source.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
        if (file.Content is null)
        {
            await source.DisposeAsync().ConfigureAwait(false); // a stream over the stored bytes, made for this send
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = file.Content is { CanSeek: true } content ? content.Length : file.Data?.Length ?? 0;
        return file.Content is { CanSeek: true } || file.Data is not null;
    }
}
