using System.Text.Json;
using Bifrost.Middleware.Governance.Pricing;
using Bifrost.Middleware.Operations;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>The embedded catalog's figures, dated-id matching, <c>Bifrost:Pricing</c> overrides and their validation, and the cost arithmetic.</summary>
public sealed class PricingCatalogTests
{
    private static readonly PricingCatalog Embedded = new(new BifrostOptions());

    /// <summary>The per-million prices cited in EmbeddedPrices (OpenAI, Anthropic, Gemini, Cohere, Groq and xAI published prices, read 2026-12-06).</summary>
    public static TheoryData<string, string, double, double, double?, double?, double> Published => new()
    {
        { "openai", "gpt-4o", 2.50, 10.00, 1.25, null, 0.5 },
        { "openai", "gpt-4o-mini", 0.15, 0.60, 0.075, null, 0.5 },
        { "openai", "gpt-4.1", 2.00, 8.00, 0.50, null, 0.5 },
        { "openai", "gpt-4.1-mini", 0.40, 1.60, 0.10, null, 0.5 },
        { "openai", "gpt-4.1-nano", 0.10, 0.40, 0.025, null, 0.5 },
        { "openai", "o3", 2.00, 8.00, 0.50, null, 0.5 },
        { "openai", "o4-mini", 1.10, 4.40, 0.275, null, 0.5 },
        { "openai", "text-embedding-3-small", 0.02, 0, null, null, 0.5 },
        { "openai", "text-embedding-3-large", 0.13, 0, null, null, 0.5 },
        { "anthropic", "claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75, 0.5 },
        { "anthropic", "claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25, 0.5 },
        { "anthropic", "claude-opus-4-5", 5.00, 25.00, 0.50, 6.25, 0.5 },
        { "anthropic", "claude-opus-4-1", 15.00, 75.00, 1.50, 18.75, 0.5 },
        { "gemini", "gemini-2.5-pro", 1.25, 10.00, 0.125, null, 0.5 },
        { "gemini", "gemini-2.5-flash", 0.30, 2.50, 0.03, null, 0.5 },
        { "gemini", "gemini-2.5-flash-lite", 0.10, 0.40, null, null, 0.5 },
        { "gemini", "gemini-2.0-flash", 0.10, 0.40, null, null, 0.5 },
        { "gemini", "gemini-embedding-001", 0.15, 0, null, null, 0 },
        { "cohere", "command-a-03-2025", 2.50, 10.00, null, null, 0 },
        { "cohere", "command-r-plus-08-2024", 2.50, 10.00, null, null, 0 },
        { "cohere", "embed-v4.0", 0.12, 0, null, null, 0 },
        { "groq", "llama-3.3-70b-versatile", 0.59, 0.79, null, null, 0 },
        { "groq", "llama-3.1-8b-instant", 0.05, 0.08, null, null, 0 },
        { "groq", "openai/gpt-oss-120b", 0.15, 0.60, null, null, 0 },
        { "xai", "grok-4.3", 1.25, 2.50, null, null, 0 },
        { "xai", "grok-4.5", 2.00, 6.00, null, null, 0 },

        // gaps: Mistral, Bedrock (on-demand us-east-1) and Vertex
        { "mistral", "mistral-large-2411", 2.00, 6.00, null, null, 0 },
        { "mistral", "pixtral-large-2411", 2.00, 6.00, null, null, 0 },
        { "mistral", "mistral-embed", 0.10, 0, null, null, 0 },
        { "bedrock", "amazon.nova-pro-v1:0", 0.80, 3.20, null, null, 0 },
        { "bedrock", "us.amazon.nova-pro-v1:0", 0.80, 3.20, null, null, 0 },
        { "bedrock", "amazon.nova-lite-v1:0", 0.06, 0.24, null, null, 0 },
        { "bedrock", "us.amazon.nova-lite-v1:0", 0.06, 0.24, null, null, 0 },
        { "bedrock", "amazon.nova-micro-v1:0", 0.035, 0.14, null, null, 0 },
        { "bedrock", "us.amazon.nova-micro-v1:0", 0.035, 0.14, null, null, 0 },
        { "bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", 3.00, 15.00, 0.30, 3.75, 0 },
        { "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 3.30, 16.50, 0.33, 4.125, 0 },
        { "bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0", 1.00, 5.00, 0.10, 1.25, 0 },
        { "bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0", 1.10, 5.50, 0.11, 1.375, 0 },
        { "vertex", "gemini-2.5-pro", 1.25, 10.00, null, null, 0.5 },
        { "vertex", "claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75, 0 },
        { "vertex", "claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25, 0 },

        // issue 16 (provs): DeepSeek, Titan and Llama on Bedrock, Gemini 2.5 Flash on Vertex
        { "deepseek", "deepseek-chat", 0.14, 0.28, 0.0028, null, 0 },
        { "deepseek", "deepseek-reasoner", 0.14, 0.28, 0.0028, null, 0 },
        { "deepseek", "deepseek-v4-flash", 0.14, 0.28, 0.0028, null, 0 },
        { "deepseek", "deepseek-v4-pro", 0.435, 0.87, 0.003625, null, 0 },
        { "bedrock", "amazon.titan-text-express-v1", 0.20, 0.60, null, null, 0 },
        { "bedrock", "amazon.titan-text-lite-v1", 0.15, 0.20, null, null, 0 },
        { "bedrock", "amazon.titan-embed-text-v2:0", 0.02, 0, null, null, 0 },
        { "bedrock", "meta.llama3-3-70b-instruct-v1:0", 0.72, 0.72, null, null, 0 },
        { "bedrock", "us.meta.llama3-3-70b-instruct-v1:0", 0.72, 0.72, null, null, 0 },
        { "bedrock", "meta.llama3-1-70b-instruct-v1:0", 0.72, 0.72, null, null, 0 },
        { "bedrock", "us.meta.llama3-1-70b-instruct-v1:0", 0.72, 0.72, null, null, 0 },
        { "bedrock", "meta.llama3-1-8b-instruct-v1:0", 0.22, 0.22, null, null, 0 },
        { "bedrock", "us.meta.llama3-1-8b-instruct-v1:0", 0.22, 0.22, null, null, 0 },
        { "vertex", "gemini-2.5-flash", 0.30, 2.50, 0.03, null, 0.5 },
    };

    [Theory]
    [MemberData(nameof(Published))]
    public void The_catalog_has_the_published_prices(string provider, string model, double input, double output, double? cached, double? cacheWrite, double discount)
    {
        var price = Embedded.Find(provider, model);

        Assert.NotNull(price);
        Assert.Equal(input, price.InputPerMillion);
        Assert.Equal(output, price.OutputPerMillion);
        Assert.Equal(cached, price.CachedInputPerMillion);
        Assert.Equal(cacheWrite, price.CacheWritePerMillion);
        Assert.Null(price.ReasoningPerMillion); // both bill reasoning/thinking tokens as output
        Assert.Equal(discount, price.BatchDiscount);
    }

    [Theory]
    [InlineData("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini")]
    [InlineData("openai", "gpt-4o-2024-08-06", "gpt-4o")]
    [InlineData("openai", "gpt-4.1-nano-2025-04-14", "gpt-4.1-nano")]
    [InlineData("openai", "o3-2025-04-16", "o3")]
    [InlineData("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5")]
    [InlineData("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5")]
    [InlineData("vertex", "claude-sonnet-4-5@20250929", "claude-sonnet-4-5")]
    [InlineData("vertex", "claude-haiku-4-5@20251001", "claude-haiku-4-5")]
    [InlineData("OpenAI", "GPT-4O-MINI", "gpt-4o-mini")]
    public void A_dated_model_id_matches_its_family(string provider, string model, string family)
    {
        Assert.Same(Embedded.Find(provider, family), Embedded.Find(provider, model));
    }

    [Theory]
    [InlineData("openai", "gpt-4o-mini-2024-07")] // not a date
    [InlineData("openai", "gpt-4o-mini-x2024-07-18x")]
    [InlineData("openai", "gpt-9")]
    [InlineData("vertex", "claude-sonnet-4-5@2025092")] // not a date
    [InlineData("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0")] // in-region id: no price verified
    [InlineData("vertex", "gemini-2.5-flash-lite")] // the copies disagree: left out
    [InlineData("bedrock", "meta.llama3-70b-instruct-v1:0")] // Llama 3 (not 3.1 / 3.3): not verified
    [InlineData("openai", "claude-haiku-4-5")] // not an OpenAI model
    [InlineData("local", "echo")] // local models are unknown unless configured
    [InlineData("nobody", "gpt-4o")]
    [InlineData("openai", "")]
    public void Unknown_models_have_no_price(string provider, string model)
    {
        Assert.Null(Embedded.Find(provider, model));
        Assert.Null(Embedded.Cost(provider, model, new TokenCounts(1000, 1000)));
    }

    [Fact]
    public void A_provider_with_another_name_is_priced_by_its_type()
    {
        var options = new BifrostOptions();
        options.Providers["work-openai"] = new ProviderOptions { Type = "openai" };
        var catalog = new PricingCatalog(options);

        Assert.Same(catalog.Find("openai", "gpt-4o"), catalog.Find("work-openai", "gpt-4o-2024-08-06"));
        Assert.Null(catalog.Find("work-anthropic", "claude-haiku-4-5"));
    }

    [Fact]
    public void Configuration_adds_models_and_overrides_the_catalog()
    {
        var options = new BifrostOptions();
        options.Pricing["local/echo"] = new ModelPriceOptions { InputPerMillion = 1.0, OutputPerMillion = 2.0 };
        options.Pricing["openai/gpt-4o"] = new ModelPriceOptions { InputPerMillion = 2.0, OutputPerMillion = 8.0, BatchDiscount = 0.25 };
        var catalog = new PricingCatalog(options);

        var echo = catalog.Find("local", "echo");
        Assert.NotNull(echo);
        Assert.Equal((1.0, 2.0), (echo.InputPerMillion, echo.OutputPerMillion));
        var gpt4o = catalog.Find("openai", "gpt-4o-2024-11-20");
        Assert.NotNull(gpt4o);
        Assert.Equal((2.0, 8.0, null, 0.25), (gpt4o.InputPerMillion, gpt4o.OutputPerMillion, gpt4o.CachedInputPerMillion, gpt4o.BatchDiscount));
        Assert.Equal(0.15, catalog.Find("openai", "gpt-4o-mini")!.InputPerMillion); // the rest of the catalog stays
    }

    [Fact]
    public void Cost_charges_cached_input_and_reasoning_apart()
    {
        // o4-mini: 1.10 in, 4.40 out, 0.275 cached. 1000 prompt tokens of which 400 cached; 500 completion of which 200 reasoning.
        var tokens = TokenCounts.Of(1000, 500, Element("""{"cached_tokens":400}"""), Element("""{"reasoning_tokens":200}"""));
        Assert.Equal(new TokenCounts(1000, 500, 400, 0, 200), tokens);
        Assert.Equal(((600 * 1.10) + (400 * 0.275) + (500 * 4.40)) / 1e6, Embedded.Cost("openai", "o4-mini", tokens)!.Value, 12);

        // A configured reasoning price applies to the reasoning tokens only.
        var priced = new ModelPrice(1.10, 4.40, CachedInputPerMillion: 0.275, ReasoningPerMillion: 10.0);
        Assert.Equal(((600 * 1.10) + (400 * 0.275) + (300 * 4.40) + (200 * 10.0)) / 1e6, priced.Cost(tokens), 12);
    }

    [Fact]
    public void Cost_charges_anthropic_cache_writes_at_their_price()
    {
        // Sonnet 4.5: 3 in, 15 out, 0.30 cache read, 3.75 cache write; prompt = 100 plain + 300 written + 600 read (as the adapter reports it).
        var tokens = TokenCounts.Of(1000, 50, Element("""{"cached_tokens":600,"cache_creation_tokens":300}"""), null);
        var expected = ((100 * 3.0) + (600 * 0.30) + (300 * 3.75) + (50 * 15.0)) / 1e6;
        Assert.Equal(expected, Embedded.Cost("anthropic", "claude-sonnet-4-5-20250929", tokens)!.Value, 12);
        Assert.Equal(expected / 2, Embedded.Cost("anthropic", "claude-sonnet-4-5", tokens, batch: true)!.Value, 12);
    }

    [Fact]
    public void A_deepseek_answer_costs_cache_hits_at_the_cache_hit_price_under_the_preset_or_a_provider_of_its_type()
    {
        // deepseek-chat (V4-Flash): 0.14 cache miss, 0.0028 cache hit, 0.28 output; 1M prompt tokens of which 400k hit the cache, 100k output.
        var tokens = new TokenCounts(1_000_000, 100_000, CachedInput: 400_000);
        var expected = (600_000 * 0.14 + 400_000 * 0.0028 + 100_000 * 0.28) / 1e6;
        var options = new BifrostOptions();
        options.Providers["ds"] = new ProviderOptions { Type = "deepseek" };

        Assert.Equal(expected, Embedded.Cost("deepseek", "deepseek-chat", tokens)!.Value, 12);
        Assert.Equal(expected, new PricingCatalog(options).Cost("ds", "deepseek-reasoner", tokens)!.Value, 12);
        Assert.Equal(expected, Embedded.Cost("deepseek", "deepseek-chat", tokens, batch: true)!.Value, 12); // no batch discount
    }

    [Fact]
    public void Usage_that_is_not_known_has_no_cost()
    {
        Assert.Null(Embedded.Cost("openai", "gpt-4o", null));
    }

    [Theory]
    [InlineData("Bifrost:Pricing:local/echo:InputPerMillion", "-1", "Bifrost:Pricing:local/echo:InputPerMillion")]
    [InlineData("Bifrost:Pricing:local/echo:OutputPerMillion", "-0.5", "Bifrost:Pricing:local/echo:OutputPerMillion")]
    [InlineData("Bifrost:Pricing:local/echo:CachedInputPerMillion", "-2", "Bifrost:Pricing:local/echo:CachedInputPerMillion")]
    [InlineData("Bifrost:Pricing:local/echo:CacheWritePerMillion", "-2", "Bifrost:Pricing:local/echo:CacheWritePerMillion")]
    [InlineData("Bifrost:Pricing:local/echo:BatchDiscount", "1.5", "Bifrost:Pricing:local/echo:BatchDiscount")]
    [InlineData("Bifrost:Pricing:local/echo:BatchDiscount", "-0.1", "Bifrost:Pricing:local/echo:BatchDiscount")]
    [InlineData("Bifrost:Pricing:echo:InputPerMillion", "1", "Bifrost:Pricing:echo: the key must be 'provider/model'")]
    public async Task Bad_pricing_fails_the_start_naming_the_setting(string key, string value, string expected)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bifrost:DefaultProvider"] = "local",
            ["Bifrost:Providers:local:Type"] = "local",
            [key] = value,
        });
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));
        await using var app = builder.Build();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pricing_binds_from_configuration_as_the_issue_shows_it()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bifrost:DefaultProvider"] = "local",
            ["Bifrost:Providers:local:Type"] = "local",
            ["Bifrost:Pricing:local/echo:InputPerMillion"] = "1.0",
            ["Bifrost:Pricing:local/echo:OutputPerMillion"] = "2.0",
            ["Bifrost:Pricing:local/echo:BatchDiscount"] = "0.5",
        });
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));
        await using var app = builder.Build();
        await app.StartAsync(TestContext.Current.CancellationToken);

        var price = app.Services.GetRequiredService<PricingCatalog>().Find("local", "echo");
        Assert.NotNull(price);
        Assert.Equal((1.0, 2.0, 0.5), (price.InputPerMillion, price.OutputPerMillion, price.BatchDiscount));
        await app.StopAsync(TestContext.Current.CancellationToken);
    }

    private static JsonElement Element(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
