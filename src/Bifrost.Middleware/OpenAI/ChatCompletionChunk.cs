namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI <c>chat.completion.chunk</c> of a streamed completion, with Bifrost's <c>extra_fields</c> (including <c>chunk_index</c>).</summary>
public sealed class ChatCompletionChunk : ChatCompletionEnvelope<ChatChunkChoice>
{
    /// <summary>Creates an empty <c>chat.completion.chunk</c>.</summary>
    public ChatCompletionChunk()
        : base("chat.completion.chunk")
    {
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
