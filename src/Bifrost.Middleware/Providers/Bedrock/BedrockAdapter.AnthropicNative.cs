using System.Runtime.CompilerServices;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Bedrock;

// Claude on Bedrock from the /anthropic routes, natively: the caller's Messages body goes to InvokeModel
// (POST /model/{modelId}/invoke, https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html) or
// InvokeModelWithResponseStream (/invoke-with-response-stream,
// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html) without "model"
// (the URL names it) and "stream", with "anthropic_version": "bedrock-2023-05-31" and the beta flags as "anthropic_beta": [...]
// in the body (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html;
// Anthropic's own Bedrock client moves the anthropic-beta header there: anthropic-sdk-python lib/bedrock/_client.py). The
// answer is Anthropic's message; the stream is event-stream frames whose "chunk" payload {"bytes": base64} holds one Anthropic
// stream event (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_PayloadPart.html). Token counting:
// POST /model/{modelId}/count-tokens with {"input": {"invokeModel": {"body": base64}}}
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelTokensRequest.html).
internal sealed partial class BedrockAdapter : IAnthropicMessagesAdapter
{
    /// <summary>
    /// Claude models (<c>anthropic.claude-*</c>, a cross-region inference profile such as <c>us.anthropic.claude-*</c>, or an
    /// ARN naming one) are served natively; any other model converts through chat (Converse).
    /// </summary>
    public bool HasNativeMessages(string model) => model.Contains("anthropic.claude", StringComparison.OrdinalIgnoreCase);

    public async Task<AnthropicMessagesResponse> MessagesAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        using var message = CreateRequest(context, "invoke", stream: false);
        message.Content = UpstreamClient.Json(NativeBody(context, request));
        message.Headers.Remove(AnthropicHeaders.Beta); // in the body on Bedrock
        using var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        return await ReadJsonAsync(context, response, AnthropicJsonContext.Wire.AnthropicMessagesResponse, cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<AnthropicMessagesEvent> StreamMessagesAsync(ProviderContext context, AnthropicMessagesRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        using var deadline = _http.UntilFirstChunk(context, cancellationToken);
        using var message = CreateRequest(context, "invoke-with-response-stream", stream: true);
        message.Content = UpstreamClient.Json(NativeBody(context, request));
        message.Headers.Remove(AnthropicHeaders.Beta);
        using var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        await using var stream = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        var reader = new EventStreamReader(stream);
        var tracker = new NativeEventTracker();
        while (await reader.ReadAsync(deadline.Token).ConfigureAwait(false) is { } frame)
        {
            if (ChunkEvent(frame) is not { } evt)
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

        Log.NativeStreamEndedEarly(logger, context.ProviderName);
        throw AnthropicAdapter.NativeStreamEndedEarly(context);
    }

    /// <summary>
    /// CountTokens with the InvokeModel body (a <c>max_tokens</c> added when the caller's count body has none, as InvokeModel
    /// requires one). Bedrock counts bare foundation model ids only: its 400 or 404 answers null, and the gateway estimates.
    /// </summary>
    public async Task<AnthropicCountTokensAnswer?> CountMessageTokensAsync(ProviderContext context, AnthropicMessagesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var invokeBody = NativeBody(context, request, context.Options.DefaultMaxTokens ?? AnthropicRequestTranslator.DefaultMaxTokens);
        using var buffer = new PooledBufferWriter();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("input"u8);
            writer.WriteStartObject("invokeModel"u8);
            writer.WriteBase64String("body"u8, invokeBody);
            writer.WriteEndObject();
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        using var message = CreateRequest(context, "count-tokens", stream: false);
        message.Content = UpstreamClient.Json(buffer.WrittenMemory.ToArray());
        message.Headers.Remove(AnthropicHeaders.Beta);
        HttpResponseMessage response;
        try
        {
            response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex) when (ex.StatusCode is 400 or 404)
        {
            Log.CountTokensRefused(logger, context.ProviderName, context.Model, ex.StatusCode);
            return null;
        }

        using (response)
        {
            var answer = await ReadJsonAsync(context, response, BedrockJsonContext.Wire.BedrockCountTokensResponse, cancellationToken).ConfigureAwait(false);
            return answer.InputTokens is { } tokens ? new AnthropicCountTokensAnswer { InputTokens = tokens } : null;
        }
    }

    /// <summary>
    /// The InvokeModel body: the caller's fields but <c>model</c> and <c>stream</c>, <c>anthropic_version</c>, and
    /// <c>anthropic_beta</c> = the provider's configured <c>anthropic-beta</c> flags, the body's own and the caller's
    /// header flags, de-duplicated.
    /// </summary>
    private static byte[] NativeBody(ProviderContext context, AnthropicMessagesRequest request, int? maxTokensWhenMissing = null)
    {
        var inBody = new List<string?>();
        if (request.Body.TryGetProperty("anthropic_beta"u8, out var own))
        {
            if (own.ValueKind == JsonValueKind.Array && own.EnumerateArray().All(static b => b.ValueKind == JsonValueKind.String))
            {
                inBody.AddRange(own.EnumerateArray().Select(static b => b.GetString()));
            }
            else if (own.ValueKind == JsonValueKind.String)
            {
                inBody.Add(own.GetString());
            }
            else if (own.ValueKind != JsonValueKind.Null)
            {
                throw BifrostErrors.InvalidValue("'anthropic_beta' must be an array of strings.", "anthropic_beta");
            }
        }

        var betas = AnthropicHeaders.Merge(context.Options, AnthropicHeaders.SplitBetas([.. inBody, .. request.AnthropicBetas]));
        return request.ForProvider(new NativeBody(null, null, OmitStream: true, AnthropicVersion: AnthropicVersion, Betas: betas, MaxTokensWhenMissing: maxTokensWhenMissing));
    }

    /// <summary>
    /// One frame of InvokeModelWithResponseStream: an exception frame is thrown (<see cref="ParseFrame"/>), a <c>chunk</c>
    /// event's <c>bytes</c> (base64) is one Anthropic stream event, anything else is skipped.
    /// </summary>
    private static AnthropicMessagesEvent? ChunkEvent(EventStreamFrame frame)
    {
        if (frame.Header(":message-type") is "exception" or "error")
        {
            _ = ParseFrame(frame); // throws the exception frame's error
        }

        if (frame.Header(":event-type") != "chunk" || frame.Payload.IsEmpty)
        {
            return null;
        }

        byte[] bytes;
        try
        {
            using var payload = JsonDocument.Parse(frame.Payload);
            if (!payload.RootElement.TryGetProperty("bytes"u8, out var encoded) || encoded.ValueKind != JsonValueKind.String)
            {
                return null;
            }

            bytes = encoded.GetBytesFromBase64();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw UpstreamHttp.InvalidStreamEvent(ex as JsonException ?? new JsonException(ex.Message, ex));
        }

        var (evt, failure) = AnthropicAdapter.ParseRawEvent(string.Empty, bytes);
        return failure is not null ? throw failure : evt;
    }

    private static partial class Log
    {
        [LoggerMessage(1461, LogLevel.Warning, "Provider '{Provider}' ended a native Claude stream on Bedrock before message_stop.")]
        public static partial void NativeStreamEndedEarly(ILogger logger, string provider);
    }
}
