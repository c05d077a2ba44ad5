namespace Bifrost.Middleware;

/// <summary>
/// The price of one model (<c>Bifrost:Pricing:{provider/model}</c>), in USD per million tokens. An entry adds a model to
/// the embedded catalog or replaces the catalog's entry for it.
/// </summary>
public sealed class ModelPriceOptions
{
    /// <summary>USD per million input (prompt) tokens; for embedding models, per million embedded tokens.</summary>
    public double InputPerMillion { get; set; }

    /// <summary>USD per million output (completion) tokens.</summary>
    public double OutputPerMillion { get; set; }

    /// <summary>USD per million input tokens read from the provider's prompt cache (null: the input price).</summary>
    public double? CachedInputPerMillion { get; set; }

    /// <summary>USD per million input tokens written to the provider's prompt cache, where it charges for it (null: the input price).</summary>
    public double? CacheWritePerMillion { get; set; }

    /// <summary>USD per million reasoning tokens, where they are priced apart from output (null: the output price).</summary>
    public double? ReasoningPerMillion { get; set; }

    /// <summary>The share taken off the price for batch lines, in [0, 1] (0.5: half price).</summary>
    public double BatchDiscount { get; set; }
}
