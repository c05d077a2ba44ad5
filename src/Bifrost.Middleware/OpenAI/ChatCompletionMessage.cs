namespace Bifrost.Middleware.OpenAI;

/// <summary>A chat message of any role (<c>system</c>, <c>developer</c>, <c>user</c>, <c>assistant</c>, <c>tool</c>, <c>function</c>).</summary>
public sealed class ChatCompletionMessage : ExtensibleObject
{
    /// <summary>The author's role.</summary>
    public string? Role { get; set; }

    /// <summary>The content: a string or a list of content parts.</summary>
    public ChatMessageContent? Content { get; set; }

    /// <summary>An optional participant name.</summary>
    public string? Name { get; set; }

    /// <summary>Tool calls made by the assistant.</summary>
    public IList<ChatToolCall>? ToolCalls { get; set; }

    /// <summary>For <c>tool</c> messages: the call this message answers.</summary>
    public string? ToolCallId { get; set; }

    /// <summary>The assistant's refusal message, if any.</summary>
    public string? Refusal { get; set; }

    /// <summary>Creates a message with text content.</summary>
    /// <param name="role">The role.</param>
    /// <param name="text">The text.</param>
    public static ChatCompletionMessage FromText(string role, string text) => new() { Role = role, Content = new ChatMessageContent(text) };
}

/// <summary>Message content: either plain text or a list of parts (text, image_url, input_audio, file, ...).</summary>
[JsonConverter(typeof(ChatMessageContentConverter))]
public sealed class ChatMessageContent
{
    /// <summary>Creates text content.</summary>
    /// <param name="text">The text.</param>
    public ChatMessageContent(string text) => Text = text ?? throw new ArgumentNullException(nameof(text));

    /// <summary>Creates multi-part content.</summary>
    /// <param name="parts">The parts.</param>
    public ChatMessageContent(IList<ChatContentPart> parts) => Parts = parts ?? throw new ArgumentNullException(nameof(parts));

    /// <summary>The text, when the content is a plain string.</summary>
    public string? Text { get; }

    /// <summary>The parts, when the content is an array.</summary>
    public IList<ChatContentPart>? Parts { get; }

    /// <summary>All text of the content: the string, or the text parts joined by a newline.</summary>
    public string GetText()
    {
        if (Text is not null)
        {
            return Text;
        }

        string? single = null;
        System.Text.StringBuilder? sb = null;
        foreach (var part in Parts!)
        {
            if (part.Text is null)
            {
                continue;
            }

            if (single is null)
            {
                single = part.Text;
            }
            else
            {
                sb ??= new System.Text.StringBuilder(single);
                sb.Append('\n').Append(part.Text);
            }
        }

        return sb?.ToString() ?? single ?? string.Empty;
    }
}

/// <summary>One part of a multi-part message.</summary>
public sealed class ChatContentPart : ExtensibleObject
{
    /// <summary><c>text</c>, <c>image_url</c>, <c>input_audio</c>, <c>file</c>, <c>refusal</c>, ...</summary>
    public string? Type { get; set; }

    /// <summary>The text of a <c>text</c> part.</summary>
    public string? Text { get; set; }

    /// <summary>The image of an <c>image_url</c> part.</summary>
    public ChatImageUrl? ImageUrl { get; set; }
}

/// <summary>An image reference: a URL or a <c>data:</c> URI.</summary>
public sealed class ChatImageUrl : ExtensibleObject
{
    /// <summary>The URL or base64 data URI.</summary>
    public string? Url { get; set; }

    /// <summary><c>auto</c>, <c>low</c> or <c>high</c>.</summary>
    public string? Detail { get; set; }
}

/// <summary>A tool call made by the assistant (also used, with <see cref="Index"/>, in stream deltas).</summary>
public sealed class ChatToolCall : ExtensibleObject
{
    /// <summary>Position of the call in a streamed delta.</summary>
    public int? Index { get; set; }

    /// <summary>The call's id.</summary>
    public string? Id { get; set; }

    /// <summary><c>function</c>.</summary>
    public string? Type { get; set; }

    /// <summary>The function called.</summary>
    public ChatFunctionCall? Function { get; set; }
}

/// <summary>A function call: name and JSON-encoded arguments.</summary>
public sealed class ChatFunctionCall
{
    /// <summary>The function's name.</summary>
    public string? Name { get; set; }

    /// <summary>The arguments as a JSON string (possibly partial in a stream delta).</summary>
    public string? Arguments { get; set; }
}
