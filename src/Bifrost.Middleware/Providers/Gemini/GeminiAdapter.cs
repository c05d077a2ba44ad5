using System.Runtime.CompilerServices;
using Bifrost.Middleware.Providers.Http;
using Bifrost.Middleware.Responses;

namespace Bifrost.Middleware.Providers.Gemini;

/// <summary>
/// Adapter for the Gemini API of Google AI Studio (type <c>gemini</c>): <c>POST {BaseUrl}/models/{model}:generateContent</c>,
/// <c>:streamGenerateContent?alt=sse</c>, <c>:embedContent</c> / <c>:batchEmbedContents</c>, <c>:countTokens</c> and
/// <c>GET {BaseUrl}/models</c> (paged), with the key in <c>x-goog-api-key</c> (never in the URL). BaseUrl defaults to
/// <see cref="DefaultBaseUrl"/>. Text completions and the native Responses API are not offered (the gateway runs Responses
/// requests as chat completions).
/// </summary>
internal sealed partial class GeminiAdapter(IHttpClientFactory httpClientFactory, TimeProvider time, ILogger<GeminiAdapter> logger) : IProviderAdapter, IDisposable
{
    internal const string DefaultBaseUrl = "https://generativelanguage.googleapis.com/v1beta";

    /// <summary>The adapter's named HttpClient (a host may configure it further by this name).</summary>
    internal const string HttpClientName = "Bifrost.Upstream.Gemini";

    /// <summary>The most requests one <c>batchEmbedContents</c> call carries (larger inputs are split).</summary>
    internal const int MaxEmbedBatch = 100;

    private static readonly UpstreamAuth Auth = new("x-goog-api-key", []);
    private readonly UpstreamClient _http = new(httpClientFactory, HttpClientName, time, Auth, ParseError);

    /// <summary>Registers the adapter's named client (<see cref="UpstreamClient.Register"/>).</summary>
    internal static void AddHttpClient(IServiceCollection services) => UpstreamClient.Register(services, HttpClientName);

    /// <summary>Releases the upstream client.</summary>
    public void Dispose() => _http.Dispose();

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var body = GeminiRequestTranslator.Translate(request, context.Options.DefaultMaxTokens);
        var message = CreateRequest(context, HttpMethod.Post, ModelPath(context, "generateContent"), stream: false);
        message.Content = UpstreamClient.Json(body, GeminiJsonContext.Wire.GeminiRequest);
        var response = await _http.SendForJsonAsync(context, message, GeminiJsonContext.Wire.GeminiResponse, cancellationToken).ConfigureAwait(false);
        if (response.Candidates is not { Count: > 0 } && response.PromptFeedback?.BlockReason is { Length: > 0 } reason)
        {
            Log.PromptBlocked(logger, context.ProviderName, reason);
        }

        return GeminiResponseTranslator.ToChat(response, context.Model, time.GetUtcNow().ToUnixTimeSeconds(), context.ProviderName);
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var body = GeminiRequestTranslator.Translate(request, context.Options.DefaultMaxTokens);
        using var deadline = _http.UntilFirstChunk(context, cancellationToken);
        using var message = CreateRequest(context, HttpMethod.Post, ModelPath(context, "streamGenerateContent") + "?alt=sse", stream: true);
        message.Content = UpstreamClient.Json(body, GeminiJsonContext.Wire.GeminiRequest);
        using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        var translator = new GeminiStreamTranslator(context.Model, time.GetUtcNow().ToUnixTimeSeconds(), request.StreamOptions?.IncludeUsage == true);
        await foreach (var chunk in SseChatRelay.RelayAsync(response, deadline, static (_, data) => ParseEvent(data), translator).ConfigureAwait(false))
        {
            yield return chunk;
        }

        // Gemini sends no end marker: the body ends after the event with the finish reason.
        if (!translator.Finished)
        {
            Log.StreamEndedEarly(logger, context.ProviderName);
            throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "incomplete_stream", $"Provider '{context.ProviderName}' ended the stream before a finish reason.");
        }

        var chunks = new List<ChatCompletionChunk>(2);
        translator.Finish(chunks);
        foreach (var chunk in chunks)
        {
            yield return chunk;
        }
    }

    /// <summary>
    /// One input → <c>:embedContent</c>; a list → <c>:batchEmbedContents</c> (at most <see cref="MaxEmbedBatch"/> per call).
    /// <c>dimensions</c> → <c>outputDimensionality</c>; <c>task_type</c> (a Gemini extra, e.g. <c>RETRIEVAL_QUERY</c>) is passed on.
    /// Gemini reports no token usage for embeddings: the usage is zero. base64 output is the gateway's own encoding.
    /// </summary>
    public async Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Input?.Texts is not { Count: > 0 } texts)
        {
            throw GeminiRequestTranslator.Invalid("Gemini embeds text: 'input' must be a string or an array of strings (token arrays are not supported).", "input");
        }

        string? taskType = request.AdditionalProperties?.TryGetValue("task_type", out var t) == true && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var result = new EmbeddingResponse { Model = context.Model, Usage = new EmbeddingUsage() };
        if (texts.Count == 1)
        {
            var single = EmbedRequest(context, texts[0], request.Dimensions, taskType, withModel: false);
            var message = CreateRequest(context, HttpMethod.Post, ModelPath(context, "embedContent"), stream: false);
            message.Content = UpstreamClient.Json(single, GeminiJsonContext.Wire.GeminiEmbedRequest);
            var answer = await _http.SendForJsonAsync(context, message, GeminiJsonContext.Wire.GeminiEmbedResponse, cancellationToken).ConfigureAwait(false);
            result.Data.Add(new EmbeddingData { Index = 0, Embedding = new EmbeddingVector(answer.Embedding?.Values ?? throw UpstreamHttp.InvalidResponse(context, "an embedding without values")) });
            return result;
        }

        for (var start = 0; start < texts.Count; start += MaxEmbedBatch)
        {
            var batch = new GeminiBatchEmbedRequest();
            for (var i = start; i < Math.Min(texts.Count, start + MaxEmbedBatch); i++)
            {
                batch.Requests.Add(EmbedRequest(context, texts[i], request.Dimensions, taskType, withModel: true));
            }

            var message = CreateRequest(context, HttpMethod.Post, ModelPath(context, "batchEmbedContents"), stream: false);
            message.Content = UpstreamClient.Json(batch, GeminiJsonContext.Wire.GeminiBatchEmbedRequest);
            var answer = await _http.SendForJsonAsync(context, message, GeminiJsonContext.Wire.GeminiBatchEmbedResponse, cancellationToken).ConfigureAwait(false);
            if (answer.Embeddings is not { } embeddings || embeddings.Count != batch.Requests.Count)
            {
                throw UpstreamHttp.InvalidResponse(context, $"{answer.Embeddings?.Count ?? 0} embeddings for {batch.Requests.Count} inputs");
            }

            for (var i = 0; i < embeddings.Count; i++)
            {
                result.Data.Add(new EmbeddingData { Index = start + i, Embedding = new EmbeddingVector(embeddings[i].Values ?? throw UpstreamHttp.InvalidResponse(context, "an embedding without values")) });
            }
        }

        return result;
    }

    /// <summary>Counts with <c>:countTokens</c> over a <c>generateContentRequest</c> (system instruction and tools included).</summary>
    public async Task<int?> CountInputTokensAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var chat = new ChatCompletionRequest { Model = request.Model, Messages = ResponsesChatConverter.ToChatMessages(request) };
        if (request.Tools is { Count: > 0 } tools)
        {
            chat.Tools = [.. tools.Where(static t => t.Type == "function").Select(static t => new ChatCompletionTool { Type = "function", Function = new ChatFunctionDefinition { Name = t.Name, Description = t.Description, Parameters = t.Parameters } })];
        }

        var inner = GeminiRequestTranslator.Translate(chat, null, forCounting: true);
        inner.Model = "models/" + context.Model;
        var message = CreateRequest(context, HttpMethod.Post, ModelPath(context, "countTokens"), stream: false);
        message.Content = UpstreamClient.Json(new GeminiCountTokensRequest { GenerateContentRequest = inner }, GeminiJsonContext.Wire.GeminiCountTokensRequest);
        var counted = await _http.SendForJsonAsync(context, message, GeminiJsonContext.Wire.GeminiCountTokensResponse, cancellationToken).ConfigureAwait(false);
        return counted.TotalTokens;
    }

    /// <summary>The configured models, or every page of <c>GET models</c> (ids without the <c>models/</c> prefix).</summary>
    public async Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Options.Models.Count > 0)
        {
            return [.. context.Options.Models.Select(m => new ModelInfo { Id = m, OwnedBy = context.ProviderName })];
        }

        var models = new List<ModelInfo>();
        string? token = null;
        for (var page = 0; page < 100; page++)
        {
            var path = "models?pageSize=1000" + (token is null ? string.Empty : "&pageToken=" + Uri.EscapeDataString(token));
            var list = await _http.SendForJsonAsync(context, CreateRequest(context, HttpMethod.Get, path, stream: false), GeminiJsonContext.Wire.GeminiModelList, cancellationToken).ConfigureAwait(false);
            foreach (var model in list.Models ?? [])
            {
                if (string.IsNullOrEmpty(model.Name))
                {
                    continue;
                }

                var info = new ModelInfo { Id = model.Name.StartsWith("models/", StringComparison.Ordinal) ? model.Name["models/".Length..] : model.Name, OwnedBy = context.ProviderName };
                if (model.DisplayName is { } displayName)
                {
                    info.AdditionalProperties = new Dictionary<string, JsonElement> { ["display_name"] = JsonSerializer.SerializeToElement(displayName, GeminiJsonContext.Wire.String) };
                }

                models.Add(info);
            }

            if (string.IsNullOrEmpty(list.NextPageToken))
            {
                break;
            }

            token = list.NextPageToken;
        }

        return models;
    }

    private static GeminiEmbedRequest EmbedRequest(ProviderContext context, string text, int? dimensions, string? taskType, bool withModel) => new()
    {
        Model = withModel ? "models/" + context.Model : null,
        Content = new GeminiContent { Parts = [new GeminiPart { Text = text }] },
        OutputDimensionality = dimensions,
        TaskType = taskType,
    };

    /// <summary><c>models/{model}:{method}</c>, the model escaped as one path segment.</summary>
    private static string ModelPath(ProviderContext context, string method) => "models/" + Uri.EscapeDataString(context.Model) + ":" + method;

    /// <summary><c>{BaseUrl}/{path}</c> (BaseUrl includes the version, default <see cref="DefaultBaseUrl"/>).</summary>
    internal static Uri Endpoint(ProviderContext context, string path)
    {
        var baseUrl = string.IsNullOrWhiteSpace(context.Options.BaseUrl) ? DefaultBaseUrl : context.Options.BaseUrl.TrimEnd('/');
        return new Uri(baseUrl + "/" + path, UriKind.Absolute);
    }

    private HttpRequestMessage CreateRequest(ProviderContext context, HttpMethod method, string path, bool stream) =>
        _http.CreateRequest(context, method, Endpoint(context, path), stream);

    /// <summary>Google's error body → the Bifrost error (see <see cref="GeminiResponseTranslator.Error"/>).</summary>
    internal static BifrostException ParseError(UpstreamError answer)
    {
        GeminiErrorDetail? detail = null;
        try
        {
            var text = answer.Text.TrimStart();
            if (text.StartsWith('['))
            {
                // an error from the stream endpoint without alt=sse arrives as a one-element array
                text = text.TrimStart('[').TrimEnd().TrimEnd(']');
            }

            detail = JsonSerializer.Deserialize(text, GeminiJsonContext.Wire.GeminiErrorResponse)?.Error;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // not Google's error shape: the text is the message
        }

        return GeminiResponseTranslator.Error(answer.Status, detail, answer.Message, answer.RetryAfter);
    }

    internal static (GeminiResponse? Event, BifrostException? Failure) ParseEvent(ReadOnlySpan<byte> data)
    {
        var trimmed = data.Trim((byte)' ');
        if (trimmed.IsEmpty)
        {
            return default;
        }

        try
        {
            return (JsonSerializer.Deserialize(trimmed, GeminiJsonContext.Wire.GeminiResponse), null);
        }
        catch (JsonException ex)
        {
            return (null, UpstreamHttp.InvalidStreamEvent(ex));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1000, LogLevel.Warning, "Provider '{Provider}' ended a Gemini stream without a finish reason.")]
        public static partial void StreamEndedEarly(ILogger logger, string provider);

        [LoggerMessage(1001, LogLevel.Information, "Provider '{Provider}' blocked the prompt ({BlockReason}); answered with finish_reason content_filter.")]
        public static partial void PromptBlocked(ILogger logger, string provider, string blockReason);
    }
}
