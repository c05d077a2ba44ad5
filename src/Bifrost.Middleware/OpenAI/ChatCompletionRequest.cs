namespace Bifrost.Middleware.OpenAI;

/// <summary>
/// An OpenAI chat completion request (<c>POST chat/completions</c>), plus Bifrost's <c>fallbacks</c>.
/// Fields the gateway does not model are kept in <see cref="ExtensibleObject.AdditionalProperties"/> and forwarded
/// to the provider unchanged.
/// </summary>
public sealed class ChatCompletionRequest : InferenceRequest, Operations.IStreamableRequest
{
    /// <summary>Creates an empty request (set <see cref="InferenceRequest.Model"/> and <see cref="Messages"/>).</summary>
    public ChatCompletionRequest()
    {
    }

    /// <summary>Creates a request for <paramref name="model"/> with the given conversation.</summary>
    /// <param name="model">The model, as <c>provider/model</c> (e.g. <c>local/echo</c>) or a bare model of the default provider.</param>
    /// <param name="messages">The conversation, e.g. <c>ChatCompletionMessage.System("...")</c>, <c>ChatCompletionMessage.User("...")</c>.</param>
    public ChatCompletionRequest(string model, params IEnumerable<ChatCompletionMessage> messages)
        : base(model) => Messages = [.. messages ?? throw new ArgumentNullException(nameof(messages))];

    /// <summary>The conversation so far.</summary>
    public IList<ChatCompletionMessage>? Messages { get; set; }

    /// <summary>Whether to stream the answer as server-sent events.</summary>
    public bool? Stream { get; set; }

    /// <summary>Streaming options (<c>include_usage</c>).</summary>
    public ChatStreamOptions? StreamOptions { get; set; }

    void Operations.IStreamableRequest.ClearStream()
    {
        Stream = null;
        StreamOptions = null;
    }

    /// <summary>Sampling temperature.</summary>
    public double? Temperature { get; set; }

    /// <summary>Nucleus sampling probability mass.</summary>
    public double? TopP { get; set; }

    /// <summary>How many choices to generate.</summary>
    public int? N { get; set; }

    /// <summary>Legacy maximum number of tokens to generate.</summary>
    public int? MaxTokens { get; set; }

    /// <summary>Maximum number of tokens to generate, including reasoning tokens.</summary>
    public int? MaxCompletionTokens { get; set; }

    /// <summary>Up to four sequences where generation stops (a string or an array on the wire).</summary>
    [JsonConverter(typeof(StringOrArrayConverter))]
    public IList<string>? Stop { get; set; }

    /// <summary>Seed for best-effort deterministic sampling.</summary>
    public long? Seed { get; set; }

    /// <summary>Presence penalty.</summary>
    public double? PresencePenalty { get; set; }

    /// <summary>Frequency penalty.</summary>
    public double? FrequencyPenalty { get; set; }

    /// <summary>Token bias map (token id → bias).</summary>
    public IDictionary<string, double>? LogitBias { get; set; }

    /// <summary>Whether to return log probabilities of the output tokens.</summary>
    public bool? Logprobs { get; set; }

    /// <summary>How many most likely tokens to return at each position.</summary>
    public int? TopLogprobs { get; set; }

    /// <summary>Tools the model may call.</summary>
    public IList<ChatCompletionTool>? Tools { get; set; }

    /// <summary>Which tool the model must call: <c>none</c>, <c>auto</c>, <c>required</c> or a function object.</summary>
    public JsonElement? ToolChoice { get; set; }

    /// <summary>Whether the model may call several tools at once.</summary>
    public bool? ParallelToolCalls { get; set; }

    /// <summary>Output format: <c>text</c>, <c>json_object</c> or <c>json_schema</c>.</summary>
    public ChatCompletionResponseFormat? ResponseFormat { get; set; }

    /// <summary>Reasoning effort for reasoning models (<c>minimal</c>, <c>low</c>, <c>medium</c>, <c>high</c>).</summary>
    public string? ReasoningEffort { get; set; }

    /// <summary>A stable identifier of the end user.</summary>
    public string? User { get; set; }

    /// <summary>Developer-defined tags: strings (a number or boolean is read as its text).</summary>
    [JsonConverter(typeof(StringMetadataConverter))]
    public IDictionary<string, string>? Metadata { get; set; }

    /// <summary>Whether the provider may store the completion.</summary>
    public bool? Store { get; set; }

    /// <summary>Service tier requested from the provider.</summary>
    public string? ServiceTier { get; set; }

    /// <summary>
    /// Issue 18: set by the chat endpoint on a streamed request when nothing but the SSE writer and the built-in layers that
    /// read only id, model, usage and <c>extra_fields</c> see its chunks (no plugin, cache, host decorator or content capture):
    /// an OpenAI-compatible adapter may then hand over chunks that carry the provider's JSON (<see cref="ChatCompletionChunk.HasProviderJson"/>)
    /// instead of fully typed ones. Never serialized; copies for an attempt share it.
    /// </summary>
    [JsonIgnore]
    internal bool RelayChunks { get; set; }

    /// <summary>A shallow copy for one provider attempt: the provider's bare model, no fallbacks, stream fields only when streaming.</summary>
    internal ChatCompletionRequest ForProvider(string model, bool stream)
    {
        var copy = CopyForProvider<ChatCompletionRequest>(model);
        (copy.Stream, copy.StreamOptions) = ChatStreamOptions.ForAttempt(stream, StreamOptions);
        return copy;
    }
}

/// <summary>Options for streamed chat completions.</summary>
public sealed class ChatStreamOptions : ExtensibleObject
{
    /// <summary>When true, a final chunk with an empty <c>choices</c> array carries the usage of the whole request.</summary>
    public bool? IncludeUsage { get; set; }

    /// <summary>The <c>stream</c> and <c>stream_options</c> of one provider attempt: <c>true</c> and the caller's options when streaming, neither otherwise.</summary>
    /// <param name="stream">Whether the attempt streams.</param>
    /// <param name="options">The caller's stream options.</param>
    internal static (bool? Stream, ChatStreamOptions? Options) ForAttempt(bool stream, ChatStreamOptions? options) => stream ? (true, options) : (null, null);
}

/// <summary>A tool the model may call.</summary>
public sealed class ChatCompletionTool : ExtensibleObject
{
    /// <summary>The tool type, <c>function</c> for function tools.</summary>
    public string? Type { get; set; }

    /// <summary>The function definition when <see cref="Type"/> is <c>function</c>.</summary>
    public ChatFunctionDefinition? Function { get; set; }
}

/// <summary>
/// A named JSON schema: a function tool's definition (whose schema is its <c>parameters</c>) or a structured output's
/// <c>json_schema</c>. On the wire: <c>name</c>, <c>description</c>, the schema, <c>strict</c>.
/// </summary>
public abstract class NamedSchema : ExtensibleObject
{
    private protected NamedSchema()
    {
    }

    /// <summary>The function's or schema's name.</summary>
    [JsonPropertyOrder(-1)]
    public string? Name { get; set; }

    /// <summary>What the function does, or what the schema is for.</summary>
    [JsonPropertyOrder(-1)]
    public string? Description { get; set; }

    /// <summary>Whether the model must follow the schema exactly.</summary>
    public bool? Strict { get; set; }
}

/// <summary>A function the model may call.</summary>
public sealed class ChatFunctionDefinition : NamedSchema
{
    /// <summary>The JSON schema of the function's arguments.</summary>
    public JsonElement? Parameters { get; set; }
}

/// <summary>The requested output format.</summary>
public sealed class ChatCompletionResponseFormat : ExtensibleObject
{
    /// <summary><c>text</c>, <c>json_object</c> or <c>json_schema</c>.</summary>
    public string? Type { get; set; }

    /// <summary>The schema when <see cref="Type"/> is <c>json_schema</c>.</summary>
    public ChatJsonSchema? JsonSchema { get; set; }
}

/// <summary>A JSON schema for structured outputs.</summary>
public sealed class ChatJsonSchema : NamedSchema
{
    /// <summary>The JSON schema itself.</summary>
    public JsonElement? Schema { get; set; }
}
