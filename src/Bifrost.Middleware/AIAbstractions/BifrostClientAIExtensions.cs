using Bifrost.Middleware;
using Bifrost.Middleware.AIAbstractions;

namespace Microsoft.Extensions.AI;

/// <summary>
/// <see cref="IBifrostClient"/> as Microsoft.Extensions.AI's <see cref="IChatClient"/> and
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>: the gateway's routing, fallbacks, keys and retries behind the
/// abstraction, composable with <c>ChatClientBuilder</c> middleware (<c>UseFunctionInvocation()</c>, <c>UseOpenTelemetry()</c>, ...).
/// </summary>
/// <remarks>
/// <para>
/// Mapping: messages of every role with text, images (<see cref="DataContent"/> or an image <see cref="UriContent"/>),
/// audio and files (<see cref="DataContent"/>, <see cref="HostedFileContent"/>), function calls and results; function
/// tools with their JSON schema and <see cref="ChatToolMode"/>; <see cref="ChatResponseFormat"/> (text, JSON, JSON schema,
/// <c>strict</c> from <see cref="ChatOptions.AdditionalProperties"/>); temperature, top-p, top-k (as <c>top_k</c>), max
/// output tokens (as <c>max_completion_tokens</c>), stop sequences, seed, penalties, reasoning effort and
/// <see cref="ChatOptions.Instructions"/> (a leading system message). <see cref="ChatOptions.AdditionalProperties"/> entries
/// are wire fields by name: <c>fallbacks</c> (a list of <c>provider/model</c>), <c>user</c>, <c>metadata</c>,
/// <c>service_tier</c>, provider-specific fields. A <see cref="ChatOptions.RawRepresentationFactory"/> may return a
/// <see cref="ChatCompletionRequest"/> to start from; its fields win over the additional properties, which win over the typed options.
/// </para>
/// <para>
/// Answers carry text, reasoning (<see cref="TextReasoningContent"/>), refusals (<see cref="ErrorContent"/> with code
/// <c>Refusal</c>), function calls with parsed arguments, the finish reason, usage (cached and reasoning tokens in
/// their properties, other details in <see cref="UsageDetails.AdditionalCounts"/>), response id, model and creation time;
/// <c>RawRepresentation</c> is the <see cref="ChatCompletionResponse"/> or <see cref="ChatCompletionChunk"/>, with Bifrost's
/// <c>extra_fields</c> (the provider that served, latency). Streaming updates come one per chunk; tool-call deltas are
/// reported whole on the update with the finish reason; usage arrives as <see cref="UsageContent"/>.
/// </para>
/// <para>
/// Failures throw <see cref="BifrostException"/> as <see cref="IBifrostClient"/> does (status, type, code, retryability):
/// an unroutable model, a provider error after retries and fallbacks, and what cannot be expressed on the wire (non-function
/// tools, content by URL other than images, <c>n</c> &gt; 1) as a 400. Cancellation flows to the upstream call.
/// </para>
/// </remarks>
public static class BifrostClientAIExtensions
{
    /// <summary>The gateway as an <see cref="IChatClient"/>.</summary>
    /// <param name="client">The in-process gateway.</param>
    /// <param name="defaultModelId">The model when <see cref="ChatOptions.ModelId"/> is not set: <c>provider/model</c> or a bare model of the default provider.</param>
    /// <returns>A chat client that does not own <paramref name="client"/>; <c>GetService</c> returns its <see cref="ChatClientMetadata"/> (provider name <c>bifrost</c>) and the <see cref="IBifrostClient"/>.</returns>
    public static IChatClient AsChatClient(this IBifrostClient client, string? defaultModelId = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        return new BifrostChatClient(client, defaultModelId);
    }

    /// <summary>The gateway's embeddings as an <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>.</summary>
    /// <param name="client">The in-process gateway.</param>
    /// <param name="defaultModelId">The model when <see cref="EmbeddingGenerationOptions.ModelId"/> is not set.</param>
    /// <param name="defaultDimensions">The dimensions when <see cref="EmbeddingGenerationOptions.Dimensions"/> is not set; null: the model's own.</param>
    /// <returns>An embedding generator that does not own <paramref name="client"/>; <c>GetService</c> returns its <see cref="EmbeddingGeneratorMetadata"/> and the <see cref="IBifrostClient"/>.</returns>
    public static IEmbeddingGenerator<string, Embedding<float>> AsEmbeddingGenerator(this IBifrostClient client, string? defaultModelId = null, int? defaultDimensions = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentOutOfRangeException.ThrowIfLessThan(defaultDimensions ?? 1, 1, nameof(defaultDimensions));
        return new BifrostEmbeddingGenerator(client, defaultModelId, defaultDimensions);
    }
}
