using Bifrost.Middleware;
using Bifrost.Middleware.Providers.ChatClient;
using Microsoft.Extensions.AI;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Microsoft.Extensions.AI clients (<see cref="IChatClient"/>, <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>) as Bifrost providers.</summary>
/// <remarks>
/// <para>
/// Any <see cref="IChatClient"/> (OpenAI, Azure AI Inference, Ollama, a <c>ChatClientBuilder</c> pipeline, your own) then
/// serves <c>name/model</c> for chat completions (JSON and streamed), the Responses API (run as chat completions) and, with an
/// embedding generator, embeddings. Other operations answer a 400 <c>unsupported_operation</c>. The model after <c>name/</c>
/// is passed as <see cref="ChatOptions.ModelId"/>. The client carries its own endpoint and credentials: the provider's
/// configured keys, base URL and headers are not used (its models list, timeout, retries and fallbacks are). The gateway does not dispose the clients.
/// </para>
/// <para>
/// What cannot cross the abstraction: <c>n</c> &gt; 1 (a 400), log probabilities (never returned), non-function tools and
/// content parts other than text, images, audio and files (a 400), audio output, <c>system_fingerprint</c> and
/// <c>service_tier</c> in answers. Fields with no <see cref="ChatOptions"/> property (<c>logprobs</c>, <c>logit_bias</c>,
/// <c>user</c>, <c>metadata</c>, <c>store</c>, <c>service_tier</c> and unknown ones) reach the client in
/// <see cref="ChatOptions.AdditionalProperties"/> under their wire names; <c>parallel_tool_calls</c> becomes
/// <see cref="ChatOptions.AllowMultipleToolCalls"/>, which a client may ignore. A tool call the client's own function
/// invocation already answered is not reported back. See docs/chat-client-provider.md for the full mapping.
/// </para>
/// </remarks>
public static class BifrostChatClientBuilderExtensions
{
    /// <summary>
    /// Registers the <see cref="IChatClient"/> from the service container as provider <paramref name="name"/>: the one keyed
    /// <paramref name="name"/> (<c>AddKeyedChatClient(name, ...)</c>) if there is one, else the unkeyed one
    /// (<c>AddChatClient(...)</c>). An <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> of strings to float embeddings,
    /// found the same way, serves embeddings when registered.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The provider name (the prefix of model strings).</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder AddChatClientProvider(this IBifrostBuilder builder, string name)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddProvider(name, sp => new ChatClientProviderType().CreateAdapter(sp, name));
    }

    /// <summary>Registers an <see cref="IChatClient"/> as provider <paramref name="name"/> for chat completions (embeddings answer "unsupported").</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The provider name (the prefix of model strings).</param>
    /// <param name="chatClientFactory">Creates the client once, when the gateway starts.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder AddChatClientProvider(this IBifrostBuilder builder, string name, Func<IServiceProvider, IChatClient> chatClientFactory) =>
        AddChatClientProvider(builder, name, chatClientFactory, null);

    /// <summary>Registers an <see cref="IChatClient"/> and an embedding generator as provider <paramref name="name"/>, for chat completions and embeddings.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The provider name (the prefix of model strings).</param>
    /// <param name="chatClientFactory">Creates the chat client once, when the gateway starts.</param>
    /// <param name="embeddingGeneratorFactory">Creates the embedding generator once, or null when the provider has none (embeddings then answer "unsupported").</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder AddChatClientProvider(
        this IBifrostBuilder builder,
        string name,
        Func<IServiceProvider, IChatClient> chatClientFactory,
        Func<IServiceProvider, IEmbeddingGenerator<string, Embedding<float>>>? embeddingGeneratorFactory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(chatClientFactory);
        return builder.AddProvider(name, sp => new ChatClientProviderAdapter(
            chatClientFactory(sp) ?? throw new InvalidOperationException($"The IChatClient factory of provider '{name}' returned null."),
            embeddingGeneratorFactory?.Invoke(sp),
            sp.GetRequiredService<TimeProvider>()));
    }
}
