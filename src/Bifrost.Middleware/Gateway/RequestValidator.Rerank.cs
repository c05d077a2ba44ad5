namespace Bifrost.Middleware.Gateway;

/// <summary>Rerank requests (issue 17, J).</summary>
internal static partial class RequestValidator
{
    /// <summary>A rerank request: a query, 1 to <see cref="RerankInput.MaxDocuments"/> documents, <c>top_n</c> at least 1.</summary>
    public static void Validate(RerankRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.Query))
        {
            throw Missing("query", "'query' is required and must not be empty.");
        }

        RerankInput.Read(request.Documents);
        Integer("top_n", request.TopN, 1, int.MaxValue);
        Fallbacks(request.Fallbacks);
    }
}

/// <summary>Reads (and checks) rerank <c>documents</c>.</summary>
internal static class RerankInput
{
    /// <summary>The most documents one request may rank (Cohere's bound).</summary>
    public const int MaxDocuments = 1000;

    /// <summary>The documents' texts: strings, or objects with a <c>text</c> string. Throws the 400 of a malformed list.</summary>
    public static IReadOnlyList<string> Read(JsonElement? documents)
    {
        if (documents is not { } element || element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            throw BifrostErrors.MissingParameter("'documents' is required.", "documents");
        }

        if (element.ValueKind != JsonValueKind.Array)
        {
            throw BifrostErrors.InvalidType("'documents' must be an array of strings or of {\"text\": ...} objects.", "documents");
        }

        var count = element.GetArrayLength();
        if (count == 0)
        {
            throw BifrostErrors.InvalidValue("'documents' must not be empty.", "documents");
        }

        if (count > MaxDocuments)
        {
            throw BifrostErrors.InvalidValue($"'documents' may hold at most {MaxDocuments} documents; it holds {count}.", "documents");
        }

        var texts = new List<string>(count);
        foreach (var document in element.EnumerateArray())
        {
            var param = $"documents[{texts.Count}]";
            if (document.ValueKind == JsonValueKind.String)
            {
                texts.Add(document.GetString()!);
            }
            else if (document.ValueKind == JsonValueKind.Object && document.TryGetProperty("text"u8, out var text) && text.ValueKind == JsonValueKind.String)
            {
                texts.Add(text.GetString()!);
            }
            else
            {
                throw BifrostErrors.InvalidType($"'{param}' must be a string or an object with a 'text' string.", param);
            }
        }

        return texts;
    }

    /// <summary>Sorts results most relevant first (ties: lower index first).</summary>
    public static void Sort(IList<RerankResult> results)
    {
        if (results is List<RerankResult> list)
        {
            list.Sort(Compare);
            return;
        }

        var sorted = results.ToList();
        sorted.Sort(Compare);
        results.Clear();
        foreach (var result in sorted)
        {
            results.Add(result);
        }

        static int Compare(RerankResult a, RerankResult b) =>
            b.RelevanceScore != a.RelevanceScore ? b.RelevanceScore.CompareTo(a.RelevanceScore) : a.Index.CompareTo(b.Index);
    }
}
