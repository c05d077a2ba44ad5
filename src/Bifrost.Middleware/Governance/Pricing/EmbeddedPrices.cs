namespace Bifrost.Middleware.Governance.Pricing;

/// <summary>
/// The embedded price list, USD per million tokens, keyed by provider type and the model's family id (dated ids such as
/// <c>gpt-4o-mini-2024-07-18</c> or <c>claude-haiku-4-5-20251001</c> match their family, see <see cref="PricingCatalog"/>).
/// Never guessed: a model not listed here (nor in <c>Bifrost:Pricing</c>) has no cost. Read on 2026-12-06 from public
/// copies of the providers' price tables (the sources are named per family); check them against the providers' pages
/// (https://openai.com/api/pricing, https://www.anthropic.com/pricing) when updating.
/// </summary>
internal static class EmbeddedPrices
{
    public static readonly (string Provider, string Model, ModelPrice Price)[] All =
    [
        // OpenAI GPT-4o, GPT-4.1 and o-series: input / output / cached input per million tokens, as published on
        // openai.com/api/pricing; read from two public copies that agree: a per-model table "MODEL_PRICING" (GitHub, TypeScript,
        // gpt-4o 2.5/10/1.25 ... o4-mini 1.1/4.4/0.275) and a second table dated 2026-08-09 (gpt-4.1 2.00/0.50/8.00 ...).
        // Reasoning tokens of o3/o4-mini are billed as output tokens (no separate price). Batch API: 50% off (OpenAI Batch API;
        // the public cost script that lists OPENAI_BATCH = half of standard).
        ("openai", "gpt-4o", new(2.50, 10.00, CachedInputPerMillion: 1.25, BatchDiscount: 0.5)),
        ("openai", "gpt-4o-mini", new(0.15, 0.60, CachedInputPerMillion: 0.075, BatchDiscount: 0.5)),
        ("openai", "gpt-4.1", new(2.00, 8.00, CachedInputPerMillion: 0.50, BatchDiscount: 0.5)),
        ("openai", "gpt-4.1-mini", new(0.40, 1.60, CachedInputPerMillion: 0.10, BatchDiscount: 0.5)),
        ("openai", "gpt-4.1-nano", new(0.10, 0.40, CachedInputPerMillion: 0.025, BatchDiscount: 0.5)),
        ("openai", "o3", new(2.00, 8.00, CachedInputPerMillion: 0.50, BatchDiscount: 0.5)),
        ("openai", "o4-mini", new(1.10, 4.40, CachedInputPerMillion: 0.275, BatchDiscount: 0.5)),

        // OpenAI embeddings v3: input only ($0.02 and $0.13 per million), from public copies of openai.com/api/pricing
        // (a pricing design note "verified 2026-03-09" for -large, and an embedding provider table for both). Batch: 50% off.
        ("openai", "text-embedding-3-small", new(0.02, 0, BatchDiscount: 0.5)),
        ("openai", "text-embedding-3-large", new(0.13, 0, BatchDiscount: 0.5)),

        // Anthropic Claude 4.x: input / output / cache read (0.1x input) / 5-minute cache write (1.25x input), as published on
        // anthropic.com/pricing; read from the same public "MODEL_PRICING" table and a cost script's ANTHROPIC_STD table
        // (sonnet-4-5 3/15/0.30/3.75, haiku-4-5 1/5/0.10/1.25). Message Batches API: 50% off (ANTHROPIC_BATCH = half).
        ("anthropic", "claude-sonnet-4-5", new(3.00, 15.00, CachedInputPerMillion: 0.30, CacheWritePerMillion: 3.75, BatchDiscount: 0.5)),
        ("anthropic", "claude-haiku-4-5", new(1.00, 5.00, CachedInputPerMillion: 0.10, CacheWritePerMillion: 1.25, BatchDiscount: 0.5)),
        ("anthropic", "claude-opus-4-5", new(5.00, 25.00, CachedInputPerMillion: 0.50, CacheWritePerMillion: 6.25, BatchDiscount: 0.5)),
        ("anthropic", "claude-opus-4-1", new(15.00, 75.00, CachedInputPerMillion: 1.50, CacheWritePerMillion: 18.75, BatchDiscount: 0.5)),
    ];
}
