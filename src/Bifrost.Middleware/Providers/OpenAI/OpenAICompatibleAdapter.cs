using System.Net;
using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Bifrost.Middleware.Serialization;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.Timeout;

namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>
/// Adapter for OpenAI and every server speaking its HTTP protocol (Azure OpenAI v1, Groq, Together, vLLM,
/// Ollama, LM Studio, ...): <c>POST {BaseUrl}/chat/completions</c> (JSON or SSE) and <c>GET {BaseUrl}/models</c>.
/// Requests are forwarded with every field the caller sent, including ones the gateway does not model.
/// </summary>
internal sealed partial class OpenAICompatibleAdapter(IHttpClientFactory httpClientFactory, TimeProvider time) : IProviderAdapter, IDisposable
{
    internal const string HttpClientName = "Bifrost.Upstream";
    private static readonly HttpRequestOptionsKey<TimeSpan> TimeoutKey = new("Bifrost.AttemptTimeout");
    private static readonly MediaTypeHeaderValue JsonMediaType = new("application/json");
    private static readonly MediaTypeWithQualityHeaderValue AcceptJson = new("application/json");
    private static readonly MediaTypeWithQualityHeaderValue AcceptEventStream = new("text/event-stream");
    private HttpMessageInvoker? _invoker;
    private HttpClient? _client;

    /// <summary>
    /// One named client for all upstreams: no HttpClient timeout — each attempt is timed by a Microsoft.Extensions.Http.Resilience
    /// timeout strategy with the provider's <see cref="ProviderOptions.Timeout"/> (10 minutes by default: raised for LLM calls);
    /// retries and fallbacks are the gateway's (one loop for every adapter, honouring Retry-After, never after a streamed
    /// byte). No redirects, no cookies, no logging of URLs.
    /// </summary>
    internal static void AddHttpClient(IServiceCollection services)
    {
        services.AddHttpClient(HttpClientName, static client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(static () => new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                UseCookies = false,
                UseProxy = true,
                AutomaticDecompression = DecompressionMethods.None,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
                ConnectTimeout = TimeSpan.FromSeconds(15),
                MaxConnectionsPerServer = int.MaxValue,
            })
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan)
            .RemoveAllLoggers()
            .AddHttpMessageHandler(static () => new UpstreamTextHandler())
            .AddResilienceHandler("bifrost-upstream", static builder => builder.AddTimeout(new HttpTimeoutStrategyOptions
            {
                // Per provider: ProviderOptions.Timeout, carried on the request message.
                TimeoutGenerator = static args =>
                    new ValueTask<TimeSpan>(args.Context.GetRequestMessage() is { } message && message.Options.TryGetValue(TimeoutKey, out var timeout) ? timeout : TimeSpan.FromMinutes(10)),
            }));
    }

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        using var message = CreateRequest(context, HttpMethod.Post, "chat/completions", stream: false);
        message.Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(request, BifrostJson.Context.ChatCompletionRequest)) { Headers = { ContentType = JsonMediaType } };
        using var response = await SendAsync(context, message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw await ReadErrorAsync(response, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return await BufferedJson.DeserializeAsync(body, response.Content.Headers.ContentLength, BifrostJson.Context.ChatCompletionResponse, cancellationToken).ConfigureAwait(false)
                ?? throw InvalidResponse(context, "an empty body");
        }
        catch (JsonException ex)
        {
            throw InvalidResponse(context, $"invalid JSON ({ex.Message})");
        }
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // The attempt's timeout lasts until the stream starts: a server may send its headers at once and then stall
        // before the first chunk. Once a chunk has arrived, the stream may take as long as it takes.
        using var untilFirstChunk = new CancellationTokenSource(context.Options.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, untilFirstChunk.Token);
        using var message = CreateRequest(context, HttpMethod.Post, "chat/completions", stream: true);
        message.Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(request, BifrostJson.Context.ChatCompletionRequest)) { Headers = { ContentType = JsonMediaType } };
        using var response = await SendAsync(context, message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw await ReadErrorAsync(response, cancellationToken).ConfigureAwait(false);
        }

        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is not null && mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            // Some servers ignore "stream": true; relay their one JSON answer as a stream would have carried it.
            ChatCompletionResponse? whole;
            try
            {
                await using var json = await response.Content.ReadAsStreamAsync(linked.Token).ConfigureAwait(false);
                whole = await JsonSerializer.DeserializeAsync(json, BifrostJson.Context.ChatCompletionResponse, linked.Token).ConfigureAwait(false);
            }
            catch (JsonException ex)
            {
                throw InvalidResponse(context, $"invalid JSON ({ex.Message})");
            }

            foreach (var chunk in ChunksOf(whole ?? throw InvalidResponse(context, "an empty body"), request.StreamOptions?.IncludeUsage == true))
            {
                yield return chunk;
            }

            yield break;
        }

        await using var body = await response.Content.ReadAsStreamAsync(linked.Token).ConfigureAwait(false);
        var parser = SseParser.Create(body, static (eventType, data) => UpstreamEvent.Parse(eventType, data));
        await foreach (var item in parser.EnumerateAsync(linked.Token).ConfigureAwait(false))
        {
            var evt = item.Data;
            if (evt.Done)
            {
                yield break;
            }

            if (evt.Error is not null)
            {
                throw evt.Error;
            }

            if (evt.Chunk is not null)
            {
                untilFirstChunk.CancelAfter(Timeout.InfiniteTimeSpan);
                yield return evt.Chunk;
            }
        }
    }

    public async Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        if (context.Options.Models.Count > 0)
        {
            return [.. context.Options.Models.Select(m => new ModelInfo { Id = m, OwnedBy = context.ProviderName })];
        }

        using var message = CreateRequest(context, HttpMethod.Get, "models", stream: false);
        using var response = await SendAsync(context, message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw await ReadErrorAsync(response, cancellationToken).ConfigureAwait(false);
        }

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var list = await JsonSerializer.DeserializeAsync(body, BifrostJson.Context.ModelList, cancellationToken).ConfigureAwait(false);
        return list?.Data is { } data ? [.. data] : [];
    }

    private static HttpRequestMessage CreateRequest(ProviderContext context, HttpMethod method, string path, bool stream)
    {
        var uri = Endpoints.For(context, path);
        var message = new HttpRequestMessage(method, uri);
        message.Headers.Accept.Add(stream ? AcceptEventStream : AcceptJson);
        foreach (var (name, value) in context.Options.Headers)
        {
            message.Headers.TryAddWithoutValidation(name, value);
        }

        if (context.ApiKey is { Length: > 0 } key)
        {
            if (string.Equals(context.Options.AuthHeader, "Authorization", StringComparison.OrdinalIgnoreCase))
            {
                message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            }
            else
            {
                message.Headers.TryAddWithoutValidation(context.Options.AuthHeader, key);
            }
        }

        return message;
    }

    /// <summary>
    /// Sends one attempt. The provider's <see cref="ProviderOptions.Timeout"/> (on the injected <see cref="TimeProvider"/>)
    /// bounds the time until the response headers arrive; the caller's token cancels it at any time.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<HttpResponseMessage> SendAsync(ProviderContext context, HttpRequestMessage message, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        var invoker = _invoker ?? CreateInvoker();
        message.Options.Set(TimeoutKey, context.Options.Timeout);
        try
        {
            // The named client's handler pipeline (with its resilience timeout) returns once the headers are read (the content
            // is not buffered), as HttpClient does with ResponseHeadersRead; through HttpClient only when the factory cannot
            // give the handler.
            return await (_client is { } client ? client.SendAsync(message, completion, cancellationToken) : invoker.SendAsync(message, cancellationToken)).ConfigureAwait(false);
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

    /// <summary>
    /// The named client's handler pipeline (primary handler and any handlers added to the named client), called through an
    /// <see cref="HttpMessageInvoker"/>: HttpClient's own layer (a linked CancellationTokenSource and a state machine per
    /// request) adds nothing here, since its timeout is infinite and every request is built by this adapter. The handler
    /// never expires (SetHandlerLifetime(Infinite); SocketsHttpHandler recycles its connections), so it is kept; a race
    /// only creates a second invoker over the same handler.
    /// </summary>
    private HttpMessageInvoker CreateInvoker()
    {
        if (httpClientFactory is IHttpMessageHandlerFactory handlers)
        {
            return _invoker = new HttpMessageInvoker(handlers.CreateHandler(HttpClientName), disposeHandler: false);
        }

        return _invoker = _client = httpClientFactory.CreateClient(HttpClientName);
    }

    /// <summary>Releases the invoker (the handler itself belongs to the factory).</summary>
    public void Dispose() => _invoker?.Dispose();

    /// <summary>Passes the provider's status and message through; understands OpenAI's error object and the common variants.</summary>
    private async Task<BifrostException> ReadErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        var retryAfter = ParseRetryAfter(response);
        var text = await UpstreamHttp.ReadErrorTextAsync(response, cancellationToken).ConfigureAwait(false);

        string? type = null, code = null, param = null, message = null;
        try
        {
            using var document = JsonDocument.Parse(text);
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

        if (string.IsNullOrWhiteSpace(message))
        {
            message = string.IsNullOrWhiteSpace(text) ? $"Provider answered {status} {response.ReasonPhrase}." : text.Trim();
        }

        return BifrostException.Provider(status, type, code, message, param, retryAfter);
    }

    private static string? AsString(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value)
            ? value.ValueKind switch
            {
                JsonValueKind.String => value.GetString(),
                JsonValueKind.Number => value.GetRawText(),
                _ => null,
            }
            : null;

    private TimeSpan? ParseRetryAfter(HttpResponseMessage response) => UpstreamHttp.ParseRetryAfter(response, time);

    /// <summary>A whole completion as the chunks a stream would have carried: role, content, finish, then usage when asked.</summary>
    internal static IEnumerable<ChatCompletionChunk> ChunksOf(ChatCompletionResponse response, bool includeUsage)
    {
        foreach (var choice in response.Choices)
        {
            ChatCompletionChunk Chunk(ChatDelta delta, string? finish) => new()
            {
                Id = response.Id,
                Created = response.Created,
                Model = response.Model,
                SystemFingerprint = response.SystemFingerprint,
                Choices = [new ChatChunkChoice { Index = choice.Index, Delta = delta, FinishReason = finish }],
            };

            yield return Chunk(new ChatDelta { Role = "assistant", Content = string.Empty }, null);
            var message = choice.Message;
            if (message?.Content is { Length: > 0 } || message?.Refusal is not null || message?.ToolCalls is { Count: > 0 })
            {
                var calls = message.ToolCalls?.Select((call, index) => new ChatToolCall { Index = index, Id = call.Id, Type = call.Type ?? "function", Function = call.Function }).ToList();
                yield return Chunk(new ChatDelta { Content = message.Content, Refusal = message.Refusal, ToolCalls = calls }, null);
            }

            yield return Chunk(new ChatDelta(), choice.FinishReason ?? "stop");
        }

        if (includeUsage && response.Usage is not null)
        {
            yield return new ChatCompletionChunk { Id = response.Id, Created = response.Created, Model = response.Model, Usage = response.Usage };
        }
    }

    private static BifrostException InvalidResponse(ProviderContext context, string what) =>
        BifrostException.Provider(502, "api_error", "invalid_provider_response", $"Provider '{context.ProviderName}' returned {what}.");

    /// <summary>
    /// The absolute upstream URIs of a provider, parsed once per <see cref="ProviderOptions"/> instance (and again only
    /// if its BaseUrl is changed) instead of once per request.
    /// </summary>
    private sealed class Endpoints
    {
        private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ProviderOptions, Endpoints> Cache = new();

        private Endpoints(string baseUrl)
        {
            BaseUrl = baseUrl;
            ChatCompletions = Create(baseUrl, "chat/completions");
            Models = Create(baseUrl, "models");
        }

        private string BaseUrl { get; }

        private Uri ChatCompletions { get; }

        private Uri Models { get; }

        public static Uri For(ProviderContext context, string path)
        {
            var baseUrl = context.Options.BaseUrl ?? throw new InvalidOperationException($"Provider '{context.ProviderName}' has no BaseUrl.");
            if (!Cache.TryGetValue(context.Options, out var endpoints) || !ReferenceEquals(endpoints.BaseUrl, baseUrl))
            {
                endpoints = new Endpoints(baseUrl);
                Cache.AddOrUpdate(context.Options, endpoints);
            }

            return path switch
            {
                "chat/completions" => endpoints.ChatCompletions,
                "models" => endpoints.Models,
                _ => Create(baseUrl, path),
            };
        }

        private static Uri Create(string baseUrl, string path) =>
            new(baseUrl.EndsWith('/') ? baseUrl + path : baseUrl + "/" + path, UriKind.Absolute);
    }

    /// <summary>One parsed upstream SSE event: a chunk, the [DONE] marker, or an error event.</summary>
    private readonly struct UpstreamEvent
    {
        public ChatCompletionChunk? Chunk { get; init; }

        public bool Done { get; init; }

        public BifrostException? Error { get; init; }

        public static UpstreamEvent Parse(string eventType, ReadOnlySpan<byte> data)
        {
            var trimmed = data.Trim((byte)' ');
            if (trimmed.SequenceEqual("[DONE]"u8))
            {
                return new UpstreamEvent { Done = true };
            }

            if (trimmed.IsEmpty)
            {
                return default;
            }

            ChatCompletionChunk? chunk;
            try
            {
                chunk = JsonSerializer.Deserialize(trimmed, BifrostJson.Context.ChatCompletionChunk);
            }
            catch (JsonException ex)
            {
                return new UpstreamEvent { Error = BifrostException.Provider(502, "api_error", "invalid_provider_response", $"Provider sent an invalid stream event ({ex.Message}).") };
            }

            if (chunk?.AdditionalProperties is { } extra && extra.TryGetValue("error", out var error) && (chunk.Choices.Count == 0 || eventType == "error"))
            {
                var message = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : error.ToString();
                var type = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                var code = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                var status = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("status_code", out var s) && s.TryGetInt32(out var sc) ? sc : 500;
                return new UpstreamEvent { Error = BifrostException.Provider(status, type, code, message ?? "Provider stream failed.") };
            }

            return new UpstreamEvent { Chunk = chunk };
        }
    }
}
