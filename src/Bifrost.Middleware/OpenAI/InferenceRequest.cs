namespace Bifrost.Middleware.OpenAI;

/// <summary>
/// What every inference request has: the <c>model</c> to route and Bifrost's <c>fallbacks</c>. Fields a request type
/// does not model are kept in <see cref="ExtensibleObject.AdditionalProperties"/> and forwarded to the provider unchanged.
/// </summary>
public abstract class InferenceRequest : ExtensibleObject
{
    private protected InferenceRequest()
    {
    }

    /// <summary>A request for <paramref name="model"/> (required, not empty).</summary>
    /// <param name="model">The model.</param>
    private protected InferenceRequest(string model)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        Model = model;
    }

    /// <summary>The model, as <c>provider/model</c> (e.g. <c>openai/gpt-4o-mini</c>) or a bare model name for the default provider.</summary>
    [JsonPropertyOrder(-1)]
    public string? Model { get; set; }

    /// <summary>Bifrost extension: <c>provider/model</c> names tried in order when the primary fails with a retryable error. Never sent upstream.</summary>
    public IList<string>? Fallbacks { get; set; }

    /// <summary>
    /// The client's JSON bytes of this request, when the chat or embeddings endpoint read it and nothing but the gateway's
    /// built-in code sees it before the provider (issue 18): an OpenAI-compatible adapter forwards them with only <c>model</c>
    /// rewritten. Never serialized; copies for an attempt (<see cref="CopyForProvider"/>) share it; released by the endpoint
    /// when its call ends.
    /// </summary>
    [JsonIgnore]
    internal RequestBytes? ClientBytes { get; set; }

    /// <summary>A shallow copy for one provider attempt: the provider's bare model, no fallbacks.</summary>
    /// <typeparam name="T">The request type.</typeparam>
    /// <param name="model">The provider's model.</param>
    private protected T CopyForProvider<T>(string model)
        where T : InferenceRequest
    {
        var copy = (T)MemberwiseClone();
        copy.Model = model;
        copy.Fallbacks = null;
        return copy;
    }
}
