using Bifrost.Middleware.Caching;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Extensions.VectorData;

namespace Bifrost.Middleware.Tests.Caching;

/// <summary>
/// The in-memory vector collection's index: the cache layer's filter (<c>Partition == p &amp;&amp; ExpiresAt &gt; t</c>) is read
/// once and only that partition is compared; other filters still work; eviction past the limit drops the entries that
/// expire first down to a tenth below it; scores are the cosine similarity computed in double precision.
/// </summary>
public sealed class InMemorySemanticCacheCollectionTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static SemanticCacheEntry Entry(string key, string partition, long expiresAt, params float[] vector) =>
        new() { Key = key, Partition = partition, ExpiresAt = expiresAt, Payload = [1], Embedding = vector };

    [Fact]
    public async Task The_layers_filter_compares_only_its_partition_and_honours_the_expiry_bound()
    {
        var clock = new FakeTimeProvider(Start);
        using var collection = new InMemorySemanticCacheCollection(clock, maxEntries: 100);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await collection.UpsertAsync(Entry("p-near", "p", now + 10_000, 1, 0.1f), Ct);
        await collection.UpsertAsync(Entry("p-far", "p", now + 10_000, 0, 1), Ct);
        await collection.UpsertAsync(Entry("q-exact", "q", now + 10_000, 1, 0), Ct);
        await collection.UpsertAsync(Entry("p-soon", "p", now + 500, 1, 0), Ct);

        var partition = "p";
        var bound = now + 1_000; // later than the clock: "p-soon" (an exact match) is left out by the filter's own bound
        var results = await collection.SearchAsync(new ReadOnlyMemory<float>([1, 0]), 5, new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Partition == partition && r.ExpiresAt > bound }, Ct).ToListAsync(Ct);

        Assert.Equal(["p-near", "p-far"], results.Select(r => r.Record.Key));
        Assert.Equal(1 / Math.Sqrt(1.01), results[0].Score!.Value, 7); // 0.1f is not 0.1
        Assert.Equal(0.0, results[1].Score!.Value, 12);

        var unknown = await collection.SearchAsync(new ReadOnlyMemory<float>([1, 0]), 5, new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Partition == "none" }, Ct).ToListAsync(Ct);
        Assert.Empty(unknown);
    }

    [Fact]
    public async Task Any_other_filter_runs_per_entry_and_top_and_skip_keep_the_best_in_order()
    {
        var clock = new FakeTimeProvider(Start);
        using var collection = new InMemorySemanticCacheCollection(clock, maxEntries: 100);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await collection.UpsertAsync(Entry("a", "p", now + 1000, 1, 0), Ct);
        await collection.UpsertAsync(Entry("b", "q", now + 1000, 0.8f, 0.6f), Ct);
        await collection.UpsertAsync(Entry("c", "r", now + 1000, 0.6f, 0.8f), Ct);
        await collection.UpsertAsync(Entry("d", "s", now + 1000, 0, 1), Ct);

        var notA = await collection.SearchAsync(new ReadOnlyMemory<float>([1, 0]), 2, new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Key != "a", Skip = 1 }, Ct).ToListAsync(Ct);
        Assert.Equal(["c", "d"], notA.Select(r => r.Record.Key)); // b (0.8) skipped, then c (0.6), d (0)

        var above = await collection.SearchAsync(new ReadOnlyMemory<float>([1, 0]), 10, new VectorSearchOptions<SemanticCacheEntry> { ScoreThreshold = 0.7 }, Ct).ToListAsync(Ct);
        Assert.Equal(["a", "b"], above.Select(r => r.Record.Key));
    }

    [Fact]
    public async Task Storing_a_key_again_moves_it_to_its_new_partition()
    {
        var clock = new FakeTimeProvider(Start);
        using var collection = new InMemorySemanticCacheCollection(clock, maxEntries: 100);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await collection.UpsertAsync(Entry("k", "p", now + 1000, 1, 0), Ct);
        await collection.UpsertAsync(Entry("other", "p", now + 1000, 0, 1), Ct);
        await collection.UpsertAsync(Entry("k", "q", now + 1000, 1, 0), Ct);

        var inP = await collection.SearchAsync(new ReadOnlyMemory<float>([1, 0]), 5, new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Partition == "p" }, Ct).ToListAsync(Ct);
        var inQ = await collection.SearchAsync(new ReadOnlyMemory<float>([1, 0]), 5, new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Partition == "q" }, Ct).ToListAsync(Ct);
        Assert.Equal(["other"], inP.Select(r => r.Record.Key));
        Assert.Equal(["k"], inQ.Select(r => r.Record.Key));
        Assert.Equal(2, collection.Count);

        await collection.DeleteAsync("other", Ct);
        Assert.Empty(await collection.SearchAsync(new ReadOnlyMemory<float>([1, 0]), 5, new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Partition == "p" }, Ct).ToListAsync(Ct));
    }

    [Fact]
    public async Task Past_the_limit_the_entries_expiring_first_go_down_to_a_tenth_below_it()
    {
        var clock = new FakeTimeProvider(Start);
        using var collection = new InMemorySemanticCacheCollection(clock, maxEntries: 20);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 0; i < 21; i++)
        {
            // Expiries in a shuffled order: entry i expires at now + 1000 + (i * 8 % 21) seconds, a permutation.
            await collection.UpsertAsync(Entry($"e{i}", "p", now + 1000 + (i * 8 % 21 * 1000), 1, 0), Ct);
        }

        Assert.Equal(18, collection.Count); // 21 > 20: the three expiring first went
        var left = await collection.SearchAsync(new ReadOnlyMemory<float>([1, 0]), 30, new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Partition == "p" }, Ct).ToListAsync(Ct);
        var gone = Enumerable.Range(0, 21).Where(i => i * 8 % 21 < 3).Select(i => $"e{i}").ToHashSet();
        Assert.Equal(18, left.Count);
        Assert.DoesNotContain(left, r => gone.Contains(r.Record.Key));
    }

    [Fact]
    public void The_dot_product_is_the_double_precision_sum_at_any_length()
    {
        var random = new Random(7);
        foreach (var length in new[] { 1, 7, 8, 16, 259, 3072 })
        {
            var a = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
            var b = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
            double dot = 0, na = 0, nb = 0;
            for (var i = 0; i < length; i++)
            {
                dot += (double)a[i] * b[i];
                na += (double)a[i] * a[i];
                nb += (double)b[i] * b[i];
            }

            Assert.Equal(dot, InMemorySemanticCacheCollection.Dot(a, b), 10);
            Assert.Equal(dot / Math.Sqrt(na * nb), InMemorySemanticCacheCollection.Cosine(a, b), 10);
        }

        Assert.Equal(0.0, InMemorySemanticCacheCollection.Cosine([0, 0], [1, 0]));
    }
}
