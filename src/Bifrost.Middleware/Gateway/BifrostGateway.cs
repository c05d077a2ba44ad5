using Bifrost.Middleware.Diagnostics;
using Bifrost.Middleware.Operations;
using Bifrost.Middleware.Responses;
using Bifrost.Middleware.Tokenization;

namespace Bifrost.Middleware.Gateway;

/// <summary>
/// <see cref="IBifrostClient"/>: each inference method runs its operation descriptor (<see cref="InferenceOperations"/>)
/// through the <see cref="GatewayPipeline"/> (plugins, telemetry, ... around the attempt loop). Input-token counting and
/// the model list are not provider-routed calls with fallbacks, and are served here directly. Knows nothing of HTTP.
/// </summary>
internal sealed class BifrostGateway(GatewayPipeline pipeline, ProviderRegistry registry, TokenCounter tokens, TimeProvider time, ILogger<BifrostGateway> logger) : IBifrostClient
{
    internal static readonly string CountTokensRequestType = EndpointOperations.CountTokens.Name;
    internal static readonly string ListModelsRequestType = EndpointOperations.ListModels.Name;

    public Task<ChatCompletionResponse> ChatCompletionAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(InferenceOperations.Chat, request, cancellationToken);

    public IAsyncEnumerable<ChatCompletionChunk> ChatCompletionStreamAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default) =>
        pipeline.StreamAsync(InferenceOperations.Chat, request, cancellationToken);

    public Task<EmbeddingResponse> EmbeddingsAsync(EmbeddingRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(InferenceOperations.Embeddings, request, cancellationToken);

    public Task<TextCompletionResponse> TextCompletionAsync(TextCompletionRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(InferenceOperations.TextCompletion, request, cancellationToken);

    public IAsyncEnumerable<TextCompletionResponse> TextCompletionStreamAsync(TextCompletionRequest request, CancellationToken cancellationToken = default) =>
        pipeline.StreamAsync(InferenceOperations.TextCompletion, request, cancellationToken);

    public Task<ResponsesResponse> ResponsesAsync(ResponsesRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(InferenceOperations.Responses, request, cancellationToken);

    public IAsyncEnumerable<ResponsesStreamEvent> ResponsesStreamAsync(ResponsesRequest request, CancellationToken cancellationToken = default) =>
        pipeline.StreamAsync(InferenceOperations.Responses, request, cancellationToken);

    // Moderations, images, rerank and audio in process (issue 17, img).

    public Task<ModerationResponse> ModerationAsync(ModerationRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(InferenceOperations.Moderations, request, cancellationToken);

    public Task<ImageResponse> ImageGenerationAsync(ImageRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(InferenceOperations.ImageGeneration, request, cancellationToken);

    public IAsyncEnumerable<ImageStreamEvent> ImageGenerationStreamAsync(ImageRequest request, CancellationToken cancellationToken = default) =>
        pipeline.StreamAsync(InferenceOperations.ImageGeneration, request, cancellationToken);

    public Task<ImageResponse> ImageEditAsync(ImageEditRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(InferenceOperations.ImageEdit, request, cancellationToken);

    public IAsyncEnumerable<ImageStreamEvent> ImageEditStreamAsync(ImageEditRequest request, CancellationToken cancellationToken = default) =>
        pipeline.StreamAsync(InferenceOperations.ImageEdit, request, cancellationToken);

    public Task<ImageResponse> ImageVariationAsync(ImageEditRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(InferenceOperations.ImageVariation, request, cancellationToken);

    public Task<RerankResponse> RerankAsync(RerankRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(InferenceOperations.Rerank, request, cancellationToken);

    public Task<AudioResponse> SpeechAsync(SpeechRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(AudioOperations.Speech, request, cancellationToken);

    public Task<AudioResponse> TranscriptionAsync(TranscriptionRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(AudioOperations.Transcription, request, cancellationToken);

    public Task<AudioResponse> TranslationAsync(TranscriptionRequest request, CancellationToken cancellationToken = default) =>
        pipeline.SendAsync(AudioOperations.Translation, request, cancellationToken);

    public async Task<InputTokensResponse> CountInputTokensAsync(ResponsesRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = RequestPlanner.Plan(registry, InferenceOperations.Responses, request, CountTokensRequestType);
        var target = plan[0];

        // The provider counts when it can (its own tokenizer is the truth); otherwise count locally.
        int? native = null;
        try
        {
            native = await target.Provider.Adapter.CountInputTokensAsync(RoutingHandler.CreateContext(target, 0), request.ForProvider(target.Model, stream: false), cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex) when (ex.IsRetryable)
        {
            Log.ProviderFailed(logger, target.Provider.Name, ex.StatusCode, ex.Error.Error.Code, ex.Message);
        }

        int count;
        string method;
        if (native is { } value)
        {
            count = value;
            method = "native";
        }
        else
        {
            if (request.PreviousResponseId is not null)
            {
                // The stored conversation is only on the provider: a local count would silently leave it out.
                throw RoutingHandler.Decorate(BifrostErrors.UnsupportedParameter("'previous_response_id' cannot be counted locally: the stored conversation is only known to a provider that counts natively. Send the whole conversation in 'input'.", "previous_response_id"), target, CountTokensRequestType);
            }

            var chat = ResponsesChatConverter.ToChatMessages(request);
            var tools = request.Tools?.Where(t => t.Type == "function").Select(t => new ChatCompletionTool { Type = "function", Function = new ChatFunctionDefinition { Name = t.Name, Description = t.Description, Parameters = t.Parameters } }).ToList();
            count = tokens.CountChat(target.Model, chat, tools).Tokens;
            method = "estimated";
        }

        var extra = RoutingHandler.Extra(null, CountTokensRequestType, target, time.GetElapsedTime(start));
        extra.CountMethod = method;
        return new InputTokensResponse { InputTokens = count, ExtraFields = extra };
    }

    public async Task<ModelList> ListModelsAsync(CancellationToken cancellationToken = default)
    {
        var start = time.GetTimestamp();
        var providers = registry.Providers.ToArray();
        var tasks = new Task<IReadOnlyList<ModelInfo>>[providers.Length];
        for (var i = 0; i < providers.Length; i++)
        {
            tasks[i] = ListOneAsync(providers[i], cancellationToken);
        }

        var list = new ModelList();
        for (var i = 0; i < providers.Length; i++)
        {
            foreach (var model in await tasks[i].ConfigureAwait(false))
            {
                var prefix = providers[i].Name + "/";
                if (!model.Id.StartsWith(prefix, StringComparison.Ordinal))
                {
                    model.Id = prefix + model.Id;
                }

                model.OwnedBy ??= providers[i].Name;
                list.Data.Add(model);
            }
        }

        list.ExtraFields = new BifrostExtraFields { RequestType = ListModelsRequestType, Latency = (long)time.GetElapsedTime(start).TotalMilliseconds };
        return list;
    }

    private async Task<IReadOnlyList<ModelInfo>> ListOneAsync(ProviderRuntime provider, CancellationToken cancellationToken)
    {
        try
        {
            var context = new ProviderContext(provider.Name, provider.Options, string.Empty, provider.SelectAnyKey(Random.Shared)) { Authenticator = provider.Authenticator };
            return await provider.Adapter.ListModelsAsync(context, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!RoutingHandler.IsCallerCancellation(ex, cancellationToken))
        {
            Log.ListModelsFailed(logger, provider.Name, ex);
            return [];
        }
    }
}
