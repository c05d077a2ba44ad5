using System.Runtime.CompilerServices;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Providers.Http;
using Bifrost.Middleware.Responses;

namespace Bifrost.Middleware.Providers.Anthropic;

/// <summary>
/// Adapter for Anthropic's Messages API (type <c>anthropic</c>): <c>POST {BaseUrl}/v1/messages</c> (JSON or SSE),
/// <c>POST /v1/messages/count_tokens</c>, <c>GET /v1/models</c> and the Message Batches API, with the key in
/// <c>x-api-key</c> and <c>anthropic-version: 2023-06-01</c> (both overridable through the provider's headers).
/// Chat completions are translated both ways (see <c>docs/anthropic.md</c> for the field mapping).
/// </summary>
internal sealed partial class AnthropicAdapter(IHttpClientFactory httpClientFactory, TimeProvider time, ILogger<AnthropicAdapter> logger) : IProviderAdapter, IDisposable
{
    internal const string DefaultBaseUrl = "https://api.anthropic.com";
    internal const string ApiVersion = "2023-06-01";

    /// <summary>The adapter's named HttpClient (a host may configure it further by this name).</summary>
    internal const string HttpClientName = "Bifrost.Upstream.Anthropic";

    private static readonly UpstreamAuth Auth = new("x-api-key", [new("anthropic-version", ApiVersion)]);
    private readonly UpstreamClient _http = new(httpClientFactory, HttpClientName, time, Auth, ParseError);

    /// <summary>Registers the adapter's named client (<see cref="UpstreamClient.Register"/>).</summary>
    internal static void AddHttpClient(IServiceCollection services) => UpstreamClient.Register(services, HttpClientName);

    /// <summary>Releases the upstream client.</summary>
    public void Dispose() => _http.Dispose();

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var body = AnthropicRequestTranslator.Translate(request, MaxTokens(context));
        body.Stream = null;
        var message = await PostAsync(context, "messages", body, AnthropicJsonContext.Wire.AnthropicResponse, cancellationToken).ConfigureAwait(false);
        return AnthropicResponseTranslator.ToChat(message, time.GetUtcNow().ToUnixTimeSeconds());
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var body = AnthropicRequestTranslator.Translate(request, MaxTokens(context));
        body.Stream = true;
        using var deadline = _http.UntilFirstChunk(context, cancellationToken);
        using var message = CreateRequest(context, HttpMethod.Post, "messages", stream: true);
        message.Content = UpstreamClient.Json(body, AnthropicJsonContext.Wire.AnthropicRequest);
        using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        var translator = new AnthropicStreamTranslator(context.Model, time.GetUtcNow().ToUnixTimeSeconds(), request.StreamOptions?.IncludeUsage == true);
        await foreach (var chunk in SseChatRelay.RelayAsync(response, deadline, static (eventType, data) => ParseEvent(eventType, data), translator).ConfigureAwait(false))
        {
            yield return chunk;
        }

        if (translator.Completed)
        {
            yield break; // nothing follows message_stop
        }

        Log.StreamEndedEarly(logger, context.ProviderName);
        throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "incomplete_stream", $"Provider '{context.ProviderName}' ended the stream before message_stop.");
    }

    /// <summary>Counts with <c>/v1/messages/count_tokens</c>: the Responses request becomes chat messages, then Messages params.</summary>
    public async Task<int?> CountInputTokensAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var chat = new ChatCompletionRequest
        {
            Model = request.Model,
            Messages = ResponsesChatConverter.ToChatMessages(request),
            ReasoningEffort = request.Reasoning?.Effort,
        };
        if (request.Tools is { Count: > 0 } tools)
        {
            chat.Tools = [.. tools.Where(static t => t.Type == "function").Select(static t => new ChatCompletionTool { Type = "function", Function = new ChatFunctionDefinition { Name = t.Name, Description = t.Description, Parameters = t.Parameters } })];
        }

        var body = AnthropicRequestTranslator.Translate(chat, MaxTokens(context), forCounting: true);
        var counted = await PostAsync(context, "messages/count_tokens", body, AnthropicJsonContext.Wire.AnthropicCountTokensResponse, cancellationToken).ConfigureAwait(false);
        return counted.InputTokens;
    }

    /// <summary>The configured models, or every page of <c>GET /v1/models</c>.</summary>
    public async Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Options.Models.Count > 0)
        {
            return [.. context.Options.Models.Select(m => new ModelInfo { Id = m, OwnedBy = context.ProviderName })];
        }

        var models = new List<ModelInfo>();
        string? after = null;
        for (var page = 0; page < 100; page++)
        {
            var path = "models?limit=1000" + (after is null ? string.Empty : "&after_id=" + Uri.EscapeDataString(after));
            var list = await GetAsync(context, path, AnthropicJsonContext.Wire.AnthropicModelList, cancellationToken).ConfigureAwait(false);
            foreach (var model in list.Data)
            {
                if (string.IsNullOrEmpty(model.Id))
                {
                    continue;
                }

                var info = new ModelInfo { Id = model.Id, OwnedBy = context.ProviderName, Created = model.CreatedAt?.ToUnixTimeSeconds() ?? 0 };
                if (model.DisplayName is { } displayName)
                {
                    info.AdditionalProperties = new Dictionary<string, JsonElement> { ["display_name"] = JsonSerializer.SerializeToElement(displayName, AnthropicJsonContext.Wire.String) };
                }

                models.Add(info);
            }

            if (!list.HasMore || string.IsNullOrEmpty(list.LastId))
            {
                break;
            }

            after = list.LastId;
        }

        return models;
    }

    private static int MaxTokens(ProviderContext context) => context.Options.DefaultMaxTokens ?? AnthropicRequestTranslator.DefaultMaxTokens;

    private Task<TResponse> PostAsync<TResponse>(ProviderContext context, string path, AnthropicRequest body, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
        where TResponse : class
    {
        var message = CreateRequest(context, HttpMethod.Post, path, stream: false);
        message.Content = UpstreamClient.Json(body, AnthropicJsonContext.Wire.AnthropicRequest);
        return _http.SendForJsonAsync(context, message, responseType, cancellationToken);
    }

    private Task<TResponse> GetAsync<TResponse>(ProviderContext context, string path, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
        where TResponse : class =>
        _http.SendForJsonAsync(context, CreateRequest(context, HttpMethod.Get, path, stream: false), responseType, cancellationToken);

    /// <summary><c>{BaseUrl}/v1/{path}</c>; a BaseUrl that already ends in <c>/v1</c> is used as is.</summary>
    internal static Uri Endpoint(ProviderContext context, string path)
    {
        var baseUrl = string.IsNullOrWhiteSpace(context.Options.BaseUrl) ? DefaultBaseUrl : context.Options.BaseUrl.TrimEnd('/');
        if (!baseUrl.EndsWith("/v1", StringComparison.OrdinalIgnoreCase))
        {
            baseUrl += "/v1";
        }

        return new Uri(baseUrl + "/" + path, UriKind.Absolute);
    }

    private HttpRequestMessage CreateRequest(ProviderContext context, HttpMethod method, string path, bool stream) =>
        _http.CreateRequest(context, method, Endpoint(context, path), stream);

    /// <summary>Passes Anthropic's status, error type and message through (<c>{"type":"error","error":{"type","message"}}</c>), with its Retry-After.</summary>
    internal static BifrostException ParseError(UpstreamError answer)
    {
        AnthropicErrorDetail? detail = null;
        try
        {
            detail = JsonSerializer.Deserialize(answer.Text, AnthropicJsonContext.Wire.AnthropicErrorResponse)?.Error;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // not Anthropic's error shape (or not valid UTF-16): the text is the message
        }

        return AnthropicResponseTranslator.Error(answer.Status, detail, answer.Message, answer.RetryAfter);
    }

    internal static (AnthropicStreamEvent? Event, BifrostException? Failure) ParseEvent(string eventType, ReadOnlySpan<byte> data)
    {
        var trimmed = data.Trim((byte)' ');
        if (trimmed.IsEmpty)
        {
            return default;
        }

        try
        {
            var evt = JsonSerializer.Deserialize(trimmed, AnthropicJsonContext.Wire.AnthropicStreamEvent);
            if (evt is not null)
            {
                evt.Type ??= eventType;
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
        [LoggerMessage(700, LogLevel.Warning, "Provider '{Provider}' ended a Messages stream without message_stop.")]
        public static partial void StreamEndedEarly(ILogger logger, string provider);

        [LoggerMessage(701, LogLevel.Warning, "Provider '{Provider}' sent a batch result line that could not be read; it is skipped.")]
        public static partial void UnreadableResultLine(ILogger logger, string provider, Exception exception);
    }
}
