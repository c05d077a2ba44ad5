using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Cohere;

/// <summary>
/// Adapter for Cohere's v2 API (type <c>cohere</c>): <c>POST {BaseUrl}/v2/chat</c> (JSON, or SSE with <c>stream: true</c>),
/// <c>POST /v2/embed</c>, <c>POST /v2/rerank</c> (for the rerank route) and <c>GET /v1/models</c>, with the key as
/// <c>Authorization: Bearer</c>. Text completions and a native Responses API do not exist at Cohere: the first answers
/// <c>unsupported_operation</c>, Responses requests run through chat completions.
/// </summary>
internal sealed partial class CohereAdapter(IHttpClientFactory httpClientFactory, TimeProvider time, ILogger<CohereAdapter> logger) : IProviderAdapter, IDisposable
{
    internal const string DefaultBaseUrl = "https://api.cohere.com";

    /// <summary><c>input_type</c> sent with embeddings when the request has none: OpenAI's API has no such field, and stored documents are the common case.</summary>
    internal const string DefaultInputType = "search_document";

    /// <summary>The adapter's named HttpClient (a host may configure it further by this name).</summary>
    internal const string HttpClientName = "Bifrost.Upstream.Cohere";

    private static readonly HashSet<string> InputTypes = new(StringComparer.Ordinal) { "search_document", "search_query", "classification", "clustering" };
    private readonly UpstreamClient _http = new(httpClientFactory, HttpClientName, time, UpstreamAuth.Bearer, ParseError);

    /// <summary>Registers the adapter's named client (<see cref="UpstreamClient.Register"/>).</summary>
    internal static void AddHttpClient(IServiceCollection services) => UpstreamClient.Register(services, HttpClientName);

    /// <summary>Releases the upstream client.</summary>
    public void Dispose() => _http.Dispose();

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var body = CohereRequestTranslator.Translate(request);
        body.Stream = null;
        var message = CreateRequest(context, HttpMethod.Post, "v2/chat", stream: false);
        message.Content = UpstreamClient.Json(body, CohereJsonContext.Wire.CohereChatRequest);
        var response = await _http.SendForJsonAsync(context, message, CohereJsonContext.Wire.CohereChatResponse, cancellationToken).ConfigureAwait(false);
        return CohereResponseTranslator.ToChat(response, context.Model, time.GetUtcNow().ToUnixTimeSeconds());
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var body = CohereRequestTranslator.Translate(request);
        body.Stream = true;
        using var deadline = _http.UntilFirstChunk(context, cancellationToken);
        using var message = CreateRequest(context, HttpMethod.Post, "v2/chat", stream: true);
        message.Content = UpstreamClient.Json(body, CohereJsonContext.Wire.CohereChatRequest);
        using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        var translator = new CohereStreamTranslator(context.Model, time.GetUtcNow().ToUnixTimeSeconds(), request.StreamOptions?.IncludeUsage == true);
        await foreach (var chunk in SseChatRelay.RelayAsync(response, deadline, static (eventType, data) => ParseEvent(eventType, data), translator).ConfigureAwait(false))
        {
            yield return chunk;
        }

        if (translator.Completed)
        {
            yield break; // nothing follows message-end
        }

        Log.StreamEndedEarly(logger, context.ProviderName);
        throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "incomplete_stream", $"Provider '{context.ProviderName}' ended the stream before message-end.");
    }

    /// <summary>
    /// <c>POST /v2/embed</c> with <c>embedding_types: ["float"]</c> (base64 is encoded by the gateway from the floats);
    /// <c>dimensions</c> → <c>output_dimension</c>; <c>input_type</c> from the request's own <c>input_type</c> field, else
    /// <see cref="DefaultInputType"/>; <c>truncate</c> and <c>max_tokens</c> are forwarded. Token-id input is refused.
    /// </summary>
    public async Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Input?.Texts is not { Count: > 0 } texts)
        {
            throw BifrostErrors.UnsupportedParameter("Cohere embeds text only: 'input' must be a string or an array of strings (token ids are not supported).", "input");
        }

        var body = new CohereEmbedRequest { Model = context.Model, Texts = [.. texts], InputType = DefaultInputType, OutputDimension = request.Dimensions };
        if (request.AdditionalProperties is { Count: > 0 } extra)
        {
            foreach (var (key, value) in extra)
            {
                if (key == "input_type")
                {
                    body.InputType = value.ValueKind == JsonValueKind.String && value.GetString() is { } inputType && InputTypes.Contains(inputType)
                        ? inputType
                        : throw BifrostErrors.InvalidValue("'input_type' must be search_document, search_query, classification or clustering.", "input_type");
                }
                else if (key is "truncate" or "max_tokens")
                {
                    (body.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))[key] = value;
                }
            }
        }

        var message = CreateRequest(context, HttpMethod.Post, "v2/embed", stream: false);
        message.Content = UpstreamClient.Json(body, CohereJsonContext.Wire.CohereEmbedRequest);
        var answer = await _http.SendForJsonAsync(context, message, CohereJsonContext.Wire.CohereEmbedResponse, cancellationToken).ConfigureAwait(false);
        var vectors = answer.Embeddings?.Float;
        if (vectors is null || vectors.Count != texts.Count)
        {
            throw UpstreamHttp.InvalidResponse(context, $"{vectors?.Count ?? 0} float embeddings for {texts.Count} inputs");
        }

        var data = new List<EmbeddingData>(vectors.Count);
        for (var i = 0; i < vectors.Count; i++)
        {
            data.Add(new EmbeddingData { Index = i, Embedding = new EmbeddingVector(vectors[i] ?? []) });
        }

        var tokens = (int)(answer.Meta?.Tokens?.InputTokens ?? answer.Meta?.BilledUnits?.InputTokens ?? 0);
        return new EmbeddingResponse { Data = data, Model = context.Model, Usage = new EmbeddingUsage { PromptTokens = tokens, TotalTokens = tokens } };
    }

    /// <summary>The rerank route (issue 17, J): <c>POST /v2/rerank</c>; documents come back from the request when <c>return_documents</c> asks.</summary>
    public async Task<RerankResponse> RerankAsync(ProviderContext context, RerankRequest request, CancellationToken cancellationToken)
    {
        var documents = Gateway.RerankInput.Read(request.Documents);
        var outcome = await RerankAsync(context, request.Query ?? string.Empty, documents, request.TopN, cancellationToken).ConfigureAwait(false);
        var response = new RerankResponse { Id = outcome.Id, Model = context.Model };
        foreach (var result in outcome.Results)
        {
            response.Results.Add(new RerankResult
            {
                Index = result.Index,
                RelevanceScore = result.RelevanceScore,
                Document = request.ReturnDocuments == true ? new RerankDocument { Text = documents[result.Index] } : null,
            });
        }

        return response;
    }

    /// <summary>
    /// Reranks <paramref name="documents"/> against <paramref name="query"/> with <c>POST /v2/rerank</c>: the results (index
    /// into <paramref name="documents"/>, relevance score), most relevant first (ties: lower index first), and the billed
    /// search units.
    /// </summary>
    internal async Task<CohereRerankOutcome> RerankAsync(ProviderContext context, string query, IReadOnlyList<string> documents, int? topN, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (string.IsNullOrWhiteSpace(query))
        {
            throw BifrostErrors.MissingParameter("'query' is required.", "query");
        }

        if (documents is not { Count: > 0 })
        {
            throw BifrostErrors.MissingParameter("'documents' must contain at least one document.", "documents");
        }

        if (topN is < 1)
        {
            throw BifrostErrors.InvalidValue("'top_n' must be at least 1.", "top_n");
        }

        var body = new CohereRerankRequest { Model = context.Model, Query = query, Documents = [.. documents], TopN = topN };
        var message = CreateRequest(context, HttpMethod.Post, "v2/rerank", stream: false);
        message.Content = UpstreamClient.Json(body, CohereJsonContext.Wire.CohereRerankRequest);
        var answer = await _http.SendForJsonAsync(context, message, CohereJsonContext.Wire.CohereRerankResponse, cancellationToken).ConfigureAwait(false);
        var results = new List<CohereRerankResult>(answer.Results?.Count ?? 0);
        foreach (var result in answer.Results ?? [])
        {
            if (result is null || result.Index < 0 || result.Index >= documents.Count)
            {
                throw UpstreamHttp.InvalidResponse(context, "a rerank result whose index is not one of the documents");
            }

            results.Add(result);
        }

        results.Sort(static (a, b) => b.RelevanceScore != a.RelevanceScore ? b.RelevanceScore.CompareTo(a.RelevanceScore) : a.Index.CompareTo(b.Index));
        return new CohereRerankOutcome(answer.Id, results, (int)(answer.Meta?.BilledUnits?.SearchUnits ?? 0));
    }

    /// <summary>The configured models, or every page of <c>GET /v1/models</c> (deprecated models left out).</summary>
    public async Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Options.Models.Count > 0)
        {
            return [.. context.Options.Models.Select(m => new ModelInfo { Id = m, OwnedBy = context.ProviderName })];
        }

        var models = new List<ModelInfo>();
        string? pageToken = null;
        for (var page = 0; page < 100; page++)
        {
            var path = "v1/models?page_size=1000" + (pageToken is null ? string.Empty : "&page_token=" + Uri.EscapeDataString(pageToken));
            var list = await _http.SendForJsonAsync(context, CreateRequest(context, HttpMethod.Get, path, stream: false), CohereJsonContext.Wire.CohereModelList, cancellationToken).ConfigureAwait(false);
            foreach (var model in list.Models ?? [])
            {
                if (string.IsNullOrEmpty(model.Name) || model.IsDeprecated == true)
                {
                    continue;
                }

                var info = new ModelInfo { Id = model.Name, OwnedBy = context.ProviderName };
                if (model.Endpoints is { Count: > 0 } endpoints)
                {
                    info.AdditionalProperties = new Dictionary<string, JsonElement> { ["endpoints"] = JsonSerializer.SerializeToElement(endpoints, CohereJsonContext.Wire.IListString) };
                }

                models.Add(info);
            }

            if (string.IsNullOrEmpty(list.NextPageToken) || list.NextPageToken == pageToken)
            {
                break;
            }

            pageToken = list.NextPageToken;
        }

        return models;
    }

    /// <summary><c>{BaseUrl}/{path}</c>, the path carrying its version (<c>v2/chat</c>, <c>v1/models</c>); a BaseUrl ending in <c>/v1</c> or <c>/v2</c> is cut back to its root.</summary>
    internal static Uri Endpoint(ProviderContext context, string path)
    {
        var baseUrl = string.IsNullOrWhiteSpace(context.Options.BaseUrl) ? DefaultBaseUrl : context.Options.BaseUrl.TrimEnd('/');
        if (baseUrl.EndsWith("/v1", StringComparison.OrdinalIgnoreCase) || baseUrl.EndsWith("/v2", StringComparison.OrdinalIgnoreCase))
        {
            baseUrl = baseUrl[..^3];
        }

        return new Uri(baseUrl + "/" + path, UriKind.Absolute);
    }

    private HttpRequestMessage CreateRequest(ProviderContext context, HttpMethod method, string path, bool stream) =>
        _http.CreateRequest(context, method, Endpoint(context, path), stream);

    /// <summary>
    /// Cohere's status and <c>message</c> passed through (https://docs.cohere.com/errors-reference), with its Retry-After;
    /// 498 (invalid token) is a 401; a 400 about too many tokens has the code <c>context_length_exceeded</c>.
    /// </summary>
    internal static BifrostException ParseError(UpstreamError answer)
    {
        string? message = null;
        try
        {
            message = JsonSerializer.Deserialize(answer.Text, CohereJsonContext.Wire.CohereError)?.Message;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // not Cohere's error shape: the text is the message
        }

        message = string.IsNullOrWhiteSpace(message) ? answer.Message : message;
        var status = answer.Status == 498 ? 401 : answer.Status;
        var code = status == 400 && message.Contains("too many tokens", StringComparison.OrdinalIgnoreCase) ? "context_length_exceeded" : null;
        return BifrostErrors.ProviderError(status, null, code, message, null, answer.RetryAfter);
    }

    private static (CohereStreamEvent? Event, BifrostException? Failure) ParseEvent(string eventType, ReadOnlySpan<byte> data)
    {
        var trimmed = data.Trim((byte)' ');
        if (trimmed.IsEmpty)
        {
            return default;
        }

        try
        {
            var evt = JsonSerializer.Deserialize(trimmed, CohereJsonContext.Wire.CohereStreamEvent);
            if (evt is not null && string.IsNullOrEmpty(evt.Type) && eventType != SseParser.EventTypeDefault)
            {
                evt.Type = eventType;
            }

            return (evt, null);
        }
        catch (JsonException ex)
        {
            return (null, UpstreamHttp.InvalidStreamEvent(ex));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1020, LogLevel.Warning, "Provider '{Provider}' ended a Cohere chat stream without message-end.")]
        public static partial void StreamEndedEarly(ILogger logger, string provider);
    }
}

/// <summary>A rerank's answer: Cohere's id, the results most relevant first, and the billed search units.</summary>
internal sealed record CohereRerankOutcome(string? Id, IReadOnlyList<CohereRerankResult> Results, int SearchUnits);
