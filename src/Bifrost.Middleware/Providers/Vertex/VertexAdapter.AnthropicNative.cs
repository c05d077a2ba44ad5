using System.Runtime.CompilerServices;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Vertex;

// Claude on Vertex from the /anthropic routes, natively: the caller's Messages body goes to
// publishers/anthropic/models/{model}:rawPredict / :streamRawPredict without "model" (the URL names it) and with
// "anthropic_version": "vertex-2023-10-16" (https://docs.anthropic.com/en/api/claude-on-vertex-ai,
// https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude); the answer is Anthropic's message
// or SSE events, relayed as written. Beta flags stay an anthropic-beta header, as Anthropic's own Vertex client sends them
// (anthropic-sdk-python lib/vertex/_client.py moves only model and anthropic_version). Token counting:
// publishers/anthropic/models/count-tokens:rawPredict with the model in the body
// (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/count-tokens).
internal sealed partial class VertexAdapter : IAnthropicMessagesAdapter
{
    /// <summary>Claude models (publisher <c>anthropic</c>) are served natively; Gemini models convert through chat.</summary>
    public bool HasNativeMessages(string model) => IsClaude(model);

    public Task<AnthropicMessagesResponse> MessagesAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        RequireProjectForClaude(context);
        var stream = request.Body.TryGetProperty("stream"u8, out _) ? false : (bool?)null;
        var message = NativeClaudeRequest(context, Endpoint(context, "rawPredict"), request, new NativeBody(null, stream, AnthropicVersion: AnthropicVersion), stream: false);
        return _claude.SendForJsonAsync(context, message, AnthropicJsonContext.Wire.AnthropicMessagesResponse, cancellationToken);
    }

    public async IAsyncEnumerable<AnthropicMessagesEvent> StreamMessagesAsync(ProviderContext context, AnthropicMessagesRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        RequireProjectForClaude(context);
        using var deadline = _claude.UntilFirstChunk(context, cancellationToken);
        using var message = NativeClaudeRequest(context, Endpoint(context, "streamRawPredict"), request, new NativeBody(null, true, AnthropicVersion: AnthropicVersion), stream: true);
        using var response = await _claude.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        await using var body = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        await foreach (var evt in AnthropicAdapter.RelaySseAsync(body, deadline).ConfigureAwait(false))
        {
            yield return evt;
            if (evt.Type == "message_stop")
            {
                yield break;
            }
        }

        Log.NativeStreamEndedEarly(logger, context.ProviderName);
        throw AnthropicAdapter.NativeStreamEndedEarly(context);
    }

    /// <summary><c>count-tokens:rawPredict</c> with the caller's body and the model; null in express mode (no Claude there: the gateway estimates).</summary>
    public async Task<AnthropicCountTokensAnswer?> CountMessageTokensAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (IsExpress(context.Options))
        {
            return null;
        }

        using var message = NativeClaudeRequest(context, Endpoint(context, "rawPredict", model: ClaudeCountTokensModel), request, new NativeBody(context.Model, null, OmitStream: true, AnthropicVersion: AnthropicVersion), stream: false);
        return await _claude.SendForJsonAsync(context, message, AnthropicJsonContext.Wire.AnthropicCountTokensAnswer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A native Claude call: the body shaped by <paramref name="shape"/>, the provider's headers, and <c>anthropic-beta</c>
    /// as the provider's configured flags then the caller's, de-duplicated. The caller's <c>anthropic-version</c> is not
    /// sent: Vertex takes its own in the body.
    /// </summary>
    private HttpRequestMessage NativeClaudeRequest(ProviderContext context, Uri uri, AnthropicMessagesRequest request, NativeBody shape, bool stream)
    {
        var message = _claude.CreateRequest(context, HttpMethod.Post, uri, stream);
        if (request.AnthropicBetas.Count > 0)
        {
            message.Headers.Remove(AnthropicHeaders.Beta);
            message.Headers.TryAddWithoutValidation(AnthropicHeaders.Beta, string.Join(',', AnthropicHeaders.Merge(context.Options, request.AnthropicBetas)));
        }

        message.Content = UpstreamClient.Json(request.ForProvider(shape));
        return message;
    }

    private static partial class Log
    {
        [LoggerMessage(1460, LogLevel.Warning, "Provider '{Provider}' ended a native Claude stream on Vertex AI before message_stop.")]
        public static partial void NativeStreamEndedEarly(ILogger logger, string provider);
    }
}
