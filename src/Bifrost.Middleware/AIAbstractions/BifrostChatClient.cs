using System.Runtime.CompilerServices;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.AIAbstractions;

/// <summary>
/// The gateway as an <see cref="AI.IChatClient"/>: every call runs through <see cref="IBifrostClient"/> (routing, fallbacks,
/// keys, retries, telemetry), so Microsoft.Extensions.AI middleware composes in front of it.
/// </summary>
internal sealed class BifrostChatClient(IBifrostClient client, string? defaultModelId) : AI.IChatClient
{
    /// <summary>The provider name reported in <see cref="AI.ChatClientMetadata"/> (and so in OpenTelemetry's <c>gen_ai.provider.name</c>).</summary>
    internal const string ProviderName = "bifrost";

    private readonly AI.ChatClientMetadata _metadata = new(ProviderName, providerUri: null, defaultModelId);

    public async Task<AI.ChatResponse> GetResponseAsync(IEnumerable<AI.ChatMessage> messages, AI.ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = ChatRequestWriter.Write(this, messages, options, defaultModelId, stream: false);
        var response = await client.ChatCompletionAsync(request, cancellationToken).ConfigureAwait(false);
        return ChatResponseReader.Read(response);
    }

    public async IAsyncEnumerable<AI.ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<AI.ChatMessage> messages,
        AI.ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = ChatRequestWriter.Write(this, messages, options, defaultModelId, stream: true);
        var reader = new ChatChunkReader();
        await foreach (var chunk in client.ChatCompletionStreamAsync(request, cancellationToken).ConfigureAwait(false))
        {
            yield return reader.Read(chunk);
        }

        if (reader.Complete() is { } last)
        {
            yield return last;
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(AI.ChatClientMetadata) ? _metadata
            : serviceType.IsInstanceOfType(this) ? this
            : serviceType.IsInstanceOfType(client) ? client
            : null;
    }

    /// <summary>Nothing to release: the <see cref="IBifrostClient"/> belongs to the container that made it.</summary>
    public void Dispose()
    {
    }
}
