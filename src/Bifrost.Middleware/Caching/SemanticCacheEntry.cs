using Microsoft.Extensions.VectorData;

namespace Bifrost.Middleware.Caching;

/// <summary>
/// A record of the semantic cache's vector collection (<c>VectorStoreCollection&lt;string, SemanticCacheEntry&gt;</c>): one
/// stored answer, the embedding of the text it answered, and what it may answer. Register another collection of these to
/// keep the semantic cache elsewhere (the built-in ones: in memory, and PostgreSQL with pgvector by
/// <c>UsePostgreSqlSemanticCache</c>); a collection's search scores are cosine similarities (higher is nearer), and it must
/// support filters of the form <c>r =&gt; r.Partition == p &amp;&amp; r.ExpiresAt &gt; now</c>.
/// </summary>
public sealed class SemanticCacheEntry
{
    /// <summary>The entry's key: the exact cache's key of the request that stored it (one entry per distinct request).</summary>
    [VectorStoreKey]
    public string Key { get; set; } = string.Empty;

    /// <summary>
    /// What a request must share with this entry to be answered by it (hex SHA-256): the tenant, the cache key, the
    /// operation and its shape (whole answer or stream), the resolved <c>provider/model</c>, the embedding model and the
    /// request's canonical JSON without the embedded text.
    /// </summary>
    [VectorStoreData(IsIndexed = true)]
    public string Partition { get; set; } = string.Empty;

    /// <summary>When the entry expires, in Unix milliseconds.</summary>
    [VectorStoreData(IsIndexed = true)]
    public long ExpiresAt { get; set; }

    /// <summary>The stored answer (the exact cache's entry bytes: the whole answer, or a stream's chunks, in their wire JSON).</summary>
    [VectorStoreData]
    public byte[] Payload { get; set; } = [];

    /// <summary>
    /// The embedding of the text the entry answered. The attribute's 256 dimensions are the local provider's default; the
    /// built-in collections take any length (the PostgreSQL one the length it was created with), a connector that reads the
    /// attribute needs a collection definition with the embedding model's dimensions.
    /// </summary>
    [VectorStoreVector(256, DistanceFunction = DistanceFunction.CosineSimilarity)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}
