namespace Bifrost.Middleware.OpenAI;

/// <summary>
/// The envelope shared by <c>chat.completion</c>, <c>chat.completion.chunk</c> and <c>text_completion</c> objects:
/// id, object, created, model, choices, usage, system fingerprint and Bifrost's <c>extra_fields</c>, in that order
/// on the wire (a type's own fields come between <c>system_fingerprint</c> and <c>extra_fields</c>).
/// </summary>
/// <typeparam name="TChoice">The choice type.</typeparam>
public abstract class CompletionEnvelope<TChoice> : ExtensibleObject, Operations.IOperationAnswer
{
    /// <summary>Order of <c>id</c> to <c>choices</c>; <c>usage</c> and <c>system_fingerprint</c> have the default order 0.</summary>
    private protected const int Leading = -1;

    /// <summary>Order of a derived type's own fields, after <c>system_fingerprint</c>.</summary>
    private protected const int Own = 1;

    /// <summary>Order of <c>extra_fields</c>, after a derived type's own fields.</summary>
    private protected const int Trailing = 2;

    private protected CompletionEnvelope(string @object) => Object = @object;

    /// <summary>The completion's id (the same on every chunk of a stream).</summary>
    [JsonPropertyOrder(Leading)]
    public string? Id { get; set; }

    /// <summary>The object type: <c>chat.completion</c>, <c>chat.completion.chunk</c> or <c>text_completion</c>.</summary>
    [JsonPropertyOrder(Leading)]
    public string Object { get; set; }

    /// <summary>Unix seconds when the completion was created.</summary>
    [JsonPropertyOrder(Leading)]
    public long Created { get; set; }

    /// <summary>The model that answers, as the provider names it.</summary>
    [JsonPropertyOrder(Leading)]
    public string? Model { get; set; }

    /// <summary>The choices (deltas on a stream chunk; empty on a final usage chunk).</summary>
    [JsonPropertyOrder(Leading)]
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<TChoice> Choices { get; set; } = [];

    /// <summary>Token usage (on a stream, on the final chunk when <c>stream_options.include_usage</c> is true).</summary>
    public ChatUsage? Usage { get; set; }

    Operations.TokenCounts? Operations.IOperationAnswer.Tokens => Usage is { } usage ? Operations.TokenCounts.Of(usage.PromptTokens, usage.CompletionTokens, usage.PromptTokensDetails, usage.CompletionTokensDetails) : null;

    /// <summary>The backend configuration fingerprint.</summary>
    public string? SystemFingerprint { get; set; }

    /// <summary>Gateway metadata: provider, requested model, latency, and on stream chunks <c>chunk_index</c>.</summary>
    [JsonPropertyOrder(Trailing)]
    public BifrostExtraFields? ExtraFields { get; set; }
}
