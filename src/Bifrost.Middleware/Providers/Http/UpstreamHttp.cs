using System.Globalization;

namespace Bifrost.Middleware.Providers.Http;

/// <summary>What every HTTP adapter reads the same way from an upstream's answer.</summary>
internal static class UpstreamHttp
{
    /// <summary>How much of an error body is read (a provider's error message, never a stream).</summary>
    public const int MaxErrorBodyBytes = 64 * 1024;

    /// <summary>The start of an error body as text (at most <see cref="MaxErrorBodyBytes"/>); empty when it cannot be read.</summary>
    public static async Task<string> ReadErrorTextAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new byte[MaxErrorBodyBytes];
            var read = 0;
            int n;
            while (read < buffer.Length && (n = await body.ReadAsync(buffer.AsMemory(read), cancellationToken).ConfigureAwait(false)) > 0)
            {
                read += n;
            }

            return System.Text.Encoding.UTF8.GetString(buffer, 0, read);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return string.Empty;
        }
    }

    /// <summary>The wait an upstream asked for: OpenAI's <c>retry-after-ms</c>, else <c>Retry-After</c> as seconds or as a date.</summary>
    public static TimeSpan? ParseRetryAfter(HttpResponseMessage response, TimeProvider time)
    {
        if (response.Headers.TryGetValues("retry-after-ms", out var ms)
            && double.TryParse(ms.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var milliseconds))
        {
            return TimeSpan.FromMilliseconds(milliseconds);
        }

        if (response.Headers.RetryAfter is { } retryAfter)
        {
            if (retryAfter.Delta is { } delta)
            {
                return delta;
            }

            if (retryAfter.Date is { } date)
            {
                var wait = date - time.GetUtcNow();
                return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
            }
        }

        return null;
    }

    /// <summary>
    /// The provider's status and message passed through from OpenAI's error object (<c>{"error":{"message","type","code","param"}}</c>)
    /// and the common variants (<c>{"error":"..."}</c>, <c>{"message"}</c>, <c>{"detail"}</c>); any other body is the message.
    /// </summary>
    public static BifrostException FromErrorObject(UpstreamError answer)
    {
        string? type = null, code = null, param = null, message = null;
        try
        {
            using var document = JsonDocument.Parse(answer.Text);
            var root = document.RootElement;
            var error = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error", out var e) ? e : root;
            if (error.ValueKind == JsonValueKind.String)
            {
                message = error.GetString();
            }
            else if (error.ValueKind == JsonValueKind.Object)
            {
                message = AsString(error, "message") ?? AsString(root, "message") ?? AsString(root, "detail");
                type = AsString(error, "type");
                code = AsString(error, "code");
                param = AsString(error, "param");
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // not JSON (or a string that is not valid UTF-16): the text itself is the message
        }

        return BifrostErrors.ProviderError(answer.Status, type, code, string.IsNullOrWhiteSpace(message) ? answer.Message : message, param, answer.RetryAfter);
    }

    /// <summary>A 502 <c>invalid_provider_response</c>: the provider answered, but not with what it should have.</summary>
    public static BifrostException InvalidResponse(ProviderContext context, string what) =>
        BifrostErrors.InvalidProviderResponse($"Provider '{context.ProviderName}' returned {what}.");

    /// <summary>A 502 <c>invalid_provider_response</c> for a stream event that is not valid JSON.</summary>
    public static BifrostException InvalidStreamEvent(JsonException ex) =>
        BifrostErrors.InvalidProviderResponse($"Provider sent an invalid stream event ({ex.Message}).");

    private static string? AsString(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value)
            ? value.ValueKind switch
            {
                JsonValueKind.String => value.GetString(),
                JsonValueKind.Number => value.GetRawText(),
                _ => null,
            }
            : null;
}

/// <summary>An upstream's error answer as read: its status, reason, the start of its body and the wait it asked for.</summary>
internal readonly record struct UpstreamError(int Status, string? ReasonPhrase, string Text, TimeSpan? RetryAfter)
{
    /// <summary>The body as the message, or the status line when the body is empty.</summary>
    public string Message => string.IsNullOrWhiteSpace(Text) ? $"Provider answered {Status} {ReasonPhrase}." : Text.Trim();
}

/// <summary>
/// Applies the gateway's JSON text rule (<see cref="Serialization.JsonUnicodeScanner"/>: valid UTF-8, valid UTF-16
/// escapes) to every successful upstream answer of the shared upstream client — JSON, SSE and JSONL alike — as it is
/// read: a provider that sends a lone surrogate escape or broken UTF-8 fails the attempt with a 502
/// <c>invalid_provider_response</c> (before the first chunk: an ordinary, retryable error; in a stream: the stream's
/// error event), instead of a value that cannot be re-serialized later. Error answers are read as text and are not checked;
/// neither are files (JSONL batch results, downloads: not <c>application/json</c> or <c>text/event-stream</c>), whose
/// lines are read one by one or passed through as the provider's bytes.
/// </summary>
/// <remarks>
/// It also applies <see cref="TelemetryOptions.UpstreamTraceContext"/> (<see cref="UpstreamTraceContextPolicy"/>): a call that
/// should not carry the trace context runs the handlers below this one (HttpClient's <c>DiagnosticsHandler</c> among them)
/// with <see cref="System.Diagnostics.Activity.Current"/> cleared. This method is async, so the caller's current activity is
/// back as it was when the call returns.
/// </remarks>
internal sealed class UpstreamTextHandler(UpstreamTraceContext traceContext = UpstreamTraceContext.Always) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (System.Diagnostics.Activity.Current is { } current && UpstreamTraceContextPolicy.Detach(traceContext, current))
        {
            System.Diagnostics.Activity.Current = null;
        }

        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode && response.Content is { } content && content is not CheckedContent && IsJsonOrEvents(content.Headers.ContentType?.MediaType))
        {
            response.Content = new CheckedContent(content);
        }

        return response;
    }

    private static bool IsJsonOrEvents(string? mediaType) =>
        mediaType is null
        || mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
        || mediaType.Equals("text/event-stream", StringComparison.OrdinalIgnoreCase)
        || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase);

    /// <summary>The exception for an upstream answer that breaks the rule.</summary>
    internal static BifrostException Invalid(string error, long offset) =>
        BifrostErrors.InvalidProviderResponse($"The provider's answer is not valid JSON text: it contains {error} at byte {offset}.");

    private sealed class CheckedContent : HttpContent
    {
        private readonly HttpContent _inner;

        public CheckedContent(HttpContent inner)
        {
            _inner = inner;
            // As received, without parsing them (the typed enumeration parses every header and allocates its values).
            foreach (var header in inner.Headers.NonValidated)
            {
                if (header.Value.Count == 1)
                {
                    Headers.TryAddWithoutValidation(header.Key, header.Value.ToString());
                }
                else
                {
                    Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
            }
        }

        protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
            new Serialization.JsonUnicodeValidatingStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), Invalid);

        protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context, CancellationToken cancellationToken)
        {
            await using var source = await CreateContentReadStreamAsync(cancellationToken).ConfigureAwait(false);
            await source.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
