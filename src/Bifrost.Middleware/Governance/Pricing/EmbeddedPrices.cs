namespace Bifrost.Middleware.Governance.Pricing;

/// <summary>
/// The embedded price list, USD per million tokens, keyed by provider type and the model's family id (dated ids such as
/// <c>gpt-4o-mini-2024-07-18</c> or <c>claude-haiku-4-5-20251001</c> match their family, see <see cref="PricingCatalog"/>).
/// Never guessed: a model not listed here (nor in <c>Bifrost:Pricing</c>) has no cost. Read on 2026-12-06 from public
/// copies of the providers' price tables (the sources are named per family); check them against the providers' pages
/// (https://openai.com/api/pricing, https://www.anthropic.com/pricing, https://ai.google.dev/gemini-api/docs/pricing,
/// https://cohere.com/pricing, https://groq.com/pricing, https://docs.x.ai/developers/models) when updating.
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

        // Google Gemini API (type gemini), https://ai.google.dev/gemini-api/docs/pricing, paid tier, text input, read 2026-12-06
        // from public copies of that page that agree: a transcript "found verbatim in the fetched page text" (api-evangelist/gemini
        // plans/gemini-plans-pricing.yml, 2026-09-20: 2.5 Pro input "$1.25, prompts <= 200k tokens", 2.5 Flash input "$0.30
        // (text / image / video)", 2.5 Flash-Lite output "$0.40", "Batch API (50% cost reduction)", embeddings "$0.15 / 1M
        // tokens") and two price tables citing the page (morphllm.com/gemini-api-pricing: 2.5 Pro 1.25/10.00, 2.5 Flash 0.30/2.50,
        // 2.5 Flash-Lite 0.10/0.40, 2.0 Flash 0.10/0.40; deploybase.ai/articles/gemini-api-pricing: 2.5 Pro 1.25/10, 2.5 Flash
        // 0.30/2.50). Output includes thinking tokens. The prompts > 200k tier of 2.5 Pro (2.50/15.00) is not modelled (no
        // long-context tiers in the catalog). Cached input ("context caching price"), 2.5 models only: 90% off the input price
        // (deploybase.ai's table: "Context Caching 90% discount" for 2.5 Pro and 2.5 Flash; 2.5 Pro's "$0.125, prompts <= 200k
        // tokens" quoted from the page in discuss.ai.google.dev/t/question-about-gemini-api-caching-pricing/107349); the others'
        // cached prices were not verified, so their cached tokens cost the input price.
        ("gemini", "gemini-2.5-pro", new(1.25, 10.00, CachedInputPerMillion: 0.125, BatchDiscount: 0.5)),
        ("gemini", "gemini-2.5-flash", new(0.30, 2.50, CachedInputPerMillion: 0.03, BatchDiscount: 0.5)),
        ("gemini", "gemini-2.5-flash-lite", new(0.10, 0.40, BatchDiscount: 0.5)),
        ("gemini", "gemini-2.0-flash", new(0.10, 0.40, BatchDiscount: 0.5)),
        ("gemini", "gemini-embedding-001", new(0.15, 0)),

        // Cohere (type cohere), https://cohere.com/pricing, read 2026-12-06 from copies that agree: Command A and Command R+
        // (08-2024) 2.50 / 10.00 (the Lava gateway's Cohere price table, lava-a04d7b3f.mintlify.dev/docs/gateway/providers/cohere;
        // Command R+ 08-2024 also in api-evangelist/cohere plans/cohere-plans-pricing.yml); Embed v4 text input 0.12 ("$0.12 per
        // million tokens at listed AI Gateway rates", vercel.com/ai-gateway/models/embed-v4.0). Left out: Command R 08-2024 (the
        // copies disagree: 0.15/0.60 and 0.30/1.20), Embed v3 (not found). Cohere ids carry no date suffix the catalog strips:
        // the ids are exact.
        ("cohere", "command-a-03-2025", new(2.50, 10.00)),
        ("cohere", "command-r-plus-08-2024", new(2.50, 10.00)),
        ("cohere", "embed-v4.0", new(0.12, 0)),

        // Groq (type groq), https://console.groq.com/docs/models and https://groq.com/pricing, read 2026-12-06 from copies that
        // agree: the aicost crate's Groq table (docs.rs/crate/aicost, data_groq.rs: llama-3.3-70b-versatile 0.59/0.79,
        // llama-3.1-8b-instant 0.05/0.08, gpt-oss-120b 0.15/0.60) and braintrustdata/braintrust-proxy issues #479 and #566
        // ("Groq models docs ... openai/gpt-oss-120b at $0.15 input / $0.60 output"). Cached prices not published: not set.
        ("groq", "llama-3.3-70b-versatile", new(0.59, 0.79)),
        ("groq", "llama-3.1-8b-instant", new(0.05, 0.08)),
        ("groq", "openai/gpt-oss-120b", new(0.15, 0.60)),

        // xAI (type xai), https://docs.x.ai/developers/models, read 2026-12-06 from copies that agree: grok-4.3 1.25/2.50
        // (mandark-droid/genai_otel_instrument v1.2.2 "per docs.x.ai/developers/models"; docs.sim.ai/models/xai; docs.apiyi.com
        // "list prices match xAI's", checked 2026-07-13) and grok-4.5 2.00/6.00 (docs.sim.ai; docs.apiyi.com). Their tier above
        // ~200k input tokens is not modelled; cached-input prices were not verified (cached tokens cost the input price).
        ("xai", "grok-4.3", new(1.25, 2.50)),
        ("xai", "grok-4.5", new(2.00, 6.00)),

        // gaps: Mistral, Bedrock and Vertex, read 2026-12-06 from public copies of the providers' pages (named per family).

        // Mistral (preset mistral, priced by the provider name or type "mistral"), https://mistral.ai/pricing: only dated ids
        // (the -latest aliases moved to new models at new prices during 2026). mistral-large-2411 (Mistral Large 2) 2.00/6.00:
        // deploybase.ai/articles/mistral-api-pricing ("Mistral Large 2 $2.00 $6.00", March 2026) and gateflow.ai's Mistral
        // table (mistral-large 2.00/6.00); pixtral-large-2411 2.00/6.00: the Lava gateway's Mistral table
        // (lava-a04d7b3f.mintlify.dev/docs/gateway/providers/mistral); mistral-embed 0.10 (gateflow.ai/docs/guide/providers/mistral).
        // No cached-input price is published (aipromptshub.co/calc/mistral-large-2-cost): cached tokens cost the input price.
        ("mistral", "mistral-large-2411", new(2.00, 6.00)),
        ("mistral", "pixtral-large-2411", new(2.00, 6.00)),
        ("mistral", "mistral-embed", new(0.10, 0)),

        // Amazon Bedrock (type bedrock), https://aws.amazon.com/bedrock/pricing, on-demand, us-east-1; the model ids as sent
        // (exact: Bedrock ids carry a version suffix the catalog does not strip). Amazon Nova: nova-pro 0.80/3.20, nova-lite
        // 0.06/0.24, nova-micro 0.035/0.14 (atonementlicensing.pages.dev/blog/aws-bedrock-pricing-2026, "AWS public pricing as
        // of Q1 2026 for the us-east-1 region", per 1K tokens; tokenmix.ai/blog/aws-bedrock-pricing 2026-04-10 agrees on Nova
        // Pro and Lite input). Cross-region inference profiles (us.*) cost the source region's price ("no additional charge",
        // aws.amazon.com/bedrock/pricing). Claude 4.5 on Bedrock: global profiles at Anthropic's list price (Sonnet 4.5 3/15,
        // Haiku 4.5 1/5, cache write 1.25x, cache read 0.1x: clauder-navi.com/en/bedrock-claude-cost), geographic (us.*)
        // profiles 10% more ("approximately 10% savings on both input and output token pricing compared to geographic
        // cross-Region inference", docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html).
        // Batch: the copies disagree (50% off, or the on-demand price): no batch discount is set.
        // Left out: Claude 3.5 Sonnet (3/15 or 6/30).
        ("bedrock", "amazon.nova-pro-v1:0", new(0.80, 3.20)),
        ("bedrock", "us.amazon.nova-pro-v1:0", new(0.80, 3.20)),
        ("bedrock", "amazon.nova-lite-v1:0", new(0.06, 0.24)),
        ("bedrock", "us.amazon.nova-lite-v1:0", new(0.06, 0.24)),
        ("bedrock", "amazon.nova-micro-v1:0", new(0.035, 0.14)),
        ("bedrock", "us.amazon.nova-micro-v1:0", new(0.035, 0.14)),
        ("bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", new(3.00, 15.00, CachedInputPerMillion: 0.30, CacheWritePerMillion: 3.75)),
        ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", new(3.30, 16.50, CachedInputPerMillion: 0.33, CacheWritePerMillion: 4.125)),
        ("bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0", new(1.00, 5.00, CachedInputPerMillion: 0.10, CacheWritePerMillion: 1.25)),
        ("bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0", new(1.10, 5.50, CachedInputPerMillion: 0.11, CacheWritePerMillion: 1.375)),

        // Amazon Titan and Meta Llama on Bedrock (issue 16, provs), https://aws.amazon.com/bedrock/pricing (on-demand, us-east-1;
        // the page lists USD per 1,000 tokens, here per million), read 2026-12-06 from public copies that agree. Titan Text
        // Express 0.20/0.60, Titan Text Lite 0.15/0.20, Titan Text Embeddings V2 0.02 (input only): Roo Code's Bedrock model table
        // (bundled @roo-code/types, "amazon.titan-text-express-v1:0" inputPrice 0.2 outputPrice 0.6, "-lite-" 0.15/0.2,
        // "titan-text-embeddings-v2" 0.02) and inventivehq.com/blog/aws-bedrock-pricing-guide (Express $0.20/$0.60, Lite
        // $0.15/$0.20, Embeddings V2 $0.02). Llama 3.3 70B and 3.1 70B 0.72/0.72, Llama 3.1 8B 0.22/0.22: Roo Code's table and
        // three other public Bedrock price tables agree (the 2.65/3.50 figure some copies give is Llama 3 70B,
        // meta.llama3-70b-instruct-v1:0, not 3.3). Llama is served in us-east-1 through the us.* profiles (source-region price).
        // Left out: Titan Text Premier and Titan Text Embeddings G1 (one copy each, or copies that disagree), Llama 4 (one copy).
        ("bedrock", "amazon.titan-text-express-v1", new(0.20, 0.60)),
        ("bedrock", "amazon.titan-text-lite-v1", new(0.15, 0.20)),
        ("bedrock", "amazon.titan-embed-text-v2:0", new(0.02, 0)),
        ("bedrock", "meta.llama3-3-70b-instruct-v1:0", new(0.72, 0.72)),
        ("bedrock", "us.meta.llama3-3-70b-instruct-v1:0", new(0.72, 0.72)),
        ("bedrock", "meta.llama3-1-70b-instruct-v1:0", new(0.72, 0.72)),
        ("bedrock", "us.meta.llama3-1-70b-instruct-v1:0", new(0.72, 0.72)),
        ("bedrock", "meta.llama3-1-8b-instruct-v1:0", new(0.22, 0.22)),
        ("bedrock", "us.meta.llama3-1-8b-instruct-v1:0", new(0.22, 0.22)),

        // Vertex AI (type vertex), https://cloud.google.com/vertex-ai/generative-ai/pricing: Gemini 2.5 Pro 1.25/10.00 for
        // prompts <= 200k tokens, the AI Studio price (tokenmix.ai/blog/vertex-ai-pricing, updated 2026-04-29; deploybase.ai
        // "Google Vertex AI Pricing: Complete Cost Breakdown 2026"), batch 50% off (deploybase: "Batch processing provides a
        // 50% discount across all Gemini models on Vertex AI"). Claude on Vertex "priced at parity with Anthropic" (tokenmix):
        // Anthropic's list price; Vertex ids are dated with '@' (claude-sonnet-4-5@20250929 matches its family). Regional
        // endpoints' premium over the global one is not modelled. Gemini 2.5 Flash (issue 16, provs, read 2026-12-06): 0.30 input,
        // 2.50 output (thinking included), 0.03 cached input, batch 50% off (as 2.5 Pro above) — four public tables of
        // "vertex_ai/gemini-2.5-flash" agree: a LiteLLM-derived price map (input 3e-07, output 2.5e-06, cache read 3e-08 per
        // token), an evaluation harness's cost table citing cloud.google.com/vertex-ai/pricing (0.3 / 2.5) and two more cost
        // tables (0.3 / 2.5 / cached 0.03); the 0.15/0.60 other copies give is the 2025 preview's non-thinking price. Left out: Flash-Lite and 2.0 Flash (copies disagree) and embeddings (not found).
        ("vertex", "gemini-2.5-pro", new(1.25, 10.00, BatchDiscount: 0.5)),
        ("vertex", "gemini-2.5-flash", new(0.30, 2.50, CachedInputPerMillion: 0.03, BatchDiscount: 0.5)),
        ("vertex", "claude-sonnet-4-5", new(3.00, 15.00, CachedInputPerMillion: 0.30, CacheWritePerMillion: 3.75)),
        ("vertex", "claude-haiku-4-5", new(1.00, 5.00, CachedInputPerMillion: 0.10, CacheWritePerMillion: 1.25)),

        // DeepSeek (preset deepseek; issue 16, provs), https://api-docs.deepseek.com/quick_start/pricing, read 2026-12-06 from
        // copies that agree: tokenmix.ai/blog/deepseek-api-pricing ("checked on 2026-04-30") and chat-deep.ai/pricing ("verified
        // April 26, 2026"): deepseek-v4-flash 0.14 input (cache miss), 0.0028 cache hit, 0.28 output; deepseek-chat and
        // deepseek-reasoner are its non-thinking / thinking aliases at the same price (both copies: retired after 2026-07-24
        // 15:59 UTC — kept so callers still sending them are priced); deepseek-v4-pro 0.435 / 0.003625 / 0.87, the discounted
        // price made permanent on 2026-05-22 (apidog.com/blog/deepseek-v4-pro-permanent-price-cut; the same figures in both
        // copies above). The night-time discount ended on 2025-09-05 (the pricing page: "Starting from 16:00 UTC Time on Sept 5th,
        // 2025 ... cancel the nighttime discount"): one price all day. DeepSeek has no batch API. Reasoning (thinking) tokens are billed as output.
        ("deepseek", "deepseek-v4-flash", new(0.14, 0.28, CachedInputPerMillion: 0.0028)),
        ("deepseek", "deepseek-chat", new(0.14, 0.28, CachedInputPerMillion: 0.0028)),
        ("deepseek", "deepseek-reasoner", new(0.14, 0.28, CachedInputPerMillion: 0.0028)),
        ("deepseek", "deepseek-v4-pro", new(0.435, 0.87, CachedInputPerMillion: 0.003625)),

        // Not in the catalog (add them under Bifrost:Pricing): Mistral's -latest aliases and other models, the other presets
        // (prices per hosted model vary). Azure OpenAI: priced as OpenAI (see PricingCatalog.Find).
    ];
}
