using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.AIAbstractions;

/// <summary>The gateway's embeddings as an <see cref="AI.IEmbeddingGenerator{TInput, TEmbedding}"/>, through <see cref="IBifrostClient"/>.</summary>
internal sealed class BifrostEmbeddingGenerator(IBifrostClient client, string? defaultModelId, int? defaultDimensions)
    : AI.IEmbeddingGenerator<string, AI.Embedding<float>>
{
    private readonly AI.EmbeddingGeneratorMetadata _metadata = new(BifrostChatClient.ProviderName, providerUri: null, defaultModelId, defaultDimensions);

    public async Task<AI.GeneratedEmbeddings<AI.Embedding<float>>> GenerateAsync(
        IEnumerable<string> values,
        AI.EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        var inputs = values as IList<string> ?? [.. values];
        if (inputs.Count == 0)
        {
            return [];
        }

        var request = WireRequest.Create(
            options?.RawRepresentationFactory?.Invoke(this) as EmbeddingRequest,
            options?.AdditionalProperties,
            BifrostJsonContext.Default.EmbeddingRequest,
            "EmbeddingGenerationOptions");
        request.Model ??= options?.ModelId ?? defaultModelId;
        request.Input = new TextInput(inputs);
        request.Dimensions ??= options?.Dimensions ?? defaultDimensions;

        var response = await client.EmbeddingsAsync(request, cancellationToken).ConfigureAwait(false);
        var embeddings = new AI.Embedding<float>[inputs.Count];
        foreach (var data in response.Data)
        {
            if ((uint)data.Index >= (uint)embeddings.Length)
            {
                throw BifrostErrors.InvalidProviderResponse($"The embeddings answer has index {data.Index} for {inputs.Count} inputs.");
            }

            embeddings[data.Index] = new AI.Embedding<float>(data.Embedding.ToFloats()) { ModelId = response.Model };
        }

        if (Array.IndexOf(embeddings, null) is var missing and >= 0)
        {
            throw BifrostErrors.InvalidProviderResponse($"The embeddings answer has no embedding for input {missing}.");
        }

        return new AI.GeneratedEmbeddings<AI.Embedding<float>>(embeddings)
        {
            Usage = response.Usage is { } usage ? new AI.UsageDetails { InputTokenCount = usage.PromptTokens, TotalTokenCount = usage.TotalTokens } : null,
        };
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(AI.EmbeddingGeneratorMetadata) ? _metadata
            : serviceType.IsInstanceOfType(this) ? this
            : serviceType.IsInstanceOfType(client) ? client
            : null;
    }

    /// <summary>Nothing to release: the <see cref="IBifrostClient"/> belongs to the container that made it.</summary>
    public void Dispose()
    {
    }
}
