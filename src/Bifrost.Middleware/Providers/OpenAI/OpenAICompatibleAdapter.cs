using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Providers.Http;
using Bifrost.Middleware.Providers.OpenAI.Presets;

namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>
/// Adapter for OpenAI and every server speaking its HTTP protocol (Azure OpenAI v1, Groq, Together, vLLM,
/// Ollama, LM Studio, ...): <c>POST {BaseUrl}/chat/completions</c> (JSON or SSE) and <c>GET {BaseUrl}/models</c>.
/// Requests are forwarded with every field the caller sent, including ones the gateway does not model.
/// </summary>
internal sealed partial class OpenAICompatibleAdapter : IProviderAdapter, IDisposable
{
    /// <summary>The adapter's named HttpClient (a host may configure it further by this name).</summary>
    internal const string HttpClientName = "Bifrost.Upstream";

    private readonly UpstreamClient _http;

    /// <summary>True for type <c>azure</c>: Azure's URLs, deployments, <c>api-key</c> and errors (<see cref="Azure.AzureOpenAI"/>).</summary>
    private readonly bool _azure;

    /// <summary>The adapter of types <c>openai</c> and <c>openai-compatible</c>.</summary>
    public OpenAICompatibleAdapter(IHttpClientFactory httpClientFactory, TimeProvider time)
        : this(httpClientFactory, time, azure: false)
    {
    }

    private OpenAICompatibleAdapter(IHttpClientFactory httpClientFactory, TimeProvider time, bool azure)
    {
        _azure = azure;
        _http = azure
            ? new(httpClientFactory, HttpClientName, time, Azure.AzureOpenAI.Auth, Azure.AzureOpenAI.ParseError)
            : new(httpClientFactory, HttpClientName, time, UpstreamAuth.Bearer, answer => Preset is null ? UpstreamHttp.FromErrorObject(answer) : PresetErrors.Parse(answer));
    }

    /// <summary>The adapter of type <c>azure</c>.</summary>
    internal static OpenAICompatibleAdapter ForAzure(IServiceProvider services) =>
        new(services.GetRequiredService<IHttpClientFactory>(), services.GetRequiredService<TimeProvider>(), azure: true);

    /// <summary>Registers the adapter's named client (<see cref="UpstreamClient.Register"/>).</summary>
    internal static void AddHttpClient(IServiceCollection services) => UpstreamClient.Register(services, HttpClientName);

    /// <summary>The named preset this instance serves (<c>Type: groq</c>, ...): its default base URL and quirks; null for <c>openai</c>.</summary>
    internal OpenAIPreset? Preset { get; init; }

    /// <summary>Told what a preset changed in a request (field names only).</summary>
    internal Action<ProviderContext, OpenAIPreset, IReadOnlyList<string>>? PresetChanged { get; init; }

    public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) =>
        Preset is null
            ? _http.SendForJsonAsync(context, ChatRequest(context, request, stream: false), BifrostJson.Context.ChatCompletionResponse, cancellationToken)
            : PresetChatCompletionAsync(context, request, cancellationToken);

    private async Task<ChatCompletionResponse> PresetChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        var response = await _http.SendForJsonAsync(context, ChatRequest(context, request, stream: false), BifrostJson.Context.ChatCompletionResponse, cancellationToken).ConfigureAwait(false);
        Preset?.Normalize(response);
        return response;
    }

    private HttpRequestMessage ChatRequest(ProviderContext context, ChatCompletionRequest request, bool stream)
    {
        var message = CreateRequest(context, HttpMethod.Post, "chat/completions", stream);
        message.Content = ChatBody(context, request, stream);
        return message;
    }

    /// <summary>
    /// The chat request body: the client's own bytes with the provider's <c>model</c> (issue 18: <see cref="InferenceRequest.ClientBytes"/>,
    /// for <c>openai</c> and <c>openai-compatible</c>, which send every field as the caller sent it), else the typed request as
    /// the caller sent it, or adjusted to the preset's provider.
    /// </summary>
    private ByteArrayContent ChatBody(ProviderContext context, ChatCompletionRequest request, bool stream)
    {
        if (Preset is not { } preset)
        {
            return !_azure && request.ClientBytes is { } client && client.TryWriteBody(request.Model, stream, out var bytes)
                ? UpstreamClient.Json(bytes)
                : Body(context, "chat/completions", request, BifrostJson.Context.ChatCompletionRequest);
        }

        var body = preset.Rewrite(request, out var changes);
        PresetChanged?.Invoke(context, preset, changes);
        return UpstreamClient.Json(body);
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var deadline = _http.UntilFirstChunk(context, cancellationToken);
        using var message = ChatRequest(context, request, stream: true);
        using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is not null && mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            // Some servers ignore "stream": true; relay their one JSON answer as a stream would have carried it.
            ChatCompletionResponse? whole;
            try
            {
                await using var json = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
                whole = await JsonSerializer.DeserializeAsync(json, BifrostJson.Context.ChatCompletionResponse, deadline.Token).ConfigureAwait(false);
            }
            catch (JsonException ex)
            {
                throw UpstreamHttp.InvalidResponse(context, $"invalid JSON ({ex.Message})");
            }

            foreach (var chunk in Operations.ChatCompletionChunks.Of(whole ?? throw UpstreamHttp.InvalidResponse(context, "an empty body"), request.StreamOptions?.IncludeUsage == true))
            {
                Preset?.Normalize(chunk);
                yield return chunk;
            }

            yield break;
        }

        await using var body = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        var parser = request.RelayChunks && Preset is null && !_azure
            ? SseParser.Create(body, new ChunkRelayParser<UpstreamEvent>(UpstreamEvent.Parse, static chunk => new UpstreamEvent { Chunk = chunk }).Parse) // issue 18: the provider's bytes relayed
            : SseParser.Create(body, static (eventType, data) => UpstreamEvent.Parse(eventType, data));
        var annotations = _azure ? new Azure.AzureStreamAnnotations() : null;
        await foreach (var item in parser.EnumerateAsync(deadline.Token).ConfigureAwait(false))
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

            if (evt.Chunk is not null && (annotations is null || annotations.Complete(evt.Chunk)))
            {
                deadline.Disarm();
                Preset?.Normalize(evt.Chunk);
                yield return evt.Chunk;
            }
        }
    }

    public async Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        if (context.Options.Models.Count > 0 || Preset is { HasModelsEndpoint: false })
        {
            return [.. context.Options.Models.Select(m => new ModelInfo { Id = m, OwnedBy = context.ProviderName })];
        }

        var list = await _http.SendForJsonAsync(context, CreateRequest(context, HttpMethod.Get, "models", stream: false), BifrostJson.Context.ModelList, cancellationToken).ConfigureAwait(false);
        return list.Data is { } data ? [.. data] : [];
    }

    private HttpRequestMessage CreateRequest(ProviderContext context, HttpMethod method, string path, bool stream) =>
        _http.CreateRequest(context, method, _azure ? Azure.AzureOpenAI.For(context, path) : Endpoints.For(context, path, Preset?.BaseUrl), stream);

    /// <summary>A request's JSON body (for <c>azure</c>, with the deployment as <c>model</c> where the URL does not name it).</summary>
    private ByteArrayContent Body<T>(ProviderContext context, string path, T request, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        _azure ? Azure.AzureOpenAI.Body(context, path, request, type) : UpstreamClient.Json(request, type);

    /// <summary>Releases the upstream client.</summary>
    public void Dispose() => _http.Dispose();

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

        public static Uri For(ProviderContext context, string path, string? defaultBaseUrl)
        {
            var baseUrl = (string.IsNullOrWhiteSpace(context.Options.BaseUrl) ? defaultBaseUrl : context.Options.BaseUrl) ?? throw new InvalidOperationException($"Provider '{context.ProviderName}' has no BaseUrl.");
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
                return new UpstreamEvent { Error = UpstreamHttp.InvalidStreamEvent(ex) };
            }

            // An error event: a chunk with an error and no choices, an SSE "error" event, or OpenRouter's mid-stream error — a
            // chunk with a top-level error and finish_reason "error" after 200 OK (https://openrouter.ai/docs/api/reference/streaming,
            // "errors that occur mid-generation still arrive as regular data: events with an error field"; its error.code is the
            // HTTP status as a number or a string such as "server_error", https://openrouter.ai/docs/api/reference/errors-and-debugging).
            if (chunk?.AdditionalProperties is { } extra && extra.TryGetValue("error", out var error)
                && (chunk.Choices.Count == 0 || eventType == "error" || chunk.Choices.Any(c => c.FinishReason == "error")))
            {
                var message = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : error.ToString();
                var type = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                var code = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                var status = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("status_code", out var s) && s.TryGetInt32(out var sc) ? sc
                    : error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var n) && n.ValueKind == JsonValueKind.Number && n.TryGetInt32(out var nc) && nc is >= 400 and < 600 ? nc
                    : 500;
                return new UpstreamEvent { Error = BifrostErrors.ProviderError(status, type, code, message ?? "Provider stream failed.") };
            }

            return new UpstreamEvent { Chunk = chunk };
        }
    }
}
