using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>
/// Adapter for Amazon Bedrock Runtime (type <c>bedrock</c>): chat through Converse (<c>POST /model/{modelId}/converse</c>)
/// and ConverseStream (<c>/converse-stream</c>, binary <c>application/vnd.amazon.eventstream</c> frames), embeddings through
/// InvokeModel (<c>POST /model/{modelId}/invoke</c>) for Titan Text Embeddings and Cohere Embed. The host is
/// <c>https://bedrock-runtime.{Region}.amazonaws.com</c> unless BaseUrl is set. A configured key is a Bedrock API key sent
/// as <c>Authorization: Bearer</c> (https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html); without one, the
/// provider's <see cref="IUpstreamAuthenticator"/> signs each request (SigV4, package Bifrost.Middleware.Bedrock). The model
/// id (a foundation model id, an inference profile id or an ARN) is one URL path segment, percent-encoded (<c>:</c> →
/// <c>%3A</c>, <c>/</c> → <c>%2F</c>). Models are the configured <c>Models</c>, else the control plane's listing
/// (BedrockAdapter.Models.cs); images (Nova Canvas, Titan Image Generator) and rerank are in BedrockAdapter.Media.cs; text
/// completions and native Responses do not exist (Responses run through chat); input tokens are counted by CountTokens
/// where the model supports it.
/// </summary>
internal sealed partial class BedrockAdapter(IHttpClientFactory httpClientFactory, TimeProvider time, ILogger<BedrockAdapter> logger) : IProviderAdapter, IDisposable
{
    /// <summary>The adapter's named HttpClient (a host may configure it further by this name).</summary>
    internal const string HttpClientName = "Bifrost.Upstream.Bedrock";

    /// <summary>How many Titan embedding calls (one text each) run at once for one request.</summary>
    internal const int EmbeddingConcurrency = 4;

    private static readonly MediaTypeWithQualityHeaderValue AcceptEventStream = new("application/vnd.amazon.eventstream");
    private static readonly HashSet<string> CohereInputTypes = new(StringComparer.Ordinal) { "search_document", "search_query", "classification", "clustering" };
    private readonly UpstreamClient _http = new(httpClientFactory, HttpClientName, time, UpstreamAuth.Bearer, static answer => ParseError(answer, null));

    /// <summary>Registers the adapter's named client (<see cref="UpstreamClient.Register"/>).</summary>
    internal static void AddHttpClient(IServiceCollection services) => UpstreamClient.Register(services, HttpClientName);

    /// <summary>Releases the upstream client.</summary>
    public void Dispose() => _http.Dispose();

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var body = BedrockRequestTranslator.Translate(request);
        using var message = CreateRequest(context, "converse", stream: false);
        message.Content = UpstreamClient.Json(body, BedrockJsonContext.Wire.ConverseRequest);
        using var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        var answer = await ReadJsonAsync(context, response, BedrockJsonContext.Wire.ConverseResponse, cancellationToken).ConfigureAwait(false);
        return BedrockResponseTranslator.ToChat(answer, ResponseId(response), context.Model, time.GetUtcNow().ToUnixTimeSeconds(), body.StructuredOutputTool);
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var body = BedrockRequestTranslator.Translate(request);
        using var deadline = _http.UntilFirstChunk(context, cancellationToken);
        using var message = CreateRequest(context, "converse-stream", stream: true);
        message.Content = UpstreamClient.Json(body, BedrockJsonContext.Wire.ConverseRequest);
        using var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        var includeUsage = request.StreamOptions?.IncludeUsage == true;
        var translator = new BedrockStreamTranslator(ResponseId(response), context.Model, time.GetUtcNow().ToUnixTimeSeconds(), includeUsage, body.StructuredOutputTool);
        await using var stream = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        var reader = new EventStreamReader(stream);
        var chunks = new List<ChatCompletionChunk>(4);
        while (!translator.Completed && await reader.ReadAsync(deadline.Token).ConfigureAwait(false) is { } frame)
        {
            chunks.Clear();
            translator.Translate(ParseFrame(frame), chunks);
            foreach (var chunk in chunks)
            {
                deadline.Disarm();
                yield return chunk;
            }
        }

        if (translator.Completed)
        {
            yield break;
        }

        if (translator.Stopped)
        {
            // messageStop came, metadata did not: the answer is whole, its usage unknown.
            if (includeUsage)
            {
                yield return translator.UsageChunk(null);
            }

            yield break;
        }

        Log.StreamEndedEarly(logger, context.ProviderName);
        throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "incomplete_stream", $"Provider '{context.ProviderName}' ended the stream before messageStop.");
    }

    /// <summary>
    /// InvokeModel with the embedding model's own body, chosen by the model id: Titan Text Embeddings
    /// (<c>amazon.titan-embed-text-*</c>: one text per call, run <see cref="EmbeddingConcurrency"/> at a time, usage from
    /// <c>inputTextTokenCount</c>, <c>dimensions</c> forwarded) and Cohere Embed (<c>cohere.embed-*</c>: all texts in one
    /// call, <c>input_type</c> from the request or <c>search_document</c>, <c>truncate</c> forwarded, usage from the
    /// <c>X-Amzn-Bedrock-Input-Token-Count</c> header). Other models answer <c>unsupported_operation</c>.
    /// </summary>
    public async Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var titan = context.Model.Contains("amazon.titan-embed-text", StringComparison.Ordinal);
        var cohere = context.Model.Contains("cohere.embed-", StringComparison.Ordinal);
        if (!titan && !cohere)
        {
            throw BifrostErrors.UnsupportedOperation($"Provider '{context.ProviderName}' embeds with Titan Text Embeddings (amazon.titan-embed-text-*) and Cohere Embed (cohere.embed-*) models only, not '{context.Model}'.", "model");
        }

        if (request.Input?.Texts is not { Count: > 0 } texts)
        {
            throw BifrostErrors.UnsupportedParameter("Bedrock embeds text only: 'input' must be a string or an array of strings (token ids are not supported).", "input");
        }

        return titan ? await TitanAsync(context, request, texts, cancellationToken).ConfigureAwait(false) : await CohereAsync(context, request, texts, cancellationToken).ConfigureAwait(false);
    }

    private async Task<EmbeddingResponse> TitanAsync(ProviderContext context, EmbeddingRequest request, IList<string> texts, CancellationToken cancellationToken)
    {
        var data = new EmbeddingData[texts.Count];
        var tokens = 0;
        var options = new ParallelOptions { MaxDegreeOfParallelism = EmbeddingConcurrency, CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(Enumerable.Range(0, texts.Count), options, async (i, ct) =>
        {
            using var message = CreateRequest(context, "invoke", stream: false);
            message.Content = UpstreamClient.Json(new TitanEmbedRequest { InputText = texts[i], Dimensions = request.Dimensions }, BedrockJsonContext.Wire.TitanEmbedRequest);
            using var response = await SendAsync(context, message, ct).ConfigureAwait(false);
            var answer = await ReadJsonAsync(context, response, BedrockJsonContext.Wire.TitanEmbedResponse, ct).ConfigureAwait(false);
            data[i] = new EmbeddingData { Index = i, Embedding = new EmbeddingVector(answer.Embedding ?? throw UpstreamHttp.InvalidResponse(context, "a Titan answer without 'embedding'")) };
            Interlocked.Add(ref tokens, answer.InputTextTokenCount ?? 0);
        }).ConfigureAwait(false);
        return new EmbeddingResponse { Data = data, Model = context.Model, Usage = new EmbeddingUsage { PromptTokens = tokens, TotalTokens = tokens } };
    }

    private async Task<EmbeddingResponse> CohereAsync(ProviderContext context, EmbeddingRequest request, IList<string> texts, CancellationToken cancellationToken)
    {
        if (request.Dimensions is not null)
        {
            throw BifrostErrors.UnsupportedParameter("'dimensions' is not supported by Cohere Embed on Bedrock.", "dimensions");
        }

        var body = new BedrockCohereEmbedRequest { Texts = [.. texts], EmbeddingTypes = ["float"] };
        if (request.AdditionalProperties is { Count: > 0 } extra)
        {
            if (extra.TryGetValue("input_type", out var inputType))
            {
                body.InputType = inputType.ValueKind == JsonValueKind.String && inputType.GetString() is { } value && CohereInputTypes.Contains(value)
                    ? value
                    : throw BifrostErrors.InvalidValue("'input_type' must be search_document, search_query, classification or clustering.", "input_type");
            }

            if (extra.TryGetValue("truncate", out var truncate))
            {
                body.Truncate = truncate.ValueKind == JsonValueKind.String && truncate.GetString() is "NONE" or "START" or "END"
                    ? truncate.GetString()
                    : throw BifrostErrors.InvalidValue("'truncate' must be NONE, START or END.", "truncate");
            }
        }

        using var message = CreateRequest(context, "invoke", stream: false);
        message.Content = UpstreamClient.Json(body, BedrockJsonContext.Wire.BedrockCohereEmbedRequest);
        using var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        var answer = await ReadJsonAsync(context, response, BedrockJsonContext.Wire.BedrockCohereEmbedResponse, cancellationToken).ConfigureAwait(false);
        // embeddings_by_type: {"float": [[...]]}; embeddings_floats: [[...]]
        var vectors = answer.Embeddings is { ValueKind: JsonValueKind.Object } byType && byType.TryGetProperty("float", out var floats) ? floats : answer.Embeddings;
        IList<float[]>? list = null;
        if (vectors is { ValueKind: JsonValueKind.Array } array)
        {
            try
            {
                list = array.Deserialize(BedrockJsonContext.Wire.IListSingleArray);
            }
            catch (JsonException)
            {
                // not a list of float vectors: reported below
            }
        }

        if (list is null || list.Count != texts.Count || list.Any(static v => v is null))
        {
            throw UpstreamHttp.InvalidResponse(context, $"{list?.Count ?? 0} float embeddings for {texts.Count} inputs");
        }

        var data = new List<EmbeddingData>(list.Count);
        for (var i = 0; i < list.Count; i++)
        {
            data.Add(new EmbeddingData { Index = i, Embedding = new EmbeddingVector(list[i]) });
        }

        var tokens = response.Headers.TryGetValues("X-Amzn-Bedrock-Input-Token-Count", out var counts)
            && int.TryParse(counts.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var count) ? count : 0;
        return new EmbeddingResponse { Data = data, Model = context.Model, Usage = new EmbeddingUsage { PromptTokens = tokens, TotalTokens = tokens } };
    }

    /// <summary>
    /// <c>POST /model/{modelId}/count-tokens</c> with the request's messages and system blocks as Converse would get them
    /// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokensInput.html): Bedrock's
    /// <c>inputTokens</c>. Only some models can count (bare foundation model ids, not inference profiles): Bedrock's 400
    /// or 404 for the others answers null, and the gateway estimates.
    /// </summary>
    public async Task<int?> CountInputTokensAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var converse = BedrockRequestTranslator.Translate(new ChatCompletionRequest { Model = request.Model, Messages = Responses.ResponsesChatConverter.ToChatMessages(request) });
        var body = new BedrockCountTokensRequest { Input = new BedrockCountTokensInput { Converse = new ConverseRequest { Messages = converse.Messages, System = converse.System } } };
        using var message = CreateRequest(context, "count-tokens", stream: false);
        message.Content = UpstreamClient.Json(body, BedrockJsonContext.Wire.BedrockCountTokensRequest);
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
            return answer.InputTokens is > 0 ? answer.InputTokens : null;
        }
    }

    /// <summary><c>{BaseUrl or https://bedrock-runtime.{Region}.amazonaws.com}/model/{percent-encoded model id}/{operation}</c>.</summary>
    internal static Uri Endpoint(ProviderContext context, string operation)
    {
        var baseUrl = string.IsNullOrWhiteSpace(context.Options.BaseUrl)
            ? $"https://bedrock-runtime.{context.Options.Region?.Trim()}.amazonaws.com"
            : context.Options.BaseUrl.TrimEnd('/');
        return new Uri($"{baseUrl}/model/{Uri.EscapeDataString(context.Model)}/{operation}", UriKind.Absolute);
    }

    private HttpRequestMessage CreateRequest(ProviderContext context, string operation, bool stream)
    {
        var message = _http.CreateRequest(context, HttpMethod.Post, Endpoint(context, operation), stream: false);
        if (stream)
        {
            message.Headers.Accept.Clear();
            message.Headers.Accept.Add(AcceptEventStream);
        }

        return message;
    }

    /// <summary>Sends the request; an error answer is thrown with the error type of its <c>x-amzn-ErrorType</c> header or body.</summary>
    private async Task<HttpResponseMessage> SendAsync(ProviderContext context, HttpRequestMessage message, CancellationToken cancellationToken)
    {
        var response = await _http.SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var errorType = response.Headers.TryGetValues("x-amzn-ErrorType", out var values) ? values.FirstOrDefault() : null;
            var text = await UpstreamHttp.ReadErrorTextAsync(response, cancellationToken).ConfigureAwait(false);
            throw ParseError(new UpstreamError((int)response.StatusCode, response.ReasonPhrase, text, UpstreamHttp.ParseRetryAfter(response, time)), errorType);
        }
    }

    private static async Task<T> ReadJsonAsync<T>(ProviderContext context, HttpResponseMessage response, JsonTypeInfo<T> type, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return await BufferedJson.DeserializeAsync(body, response.Content.Headers.ContentLength, type, cancellationToken).ConfigureAwait(false)
                ?? throw UpstreamHttp.InvalidResponse(context, "an empty body");
        }
        catch (JsonException ex)
        {
            throw UpstreamHttp.InvalidResponse(context, $"invalid JSON ({ex.Message})");
        }
    }

    /// <summary>Bedrock's request id as the completion id (<c>x-amzn-RequestId</c>), else a new one.</summary>
    private static string ResponseId(HttpResponseMessage response) =>
        "chatcmpl-" + (response.Headers.TryGetValues("x-amzn-RequestId", out var ids) && ids.FirstOrDefault() is { Length: > 0 } id ? id : Guid.NewGuid().ToString("N"));

    /// <summary>
    /// Bedrock's error (<c>{"message": ...}</c>, the type in <c>x-amzn-ErrorType</c> — <c>ThrottlingException:http://...</c> —
    /// or in the body's <c>__type</c>): the status passed through, the type as the code
    /// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors);
    /// 429, 5xx and 408 are retryable, and so is 424 ModelErrorException.
    /// </summary>
    internal static BifrostException ParseError(UpstreamError answer, string? errorTypeHeader)
    {
        string? message = null, bodyType = null;
        try
        {
            using var document = JsonDocument.Parse(answer.Text);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in root.EnumerateObject())
                {
                    if (property.Value.ValueKind != JsonValueKind.String)
                    {
                        continue;
                    }

                    if (property.NameEquals("message") || property.NameEquals("Message"))
                    {
                        message = property.Value.GetString();
                    }
                    else if (property.NameEquals("__type"))
                    {
                        bodyType = property.Value.GetString();
                    }
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // not JSON: the text is the message
        }

        var type = ErrorTypeName(errorTypeHeader) ?? ErrorTypeName(bodyType);
        var error = BifrostErrors.ProviderError(answer.Status, null, type, string.IsNullOrWhiteSpace(message) ? answer.Message : message, null, answer.RetryAfter);
        return answer.Status == 424 ? new BifrostException(error.Error) { IsRetryable = true, RetryAfter = answer.RetryAfter } : error;
    }

    /// <summary><c>ThrottlingException:http://internal.amazon.com/...</c> or <c>com.amazon.bedrock#ThrottlingException</c> → <c>ThrottlingException</c>.</summary>
    private static string? ErrorTypeName(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var name = value.AsSpan();
        var colon = name.IndexOf(':');
        if (colon >= 0)
        {
            name = name[..colon];
        }

        var hash = name.LastIndexOf('#');
        if (hash >= 0)
        {
            name = name[(hash + 1)..];
        }

        name = name.Trim();
        return name.IsEmpty ? null : name.ToString();
    }

    private static BedrockStreamEvent ParseFrame(EventStreamFrame frame)
    {
        var messageType = frame.Header(":message-type");
        if (messageType == "exception")
        {
            throw BedrockResponseTranslator.StreamException(frame.Header(":exception-type"), ReadMessage(frame.Payload.Span));
        }

        if (messageType == "error")
        {
            throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, frame.Header(":error-code") ?? "stream_error", frame.Header(":error-message") ?? "Bedrock sent an error frame.");
        }

        try
        {
            var evt = frame.Payload.IsEmpty ? new BedrockStreamEvent() : JsonSerializer.Deserialize(frame.Payload.Span, BedrockJsonContext.Wire.BedrockStreamEvent) ?? new BedrockStreamEvent();
            evt.Type = frame.Header(":event-type");
            return evt;
        }
        catch (JsonException ex)
        {
            throw UpstreamHttp.InvalidStreamEvent(ex);
        }
    }

    private static string? ReadMessage(ReadOnlySpan<byte> payload)
    {
        try
        {
            return payload.IsEmpty ? null : JsonSerializer.Deserialize(payload, BedrockJsonContext.Wire.BedrockStreamEvent)?.Message;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1080, LogLevel.Warning, "Provider '{Provider}' ended a Bedrock ConverseStream before messageStop.")]
        public static partial void StreamEndedEarly(ILogger logger, string provider);

        [LoggerMessage(1082, LogLevel.Debug, "Provider '{Provider}' cannot count the tokens of model '{Model}' (Bedrock answered {Status}): the gateway estimates.")]
        public static partial void CountTokensRefused(ILogger logger, string provider, string model, int status);
    }
}
