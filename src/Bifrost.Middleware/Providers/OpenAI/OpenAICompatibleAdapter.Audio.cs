using System.Globalization;
using System.Net.Http.Headers;

namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>
/// Audio upstream: <c>audio/speech</c> (JSON in) and <c>audio/transcriptions</c>/<c>audio/translations</c> (multipart in,
/// the upload streamed from the gateway's spooled copy). The answers are passed through unread: the caller gets the
/// provider's bytes and content type as they arrive.
/// </summary>
internal sealed partial class OpenAICompatibleAdapter
{
    public async Task<AudioResponse> SpeechAsync(ProviderContext context, SpeechRequest request, CancellationToken cancellationToken)
    {
        using var message = CreateRequest(context, HttpMethod.Post, "audio/speech", stream: request.StreamFormat == "sse");
        message.Content = Body(context, "audio/speech", request, BifrostJson.Context.SpeechRequest);
        return await RelayAsync(context, message, "audio/mpeg", cancellationToken).ConfigureAwait(false);
    }

    public Task<AudioResponse> TranscriptionAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken) =>
        UploadAsync(context, "audio/transcriptions", request, cancellationToken);

    public Task<AudioResponse> TranslationAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken) =>
        UploadAsync(context, "audio/translations", request, cancellationToken);

    private async Task<AudioResponse> UploadAsync(ProviderContext context, string path, TranscriptionRequest request, CancellationToken cancellationToken)
    {
        var file = request.File ?? throw BifrostErrors.MissingParameter("'file' is required.", "file");

        // Not disposed here: disposing the message would dispose the gateway's spooled file, which a retry reads again.
        var message = CreateRequest(context, HttpMethod.Post, path, stream: request.Stream == true);
        var form = new MultipartFormDataContent();
        var content = new StreamContent(file);
        content.Headers.ContentType = MediaTypeHeaderValue.TryParse(request.FileContentType, out var type) ? type : new MediaTypeHeaderValue("application/octet-stream");
        form.Add(content, "file", request.Filename ?? "audio");
        form.Add(new StringContent(context.Model), "model");
        Add(form, "language", request.Language);
        Add(form, "prompt", request.Prompt);
        Add(form, "response_format", request.ResponseFormat);
        Add(form, "temperature", request.Temperature?.ToString("R", CultureInfo.InvariantCulture));
        foreach (var granularity in request.TimestampGranularities ?? [])
        {
            Add(form, "timestamp_granularities[]", granularity);
        }

        Add(form, "stream", request.Stream is { } stream ? (stream ? "true" : "false") : null);
        foreach (var (name, value) in request.AdditionalProperties ?? new Dictionary<string, JsonElement>())
        {
            Add(form, name, value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText());
        }

        message.Content = form;
        return await RelayAsync(context, message, "application/json", cancellationToken).ConfigureAwait(false);

        static void Add(MultipartFormDataContent form, string name, string? value)
        {
            if (value is not null)
            {
                form.Add(new StringContent(value), name);
            }
        }
    }

    /// <summary>Sends the request and returns its successful answer's body unread (an error answer is thrown, so the gateway may retry).</summary>
    private async Task<AudioResponse> RelayAsync(ProviderContext context, HttpRequestMessage message, string defaultType, CancellationToken cancellationToken)
    {
        var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        try
        {
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return new AudioResponse(body, response.Content.Headers.ContentType?.ToString() ?? defaultType);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }
}
