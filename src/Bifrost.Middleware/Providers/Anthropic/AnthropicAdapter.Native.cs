using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Anthropic;

/// <summary>
/// An adapter that speaks Anthropic's Messages API natively: the <c>/anthropic</c> inbound routes send it the caller's
/// own body (model replaced) and relay its answer and events unchanged, instead of converting to chat and back.
/// </summary>
internal interface IAnthropicMessagesAdapter
{
    /// <summary><c>POST /v1/messages</c> with the caller's body; the message as the provider answered it.</summary>
    Task<AnthropicMessagesResponse> MessagesAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken);

    /// <summary><c>POST /v1/messages</c> with <c>"stream": true</c>; the provider's events as they arrive (an <c>error</c> event is thrown).</summary>
    IAsyncEnumerable<AnthropicMessagesEvent> StreamMessagesAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken);

    /// <summary><c>POST /v1/messages/count_tokens</c> with the caller's body.</summary>
    Task<AnthropicCountTokensAnswer> CountMessageTokensAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken);
}

// Anthropic native passthrough (docs: https://docs.anthropic.com/en/api/messages, .../messages-streaming,
// .../messages-count-tokens): the body goes as the caller wrote it; answers and events come back as the provider wrote them.
internal sealed partial class AnthropicAdapter : IAnthropicMessagesAdapter
{
    public Task<AnthropicMessagesResponse> MessagesAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var message = CreateNativeRequest(context, "messages", request, stream: false);
        message.Content = UpstreamClient.Json(request.ForProvider(context.Model, request.Body.TryGetProperty("stream"u8, out _) ? false : null));
        return _http.SendForJsonAsync(context, message, AnthropicJsonContext.Wire.AnthropicMessagesResponse, cancellationToken);
    }

    public async IAsyncEnumerable<AnthropicMessagesEvent> StreamMessagesAsync(ProviderContext context, AnthropicMessagesRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        using var deadline = _http.UntilFirstChunk(context, cancellationToken);
        using var message = CreateNativeRequest(context, "messages", request, stream: true);
        message.Content = UpstreamClient.Json(request.ForProvider(context.Model, stream: true));
        using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        await using var body = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        var startUsage = default(JsonElement);
        await foreach (var item in SseParser.Create(body, static (type, data) => ParseRawEvent(type, data)).EnumerateAsync(deadline.Token).ConfigureAwait(false))
        {
            if (item.Data.Failure is { } failure)
            {
                throw failure;
            }

            if (item.Data.Event is not { } evt)
            {
                continue;
            }

            deadline.Disarm();
            switch (evt.Type)
            {
                case "message_start":
                    if (evt.Data.TryGetProperty("message"u8, out var started) && started.ValueKind == JsonValueKind.Object && started.TryGetProperty("usage"u8, out var usage))
                    {
                        startUsage = usage;
                    }

                    break;
                case "message_delta" when evt.Data.TryGetProperty("usage"u8, out var final):
                    evt = new AnthropicMessagesEvent(evt.Type, evt.Data) { Tokens = AnthropicUsageCounts.Of(final, startUsage) };
                    break;
                case "error":
                    var error = evt.Data.TryGetProperty("error"u8, out var detail) ? detail.Deserialize(AnthropicJsonContext.Wire.AnthropicErrorDetail) : null;
                    throw AnthropicResponseTranslator.Error(AnthropicResponseTranslator.StatusOf(error?.Type), error, "The provider's stream failed.");
                default:
                    break;
            }

            yield return evt;
            if (evt.Type == "message_stop")
            {
                yield break; // nothing follows it
            }
        }

        Log.StreamEndedEarly(logger, context.ProviderName);
        throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "incomplete_stream", $"Provider '{context.ProviderName}' ended the stream before message_stop.");
    }

    public Task<AnthropicCountTokensAnswer> CountMessageTokensAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var message = CreateNativeRequest(context, "messages/count_tokens", request, stream: false);
        message.Content = UpstreamClient.Json(request.ForProvider(context.Model, stream: null));
        return _http.SendForJsonAsync(context, message, AnthropicJsonContext.Wire.AnthropicCountTokensAnswer, cancellationToken);
    }

    /// <summary>
    /// A native call with the caller's forwarded headers: its <c>anthropic-version</c> in place of the adapter's (or the
    /// provider's configured) one, and its <c>anthropic-beta</c> flags after the provider's configured ones, de-duplicated,
    /// as one comma-separated header. The key is the provider's (the caller's <c>x-api-key</c> is never forwarded).
    /// </summary>
    private HttpRequestMessage CreateNativeRequest(ProviderContext context, string path, AnthropicMessagesRequest request, bool stream)
    {
        var message = CreateRequest(context, HttpMethod.Post, path, stream);
        if (request.AnthropicVersion is { } version)
        {
            message.Headers.Remove(AnthropicHeaders.Version);
            message.Headers.TryAddWithoutValidation(AnthropicHeaders.Version, version);
        }

        if (request.AnthropicBetas.Count > 0)
        {
            var betas = AnthropicHeaders.Merge(context.Options, request.AnthropicBetas);
            message.Headers.Remove(AnthropicHeaders.Beta);
            message.Headers.TryAddWithoutValidation(AnthropicHeaders.Beta, string.Join(',', betas));
        }

        return message;
    }

    /// <summary>An event's JSON kept as sent, named by its <c>event:</c> line (else its <c>type</c>).</summary>
    private static (AnthropicMessagesEvent? Event, BifrostException? Failure) ParseRawEvent(string eventType, ReadOnlySpan<byte> data)
    {
        var trimmed = data.Trim((byte)' ');
        if (trimmed.IsEmpty)
        {
            return default;
        }

        try
        {
            var reader = new Utf8JsonReader(trimmed);
            var element = JsonElement.ParseValue(ref reader);
            if (element.ValueKind != JsonValueKind.Object)
            {
                return (null, UpstreamHttp.InvalidStreamEvent(new JsonException("An event's data is not a JSON object.")));
            }

            var type = element.TryGetProperty("type"u8, out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : eventType;
            return (new AnthropicMessagesEvent(string.IsNullOrEmpty(type) ? eventType : type, element), null);
        }
        catch (JsonException ex)
        {
            return (null, UpstreamHttp.InvalidStreamEvent(ex));
        }
    }
}
