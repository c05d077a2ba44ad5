using System.ComponentModel.DataAnnotations;

namespace Bifrost.Middleware.Caching;

/// <summary>
/// The semantic cache (<c>Bifrost:Cache:Semantic</c>), looked up after an exact miss: the request's text is embedded with
/// <see cref="EmbeddingModel"/> through the gateway, and a stored answer of the same tenant, cache key, resolved
/// <c>provider/model</c> and non-message parameters whose embedding has a cosine similarity of at least
/// <see cref="Threshold"/> is replayed (<c>extra_fields.cache_debug.hit_type</c> <c>semantic</c>). Off by default; needs
/// <see cref="ResponseCacheOptions.Enabled"/>. Entries live as long as the exact cache's (<see cref="ResponseCacheOptions.Ttl"/>,
/// a rule's or the request's TTL), in the registered <c>VectorStoreCollection&lt;string, SemanticCacheEntry&gt;</c>: in
/// memory by default, in PostgreSQL with pgvector by <c>UsePostgreSqlSemanticCache</c>.
/// </summary>
public sealed class SemanticCacheOptions
{
    /// <summary>Whether semantic lookups are made (for chat and text completions). Default false.</summary>
    public bool Enabled { get; set; }

    /// <summary>The embedding model, <c>provider/model</c> of a configured provider (e.g. <c>openai/text-embedding-3-small</c>). Required when <see cref="Enabled"/>.</summary>
    public string? EmbeddingModel { get; set; }

    /// <summary>The dimensions asked of the embedding model (its <c>dimensions</c> parameter); null (default): the model's own.</summary>
    [Range(1, 16000)]
    public int? Dimensions { get; set; }

    /// <summary>
    /// The lowest cosine similarity of a hit. Default 0.95 (Bifrost's default). A request's <c>x-bf-cache-threshold</c>
    /// may only raise it; a rule's <see cref="ResponseCacheRule.SemanticThreshold"/> replaces it for its models.
    /// </summary>
    [Range(0.0, 1.0)]
    public double Threshold { get; set; } = 0.95;

    /// <summary>The most entries the in-memory store keeps (the oldest-expiring go first); the PostgreSQL store prunes to it too. Default 10,000.</summary>
    [Range(1, 100_000_000)]
    public int MaxEntries { get; set; } = 10_000;

    /// <summary>Which text of a chat, Anthropic Messages or Responses request is embedded. Default <see cref="SemanticCacheText.LastUserMessage"/>.</summary>
    public SemanticCacheText Text { get; set; } = SemanticCacheText.LastUserMessage;
}

/// <summary>Which text of a chat, Anthropic Messages or Responses request the semantic cache embeds.</summary>
public enum SemanticCacheText
{
    /// <summary>
    /// The last user message's text (a Responses request: its <c>input</c> string, or its last user message item's
    /// <c>input_text</c> parts); every other message (system prompt, <c>instructions</c>, earlier turns) must then match
    /// exactly (it is part of the hash of the non-message parameters), so only the last question is matched by meaning.
    /// </summary>
    LastUserMessage,

    /// <summary>Every message's text, one per line as <c>role: text</c>; the whole conversation is matched by meaning.</summary>
    AllMessages,
}
