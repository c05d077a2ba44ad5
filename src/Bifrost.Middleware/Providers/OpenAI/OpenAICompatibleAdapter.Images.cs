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

    private async Task<ImageResponse> ImageUploadAsync(ProviderContext context, string path, ImageEditRequest request, CancellationToken cancellationToken)
    {
        var message = CreateRequest(context, HttpMethod.Post, path, stream: false);
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
        foreach (var (name, value) in request.AdditionalProperties ?? new Dictionary<string, JsonElement>())
        {
            Add(form, name, value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText());
        }

        message.Content = form;
        return await _http.SendForJsonAsync(context, message, BifrostJson.Context.ImageResponse, cancellationToken).ConfigureAwait(false);

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
