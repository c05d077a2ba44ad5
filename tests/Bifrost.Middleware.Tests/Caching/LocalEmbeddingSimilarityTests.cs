using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Local;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Caching;

/// <summary>
/// The local provider's deterministic embeddings (hashed character 3-grams): near texts get near vectors, unrelated texts
/// far ones — what the semantic cache's tests rely on. The figures asserted are the ones the function gives.
/// </summary>
public sealed class LocalEmbeddingSimilarityTests
{
    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
        }

        return dot;
    }

    [Fact]
    public void A_paraphrase_is_near_and_an_unrelated_question_is_far_at_256_dimensions()
    {
        var question = LocalProviderAdapter.Vector("What is the capital of France?", 256);
        var paraphrase = LocalProviderAdapter.Vector("what's the capital of france", 256);
        var unrelated = LocalProviderAdapter.Vector("How do I bake sourdough bread at home?", 256);

        Assert.Equal(0.8934, Cosine(question, paraphrase), 3);
        Assert.Equal(0.755, Cosine(question, LocalProviderAdapter.Vector("What is the capital of Germany?", 256)), 3);
        Assert.Equal(0.0, Cosine(question, unrelated), 3);
        Assert.Equal(1.0, Cosine(question, question), 5);
    }

    [Fact]
    public void Case_punctuation_and_whitespace_do_not_change_the_vector()
    {
        Assert.Equal(
            LocalProviderAdapter.Vector("What is the capital of France?", 256),
            LocalProviderAdapter.Vector("  what IS the\tcapital of   france ", 256));
        Assert.Equal(" what is the capital of france ", LocalProviderAdapter.Normalize("What  is the\ncapital of France?!"));
    }

    [Fact]
    public void Empty_and_one_character_texts_still_give_unit_vectors()
    {
        foreach (var text in new[] { string.Empty, "a", "?" })
        {
            var vector = LocalProviderAdapter.Vector(text, 64);
            Assert.Equal(64, vector.Length);
            Assert.Equal(1.0, Math.Sqrt(vector.Sum(v => (double)v * v)), 5);
        }
    }

    [Fact]
    public async Task The_embeddings_endpoint_serves_these_vectors()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync("/openai/v1/embeddings", new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray("What is the capital of France?", "what's the capital of france") });
        var first = json.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var second = json.GetProperty("data")[1].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        Assert.Equal(LocalProviderAdapter.Vector("What is the capital of France?", 256), first);
        Assert.InRange(Cosine(first, second), 0.8, 1.0);
    }
}
