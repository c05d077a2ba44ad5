using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Providers.OpenAI;
using Bifrost.Middleware.Responses;
using Microsoft.Extensions.Logging;
using Polly.Timeout;

namespace Bifrost.Middleware.Providers.Anthropic;

/// <summary>
/// Adapter for Anthropic's Messages API (type <c>anthropic</c>): <c>POST {BaseUrl}/v1/messages</c> (JSON or SSE),
/// <c>POST /v1/messages/count_tokens</c>, <c>GET /v1/models</c> and the Message Batches API, with the key in
/// <c>x-api-key</c> and <c>anthropic-version: 2023-06-01</c> (both overridable through the provider's headers).
/// Chat completions are translated both ways (see <c>docs/anthropic.md</c> for the field mapping).
/// </summary>
internal sealed partial class AnthropicAdapter(IHttpClientFactory httpClientFactory, TimeProvider time, ILogger<AnthropicAdapter> logger) : IProviderAdapter
{
    internal const string DefaultBaseUrl = "https://api.anthropic.com";
    internal const string ApiVersion = "2023-06-01";

    // The same option key the upstream client's resilience pipeline reads (keys compare by name).
    private static readonly HttpRequestOptionsKey<TimeSpan> TimeoutKey = new("Bifrost.AttemptTimeout");
    private static readonly MediaTypeHeaderValue JsonMediaType = new("application/json");
    private static readonly MediaTypeWithQualityHeaderValue AcceptJson = new("application/json");
    private static readonly MediaTypeWithQualityHeaderValue AcceptEventStream = new("text/event-stream");

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
        using var message = CreateRequest(context, HttpMethod.Post, "messages", stream: true);
        message.Content = Json(body, AnthropicJsonContext.Wire.AnthropicRequest);
        using var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw await ReadErrorAsync(response, cancellationToken).ConfigureAwait(false);
        }

        var translator = new AnthropicStreamTranslator(context.Model, time.GetUtcNow().ToUnixTimeSeconds(), request.StreamOptions?.IncludeUsage == true);
        var chunks = new List<ChatCompletionChunk>(4);
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var parser = SseParser.Create(stream, static (eventType, data) => ParseEvent(eventType, data));
        await foreach (var item in parser.EnumerateAsync(cancellationToken).ConfigureAwait(false))
        {
            if (item.Data.Failure is { } failure)
            {
                throw failure;
            }

            if (item.Data.Event is not { } evt)
            {
                continue;
            }

            chunks.Clear();
            translator.Translate(evt, chunks);
            foreach (var chunk in chunks)
            {
                yield return chunk;
            }

            if (translator.Completed)
            {
                yield break; // nothing follows message_stop
            }
        }

        Log.StreamEndedEarly(logger, context.ProviderName);
        throw BifrostException.Provider(502, "api_error", "incomplete_stream", $"Provider '{context.ProviderName}' ended the stream before message_stop.");
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
            chat.Tools = [.. tools.Where(static t => t.Type == "function").Select(static t => new ChatTool { Type = "function", Function = new ChatFunctionDefinition { Name = t.Name, Description = t.Description, Parameters = t.Parameters } })];
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

    private async Task<TResponse> PostAsync<TResponse>(ProviderContext context, string path, AnthropicRequest body, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
        where TResponse : class
    {
        using var message = CreateRequest(context, HttpMethod.Post, path, stream: false);
        message.Content = Json(body, AnthropicJsonContext.Wire.AnthropicRequest);
        return await ReadAsync(context, message, responseType, cancellationToken).ConfigureAwait(false);
    }

    private async Task<TResponse> GetAsync<TResponse>(ProviderContext context, string path, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
        where TResponse : class
    {
        using var message = CreateRequest(context, HttpMethod.Get, path, stream: false);
        return await ReadAsync(context, message, responseType, cancellationToken).ConfigureAwait(false);
    }

    private async Task<TResponse> ReadAsync<TResponse>(ProviderContext context, HttpRequestMessage message, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
        where TResponse : class
    {
        using var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw await ReadErrorAsync(response, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync(stream, responseType, cancellationToken).ConfigureAwait(false)
                ?? throw InvalidResponse(context, "an empty body");
        }
        catch (JsonException ex)
        {
            throw InvalidResponse(context, $"invalid JSON ({ex.Message})");
        }
    }

    private static ByteArrayContent Json<T>(T body, JsonTypeInfo<T> type) =>
        new(JsonSerializer.SerializeToUtf8Bytes(body, type)) { Headers = { ContentType = JsonMediaType } };

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

    private static HttpRequestMessage CreateRequest(ProviderContext context, HttpMethod method, string path, bool stream) =>
        CreateRequest(context, method, Endpoint(context, path), stream);

    private static HttpRequestMessage CreateRequest(ProviderContext context, HttpMethod method, Uri uri, bool stream)
    {
        var message = new HttpRequestMessage(method, uri);
        message.Headers.Accept.Add(stream ? AcceptEventStream : AcceptJson);
        if (!context.Options.Headers.ContainsKey("anthropic-version"))
        {
            message.Headers.TryAddWithoutValidation("anthropic-version", ApiVersion);
        }

        foreach (var (name, value) in context.Options.Headers)
        {
            message.Headers.TryAddWithoutValidation(name, value);
        }

        if (context.ApiKey is { Length: > 0 } key)
        {
            // Anthropic reads the key from x-api-key; AuthHeader names another header only when it is not the default.
            var header = string.Equals(context.Options.AuthHeader, "Authorization", StringComparison.OrdinalIgnoreCase) ? "x-api-key" : context.Options.AuthHeader;
            message.Headers.TryAddWithoutValidation(header, key);
        }

        message.Options.Set(TimeoutKey, context.Options.Timeout);
        return message;
    }

    private async Task<HttpResponseMessage> SendAsync(ProviderContext context, HttpRequestMessage message, CancellationToken cancellationToken)
    {
        var client = httpClientFactory.CreateClient(OpenAICompatibleAdapter.HttpClientName);
        try
        {
            return await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException ex)
        {
            throw new BifrostException(
                new BifrostError { StatusCode = 504, Error = new BifrostErrorDetail { Type = "api_error", Code = "provider_timeout", Message = $"Provider '{context.ProviderName}' did not answer within {context.Options.Timeout}." } },
                ex)
            { IsRetryable = true };
        }
        catch (HttpRequestException ex)
        {
            throw new BifrostException(
                new BifrostError { StatusCode = 502, Error = new BifrostErrorDetail { Type = "api_error", Code = "provider_unreachable", Message = $"Provider '{context.ProviderName}' could not be reached: {ex.Message}" } },
                ex)
            { IsRetryable = true };
        }
    }

    /// <summary>Passes Anthropic's status, error type and message through (<c>{"type":"error","error":{"type","message"}}</c>), with its Retry-After.</summary>
    private async Task<BifrostException> ReadErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        var retryAfter = ParseRetryAfter(response);
        var text = await UpstreamHttp.ReadErrorTextAsync(response, cancellationToken).ConfigureAwait(false);

        AnthropicErrorDetail? detail = null;
        try
        {
            detail = JsonSerializer.Deserialize(text, AnthropicJsonContext.Wire.AnthropicErrorResponse)?.Error;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // not Anthropic's error shape (or not valid UTF-16): the text is the message
        }

        var fallback = string.IsNullOrWhiteSpace(text) ? $"Provider answered {status} {response.ReasonPhrase}." : text.Trim();
        return AnthropicResponseTranslator.Error(status, detail, fallback, retryAfter);
    }

    private TimeSpan? ParseRetryAfter(HttpResponseMessage response) => UpstreamHttp.ParseRetryAfter(response, time);

    private static BifrostException InvalidResponse(ProviderContext context, string what) =>
        BifrostException.Provider(502, "api_error", "invalid_provider_response", $"Provider '{context.ProviderName}' returned {what}.");

    private static (AnthropicStreamEvent? Event, BifrostException? Failure) ParseEvent(string eventType, ReadOnlySpan<byte> data)
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
            return (null, BifrostException.Provider(502, "api_error", "invalid_provider_response", $"Provider sent an invalid stream event ({ex.Message})."));
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
