using Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Providers.ChatClient;

/// <summary>
/// Type <c>chatclient</c>: a Microsoft.Extensions.AI <see cref="IChatClient"/> from the service container, the one keyed by
/// the provider's name (<c>AddKeyedChatClient(name, ...)</c>) if there is one, else the unkeyed one; an embedding generator
/// of strings to float embeddings, found the same way, serves embeddings when registered.
/// </summary>
internal sealed class ChatClientProviderType : IProviderType
{
    public const string TypeName = "chatclient";

    public string Name => TypeName;

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => new ChatClientProviderAdapter(
        services.GetKeyedService<IChatClient>(providerName) ?? services.GetService<IChatClient>()
            ?? throw new InvalidOperationException($"Provider '{providerName}' needs an IChatClient: register one with AddChatClient(...) or AddKeyedChatClient(\"{providerName}\", ...), or pass a factory to AddChatClientProvider."),
        services.GetKeyedService<IEmbeddingGenerator<string, Embedding<float>>>(providerName) ?? services.GetService<IEmbeddingGenerator<string, Embedding<float>>>(),
        services.GetRequiredService<TimeProvider>());
}
