using System.Buffers;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.Providers.Gemini;
using Bifrost.Middleware.Providers.Http;
using Bifrost.Middleware.Responses;

namespace Bifrost.Middleware.Providers.Vertex;

/// <summary>
/// Adapter for Google Cloud Vertex AI (type <c>vertex</c>). Every call goes to
/// <c>{BaseUrl}/projects/{ProjectId}/locations/{Region}/publishers/{publisher}/models/{model}:{method}</c>, BaseUrl
/// defaulting to <c>https://{Region}-aiplatform.googleapis.com/v1</c> (<c>https://aiplatform.googleapis.com/v1</c> for
/// <c>global</c>). Claude models (<c>claude-*</c>, publisher <c>anthropic</c>) use <c>:rawPredict</c> /
/// <c>:streamRawPredict</c> with the Anthropic Messages body (no <c>model</c>, <c>anthropic_version: vertex-2023-10-16</c>,
/// beta flags as <c>anthropic_beta</c> in the body); every other model (publisher <c>google</c>) uses the Gemini methods
/// <c>:generateContent</c>, <c>:streamGenerateContent?alt=sse</c>, <c>:countTokens</c> and <c>:predict</c> (embeddings).
/// The translators are the <c>anthropic</c> and <c>gemini</c> adapters' own. Auth: a configured key is sent as
/// <c>Authorization: Bearer</c> (an OAuth access token); otherwise the provider's <see cref="IUpstreamAuthenticator"/>
/// (<c>Bifrost.Middleware.Google</c>) adds one. Without a <c>ProjectId</c>, the provider is in express mode
/// (https://cloud.google.com/vertex-ai/generative-ai/docs/start/express-mode/vertex-ai-express-mode-api-reference):
/// <c>{BaseUrl}/publishers/google/models/{model}:{method}</c> on <c>https://aiplatform.googleapis.com/v1</c>, the key an
/// express-mode API key sent in <c>x-goog-api-key</c> (the provider's <c>AuthHeader</c>), Gemini models only.
/// Models: the configured <c>Models</c>, else Model Garden's listing (VertexAdapter.Models.cs).
/// </summary>
internal sealed partial class VertexAdapter(IHttpClientFactory httpClientFactory, TimeProvider time, ILogger<VertexAdapter> logger) : IProviderAdapter, IDisposable
{
    /// <summary>The location used when <see cref="ProviderOptions.Region"/> is not set.</summary>
    internal const string DefaultRegion = "us-central1";

    /// <summary>The base URL of express mode (no project, no location).</summary>
    internal const string ExpressBaseUrl = "https://aiplatform.googleapis.com/v1";

    /// <summary>The header of express-mode API keys.</summary>
    internal const string ApiKeyHeader = "x-goog-api-key";

    /// <summary>The location served by the global endpoint <c>aiplatform.googleapis.com</c>.</summary>
    internal const string GlobalRegion = "global";

    /// <summary>The <c>anthropic_version</c> Claude on Vertex requires in the body.</summary>
    internal const string AnthropicVersion = "vertex-2023-10-16";

    /// <summary>The adapter's named HttpClient (a host may configure it further by this name).</summary>
    internal const string HttpClientName = "Bifrost.Upstream.Vertex";

    /// <summary>The model segment of Claude's token counting URL, <c>publishers/anthropic/models/count-tokens:rawPredict</c> (vbatch).</summary>
    internal const string ClaudeCountTokensModel = "count-tokens";

    /// <summary>The most instances one <c>:predict</c> call carries (larger inputs are split).</summary>
    internal const int MaxPredictInstances = 250;

    private readonly UpstreamClient _google = new(httpClientFactory, HttpClientName, time, UpstreamAuth.Bearer, GeminiAdapter.ParseError);
    private readonly UpstreamClient _claude = new(httpClientFactory, HttpClientName, time, UpstreamAuth.Bearer, ParseClaudeError);

    /// <summary>Registers the adapter's named client (<see cref="UpstreamClient.Register"/>).</summary>
    internal static void AddHttpClient(IServiceCollection services) => UpstreamClient.Register(services, HttpClientName);

    /// <summary>Releases the upstream clients.</summary>
    public void Dispose()
    {
        _google.Dispose();
        _claude.Dispose();
    }

    /// <summary>Whether a model is served by publisher <c>anthropic</c> (Claude) rather than <c>google</c>.</summary>
    internal static bool IsClaude(string model) => model.StartsWith("claude-", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether the provider uses express mode: no <c>ProjectId</c> (an express-mode API key instead of a project).</summary>
    internal static bool IsExpress(ProviderOptions options) => string.IsNullOrWhiteSpace(options.ProjectId);

    /// <summary>Claude on Vertex needs a project: express mode serves Gemini models only.</summary>
    private static void RequireProjectForClaude(ProviderContext context)
    {
        if (IsClaude(context.Model) && IsExpress(context.Options))
        {
            throw ProviderErrors.Unsupported(context, "Claude models in Vertex AI express mode (set ProjectId, with an access token or Google credentials)");
        }
    }

    public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        RequireProjectForClaude(context);
        return IsClaude(context.Model) ? ClaudeChatAsync(context, request, cancellationToken) : GeminiChatAsync(context, request, cancellationToken);
    }

    public IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        RequireProjectForClaude(context);
        return IsClaude(context.Model) ? StreamClaudeAsync(context, request, cancellationToken) : StreamGeminiAsync(context, request, cancellationToken);
    }

    /// <summary>
    /// <c>publishers/google/models/{model}:predict</c> with <c>instances[].content</c> (at most <see cref="MaxPredictInstances"/>
    /// per call); <c>dimensions</c> → <c>parameters.outputDimensionality</c>, <c>task_type</c> / <c>title</c> (extras) on every
    /// instance. Usage: the sum of <c>statistics.token_count</c>. Claude models have no embeddings.
    /// </summary>
    public async Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (IsClaude(context.Model))
        {
            throw ProviderErrors.Unsupported(context, "embeddings with a Claude model");
        }

        if (request.Input?.Texts is not { Count: > 0 } texts)
        {
            throw GeminiRequestTranslator.Invalid("Vertex AI embeds text: 'input' must be a string or an array of strings (token arrays are not supported).", "input");
        }

        var taskType = ExtraString(request.AdditionalProperties, "task_type");
        var title = ExtraString(request.AdditionalProperties, "title");
        var parameters = request.Dimensions is { } dimensions ? new VertexEmbedParameters { OutputDimensionality = dimensions } : null;
        var result = new EmbeddingResponse { Model = context.Model, Usage = new EmbeddingUsage() };
        var tokens = 0.0;
        for (var start = 0; start < texts.Count; start += MaxPredictInstances)
        {
            var body = new VertexPredictRequest { Parameters = parameters };
            for (var i = start; i < Math.Min(texts.Count, start + MaxPredictInstances); i++)
            {
                body.Instances.Add(new VertexEmbedInstance { Content = texts[i], TaskType = taskType, Title = title });
            }

            var message = _google.CreateRequest(context, HttpMethod.Post, Endpoint(context, "predict"), stream: false);
            message.Content = UpstreamClient.Json(body, VertexJsonContext.Wire.VertexPredictRequest);
            var answer = await _google.SendForJsonAsync(context, message, VertexJsonContext.Wire.VertexPredictResponse, cancellationToken).ConfigureAwait(false);
            if (answer.Predictions is not { } predictions || predictions.Count != body.Instances.Count)
            {
                throw UpstreamHttp.InvalidResponse(context, $"{answer.Predictions?.Count ?? 0} predictions for {body.Instances.Count} inputs");
            }

            for (var i = 0; i < predictions.Count; i++)
            {
                var embeddings = predictions[i].Embeddings;
                result.Data.Add(new EmbeddingData { Index = start + i, Embedding = new EmbeddingVector(embeddings?.Values ?? throw UpstreamHttp.InvalidResponse(context, "a prediction without embedding values")) });
                tokens += embeddings.Statistics?.TokenCount ?? 0;
            }
        }

        result.Usage.PromptTokens = result.Usage.TotalTokens = (int)Math.Round(tokens);
        return result;
    }

    /// <summary>
    /// Gemini models: <c>:countTokens</c> with the contents, system instruction and tools at the top level (Vertex's request
    /// shape). Claude models: <c>publishers/anthropic/models/count-tokens:rawPredict</c>, the Messages count body with
    /// <c>model</c> (in the body: the URL names no model) and <c>anthropic_version</c>, answered with <c>{"input_tokens"}</c>
    /// (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/count-tokens); in express mode (no
    /// project, no Claude) null, so the gateway estimates locally.
    /// </summary>
    public async Task<int?> CountInputTokensAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (IsClaude(context.Model) && IsExpress(context.Options))
        {
            return null;
        }

        var chat = new ChatCompletionRequest { Model = request.Model, Messages = ResponsesChatConverter.ToChatMessages(request) };
        if (request.Tools is { Count: > 0 } tools)
        {
            chat.Tools = [.. tools.Where(static t => t.Type == "function").Select(static t => new ChatCompletionTool { Type = "function", Function = new ChatFunctionDefinition { Name = t.Name, Description = t.Description, Parameters = t.Parameters } })];
        }

        // vbatch: Claude count_tokens on Vertex
        if (IsClaude(context.Model))
        {
            chat.ReasoningEffort = request.Reasoning?.Effort;
            var claude = ClaudeBody(context, chat, stream: false, forCounting: true);
            using var counting = _claude.CreateRequest(context, HttpMethod.Post, Endpoint(context, "rawPredict", model: ClaudeCountTokensModel), stream: false);
            counting.Headers.Remove("anthropic-beta"); // sent in the body on Vertex
            counting.Content = UpstreamClient.Json(claude, AnthropicJsonContext.Wire.AnthropicRequest);
            var claudeCount = await _claude.SendForJsonAsync(context, counting, AnthropicJsonContext.Wire.AnthropicCountTokensResponse, cancellationToken).ConfigureAwait(false);
            return claudeCount.InputTokens;
        }

        var body = StripFunctionIds(GeminiRequestTranslator.Translate(chat, null, forCounting: true));
        var message = _google.CreateRequest(context, HttpMethod.Post, Endpoint(context, "countTokens"), stream: false);
        message.Content = UpstreamClient.Json(body, GeminiJsonContext.Wire.GeminiRequest);
        var counted = await _google.SendForJsonAsync(context, message, GeminiJsonContext.Wire.GeminiCountTokensResponse, cancellationToken).ConfigureAwait(false);
        return counted.TotalTokens;
    }

    private async Task<ChatCompletionResponse> GeminiChatAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        var body = StripFunctionIds(GeminiRequestTranslator.Translate(request, context.Options.DefaultMaxTokens));
        var message = _google.CreateRequest(context, HttpMethod.Post, Endpoint(context, "generateContent"), stream: false);
        message.Content = UpstreamClient.Json(body, GeminiJsonContext.Wire.GeminiRequest);
        var response = await _google.SendForJsonAsync(context, message, GeminiJsonContext.Wire.GeminiResponse, cancellationToken).ConfigureAwait(false);
        if (response.Candidates is not { Count: > 0 } && response.PromptFeedback?.BlockReason is { Length: > 0 } reason)
        {
            Log.PromptBlocked(logger, context.ProviderName, reason);
        }

        return GeminiResponseTranslator.ToChat(response, context.Model, time.GetUtcNow().ToUnixTimeSeconds(), context.ProviderName);
    }

    private async IAsyncEnumerable<ChatCompletionChunk> StreamGeminiAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var body = StripFunctionIds(GeminiRequestTranslator.Translate(request, context.Options.DefaultMaxTokens));
        using var deadline = _google.UntilFirstChunk(context, cancellationToken);
        using var message = _google.CreateRequest(context, HttpMethod.Post, Endpoint(context, "streamGenerateContent", "?alt=sse"), stream: true);
        message.Content = UpstreamClient.Json(body, GeminiJsonContext.Wire.GeminiRequest);
        using var response = await _google.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        var translator = new GeminiStreamTranslator(context.Model, time.GetUtcNow().ToUnixTimeSeconds(), request.StreamOptions?.IncludeUsage == true);
        await foreach (var chunk in SseChatRelay.RelayAsync(response, deadline, static (_, data) => GeminiAdapter.ParseEvent(data), translator).ConfigureAwait(false))
        {
            yield return chunk;
        }

        // as on AI Studio, the body simply ends after the event with the finish reason
        if (!translator.Finished)
        {
            Log.StreamEndedEarly(logger, context.ProviderName, "a finish reason");
            throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "incomplete_stream", $"Provider '{context.ProviderName}' ended the stream before a finish reason.");
        }

        var chunks = new List<ChatCompletionChunk>(2);
        translator.Finish(chunks);
        foreach (var chunk in chunks)
        {
            yield return chunk;
        }
    }

    private async Task<ChatCompletionResponse> ClaudeChatAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        var body = ClaudeBody(context, request, stream: false);
        var message = ClaudeRequest(context, "rawPredict", body, stream: false);
        var answer = await _claude.SendForJsonAsync(context, message, AnthropicJsonContext.Wire.AnthropicResponse, cancellationToken).ConfigureAwait(false);
        answer.Model ??= context.Model;
        return AnthropicResponseTranslator.ToChat(answer, time.GetUtcNow().ToUnixTimeSeconds());
    }

    private async IAsyncEnumerable<ChatCompletionChunk> StreamClaudeAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var body = ClaudeBody(context, request, stream: true);
        using var deadline = _claude.UntilFirstChunk(context, cancellationToken);
        using var message = ClaudeRequest(context, "streamRawPredict", body, stream: true);
        using var response = await _claude.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        var translator = new AnthropicStreamTranslator(context.Model, time.GetUtcNow().ToUnixTimeSeconds(), request.StreamOptions?.IncludeUsage == true);
        await foreach (var chunk in SseChatRelay.RelayAsync(response, deadline, static (eventType, data) => AnthropicAdapter.ParseEvent(eventType, data), translator).ConfigureAwait(false))
        {
            yield return chunk;
        }

        if (!translator.Completed)
        {
            Log.StreamEndedEarly(logger, context.ProviderName, "message_stop");
            throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "incomplete_stream", $"Provider '{context.ProviderName}' ended the stream before message_stop.");
        }
    }

    /// <summary>
    /// The Anthropic Messages body as Vertex takes it: no <c>model</c> (it is in the URL), <c>anthropic_version</c>, and the
    /// beta flags (the provider's <c>anthropic-beta</c> header, comma-separated, and the request's <c>anthropic_beta</c>) as
    /// <c>anthropic_beta</c>.
    /// </summary>
    internal static AnthropicRequest ClaudeBody(ProviderContext context, ChatCompletionRequest request, bool stream, bool forCounting = false)
    {
        var body = AnthropicRequestTranslator.Translate(request, context.Options.DefaultMaxTokens ?? AnthropicRequestTranslator.DefaultMaxTokens, forCounting);
        // count-tokens:rawPredict names no model in its URL: the body carries it
        body.Model = forCounting ? context.Model : null;
        body.Stream = stream ? true : null;
        var extra = body.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        extra["anthropic_version"] = JsonSerializer.SerializeToElement(AnthropicVersion, AnthropicJsonContext.Wire.String);
        var betas = new List<string>();
        if (context.Options.Headers.TryGetValue("anthropic-beta", out var header))
        {
            betas.AddRange(header.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }

        if (request.AdditionalProperties?.TryGetValue("anthropic_beta", out var requested) == true)
        {
            if (requested.ValueKind == JsonValueKind.String)
            {
                betas.AddRange(requested.GetString()!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            }
            else if (requested.ValueKind == JsonValueKind.Array)
            {
                betas.AddRange(requested.EnumerateArray().Where(static b => b.ValueKind == JsonValueKind.String).Select(static b => b.GetString()!));
            }
            else
            {
                throw AnthropicRequestTranslator.Invalid("'anthropic_beta' must be an array of strings.", "anthropic_beta");
            }
        }

        if (betas.Count > 0)
        {
            var buffer = new ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartArray();
                foreach (var beta in betas.Distinct(StringComparer.Ordinal))
                {
                    writer.WriteStringValue(beta);
                }

                writer.WriteEndArray();
            }

            using var document = JsonDocument.Parse(buffer.WrittenMemory);
            extra["anthropic_beta"] = document.RootElement.Clone();
        }

        return body;
    }

    private HttpRequestMessage ClaudeRequest(ProviderContext context, string method, AnthropicRequest body, bool stream)
    {
        var message = _claude.CreateRequest(context, HttpMethod.Post, Endpoint(context, method), stream);
        message.Headers.Remove("anthropic-beta"); // sent in the body on Vertex
        message.Content = UpstreamClient.Json(body, AnthropicJsonContext.Wire.AnthropicRequest);
        return message;
    }

    /// <summary>
    /// <c>{BaseUrl}/projects/{project}/locations/{location}/publishers/{anthropic|google}/models/{model}:{method}{query}</c>;
    /// BaseUrl includes the version (default <see cref="DefaultBaseUrl"/> of the location). In express mode (no project):
    /// <c>{BaseUrl}/publishers/google/models/{model}:{method}{query}</c>, BaseUrl default <see cref="ExpressBaseUrl"/>. The
    /// model is one path segment (escaped, with the <c>@</c> of Claude versions kept).
    /// </summary>
    internal static Uri Endpoint(ProviderContext context, string method, string query = "", string? model = null)
    {
        var publisher = IsClaude(context.Model) ? "anthropic" : "google";
        model = Uri.EscapeDataString(model ?? context.Model).Replace("%40", "@", StringComparison.Ordinal);
        var configured = string.IsNullOrWhiteSpace(context.Options.BaseUrl) ? null : context.Options.BaseUrl.TrimEnd('/');
        if (IsExpress(context.Options))
        {
            return new Uri($"{configured ?? ExpressBaseUrl}/publishers/{publisher}/models/{model}:{method}{query}", UriKind.Absolute);
        }

        var location = Location(context.Options);
        var baseUrl = configured ?? DefaultBaseUrl(location);
        return new Uri($"{baseUrl}/projects/{Uri.EscapeDataString(context.Options.ProjectId!.Trim())}/locations/{Uri.EscapeDataString(location)}/publishers/{publisher}/models/{model}:{method}{query}", UriKind.Absolute);
    }

    /// <summary>The configured location (<see cref="ProviderOptions.Region"/>), default <see cref="DefaultRegion"/>.</summary>
    internal static string Location(ProviderOptions options) => string.IsNullOrWhiteSpace(options.Region) ? DefaultRegion : options.Region.Trim();

    /// <summary><c>https://{location}-aiplatform.googleapis.com/v1</c>, or <c>https://aiplatform.googleapis.com/v1</c> for <c>global</c>.</summary>
    internal static string DefaultBaseUrl(string location) =>
        string.Equals(location, GlobalRegion, StringComparison.OrdinalIgnoreCase) ? "https://aiplatform.googleapis.com/v1" : $"https://{location}-aiplatform.googleapis.com/v1";

    /// <summary>Removes <c>functionCall.id</c> / <c>functionResponse.id</c>, which Vertex refuses (calls are matched by name and order).</summary>
    internal static GeminiRequest StripFunctionIds(GeminiRequest body)
    {
        foreach (var content in body.Contents)
        {
            foreach (var part in content.Parts)
            {
                if (part.FunctionCall is { } call)
                {
                    call.Id = null;
                }

                if (part.FunctionResponse is { } response)
                {
                    response.Id = null;
                }
            }
        }

        return body;
    }

    /// <summary>
    /// A Claude call's error: Anthropic's own shape (<c>{"type":"error","error":{...}}</c>) as the <c>anthropic</c> adapter
    /// reads it; anything else came from Vertex itself (quota, permission, unknown model) in Google's envelope.
    /// </summary>
    internal static BifrostException ParseClaudeError(UpstreamError answer)
    {
        try
        {
            using var document = JsonDocument.Parse(answer.Text);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.ValueEquals("error"))
            {
                return AnthropicAdapter.ParseError(answer);
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException)
        {
            // not JSON: Google's parser takes the text as the message
        }

        return GeminiAdapter.ParseError(answer);
    }

    private static string? ExtraString(IDictionary<string, JsonElement>? extra, string name) =>
        extra?.TryGetValue(name, out var value) == true && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static partial class Log
    {
        [LoggerMessage(1100, LogLevel.Warning, "Provider '{Provider}' ended a Vertex AI stream before {Expected}.")]
        public static partial void StreamEndedEarly(ILogger logger, string provider, string expected);

        [LoggerMessage(1101, LogLevel.Information, "Provider '{Provider}' blocked the prompt ({BlockReason}); answered with finish_reason content_filter.")]
        public static partial void PromptBlocked(ILogger logger, string provider, string blockReason);
    }
}
