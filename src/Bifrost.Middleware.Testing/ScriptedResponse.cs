namespace Bifrost.Middleware.Testing;

/// <summary>
/// One answer of a scripted provider: text, tool calls, streamed chunks, usage, embeddings — or a failure with an HTTP
/// status — after an optional delay. Create one with <see cref="Text"/>, <see cref="ToolCall"/>, <see cref="Error"/> or
/// <see cref="Embedding"/> and refine it with <c>with { ... }</c>:
/// <code>scripts["openai"].Enqueue(ScriptedResponse.Error(503) with { Delay = TimeSpan.FromMilliseconds(50) });</code>
/// </summary>
public sealed record ScriptedResponse
{
    /// <summary>The assistant's answer text. Null with no <see cref="ToolCalls"/>: the provider echoes the last user message.</summary>
    public string? Content { get; init; }

    /// <summary>Tool calls the assistant makes (the finish reason becomes <c>tool_calls</c>).</summary>
    public IReadOnlyList<ScriptedToolCall> ToolCalls { get; init; } = [];

    /// <summary>
    /// The pieces a stream sends, in order (concatenated, they are the answer). Default: <see cref="Content"/> word by word
    /// (<c>"Hello"</c>, <c>" world"</c>, ...).
    /// </summary>
    public IReadOnlyList<string>? Chunks { get; init; }

    /// <summary>The usage's prompt tokens. Default: counted (words of every message, plus 3 per message and 3 per reply).</summary>
    public int? PromptTokens { get; init; }

    /// <summary>The usage's completion tokens. Default: counted (words of the answer).</summary>
    public int? CompletionTokens { get; init; }

    /// <summary>The finish reason. Default: <c>stop</c>, or <c>tool_calls</c> with tool calls.</summary>
    public string? FinishReason { get; init; }

    /// <summary>The vectors of an embeddings answer, one per input. Default: a small deterministic vector per input text.</summary>
    public IReadOnlyList<float[]>? Embeddings { get; init; }

    /// <summary>When set, the provider fails with this HTTP status (429 and 5xx are retried and fall back; 4xx pass through).</summary>
    public int? StatusCode { get; init; }

    /// <summary>The provider's error code with <see cref="StatusCode"/>. Default: <c>scripted_error</c>.</summary>
    public string? ErrorCode { get; init; }

    /// <summary>The provider's error message with <see cref="StatusCode"/>. Default: one naming the status.</summary>
    public string? ErrorMessage { get; init; }

    /// <summary>
    /// The provider's <c>Retry-After</c> with <see cref="StatusCode"/>. The gateway waits for it only when it is not
    /// longer than the provider's <c>RetryMaxDelay</c> — 0 under the testing defaults, so a scripted Retry-After moves on
    /// to the fallbacks at once, as a too-long one does in production.
    /// </summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>How long the provider waits before answering (or failing). Longer than the provider's <c>Timeout</c>: the attempt times out (504, retried).</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>How long a stream waits before each chunk after the first.</summary>
    public TimeSpan ChunkDelay { get; init; }

    /// <summary>A stream fails (with <see cref="StatusCode"/>, default 500) after this many content chunks: the client sees an SSE error event.</summary>
    public int? FailAfterChunks { get; init; }

    /// <summary>An answer with text.</summary>
    /// <param name="content">The assistant's answer.</param>
    public static ScriptedResponse Text(string content)
    {
        ArgumentNullException.ThrowIfNull(content);
        return new() { Content = content };
    }

    /// <summary>An answer calling one tool.</summary>
    /// <param name="name">The function name.</param>
    /// <param name="argumentsJson">The arguments, as the JSON text the model would produce (e.g. <c>{"city":"Paris"}</c>).</param>
    public static ScriptedResponse ToolCall(string name, string argumentsJson)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(argumentsJson);
        return new() { ToolCalls = [new ScriptedToolCall(name, argumentsJson)] };
    }

    /// <summary>A failure, as the provider would answer it.</summary>
    /// <param name="statusCode">The HTTP status (429 and 5xx are retryable).</param>
    /// <param name="message">The provider's message; default: one naming the status.</param>
    /// <param name="retryAfter">The provider's Retry-After, if any.</param>
    public static ScriptedResponse Error(int statusCode, string? message = null, TimeSpan? retryAfter = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(statusCode, 400);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(statusCode, 599);
        return new() { StatusCode = statusCode, ErrorMessage = message, RetryAfter = retryAfter };
    }

    /// <summary>An embeddings answer with these vectors, one per input.</summary>
    /// <param name="vectors">The vectors.</param>
    public static ScriptedResponse Embedding(params float[][] vectors)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        return new() { Embeddings = vectors };
    }
}

/// <summary>A tool call of a <see cref="ScriptedResponse"/>.</summary>
/// <param name="Name">The function name.</param>
/// <param name="Arguments">The arguments as JSON text.</param>
/// <param name="Id">The call id. Default: <c>call_</c> and a number.</param>
public sealed record ScriptedToolCall(string Name, string Arguments, string? Id = null);
