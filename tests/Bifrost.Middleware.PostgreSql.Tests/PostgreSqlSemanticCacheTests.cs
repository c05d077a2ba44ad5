using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Caching;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Extensions.VectorData;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// The semantic cache's vectors in PostgreSQL with pgvector (<c>UsePostgreSqlSemanticCache</c>): the collection itself
/// (cosine scores, partition filter, TTL, pruning by age and count) and two gateway instances on one database that answer
/// each other's paraphrases. Needs the pgvector extension on the server (.ci/run builds it when missing); without it these
/// tests are skipped with that reason.
/// </summary>
public sealed class PostgreSqlSemanticCacheTests : IAsyncDisposable
{
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private readonly List<IAsyncDisposable> _owned = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }

        if (PostgresTestDatabase.ConnectionString is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_schema);
        }
    }

    /// <summary>The connection string of a server with pgvector, else skips with the reason (in CI too: the rest of CI goes on).</summary>
    private static async Task<string> RequireVectorAsync()
    {
        var connectionString = PostgresTestDatabase.Require();
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        try
        {
            await using var command = dataSource.CreateCommand("CREATE EXTENSION IF NOT EXISTS vector");
            await command.ExecuteNonQueryAsync(Ct);
        }
        catch (PostgresException ex)
        {
            Assert.Skip($"The PostgreSQL server has no pgvector extension ({ex.SqlState}: {ex.MessageText}); .ci/run builds it from Debian's pgvector 0.8.0 source when vector.control is missing.");
        }

        return connectionString;
    }

    private PostgreSqlSemanticCacheCollection NewCollection(string connectionString, TimeProvider time, int maxEntries = 100, int dimensions = 2)
    {
        var collection = new PostgreSqlSemanticCacheCollection(new PostgreSqlSemanticCacheOptions { ConnectionString = connectionString, Schema = _schema, Dimensions = dimensions, PruneInterval = TimeSpan.FromDays(1) }, time, maxEntries, null);
        _owned.Add(collection);
        return collection;
    }

    [Fact]
    public async Task The_collection_searches_by_cosine_within_a_partition_and_ignores_expired_entries()
    {
        var connectionString = await RequireVectorAsync();
        var clock = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var collection = NewCollection(connectionString, clock);
        await collection.InitializeAsync(Ct);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();

        await collection.UpsertAsync(new SemanticCacheEntry { Key = "a", Partition = "p", ExpiresAt = now + 60_000, Payload = [1, 2], Embedding = new float[] { 1, 0 } }, Ct);
        await collection.UpsertAsync(new SemanticCacheEntry { Key = "b", Partition = "p", ExpiresAt = now + 60_000, Payload = [3], Embedding = new float[] { 0, 1 } }, Ct);
        await collection.UpsertAsync(new SemanticCacheEntry { Key = "c", Partition = "q", ExpiresAt = now + 60_000, Payload = [4], Embedding = new float[] { 0.6f, 0.8f } }, Ct);
        await collection.UpsertAsync(new SemanticCacheEntry { Key = "old", Partition = "p", ExpiresAt = now - 1, Payload = [5], Embedding = new float[] { 0.6f, 0.8f } }, Ct);

        var partition = "p";
        var results = await collection.SearchAsync(new ReadOnlyMemory<float>([0.6f, 0.8f]), 5, new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Partition == partition && r.ExpiresAt > now }, Ct).ToListAsync(Ct);

        Assert.Equal(["b", "a"], results.Select(r => r.Record.Key));
        Assert.Equal(0.8, results[0].Score!.Value, 5);
        Assert.Equal(0.6, results[1].Score!.Value, 5);
        Assert.Equal(new byte[] { 3 }, results[0].Record.Payload);
        Assert.Equal(new float[] { 0, 1 }, results[0].Record.Embedding.ToArray());

        Assert.Null(await collection.GetAsync("old", cancellationToken: Ct));
        Assert.Equal([1, 2], (await collection.GetAsync("a", cancellationToken: Ct))!.Payload);
        Assert.Equal(["c"], await collection.GetAsync(r => r.Partition == "q", 10, cancellationToken: Ct).Select(r => r.Key).ToListAsync(Ct));
        await Assert.ThrowsAsync<NotSupportedException>(async () => await collection.GetAsync(r => r.Payload.Length > 1, 10, cancellationToken: Ct).ToListAsync(Ct));

        // The HNSW index is there (pgvector 0.5 and later).
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using var command = dataSource.CreateCommand("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'semantic_cache_embedding'");
        command.Parameters.AddWithValue(_schema);
        Assert.Contains("hnsw", (string)(await command.ExecuteScalarAsync(Ct))!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pruning_deletes_the_expired_entries_and_those_past_the_size_limit()
    {
        var connectionString = await RequireVectorAsync();
        var clock = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var collection = NewCollection(connectionString, clock, maxEntries: 2);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 0; i < 5; i++)
        {
            await collection.UpsertAsync(new SemanticCacheEntry { Key = $"k{i}", Partition = "p", ExpiresAt = now + ((i + 1) * 1000), Payload = [(byte)i], Embedding = new float[] { 1, i } }, Ct);
        }

        clock.Advance(TimeSpan.FromSeconds(1.5)); // k0 expired
        Assert.Equal(3, await collection.PruneAsync(Ct)); // k0 (expired), then k1 and k2 (the earliest-expiring past 2 entries)
        var left = await collection.GetAsync(r => r.ExpiresAt > 0, 10, cancellationToken: Ct).Select(r => r.Key).ToListAsync(Ct);
        Assert.Equal(["k3", "k4"], left.Order());
    }

    [Fact]
    public async Task Two_gateway_instances_on_one_database_answer_each_others_paraphrases()
    {
        var connectionString = await RequireVectorAsync();
        var upstream = await FakeUpstream.StartAsync();
        _owned.Add(upstream);
        var first = await StartGatewayAsync(connectionString, upstream);
        var second = await StartGatewayAsync(connectionString, upstream);

        var miss = await ChatAsync(first, "What is the capital of France?");
        var hit = await ChatAsync(second, "what's the capital of france");

        Assert.Equal(1, upstream.TotalAnswered);
        Assert.Equal(0, upstream.Count("what's the capital of france"));
        Assert.Equal(Content(miss), Content(hit));
        var debug = hit.GetProperty("extra_fields").GetProperty("cache_debug");
        Assert.Equal("semantic", debug.GetProperty("hit_type").GetString());
        Assert.Equal(0.8934, debug.GetProperty("similarity").GetDouble(), 3);
        Assert.False(miss.GetProperty("extra_fields").GetProperty("cache_debug").GetProperty("cache_hit").GetBoolean());

        // An unrelated question misses on both.
        await ChatAsync(second, "How do I bake sourdough bread at home?");
        Assert.Equal(2, upstream.TotalAnswered);
    }

    private static string Content(JsonElement completion) => completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    private async Task<HttpClient> StartGatewayAsync(string connectionString, FakeUpstream upstream)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(o =>
        {
            o.Providers["up"] = new ProviderOptions { Type = "openai", BaseUrl = upstream.BaseUrl, MaxRetries = 0, Keys = [new ProviderKeyOptions { Value = "sk-test" }] };
            o.Providers["local"] = new ProviderOptions { Type = "local" }; // the embeddings: hashed character 3-grams
            o.Cache.Enabled = true;
            o.Cache.Semantic.Enabled = true;
            o.Cache.Semantic.EmbeddingModel = "local/hash-embed";
            o.Cache.Semantic.Threshold = 0.85;
        }).UsePostgreSqlSemanticCache(o =>
        {
            o.ConnectionString = connectionString;
            o.Schema = _schema;
            o.Dimensions = 256;
        });
        var app = builder.Build();
        app.MapBifrost("/openai");
        await app.StartAsync(Ct);
        _owned.Add(app);
        return app.GetTestClient();
    }

    private static async Task<JsonElement> ChatAsync(HttpClient client, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions")
        {
            Content = new StringContent(JsonSerializer.Serialize(new { model = "up/gpt-4o-mini", messages = new[] { new { role = "user", content = text } } }), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-bf-cache-key", "shared");
        using var response = await client.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    [Fact]
    public void Bad_options_are_refused_when_registering()
    {
        var builder = new ServiceCollection().AddBifrost();
        Assert.Throws<ArgumentException>(() => builder.UsePostgreSqlSemanticCache(" ", 256));
        Assert.Throws<ArgumentException>(() => builder.UsePostgreSqlSemanticCache("Host=x", 0));
        Assert.Throws<ArgumentException>(() => builder.UsePostgreSqlSemanticCache(o => { o.ConnectionString = "Host=x"; o.Dimensions = 8; o.Schema = "Bad-Schema"; }));
    }
}
