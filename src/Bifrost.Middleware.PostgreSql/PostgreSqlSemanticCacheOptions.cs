namespace Bifrost.Middleware.PostgreSql;

/// <summary>The PostgreSQL semantic cache (<c>UsePostgreSqlSemanticCache</c>): where the vectors live and how long they are.</summary>
public sealed class PostgreSqlSemanticCacheOptions
{
    /// <summary>The Npgsql connection string. Required. The server needs the pgvector extension (<c>CREATE EXTENSION vector</c> is run when the host starts).</summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>The schema of the table <c>semantic_cache</c>. Default <c>bifrost</c>.</summary>
    public string Schema { get; set; } = "bifrost";

    /// <summary>
    /// The embeddings' dimensions: the column is <c>vector(Dimensions)</c>, so this must be what the embedding model returns
    /// (<c>Bifrost:Cache:Semantic:Dimensions</c>, or the model's default: 256 for the local provider, 1536 for
    /// <c>text-embedding-3-small</c>). Up to 2,000 an HNSW index (cosine) is created; above, searches are exact. Required.
    /// </summary>
    public int Dimensions { get; set; }

    /// <summary>How often each instance deletes the expired entries and trims the table to <c>Bifrost:Cache:Semantic:MaxEntries</c>. Default 1 minute.</summary>
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromMinutes(1);

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            throw new ArgumentException("PostgreSqlSemanticCacheOptions.ConnectionString is required.", nameof(ConnectionString));
        }

        if (string.IsNullOrWhiteSpace(Schema) || !System.Text.RegularExpressions.Regex.IsMatch(Schema, "^[A-Za-z_][A-Za-z0-9_]{0,62}$"))
        {
            throw new ArgumentException($"PostgreSqlSemanticCacheOptions.Schema '{Schema}' must be a plain identifier (letters, digits, underscores).", nameof(Schema));
        }

        if (Dimensions is < 1 or > 16000)
        {
            throw new ArgumentException($"PostgreSqlSemanticCacheOptions.Dimensions ({Dimensions}) must be between 1 and 16000 (pgvector's limit): the embedding model's dimensions.", nameof(Dimensions));
        }

        if (PruneInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("PostgreSqlSemanticCacheOptions.PruneInterval must be positive.", nameof(PruneInterval));
        }
    }
}
