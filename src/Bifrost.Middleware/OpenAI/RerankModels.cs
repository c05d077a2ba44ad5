namespace Bifrost.Middleware.OpenAI;

/// <summary>A rerank request (<c>POST rerank</c>, Bifrost's and Cohere's shape), plus Bifrost's <c>fallbacks</c>. Fields it does not model pass through.</summary>
public sealed class RerankRequest : InferenceRequest
{
    /// <summary>Creates an empty request (set <see cref="InferenceRequest.Model"/>, <see cref="Query"/> and <see cref="Documents"/>).</summary>
    public RerankRequest()
    {
    }

    /// <summary>The query the documents are ranked against.</summary>
    public string? Query { get; set; }

    /// <summary>The documents: an array of strings or of <c>{"text": ...}</c> objects.</summary>
    public JsonElement? Documents { get; set; }

    /// <summary>How many results to return (default: all).</summary>
    public int? TopN { get; set; }

    /// <summary>Whether each result carries its document.</summary>
    public bool? ReturnDocuments { get; set; }

    /// <summary>A shallow copy for one provider attempt: the provider's bare model, no fallbacks.</summary>
    internal RerankRequest ForProvider(string model) => CopyForProvider<RerankRequest>(model);
}

/// <summary>A rerank response: results most relevant first.</summary>
public sealed class RerankResponse : ExtensibleObject, Operations.IOperationAnswer
{
    /// <summary>The provider's id of the answer, if any.</summary>
    public string? Id { get; set; }

    /// <summary>The results, most relevant first.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<RerankResult> Results { get; set; } = [];

    /// <summary>The model that answered.</summary>
    public string? Model { get; set; }

    /// <summary>Token usage, when the provider reports it.</summary>
    public ChatUsage? Usage { get; set; }

    /// <summary>Gateway metadata.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }

    Operations.TokenCounts? Operations.IOperationAnswer.Tokens => Usage is { } usage ? new Operations.TokenCounts(usage.PromptTokens, usage.CompletionTokens) : null;
}

/// <summary>One ranked document.</summary>
public sealed class RerankResult : ExtensibleObject
{
    /// <summary>The document's position in the request.</summary>
    public int Index { get; set; }

    /// <summary>Its relevance to the query (higher is more relevant).</summary>
    public double RelevanceScore { get; set; }

    /// <summary>The document, when <c>return_documents</c> asked for it.</summary>
    public RerankDocument? Document { get; set; }
}

/// <summary>A document of a rerank result.</summary>
public sealed class RerankDocument : ExtensibleObject
{
    /// <summary>The document's text.</summary>
    public string? Text { get; set; }
}
