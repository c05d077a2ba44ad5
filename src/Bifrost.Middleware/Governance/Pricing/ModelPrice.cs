using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Governance.Pricing;

/// <summary>One model's price, USD per million tokens (see <see cref="ModelPriceOptions"/>).</summary>
internal sealed record ModelPrice(
    double InputPerMillion,
    double OutputPerMillion,
    double? CachedInputPerMillion = null,
    double? CacheWritePerMillion = null,
    double? ReasoningPerMillion = null,
    double BatchDiscount = 0)
{
    public static ModelPrice From(ModelPriceOptions options) => new(
        options.InputPerMillion,
        options.OutputPerMillion,
        options.CachedInputPerMillion,
        options.CacheWritePerMillion,
        options.ReasoningPerMillion,
        options.BatchDiscount);

    /// <summary>
    /// The USD cost of an answer's tokens. <see cref="TokenCounts.Input"/> includes the cached and cache-written tokens
    /// (OpenAI's <c>prompt_tokens</c>; the Anthropic adapter adds them the same way); <see cref="TokenCounts.Output"/>
    /// includes the reasoning tokens (OpenAI's <c>completion_tokens</c>). With <paramref name="batch"/>, the batch discount applies.
    /// </summary>
    public double Cost(in TokenCounts tokens, bool batch = false)
    {
        var cached = Math.Clamp(tokens.CachedInput, 0, Math.Max(0, tokens.Input));
        var written = Math.Clamp(tokens.CacheWrite, 0, Math.Max(0, tokens.Input - cached));
        var plainInput = Math.Max(0, tokens.Input - cached - written);
        var reasoning = Math.Clamp(tokens.Reasoning, 0, Math.Max(0, tokens.Output));
        var plainOutput = Math.Max(0, tokens.Output) - reasoning;
        var perMillion =
            (plainInput * InputPerMillion)
            + (cached * (CachedInputPerMillion ?? InputPerMillion))
            + (written * (CacheWritePerMillion ?? InputPerMillion))
            + (plainOutput * OutputPerMillion)
            + (reasoning * (ReasoningPerMillion ?? OutputPerMillion));
        var cost = perMillion / 1_000_000d;
        return batch ? cost * (1 - BatchDiscount) : cost;
    }
}
