using Bifrost.Middleware.Gateway;

namespace Bifrost.Middleware.Providers.Local;

/// <summary>
/// Rerank of the local provider (issue 17, J): the relevance of a document is the Jaccard similarity of its set of
/// lower-cased words with the query's (0 to 1, rounded to 6 digits), so the ranking is stable and explainable; ties keep
/// the documents' order. Usage counts the word pieces of the query (once per document) and of the documents.
/// </summary>
internal sealed partial class LocalProviderAdapter
{
    public Task<RerankResponse> RerankAsync(ProviderContext context, RerankRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var documents = RerankInput.Read(request.Documents);
        var query = WordSet(request.Query ?? string.Empty);
        var response = new RerankResponse { Id = "rerank-" + NewId()["chatcmpl-".Length..], Model = context.Model };
        var tokens = 0;
        var queryPieces = CountPieces(request.Query ?? string.Empty);
        for (var i = 0; i < documents.Count; i++)
        {
            var words = WordSet(documents[i]);
            var union = new HashSet<string>(query, StringComparer.Ordinal);
            union.UnionWith(words);
            var shared = words.Count(query.Contains);
            var score = union.Count == 0 ? 0 : Math.Round(shared / (double)union.Count, 6);
            response.Results.Add(new RerankResult { Index = i, RelevanceScore = score, Document = request.ReturnDocuments == true ? new RerankDocument { Text = documents[i] } : null });
            tokens += queryPieces + CountPieces(documents[i]);
        }

        RerankInput.Sort(response.Results);
        if (request.TopN is { } topN && topN < response.Results.Count)
        {
            response.Results = [.. response.Results.Take(topN)];
        }

        response.Usage = new ChatUsage { PromptTokens = tokens, TotalTokens = tokens };
        return Task.FromResult(response);
    }

    private static HashSet<string> WordSet(string text)
    {
        var words = new HashSet<string>(StringComparer.Ordinal);
        foreach (var word in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var trimmed = word.Trim('.', ',', ';', ':', '!', '?', '"', '\'', '(', ')').ToLowerInvariant();
            if (trimmed.Length > 0)
            {
                words.Add(trimmed);
            }
        }

        return words;
    }
}
