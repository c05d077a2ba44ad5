using Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.AIAbstractions;

/// <summary><see cref="IBifrostClient"/> as an <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>.</summary>
public sealed class BifrostEmbeddingGeneratorTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Embeddings_come_in_input_order_with_the_requested_dimensions_model_and_usage()
    {
        var acme = new EmbeddingAdapter();
        await using var services = AIHost.Build(acme);
        using var generator = services.GetRequiredService<IBifrostClient>().AsEmbeddingGenerator("acme/embed-small", defaultDimensions: 8);

        var embeddings = await generator.GenerateAsync(["first", "second", "third"], new EmbeddingGenerationOptions { Dimensions = 4 }, Ct);

        Assert.Equal(3, embeddings.Count);
        Assert.All(embeddings, e => Assert.Equal(4, e.Dimensions));
        Assert.Equal([0f, 1f, 2f], embeddings.Select(e => e.Vector.Span[0]));
        Assert.All(embeddings, e => Assert.Equal("embed-small", e.ModelId));
        Assert.Equal(7, embeddings.Usage!.InputTokenCount);
        Assert.Equal(7, embeddings.Usage.TotalTokenCount);
        var request = Assert.Single(acme.EmbeddingCalls);
        Assert.Equal(["first", "second", "third"], request.Input!.Texts!);
        Assert.Equal(4, request.Dimensions);
    }

    [Fact]
    public async Task Default_dimensions_model_override_and_additional_properties_reach_the_request()
    {
        var acme = new EmbeddingAdapter();
        await using var services = AIHost.Build(acme);
        using var generator = services.GetRequiredService<IBifrostClient>().AsEmbeddingGenerator("local/echo", defaultDimensions: 8);

        var embedding = await generator.GenerateAsync("one", new EmbeddingGenerationOptions { ModelId = "acme/other", AdditionalProperties = new() { ["user"] = "u-2" } }, Ct);

        Assert.Equal(8, embedding.Dimensions);
        var request = Assert.Single(acme.EmbeddingCalls);
        Assert.Equal(8, request.Dimensions);
        Assert.Equal("u-2", request.User);
    }

    [Fact]
    public async Task The_local_provider_answers_through_the_generator_and_no_input_makes_no_call()
    {
        await using var services = AIHost.Build();
        using var generator = services.GetRequiredService<IBifrostClient>().AsEmbeddingGenerator("local/echo");

        var vector = await generator.GenerateVectorAsync("stable", new EmbeddingGenerationOptions { Dimensions = 16 }, Ct);
        var again = await generator.GenerateVectorAsync("stable", new EmbeddingGenerationOptions { Dimensions = 16 }, Ct);
        var none = await generator.GenerateAsync([], cancellationToken: Ct);

        Assert.Equal(16, vector.Length);
        Assert.Equal(vector.ToArray(), again.ToArray());
        Assert.Empty(none);
    }

    [Fact]
    public async Task Errors_surface_as_BifrostException_and_GetService_returns_metadata_and_the_gateway()
    {
        await using var services = AIHost.Build();
        var gateway = services.GetRequiredService<IBifrostClient>();
        using var generator = gateway.AsEmbeddingGenerator("local/unknown", defaultDimensions: 32);

        var error = await Assert.ThrowsAsync<BifrostException>(() => generator.GenerateAsync(["x"], cancellationToken: Ct));

        Assert.Equal(400, error.StatusCode);
        var metadata = generator.GetService<EmbeddingGeneratorMetadata>()!;
        Assert.Equal("bifrost", metadata.ProviderName);
        Assert.Equal("local/unknown", metadata.DefaultModelId);
        Assert.Equal(32, metadata.DefaultModelDimensions);
        Assert.Same(gateway, generator.GetService<IBifrostClient>());
        Assert.Throws<ArgumentOutOfRangeException>(() => gateway.AsEmbeddingGenerator("m", defaultDimensions: 0));
    }
}
