namespace Bifrost.Middleware.OpenAI;

/// <summary>A chat message of any role (<c>system</c>, <c>developer</c>, <c>user</c>, <c>assistant</c>, <c>tool</c>, <c>function</c>).</summary>
public sealed class ChatCompletionMessage : ExtensibleObject
{
    /// <summary>The author's role.</summary>
    public string? Role { get; set; }

    /// <summary>The content: a string or a list of content parts.</summary>
    public ChatCompletionContent? Content { get; set; }

    /// <summary>An optional participant name.</summary>
    public string? Name { get; set; }

    /// <summary>Tool calls made by the assistant.</summary>
    public IList<ChatCompletionToolCall>? ToolCalls { get; set; }

    /// <summary>For <c>tool</c> messages: the call this message answers.</summary>
    public string? ToolCallId { get; set; }

    /// <summary>The assistant's refusal message, if any.</summary>
    public string? Refusal { get; set; }

    /// <summary>Creates a message with text content.</summary>
    /// <param name="role">The role.</param>
    /// <param name="text">The text.</param>
    public static ChatCompletionMessage FromText(string role, string text) => new() { Role = role, Content = new ChatCompletionContent(text) };

    /// <summary>Creates a <c>system</c> message.</summary>
    /// <param name="content">The instructions: a string or content parts.</param>
    public static ChatCompletionMessage System(ChatCompletionContent content) => WithContent("system", content);

    /// <summary>Creates a <c>developer</c> message (the newer models' name for system instructions).</summary>
    /// <param name="content">The instructions: a string or content parts.</param>
    public static ChatCompletionMessage Developer(ChatCompletionContent content) => WithContent("developer", content);

    /// <summary>Creates a <c>user</c> message.</summary>
    /// <param name="content">The text (a string converts implicitly) or content parts such as images.</param>
    public static ChatCompletionMessage User(ChatCompletionContent content) => WithContent("user", content);

    /// <summary>Creates an <c>assistant</c> message, e.g. an earlier answer replayed in the conversation.</summary>
    /// <param name="content">The assistant's text.</param>
    public static ChatCompletionMessage Assistant(ChatCompletionContent content) => WithContent("assistant", content);

    /// <summary>Creates a <c>tool</c> message: the result of the assistant's tool call <paramref name="toolCallId"/>.</summary>
    /// <param name="toolCallId">The <see cref="ChatCompletionToolCall.Id"/> this message answers.</param>
    /// <param name="content">The tool's result.</param>
    public static ChatCompletionMessage Tool(string toolCallId, ChatCompletionContent content)
    {
        ArgumentException.ThrowIfNullOrEmpty(toolCallId);
        var message = WithContent("tool", content);
        message.ToolCallId = toolCallId;
        return message;
    }

    private static ChatCompletionMessage WithContent(string role, ChatCompletionContent content)
    {
        ArgumentNullException.ThrowIfNull(content);
        return new() { Role = role, Content = content };
    }
}

/// <summary>Message content: either plain text or a list of parts (text, image_url, input_audio, file, ...).</summary>
[JsonConverter(typeof(ChatCompletionContentConverter))]
public sealed class ChatCompletionContent
{
    /// <summary>Creates text content.</summary>
    /// <param name="text">The text.</param>
    public ChatCompletionContent(string text) => Text = text ?? throw new ArgumentNullException(nameof(text));

    /// <summary>Creates multi-part content.</summary>
    /// <param name="parts">The parts.</param>
    public ChatCompletionContent(IList<ChatContentPart> parts) => Parts = parts ?? throw new ArgumentNullException(nameof(parts));

    /// <summary>Text content: lets a string stand wherever content is expected (<c>Content = "Hello"</c>).</summary>
    /// <param name="text">The text.</param>
    public static implicit operator ChatCompletionContent(string text) => new(text);

    /// <summary>Creates text content (the named form of the implicit conversion from <see cref="string"/>).</summary>
    /// <param name="text">The text.</param>
    public static ChatCompletionContent FromString(string text) => new(text);

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
public sealed class ChatCompletionToolCall : ExtensibleObject
{
    /// <summary>Position of the call in a streamed delta.</summary>
    public int? Index { get; set; }

    /// <summary>The call's id.</summary>
    public string? Id { get; set; }

    /// <summary><c>function</c>.</summary>
    public string? Type { get; set; }

    /// <summary>The function called.</summary>
    public ChatCompletionFunctionCall? Function { get; set; }
}

/// <summary>A function call: name and JSON-encoded arguments.</summary>
public sealed class ChatCompletionFunctionCall
{
    /// <summary>The function's name.</summary>
    public string? Name { get; set; }

    /// <summary>The arguments as a JSON string (possibly partial in a stream delta).</summary>
    public string? Arguments { get; set; }
}
