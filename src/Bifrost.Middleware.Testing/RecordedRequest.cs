namespace Bifrost.Middleware.Testing;

/// <summary>
/// What one attempt on a scripted provider received: the provider, the bare model, the API key the gateway chose, the
/// attempt number and the request as the provider got it (the gateway's copy: the bare model, no fallbacks).
/// </summary>
public sealed class RecordedRequest
{
    internal RecordedRequest(ProviderContext context, string operation, bool stream, InferenceRequest request)
    {
        Provider = context.ProviderName;
        Model = context.Model;
        ApiKey = context.ApiKey;
        Attempt = context.Attempt;
        Operation = operation;
        Stream = stream;
        Request = request;
    }

    /// <summary>The provider name (<c>openai</c> of <c>openai/gpt-4o-mini</c>).</summary>
    public string Provider { get; }

    /// <summary>The bare model (<c>gpt-4o-mini</c>).</summary>
    public string Model { get; }

    /// <summary>The key the gateway picked for this attempt (from the provider's <c>Keys</c>), or null when it has none.</summary>
    public string? ApiKey { get; }

    /// <summary>The attempt number on this provider for the call, from 0 (1 is the first retry).</summary>
    public int Attempt { get; }

    /// <summary>The operation: <c>chat.completions</c> (Responses API requests arrive converted to it) or <c>embeddings</c>.</summary>
    public string Operation { get; }

    /// <summary>Whether the attempt was streamed.</summary>
    public bool Stream { get; }

    /// <summary>The request the provider received.</summary>
    public InferenceRequest Request { get; }

    /// <summary>The request of a chat attempt, else null.</summary>
    public ChatCompletionRequest? Chat => Request as ChatCompletionRequest;

    /// <summary>The request of an embeddings attempt, else null.</summary>
    public EmbeddingRequest? Embeddings => Request as EmbeddingRequest;

    /// <summary>The text of the last <c>user</c> message of a chat attempt (text parts joined), else null.</summary>
    public string? LastUserMessage => Chat is { Messages: { } messages }
        ? messages.LastOrDefault(static m => string.Equals(m.Role, "user", StringComparison.Ordinal))?.Content?.GetText()
        : null;

    /// <inheritdoc/>
    public override string ToString() => $"{Provider}/{Model} {Operation}{(Stream ? " (stream)" : string.Empty)} attempt {Attempt}";
}
