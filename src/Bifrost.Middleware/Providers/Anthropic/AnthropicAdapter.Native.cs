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
    /// <summary>
    /// Whether the adapter serves <paramref name="model"/> (the provider's model id) natively; otherwise the call converts
    /// through chat (e.g. a Gemini model on Vertex, a Llama model on Bedrock).
    /// </summary>
    bool HasNativeMessages(string model);

    /// <summary><c>POST /v1/messages</c> with the caller's body; the message as the provider answered it.</summary>
    Task<AnthropicMessagesResponse> MessagesAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken);

    /// <summary><c>POST /v1/messages</c> with <c>"stream": true</c>; the provider's events as they arrive (an <c>error</c> event is thrown).</summary>
    IAsyncEnumerable<AnthropicMessagesEvent> StreamMessagesAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken);

    /// <summary><c>POST /v1/messages/count_tokens</c> with the caller's body; null when the provider cannot count this model (the gateway estimates).</summary>
    Task<AnthropicCountTokensAnswer?> CountMessageTokensAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken);
}

// Anthropic native passthrough (docs: https://docs.anthropic.com/en/api/messages, .../messages-streaming,
// .../messages-count-tokens): the body goes as the caller wrote it; answers and events come back as the provider wrote them.
internal sealed partial class AnthropicAdapter : IAnthropicMessagesAdapter
{
    public bool HasNativeMessages(string model) => true;

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
        await foreach (var evt in RelaySseAsync(body, deadline).ConfigureAwait(false))
        {
            yield return evt;
            if (evt.Type == "message_stop")
            {
                yield break;
            }
        }

        Log.StreamEndedEarly(logger, context.ProviderName);
        throw NativeStreamEndedEarly(context);
    }

    /// <summary>
    /// A provider's Anthropic SSE body (Anthropic's own, Vertex's <c>:streamRawPredict</c>) as events, through
    /// <see cref="NativeEventTracker"/>; it ends after <c>message_stop</c> (<see cref="NativeEventTracker.Stopped"/>) or when
    /// the body ends (the caller then reports the stream incomplete).
    /// </summary>
    internal static async IAsyncEnumerable<AnthropicMessagesEvent> RelaySseAsync(Stream body, AttemptDeadline deadline)
    {
        var tracker = new NativeEventTracker();
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
            yield return tracker.Track(evt);
            if (tracker.Stopped)
            {
                yield break; // nothing follows message_stop
            }
        }
    }

    /// <summary>The 502 <c>incomplete_stream</c> of a native stream that ended before <c>message_stop</c>.</summary>
    internal static BifrostException NativeStreamEndedEarly(ProviderContext context) =>
        BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "incomplete_stream", $"Provider '{context.ProviderName}' ended the stream before message_stop.");

    public Task<AnthropicCountTokensAnswer?> CountMessageTokensAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var message = CreateNativeRequest(context, "messages/count_tokens", request, stream: false);
        message.Content = UpstreamClient.Json(request.ForProvider(context.Model, stream: null));
        return _http.SendForJsonAsync(context, message, AnthropicJsonContext.Wire.AnthropicCountTokensAnswer, cancellationToken)!;
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
    internal static (AnthropicMessagesEvent? Event, BifrostException? Failure) ParseRawEvent(string eventType, ReadOnlySpan<byte> data)
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

/// <summary>
/// Follows a native Messages stream: keeps <c>message_start</c>'s usage, puts the whole answer's usage on
/// <c>message_delta</c>, throws an <c>error</c> event as the error it carries, and says when <c>message_stop</c> came.
/// </summary>
internal sealed class NativeEventTracker
{
    private JsonElement _startUsage;

    /// <summary>Whether <c>message_stop</c> was seen.</summary>
    public bool Stopped { get; private set; }

    public AnthropicMessagesEvent Track(AnthropicMessagesEvent evt)
    {
        switch (evt.Type)
        {
            case "message_start":
                if (evt.Data.TryGetProperty("message"u8, out var started) && started.ValueKind == JsonValueKind.Object && started.TryGetProperty("usage"u8, out var usage))
                {
                    _startUsage = usage;
                }

                return evt;
            case "message_delta" when evt.Data.TryGetProperty("usage"u8, out var final):
                return new AnthropicMessagesEvent(evt.Type, evt.Data) { Tokens = AnthropicUsageCounts.Of(final, _startUsage) };
            case "error":
                var error = evt.Data.TryGetProperty("error"u8, out var detail) && detail.ValueKind == JsonValueKind.Object ? detail.Deserialize(AnthropicJsonContext.Wire.AnthropicErrorDetail) : null;
                throw AnthropicResponseTranslator.Error(AnthropicResponseTranslator.StatusOf(error?.Type), error, "The provider's stream failed.");
            case "message_stop":
                Stopped = true;
                return evt;
            default:
                return evt;
        }
    }
}
