namespace Bifrost.Middleware.OpenAI;

/// <summary>A legacy OpenAI text completion request (<c>POST completions</c>), plus Bifrost's <c>fallbacks</c>.</summary>
public sealed class TextCompletionRequest : InferenceRequest, Operations.IStreamableRequest
{
    /// <summary>The prompt: a string, strings, token ids or token-id arrays.</summary>
    public TextInput? Prompt { get; set; }

    /// <summary>Text after the completion.</summary>
    public string? Suffix { get; set; }

    /// <summary>Maximum tokens to generate.</summary>
    public int? MaxTokens { get; set; }

    /// <summary>Sampling temperature.</summary>
    public double? Temperature { get; set; }

    /// <summary>Nucleus sampling probability mass.</summary>
    public double? TopP { get; set; }

    /// <summary>Choices per prompt.</summary>
    public int? N { get; set; }

    /// <summary>Whether to stream.</summary>
    public bool? Stream { get; set; }

    /// <summary>Streaming options (<c>include_usage</c>).</summary>
    public ChatStreamOptions? StreamOptions { get; set; }

    void Operations.IStreamableRequest.ClearStream()
    {
        Stream = null;
        StreamOptions = null;
    }

    /// <summary>Log probabilities of the top tokens.</summary>
    public int? Logprobs { get; set; }

    /// <summary>Echo the prompt back.</summary>
    public bool? Echo { get; set; }

    /// <summary>Stop sequences (a string or an array on the wire).</summary>
    [JsonConverter(typeof(StringOrArrayConverter))]
    public IList<string>? Stop { get; set; }

    /// <summary>Seed for best-effort determinism.</summary>
    public long? Seed { get; set; }

    /// <summary>A stable identifier of the end user.</summary>
    public string? User { get; set; }

    /// <summary>Developer-defined tags: strings, a number or boolean read as its text (the local provider reads its scripting keys here).</summary>
    [JsonConverter(typeof(StringMetadataConverter))]
    public IDictionary<string, string>? Metadata { get; set; }

    /// <summary>A shallow copy for one provider attempt: the provider's bare model, no fallbacks, stream fields only when streaming.</summary>
    internal TextCompletionRequest ForProvider(string model, bool stream)
    {
        var copy = CopyForProvider<TextCompletionRequest>(model);
        (copy.Stream, copy.StreamOptions) = ChatStreamOptions.ForAttempt(stream, StreamOptions);
        return copy;
    }
}

/// <summary>A <c>text_completion</c> object (also each chunk of a streamed completion).</summary>
public sealed class TextCompletionResponse : CompletionEnvelope<TextChoice>
{
    /// <summary>Creates an empty <c>text_completion</c>.</summary>
    public TextCompletionResponse()
        : base("text_completion")
    {
    }
}

/// <summary>A text completion choice.</summary>
public sealed class TextChoice
{
    /// <summary>The generated text (a piece of it on a stream chunk).</summary>
    public string Text { get; set; } = string.Empty;

    /// <summary>The choice's index.</summary>
    public int Index { get; set; }

    /// <summary>Log probabilities, when requested.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public JsonElement? Logprobs { get; set; }

    /// <summary>Null until the choice's last chunk.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FinishReason { get; set; }
}
