namespace Bifrost.Middleware.Providers;

/// <summary>
/// The plugin contract of a provider: converts the gateway's OpenAI-shaped requests to a provider's
/// protocol and back. One instance may serve several configured providers; everything specific to a
/// call (provider name, model, key, options) comes in the <see cref="ProviderContext"/>.
/// </summary>
/// <remarks>
/// <para>
/// Failures that have an answer for the caller are thrown as <see cref="BifrostException"/>, created with
/// <see cref="BifrostException.Provider"/> so the provider's status and message reach the client; set
/// <see cref="BifrostException.IsRetryable"/> (the default for 408/409/429/5xx) and
/// <see cref="BifrostException.RetryAfter"/> so the gateway can retry and fall back. Cancellation through
/// the token must stop the upstream call. The request is the gateway's own copy with the provider's bare model
/// name in <see cref="InferenceRequest.Model"/> and no fallbacks; adapters must not keep it.
/// </para>
/// <para>
/// Operations added to this contract later come with a default implementation that answers
/// "unsupported", so adapters written against an earlier version keep compiling and working.
/// </para>
/// </remarks>
public interface IProviderAdapter
{
    /// <summary>Runs a chat completion.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call (client disconnect, timeout).</param>
    Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Streams a chat completion. Errors before the first chunk are retried or fall back; errors after it
    /// reach the client as an SSE error event. Chunks need no <c>extra_fields</c>: the gateway adds them.
    /// </summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name and <c>stream: true</c>.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken);

    /// <summary>Creates embeddings. By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "embeddings");

    /// <summary>Runs a legacy text completion. By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<TextCompletionResponse> TextCompletionAsync(ProviderContext context, TextCompletionRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "text completions");

    /// <summary>Streams a legacy text completion (chunks are <c>text_completion</c> objects). By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name and <c>stream: true</c>.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    IAsyncEnumerable<TextCompletionResponse> StreamTextCompletionAsync(ProviderContext context, TextCompletionRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "text completions");

    /// <summary>
    /// Whether the provider has its own Responses API. When false (the default), the gateway runs Responses requests
    /// as chat completions and converts both ways.
    /// </summary>
    /// <param name="context">The provider and its options.</param>
    bool SupportsNativeResponses(ProviderContext context) => false;

    /// <summary>Runs a Responses API request natively (only called when <see cref="SupportsNativeResponses"/> is true).</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<ResponsesResponse> ResponsesAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "the Responses API");

    /// <summary>Streams a Responses API request natively (only called when <see cref="SupportsNativeResponses"/> is true).</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name and <c>stream: true</c>.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    IAsyncEnumerable<ResponsesStreamEvent> StreamResponsesAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "the Responses API");

    /// <summary>Counts a Responses request's input tokens with the provider's own counter, or returns null to let the gateway estimate locally (the default).</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<int?> CountInputTokensAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken) =>
        Task.FromResult<int?>(null);

    /// <summary>Lists the models the provider serves. By default: the models configured for it.</summary>
    /// <param name="context">The provider and its options (no model).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var models = new List<ModelInfo>(context.Options.Models.Count);
        foreach (var model in context.Options.Models)
        {
            models.Add(new ModelInfo { Id = model, OwnedBy = context.ProviderName });
        }

        return Task.FromResult<IReadOnlyList<ModelInfo>>(models);
    }

    // Moderations (issue 17, J).

    /// <summary>Classifies text (and images) for policy violations. By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<ModerationResponse> ModerationAsync(ProviderContext context, ModerationRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "moderations");

    // Images (issue 17, J).

    /// <summary>Generates images from a prompt. By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<ImageResponse> ImageGenerationAsync(ProviderContext context, ImageRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "image generation");

    // Rerank (issue 17, J).

    /// <summary>Ranks documents by relevance to a query, most relevant first. By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<RerankResponse> RerankAsync(ProviderContext context, RerankRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "rerank");
    // Audio (audio/speech, audio/transcriptions, audio/translations).

    /// <summary>
    /// Generates speech. The answer's body is relayed to the caller as it is read (return it before reading it: an error
    /// answer is thrown before, so the gateway can retry). By default: a 400 "unsupported" error.
    /// </summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<AudioResponse> SpeechAsync(ProviderContext context, SpeechRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "speech");

    /// <summary>Transcribes audio (<see cref="TranscriptionRequest.File"/>); the answer's body is relayed as it is read. By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<AudioResponse> TranscriptionAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "transcriptions");

    /// <summary>Translates audio into English text; the answer's body is relayed as it is read. By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<AudioResponse> TranslationAsync(ProviderContext context, TranscriptionRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "translations");

    // Image edits and variations (issue 17, img).

    /// <summary>Edits images (<see cref="ImageEditRequest.Images"/>, read through <see cref="ImageFile.OpenRead"/>) as the prompt describes. By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<ImageResponse> ImageEditAsync(ProviderContext context, ImageEditRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "image edits");

    /// <summary>Makes variations of an image (the one in <see cref="ImageEditRequest.Images"/>). By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    Task<ImageResponse> ImageVariationAsync(ProviderContext context, ImageEditRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "image variations");

    /// <summary>Streams an image generation as OpenAI's events (<c>image_generation.partial_image</c>, then <c>image_generation.completed</c>). By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name and <c>stream: true</c>.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    IAsyncEnumerable<ImageStreamEvent> StreamImageGenerationAsync(ProviderContext context, ImageRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "streamed image generation");

    /// <summary>Streams an image edit as OpenAI's events (<c>image_edit.partial_image</c>, then <c>image_edit.completed</c>). By default: a 400 "unsupported" error.</summary>
    /// <param name="context">The provider, model, key and options of this attempt.</param>
    /// <param name="request">The request, with the provider's bare model name and <c>stream: true</c>.</param>
    /// <param name="cancellationToken">Cancels the upstream call.</param>
    IAsyncEnumerable<ImageStreamEvent> StreamImageEditAsync(ProviderContext context, ImageEditRequest request, CancellationToken cancellationToken) =>
        throw ProviderErrors.Unsupported(context, "streamed image edits");
}

/// <summary>Everything an adapter needs to know about one attempt besides the request.</summary>
public sealed class ProviderContext
{
    /// <summary>Creates a context.</summary>
    /// <param name="providerName">The configured provider name.</param>
    /// <param name="options">The provider's options.</param>
    /// <param name="model">The provider's bare model name, or empty for provider-wide calls.</param>
    /// <param name="apiKey">The key chosen for this attempt, if the provider has keys.</param>
    public ProviderContext(string providerName, ProviderOptions options, string model, string? apiKey)
    {
        ProviderName = providerName ?? throw new ArgumentNullException(nameof(providerName));
        Options = options ?? throw new ArgumentNullException(nameof(options));
        Model = model ?? throw new ArgumentNullException(nameof(model));
        ApiKey = apiKey;
    }

    /// <summary>The configured provider name (the prefix in <c>provider/model</c>).</summary>
    public string ProviderName { get; }

    /// <summary>The provider's options (base URL, headers, timeout, ...).</summary>
    public ProviderOptions Options { get; }

    /// <summary>The provider's bare model name.</summary>
    public string Model { get; }

    /// <summary>The API key chosen for this attempt (resolved from <c>env:</c>), or null when the provider has none.</summary>
    public string? ApiKey { get; }

    /// <summary>The attempt number for this provider, from 0.</summary>
    public int Attempt { get; init; }

    /// <summary>
    /// The provider's <see cref="IUpstreamAuthenticator"/> (registered with <c>AddUpstreamAuthenticator</c>), or null.
    /// The built-in HTTP adapters call it on every upstream request; a custom HTTP adapter should too.
    /// </summary>
    public IUpstreamAuthenticator? Authenticator { get; init; }
}

/// <summary>Errors adapters commonly raise.</summary>
public static class ProviderErrors
{
    /// <summary>A 400 for an operation the provider does not offer (not retryable: fallbacks are not tried).</summary>
    /// <param name="context">The provider.</param>
    /// <param name="operation">The operation, e.g. <c>embeddings</c>.</param>
    public static BifrostException Unsupported(ProviderContext context, string operation)
    {
        ArgumentNullException.ThrowIfNull(context);
        return BifrostErrors.UnsupportedOperation($"Provider '{context.ProviderName}' does not support {operation}.", "model");
    }
}
