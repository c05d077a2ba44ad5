using Bifrost.Middleware;
using Microsoft.Extensions.AI;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers the gateway as Microsoft.Extensions.AI's <see cref="IChatClient"/> and
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>, with the builders M.E.AI's own <c>AddChatClient</c> returns, so
/// middleware composes: <c>.AddChatClient("openai/gpt-4o-mini").UseFunctionInvocation().UseOpenTelemetry()</c>.
/// </summary>
/// <remarks>
/// Do not combine an unkeyed <see cref="AddChatClient"/> with <c>AddChatClientProvider(name)</c>, which serves a provider
/// from the unkeyed <see cref="IChatClient"/>: the gateway would call itself. Give one of them a key.
/// See <see cref="BifrostClientAIExtensions"/> for the mapping.
/// </remarks>
public static class BifrostAIBuilderExtensions
{
    /// <summary>Registers the gateway as the <see cref="IChatClient"/> (singleton by default).</summary>
    /// <param name="builder">The Bifrost builder.</param>
    /// <param name="defaultModelId">The model when <see cref="ChatOptions.ModelId"/> is not set: <c>provider/model</c> or a bare model of the default provider.</param>
    /// <param name="lifetime">The registration's lifetime.</param>
    /// <returns>The builder of the client's pipeline, to add middleware to.</returns>
    public static ChatClientBuilder AddChatClient(this IBifrostBuilder builder, string? defaultModelId = null, ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Services.AddChatClient(sp => sp.GetRequiredService<IBifrostClient>().AsChatClient(defaultModelId), lifetime);
    }

    /// <summary>Registers the gateway as the <see cref="IChatClient"/> keyed <paramref name="serviceKey"/> (e.g. one per model).</summary>
    /// <param name="builder">The Bifrost builder.</param>
    /// <param name="serviceKey">The key (<c>[FromKeyedServices(key)]</c>, <c>GetRequiredKeyedService&lt;IChatClient&gt;(key)</c>).</param>
    /// <param name="defaultModelId">The model when <see cref="ChatOptions.ModelId"/> is not set.</param>
    /// <param name="lifetime">The registration's lifetime.</param>
    /// <returns>The builder of the client's pipeline, to add middleware to.</returns>
    public static ChatClientBuilder AddKeyedChatClient(this IBifrostBuilder builder, object? serviceKey, string? defaultModelId = null, ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Services.AddKeyedChatClient(serviceKey, sp => sp.GetRequiredService<IBifrostClient>().AsChatClient(defaultModelId), lifetime);
    }

    /// <summary>Registers the gateway's embeddings as the <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> of strings to float embeddings.</summary>
    /// <param name="builder">The Bifrost builder.</param>
    /// <param name="defaultModelId">The model when <see cref="EmbeddingGenerationOptions.ModelId"/> is not set.</param>
    /// <param name="defaultDimensions">The dimensions when <see cref="EmbeddingGenerationOptions.Dimensions"/> is not set; null: the model's own.</param>
    /// <param name="lifetime">The registration's lifetime.</param>
    /// <returns>The builder of the generator's pipeline, to add middleware to.</returns>
    public static EmbeddingGeneratorBuilder<string, Embedding<float>> AddEmbeddingGenerator(
        this IBifrostBuilder builder,
        string? defaultModelId = null,
        int? defaultDimensions = null,
        ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Services.AddEmbeddingGenerator(sp => sp.GetRequiredService<IBifrostClient>().AsEmbeddingGenerator(defaultModelId, defaultDimensions), lifetime);
    }

    /// <summary>Registers the gateway's embeddings as the embedding generator keyed <paramref name="serviceKey"/>.</summary>
    /// <param name="builder">The Bifrost builder.</param>
    /// <param name="serviceKey">The key.</param>
    /// <param name="defaultModelId">The model when <see cref="EmbeddingGenerationOptions.ModelId"/> is not set.</param>
    /// <param name="defaultDimensions">The dimensions when <see cref="EmbeddingGenerationOptions.Dimensions"/> is not set; null: the model's own.</param>
    /// <param name="lifetime">The registration's lifetime.</param>
    /// <returns>The builder of the generator's pipeline, to add middleware to.</returns>
    public static EmbeddingGeneratorBuilder<string, Embedding<float>> AddKeyedEmbeddingGenerator(
        this IBifrostBuilder builder,
        object? serviceKey,
        string? defaultModelId = null,
        int? defaultDimensions = null,
        ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Services.AddKeyedEmbeddingGenerator(
            serviceKey,
            sp => sp.GetRequiredService<IBifrostClient>().AsEmbeddingGenerator(defaultModelId, defaultDimensions),
            lifetime);
    }
}
