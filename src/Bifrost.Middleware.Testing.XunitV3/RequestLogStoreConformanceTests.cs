using Bifrost.Middleware.RequestLog;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Bifrost.Middleware.Testing;

/// <summary>
/// The contract of <see cref="IRequestLogStore"/>, as tests. Derive from it in your test project with your store
/// (<c>public sealed class MyStoreTests : RequestLogStoreConformanceTests&lt;MyStore&gt;</c>, or
/// <c>RequestLogStoreConformanceTests&lt;IRequestLogStore&gt;</c>) and every test runs against it: entries read back by id
/// with every field, listed newest first (ties by id) through every filter and paged by the cursor without gaps or
/// repeats, pruned by age and by count, and appended concurrently without loss. The store must hold at least 1,000 entries.
/// </summary>
/// <typeparam name="TStore">The store under test.</typeparam>
public abstract class RequestLogStoreConformanceTests<TStore>
    where TStore : IRequestLogStore
{
    /// <summary>The fake clock every store of this suite is created with.</summary>
    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));

    /// <summary>Creates an empty store (once per test) that holds at least 1,000 entries.</summary>
    /// <param name="timeProvider">The clock.</param>
    protected abstract ValueTask<TStore> CreateStoreAsync(TimeProvider timeProvider);

    /// <summary>Releases a store created by <see cref="CreateStoreAsync"/> (by default: disposes it when it is disposable).</summary>
    /// <param name="store">The store.</param>
    protected virtual ValueTask DisposeStoreAsync(TStore store)
    {
        if (store is IAsyncDisposable asyncDisposable)
        {
            return asyncDisposable.DisposeAsync();
        }

        (store as IDisposable)?.Dispose();
        return ValueTask.CompletedTask;
    }

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private async Task RunAsync(Func<TStore, Task> test)
    {
        var store = await CreateStoreAsync(Time);
        try
        {
            await test(store);
        }
        finally
        {
            await DisposeStoreAsync(store);
        }
    }

    private static RequestLogEntry Entry(string id, DateTimeOffset time, string provider = "openai", string model = "gpt-4o-mini", int status = 200, string source = "sync", string? owner = null, string? key = null, string operation = "chat_completion", string? batch = null) => new()
    {
        Id = id,
        Time = time,
        Provider = provider,
        Model = model,
        Status = status,
        Source = source,
        Owner = owner,
        VirtualKeyId = key,
        Operation = operation,
        BatchId = batch,
        LatencyMs = 10,
    };

    /// <summary>An entry reads back by id with every field; an unknown id is null.</summary>
    [Fact]
    public Task Entry_reads_back_by_id_with_every_field() => RunAsync(async store =>
    {
        var full = new RequestLogEntry
        {
            Id = "req-full",
            Time = T0.AddMilliseconds(1234.5678),
            Owner = "vk:team-a",
            VirtualKeyId = "team-a",
            Operation = "chat_completion_stream",
            Source = "stream",
            Provider = "anthropic",
            Model = "claude-3-5-haiku",
            Status = 429,
            ErrorCode = "rate_limit_exceeded",
            LatencyMs = 1500,
            TimeToFirstChunkMs = 120,
            InputTokens = 1_000_000_007,
            OutputTokens = 42,
            CostUsd = 0.000123456m,
            JobId = "job-1",
            BatchId = "batch_1",
            CustomId = "line-7",
            RequestId = "0HN-trace",
            ResponseId = "chatcmpl-1",
            RequestContent = "{\"messages\":[{\"role\":\"user\",\"content\":\"h\u00e9\"}]}",
            ResponseContent = "{\"id\":\"chatcmpl-1\"}",
        };
        var bare = new RequestLogEntry { Id = "req-bare", Time = T0, Operation = "embedding", Source = "sync", Status = 500 };
        await store.AppendAsync([full, bare], Token);

        Assert.Equal(full, await store.GetAsync("req-full", Token));
        Assert.Equal(bare, await store.GetAsync("req-bare", Token));
        Assert.Null(await store.GetAsync("req-none", Token));
    });

    /// <summary>Entries are listed newest first, entries of the same time by id descending, and paged by the cursor without gaps or repeats.</summary>
    [Fact]
    public Task Query_lists_newest_first_and_pages_by_cursor() => RunAsync(async store =>
    {
        // 25 entries: appended out of order, five of them sharing one time.
        var entries = Enumerable.Range(0, 20).Select(i => Entry($"r{i:D2}", T0.AddSeconds(i))).Concat(Enumerable.Range(0, 5).Select(i => Entry($"same-{i}", T0.AddSeconds(10)))).ToArray();
        await store.AppendAsync([.. entries.Reverse().Take(12)], Token);
        await store.AppendAsync([.. entries.Reverse().Skip(12)], Token);
        var expected = entries.OrderByDescending(e => e.Time).ThenByDescending(e => e.Id, StringComparer.Ordinal).Select(e => e.Id).ToArray();

        var listed = new List<string>();
        var query = new RequestLogQuery { Limit = 10 };
        var pages = 0;
        while (query is not null)
        {
            var page = await store.QueryAsync(query, Token);
            pages++;
            Assert.True(page.Entries.Count <= 10);
            listed.AddRange(page.Entries.Select(e => e.Id));
            query = page.Next;
            if (query is not null)
            {
                Assert.Equal(page.Entries[^1].Time, query.CursorTime);
                Assert.Equal(page.Entries[^1].Id, query.CursorId);
            }
        }

        Assert.Equal(3, pages);
        Assert.Equal(expected, listed);
    });

    /// <summary>A page that holds the last matching entries has no next page; an empty store lists nothing.</summary>
    [Fact]
    public Task Last_page_has_no_next() => RunAsync(async store =>
    {
        var empty = await store.QueryAsync(new RequestLogQuery(), Token);
        Assert.Empty(empty.Entries);
        Assert.Null(empty.Next);

        await store.AppendAsync([Entry("a", T0), Entry("b", T0.AddSeconds(1))], Token);
        var exact = await store.QueryAsync(new RequestLogQuery { Limit = 2 }, Token);
        Assert.Equal(["b", "a"], exact.Entries.Select(e => e.Id));
        Assert.Null(exact.Next);
    });

    /// <summary>Every filter selects exactly its entries: provider (ignoring case), model, status, status class, owner, virtual key, operation, source, batch, time range.</summary>
    [Fact]
    public Task Query_filters_select_exactly_their_entries() => RunAsync(async store =>
    {
        await store.AppendAsync(
            [
                Entry("e1", T0, provider: "openai", model: "gpt-4o", status: 200, owner: "vk:a", key: "a"),
                Entry("e2", T0.AddMinutes(1), provider: "OpenAI", model: "gpt-4o-mini", status: 429, owner: "vk:a", key: "a", source: "stream", operation: "chat_completion_stream"),
                Entry("e3", T0.AddMinutes(2), provider: "anthropic", model: "claude", status: 500, owner: "user:x", source: "async"),
                Entry("e4", T0.AddMinutes(3), provider: "anthropic", model: "claude", status: 404, owner: "user:x", source: "batch", batch: "batch_1", operation: "embedding"),
                Entry("e5", T0.AddMinutes(4), provider: "local", model: "echo", status: 200, source: "batch", batch: "batch_2"),
            ],
            Token);

        async Task<string[]> Ids(RequestLogQuery query) => [.. (await store.QueryAsync(query, Token)).Entries.Select(e => e.Id)];

        Assert.Equal(["e2", "e1"], await Ids(new() { Provider = "openai" }));
        Assert.Equal(["e2"], await Ids(new() { Model = "gpt-4o-mini" }));
        Assert.Equal(["e5", "e1"], await Ids(new() { Status = 200 }));
        Assert.Equal(["e4", "e2"], await Ids(new() { StatusClass = 4 }));
        Assert.Equal(["e3"], await Ids(new() { StatusClass = 5 }));
        Assert.Equal(["e4", "e3"], await Ids(new() { Owner = "user:x" }));
        Assert.Equal(["e2", "e1"], await Ids(new() { VirtualKeyId = "a" }));
        Assert.Equal(["e2"], await Ids(new() { Operation = "chat_completion_stream" }));
        Assert.Equal(["e5", "e4"], await Ids(new() { Source = "batch" }));
        Assert.Equal(["e4"], await Ids(new() { BatchId = "batch_1" }));
        Assert.Equal(["e3", "e2"], await Ids(new() { From = T0.AddMinutes(1), To = T0.AddMinutes(3) }));
        Assert.Equal(["e4"], await Ids(new() { Provider = "anthropic", StatusClass = 4, Source = "batch" }));
        Assert.Empty(await Ids(new() { Provider = "azure" }));
    });

    /// <summary>Pruning by age removes exactly the entries older than the cut-off and answers how many.</summary>
    [Fact]
    public Task Prune_by_age_removes_the_older_entries() => RunAsync(async store =>
    {
        await store.AppendAsync([.. Enumerable.Range(0, 10).Select(i => Entry($"r{i}", T0.AddHours(i)))], Token);

        Assert.Equal(4, await store.PruneAsync(T0.AddHours(4), 1000, Token));
        var left = await store.QueryAsync(new RequestLogQuery(), Token);
        Assert.Equal(["r9", "r8", "r7", "r6", "r5", "r4"], left.Entries.Select(e => e.Id));
        Assert.Null(await store.GetAsync("r0", Token));
        Assert.Equal(0, await store.PruneAsync(T0.AddHours(4), 1000, Token));
    });

    /// <summary>Pruning by count keeps exactly the newest entries.</summary>
    [Fact]
    public Task Prune_by_count_keeps_the_newest() => RunAsync(async store =>
    {
        await store.AppendAsync([.. Enumerable.Range(0, 10).Select(i => Entry($"r{i}", T0.AddHours(i)))], Token);

        Assert.Equal(7, await store.PruneAsync(T0.AddDays(-1), 3, Token));
        var left = await store.QueryAsync(new RequestLogQuery(), Token);
        Assert.Equal(["r9", "r8", "r7"], left.Entries.Select(e => e.Id));

        // Still a working store after pruning.
        await store.AppendAsync([Entry("r10", T0.AddHours(10))], Token);
        Assert.Equal(["r10", "r9", "r8", "r7"], (await store.QueryAsync(new RequestLogQuery(), Token)).Entries.Select(e => e.Id));
    });

    /// <summary>Concurrent appends all land: 20 writers × 40 entries = 800 entries, each readable.</summary>
    [Fact]
    public Task Concurrent_appends_all_land() => RunAsync(async store =>
    {
        await Task.WhenAll(Enumerable.Range(0, 20).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 4; i++)
            {
                await store.AppendAsync([.. Enumerable.Range(0, 10).Select(j => Entry($"w{w:D2}-{i}-{j}", T0.AddMilliseconds((w * 40) + (i * 10) + j)))], Token);
            }
        })));

        var count = 0;
        var query = new RequestLogQuery { Limit = RequestLogQuery.MaxLimit };
        var page = await store.QueryAsync(query, Token);
        count += page.Entries.Count;
        Assert.Equal(800, count);
        Assert.Null(page.Next);
        Assert.Equal(800, page.Entries.Select(e => e.Id).Distinct().Count());
        Assert.NotNull(await store.GetAsync("w19-3-9", Token));
    });
}
