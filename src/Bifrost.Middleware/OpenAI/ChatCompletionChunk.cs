namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI <c>chat.completion.chunk</c> of a streamed completion, with Bifrost's <c>extra_fields</c> (including <c>chunk_index</c>).</summary>
public sealed class ChatCompletionChunk : ChatCompletionEnvelope<ChatChunkChoice>
{
    /// <summary>Creates an empty <c>chat.completion.chunk</c>.</summary>
    public ChatCompletionChunk()
        : base("chat.completion.chunk")
    {
    }

    private byte[]? _providerJson;
    private int _providerJsonLength;

    /// <summary>
    /// Issue 18: the provider's <c>data:</c> JSON of this chunk as received (a pooled buffer), set by the OpenAI-compatible
    /// adapter when the chat endpoint asked for a relayed stream (<see cref="ChatCompletionRequest.RelayChunks"/>): the
    /// chunk then carries only what the gateway's layers read (id, model, created, usage) and the SSE writer sends these
    /// bytes with the chunk's <c>extra_fields</c> spliced in as the last member, instead of serializing the chunk.
    /// </summary>
    internal bool HasProviderJson => _providerJson is not null;

    /// <summary>Takes ownership of <paramref name="rented"/> (from <see cref="System.Buffers.ArrayPool{T}.Shared"/>), whose first <paramref name="length"/> bytes are one JSON object.</summary>
    internal void SetProviderJson(byte[] rented, int length)
    {
        _providerJson = rented;
        _providerJsonLength = length;
    }

    /// <summary>The provider's JSON (see <see cref="HasProviderJson"/>), handed to the caller, who returns the buffer to the pool; false when there is none.</summary>
    internal bool TryTakeProviderJson([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? buffer, out int length)
    {
        buffer = _providerJson;
        length = _providerJsonLength;
        _providerJson = null;
        return buffer is not null;
    }
}

/// <summary>A choice delta in a stream chunk.</summary>
public sealed class ChatChunkChoice : ChatChoiceBase
{
    /// <summary>What this chunk adds.</summary>
    public ChatDelta Delta { get; set; } = new();
}

/// <summary>The incremental part of a streamed message.</summary>
public sealed class ChatDelta : ChatAssistantMessageBase
{
    /// <summary>The role, on the first chunk of a choice.</summary>
    public string? Role { get; set; }

    /// <summary>A piece of text.</summary>
    public string? Content { get; set; }
}
