using System.Runtime.CompilerServices;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Providers.ChatClient;

/// <summary>
/// Exposes a Microsoft.Extensions.AI <see cref="AI.IChatClient"/> (and optionally an
/// <see cref="AI.IEmbeddingGenerator{TInput, TEmbedding}"/>) as a provider: chat completions, streamed chat completions and
/// embeddings. The Responses API works too (the gateway runs it as chat completions); text completions and native batches
/// answer the default 400 "unsupported". Registered with <c>AddChatClientProvider</c>.
/// </summary>
/// <remarks>
/// <para>
/// The client carries its own endpoint and credentials: the provider's configured keys, base URL and headers are not used.
/// <see cref="ProviderOptions.Timeout"/> is: it bounds a call until the answer (for streams, until the first update), and
/// when it expires the client's token is cancelled and the attempt fails with a retryable 504 like any provider's timeout.
/// The model after <c>name/</c> is passed as <see cref="AI.ChatOptions.ModelId"/>; a client bound to one model may ignore it.
/// </para>
/// <para>
/// Failures: cancellation passes through; an <see cref="HttpRequestException"/> with a status code, or an exception with an
/// integer <c>Status</c> (the OpenAI and Azure SDKs' <c>ClientResultException</c> and <c>RequestFailedException</c>), becomes a
/// provider error with that status (retryable for 408/409/429/5xx); anything else a 502 with the exception's message.
/// </para>
/// </remarks>
internal sealed class ChatClientProviderAdapter : IProviderAdapter
{
    private readonly AI.IChatClient _chatClient;
    private readonly AI.IEmbeddingGenerator<string, AI.Embedding<float>>? _embeddingGenerator;
    private readonly TimeProvider _time;

    public ChatClientProviderAdapter(AI.IChatClient chatClient, AI.IEmbeddingGenerator<string, AI.Embedding<float>>? embeddingGenerator, TimeProvider time)
    {
        _chatClient = chatClient ?? throw new ArgumentNullException(nameof(chatClient));
        _embeddingGenerator = embeddingGenerator;
        _time = time ?? throw new ArgumentNullException(nameof(time));
    }

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var messages = ChatClientRequestMapper.ToMessages(request);
        var options = ChatClientRequestMapper.ToOptions(context, request);
        AI.ChatResponse response;
        using var attempt = new AttemptDeadline(context, _time, cancellationToken);
        try
        {
            response = await _chatClient.GetResponseAsync(messages, options, attempt.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (Translate(ex, context) is { } error)
        {
            throw error;
        }

        return ChatClientResponseMapper.ToCompletion(response, context, _time);
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var messages = ChatClientRequestMapper.ToMessages(request);
        var options = ChatClientRequestMapper.ToOptions(context, request);
        var translator = new ChatClientStreamTranslator(context, _time, request.StreamOptions?.IncludeUsage == true);

        using var attempt = new AttemptDeadline(context, _time, cancellationToken);
        IAsyncEnumerator<AI.ChatResponseUpdate> updates;
        try
        {
            updates = _chatClient.GetStreamingResponseAsync(messages, options, attempt.Token).GetAsyncEnumerator(attempt.Token);
        }
        catch (Exception ex) when (Translate(ex, context) is { } error)
        {
            throw error;
        }

        try
        {
            while (true)
            {
                try
                {
                    if (!await updates.MoveNextAsync().ConfigureAwait(false))
                    {
                        break;
                    }

                    attempt.Disarm(); // the timeout bounds the wait for the first update only
                }
                catch (Exception ex) when (Translate(ex, context) is { } error)
                {
                    throw error;
                }

                foreach (var chunk in translator.Translate(updates.Current))
                {
                    yield return chunk;
                }
            }
        }
        finally
        {
            await updates.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var chunk in translator.Complete())
        {
            yield return chunk;
        }
    }

    public async Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (_embeddingGenerator is null)
        {
            throw ProviderErrors.Unsupported(context, "embeddings");
        }

        if (request.Input?.Texts is not { } texts)
        {
            throw ChatClientRequestMapper.Invalid(
                "unsupported_parameter",
                $"Provider '{context.ProviderName}' (an IEmbeddingGenerator of strings) embeds text only; 'input' must be a string or an array of strings.",
                "input");
        }

        var options = new AI.EmbeddingGenerationOptions { ModelId = context.Model, Dimensions = request.Dimensions };
        if (request.User is not null || request.AdditionalProperties is { Count: > 0 })
        {
            options.AdditionalProperties = [];
            if (request.User is { } user)
            {
                options.AdditionalProperties["user"] = user;
            }

            foreach (var (key, value) in request.AdditionalProperties ?? new Dictionary<string, System.Text.Json.JsonElement>())
            {
                options.AdditionalProperties[key] = value;
            }
        }

        AI.GeneratedEmbeddings<AI.Embedding<float>> embeddings;
        using var attempt = new AttemptDeadline(context, _time, cancellationToken);
        try
        {
            embeddings = await _embeddingGenerator.GenerateAsync(texts, options, attempt.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (Translate(ex, context) is { } error)
        {
            throw error;
        }

        if (embeddings.Count != texts.Count)
        {
            throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "embedding_count_mismatch", $"Provider '{context.ProviderName}' returned {embeddings.Count} embeddings for {texts.Count} inputs.");
        }

        var response = new EmbeddingResponse { Model = context.Model };
        for (var i = 0; i < embeddings.Count; i++)
        {
            var embedding = embeddings[i];
            response.Data.Add(new EmbeddingData { Index = i, Embedding = new EmbeddingVector(embedding.Vector.ToArray()) });
            if (i == 0 && !string.IsNullOrEmpty(embedding.ModelId))
            {
                response.Model = embedding.ModelId;
            }
        }

        var input = (int)Math.Clamp(embeddings.Usage?.InputTokenCount ?? 0, 0, int.MaxValue);
        var total = (int)Math.Clamp(embeddings.Usage?.TotalTokenCount ?? input, 0, int.MaxValue);
        response.Usage = new EmbeddingUsage { PromptTokens = input, TotalTokens = total };
        return response;
    }

    /// <summary>The configured models; when none are configured, the clients' own default models (from their metadata), if they say.</summary>
    public Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var ids = new List<string>(context.Options.Models);
        if (ids.Count == 0)
        {
            if (_chatClient.GetService(typeof(AI.ChatClientMetadata)) is AI.ChatClientMetadata { DefaultModelId: { Length: > 0 } chatModel })
            {
                ids.Add(chatModel);
            }

            if (_embeddingGenerator?.GetService(typeof(AI.EmbeddingGeneratorMetadata)) is AI.EmbeddingGeneratorMetadata { DefaultModelId: { Length: > 0 } embeddingModel }
                && !ids.Contains(embeddingModel, StringComparer.Ordinal))
            {
                ids.Add(embeddingModel);
            }
        }

        IReadOnlyList<ModelInfo> models = [.. ids.Select(id => new ModelInfo { Id = id, OwnedBy = context.ProviderName })];
        return Task.FromResult(models);
    }

    /// <summary>What a failure of the client becomes; null (rethrow as is) for cancellation and errors already in the gateway's shape.</summary>
    internal static BifrostException? Translate(Exception exception, ProviderContext context)
    {
        switch (exception)
        {
            case OperationCanceledException or BifrostException:
                return null;
            case HttpRequestException { StatusCode: { } status }:
                return Wrap((int)status, null, exception);
        }

        if (StatusOf(exception) is { } sdkStatus)
        {
            return Wrap(sdkStatus, null, exception);
        }

        return Wrap(502, "provider_error", exception, $"Provider '{context.ProviderName}' failed: {exception.Message}");
    }

    private static BifrostException Wrap(int status, string? code, Exception inner, string? message = null)
    {
        var error = BifrostErrors.ProviderError(status, null, code, message ?? inner.Message);
        return new BifrostException(error.Error, inner) { IsRetryable = error.IsRetryable };
    }

    /// <summary>
    /// The HTTP status of an SDK exception that carries one as a public <c>int Status</c> (System.ClientModel's
    /// <c>ClientResultException</c>, Azure.Core's <c>RequestFailedException</c>), without referencing those packages.
    /// </summary>
    private static int? StatusOf(Exception exception)
    {
        for (var type = exception.GetType(); type is not null && type != typeof(Exception); type = type.BaseType)
        {
            if (type.FullName is "System.ClientModel.ClientResultException" or "Azure.RequestFailedException")
            {
                return type.GetProperty("Status")?.GetValue(exception) is int status and >= 400 and <= 599 ? status : null;
            }
        }

        return null;
    }
}
