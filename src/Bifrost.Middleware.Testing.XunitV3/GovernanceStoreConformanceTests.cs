using System.Text;
using Bifrost.Middleware.Governance;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Bifrost.Middleware.Testing;

/// <summary>
/// The contract of <see cref="IGovernanceStore"/>, as tests. Derive from it in your test project with your store
/// (<c>public sealed class MyStoreTests : GovernanceStoreConformanceTests&lt;MyStore&gt;</c>, or
/// <c>GovernanceStoreConformanceTests&lt;IGovernanceStore&gt;</c> for a store type that is not public) and every test runs
/// against it: entities created once per kind and id (also under concurrency), read, listed, updated by compare-and-set
/// (version + 1, <see cref="GovernanceEntity.UpdatedAt"/> from the store's clock), deleted; the revision growing with
/// every change and only then; definitions kept byte for byte; the usage ledger listed newest first through every
/// filter and paged, and summed (tokens, cost to at least 1e-9 USD, records without a known cost).
/// </summary>
/// <typeparam name="TStore">The store under test.</typeparam>
public abstract class GovernanceStoreConformanceTests<TStore>
    where TStore : IGovernanceStore
{
    /// <summary>The fake clock every store of this suite is created with; tests move it forward.</summary>
    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));

    /// <summary>
    /// Creates an empty store that reads the time from <paramref name="timeProvider"/> (once per test). A
    /// <see cref="ValueTask{TResult}"/>, as <c>JobStoreConformanceTests.CreateStoreAsync</c>.
    /// </summary>
    /// <param name="timeProvider">The clock.</param>
    protected abstract ValueTask<TStore> CreateStoreAsync(TimeProvider timeProvider);

    /// <summary>Releases a store created by <see cref="CreateStoreAsync"/> (by default: disposes it when it is <see cref="IAsyncDisposable"/> or <see cref="IDisposable"/>).</summary>
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

    private static GovernanceEntity Entity(GovernanceEntityKind kind, string id, string definition) => new()
    {
        Kind = kind,
        Id = id,
        Definition = Encoding.UTF8.GetBytes(definition),
    };

    private static GovernanceEntity Key(string id, string definition = "{\"name\":\"k\"}") => Entity(GovernanceEntityKind.VirtualKey, id, definition);

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

    /// <summary>A created entity reads back with its kind, id and definition, version 1 and both times the store's now; an unknown one is null.</summary>
    [Fact]
    public Task Created_entity_reads_back_with_version_1() => RunAsync(async store =>
    {
        var now = Time.GetUtcNow();
        Assert.True(await store.CreateEntityAsync(Key("vk-1", "{\"name\":\"one\"}"), Token));

        var read = await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token);
        Assert.NotNull(read);
        Assert.Equal(GovernanceEntityKind.VirtualKey, read.Kind);
        Assert.Equal("vk-1", read.Id);
        Assert.Equal("{\"name\":\"one\"}", Encoding.UTF8.GetString(read.Definition.Span));
        Assert.Equal(1, read.Version);
        Assert.Equal(now, read.CreatedAt);
        Assert.Equal(now, read.UpdatedAt);

        Assert.Null(await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "no-such-key", Token));
        Assert.Null(await store.GetEntityAsync(GovernanceEntityKind.Team, "vk-1", Token));
    });

    /// <summary>The version given to create is ignored: a new entity is always version 1.</summary>
    [Fact]
    public Task Create_stores_version_1_whatever_the_entity_says() => RunAsync(async store =>
    {
        var entity = new GovernanceEntity { Kind = GovernanceEntityKind.Customer, Id = "c", Definition = "{}"u8.ToArray(), Version = 41 };
        Assert.True(await store.CreateEntityAsync(entity, Token));
        Assert.Equal(1, (await store.GetEntityAsync(GovernanceEntityKind.Customer, "c", Token))!.Version);
    });

    /// <summary>Creating an entity whose kind and id exist returns false and changes nothing (definition, version, revision).</summary>
    [Fact]
    public Task Duplicate_create_returns_false_and_changes_nothing() => RunAsync(async store =>
    {
        Assert.True(await store.CreateEntityAsync(Key("vk-1", "{\"v\":1}"), Token));
        var revision = await store.GetRevisionAsync(Token);
        Time.Advance(TimeSpan.FromMinutes(1));

        Assert.False(await store.CreateEntityAsync(Key("vk-1", "{\"v\":2}"), Token));

        var read = await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token);
        Assert.Equal("{\"v\":1}", Encoding.UTF8.GetString(read!.Definition.Span));
        Assert.Equal(1, read.Version);
        Assert.Equal(read.CreatedAt, read.UpdatedAt);
        Assert.Equal(revision, await store.GetRevisionAsync(Token));
        Assert.Single(await store.ListEntitiesAsync(Token));
    });

    /// <summary>Entities are keyed by kind and id: one id may exist once per kind; ids are compared ordinally (case matters).</summary>
    [Fact]
    public Task Entities_are_keyed_by_kind_and_ordinal_id() => RunAsync(async store =>
    {
        Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.VirtualKey, "acme", "{\"k\":1}"), Token));
        Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.Team, "acme", "{\"t\":1}"), Token));
        Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.Customer, "acme", "{\"c\":1}"), Token));
        Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.Customer, "ACME", "{\"c\":2}"), Token));

        Assert.Equal("{\"t\":1}", Encoding.UTF8.GetString((await store.GetEntityAsync(GovernanceEntityKind.Team, "acme", Token))!.Definition.Span));
        Assert.Equal("{\"c\":2}", Encoding.UTF8.GetString((await store.GetEntityAsync(GovernanceEntityKind.Customer, "ACME", Token))!.Definition.Span));
        Assert.Null(await store.GetEntityAsync(GovernanceEntityKind.Team, "ACME", Token));

        Assert.True(await store.DeleteEntityAsync(GovernanceEntityKind.Team, "acme", Token));
        Assert.NotNull(await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "acme", Token));
        Assert.NotNull(await store.GetEntityAsync(GovernanceEntityKind.Customer, "acme", Token));
        Assert.Equal(3, (await store.ListEntitiesAsync(Token)).Count);
    });

    /// <summary>List returns every entity of every kind, each with its definition, version and times.</summary>
    [Fact]
    public Task List_returns_every_entity_of_every_kind() => RunAsync(async store =>
    {
        Assert.Empty(await store.ListEntitiesAsync(Token));

        var created = Time.GetUtcNow();
        for (var i = 0; i < 5; i++)
        {
            Assert.True(await store.CreateEntityAsync(Key($"vk-{i}", $"{{\"i\":{i}}}"), Token));
        }

        Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.Team, "team-a", "{\"name\":\"A\"}"), Token));
        Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.Customer, "cust-a", "{\"name\":\"C\"}"), Token));
        Time.Advance(TimeSpan.FromSeconds(5));
        Assert.NotNull(await store.UpdateEntityAsync(Key("vk-2", "{\"i\":22}"), 1, Token));

        var all = await store.ListEntitiesAsync(Token);
        Assert.Equal(7, all.Count);
        Assert.Equal(7, all.Select(e => (e.Kind, e.Id)).Distinct().Count());
        Assert.Equal(5, all.Count(e => e.Kind == GovernanceEntityKind.VirtualKey));
        var team = Assert.Single(all, e => e.Kind == GovernanceEntityKind.Team);
        Assert.Equal("team-a", team.Id);
        Assert.Equal("{\"name\":\"A\"}", Encoding.UTF8.GetString(team.Definition.Span));
        Assert.Equal("cust-a", Assert.Single(all, e => e.Kind == GovernanceEntityKind.Customer).Id);
        var updated = Assert.Single(all, e => e.Id == "vk-2");
        Assert.Equal(2, updated.Version);
        Assert.Equal("{\"i\":22}", Encoding.UTF8.GetString(updated.Definition.Span));
        Assert.Equal(created, updated.CreatedAt);
        Assert.Equal(created + TimeSpan.FromSeconds(5), updated.UpdatedAt);
        Assert.All(all.Where(e => e.Id != "vk-2"), e => Assert.Equal(1, e.Version));
    });

    /// <summary>
    /// Update is a compare-and-set: with the stored version it replaces the definition and returns version + 1 with
    /// <see cref="GovernanceEntity.UpdatedAt"/> now (<see cref="GovernanceEntity.CreatedAt"/> kept); with any other version,
    /// or for an entity that does not exist, it returns null and changes nothing.
    /// </summary>
    [Fact]
    public Task Update_is_a_compare_and_set_on_the_version() => RunAsync(async store =>
    {
        var created = Time.GetUtcNow();
        Assert.True(await store.CreateEntityAsync(Key("vk-1", "{\"v\":1}"), Token));
        Time.Advance(TimeSpan.FromMinutes(3));

        Assert.Null(await store.UpdateEntityAsync(Key("vk-1", "{\"v\":\"wrong\"}"), 2, Token));
        Assert.Null(await store.UpdateEntityAsync(Key("vk-1", "{\"v\":\"wrong\"}"), 0, Token));
        var unchanged = await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token);
        Assert.Equal(1, unchanged!.Version);
        Assert.Equal("{\"v\":1}", Encoding.UTF8.GetString(unchanged.Definition.Span));
        Assert.Equal(created, unchanged.UpdatedAt);

        var updated = await store.UpdateEntityAsync(Key("vk-1", "{\"v\":2}"), 1, Token);
        Assert.NotNull(updated);
        Assert.Equal(GovernanceEntityKind.VirtualKey, updated.Kind);
        Assert.Equal("vk-1", updated.Id);
        Assert.Equal(2, updated.Version);
        Assert.Equal("{\"v\":2}", Encoding.UTF8.GetString(updated.Definition.Span));
        Assert.Equal(created, updated.CreatedAt);
        Assert.Equal(created + TimeSpan.FromMinutes(3), updated.UpdatedAt);

        var read = await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token);
        Assert.Equal(2, read!.Version);
        Assert.Equal("{\"v\":2}", Encoding.UTF8.GetString(read.Definition.Span));
        Assert.Equal(created, read.CreatedAt);
        Assert.Equal(updated.UpdatedAt, read.UpdatedAt);

        // The version the first writer read is stale now.
        Assert.Null(await store.UpdateEntityAsync(Key("vk-1", "{\"v\":\"stale\"}"), 1, Token));
        Time.Advance(TimeSpan.FromMinutes(1));
        var third = await store.UpdateEntityAsync(Key("vk-1", "{\"v\":3}"), 2, Token);
        Assert.Equal(3, third!.Version);
        Assert.Equal(created + TimeSpan.FromMinutes(4), third.UpdatedAt);

        Assert.Null(await store.UpdateEntityAsync(Key("no-such-key"), 1, Token));
        Assert.Null(await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "no-such-key", Token));
        Assert.Null(await store.UpdateEntityAsync(Entity(GovernanceEntityKind.Team, "vk-1", "{}"), 3, Token));
    });

    /// <summary>Of many concurrent updates with the same expected version, exactly one wins.</summary>
    [Fact]
    public Task Concurrent_updates_with_one_version_have_one_winner() => RunAsync(async store =>
    {
        Assert.True(await store.CreateEntityAsync(Key("vk-1"), Token));
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
            await store.UpdateEntityAsync(Key("vk-1", $"{{\"writer\":{i}}}"), 1, Token))));

        var winner = Assert.Single(results, r => r is not null);
        Assert.Equal(2, winner!.Version);
        var read = await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token);
        Assert.Equal(2, read!.Version);
        Assert.Equal(winner.Definition.ToArray(), read.Definition.ToArray());
    });

    /// <summary>Delete removes an entity (true) and then returns false; the id can be created again, at version 1.</summary>
    [Fact]
    public Task Delete_removes_the_entity_once() => RunAsync(async store =>
    {
        Assert.True(await store.CreateEntityAsync(Key("vk-1", "{\"v\":1}"), Token));
        Assert.NotNull(await store.UpdateEntityAsync(Key("vk-1", "{\"v\":2}"), 1, Token));

        Assert.True(await store.DeleteEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token));
        Assert.Null(await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token));
        Assert.Empty(await store.ListEntitiesAsync(Token));
        Assert.False(await store.DeleteEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token));
        Assert.False(await store.DeleteEntityAsync(GovernanceEntityKind.Team, "never-created", Token));
        Assert.Null(await store.UpdateEntityAsync(Key("vk-1", "{\"v\":3}"), 2, Token));

        Assert.True(await store.CreateEntityAsync(Key("vk-1", "{\"v\":\"again\"}"), Token));
        var again = await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token);
        Assert.Equal(1, again!.Version);
        Assert.Equal("{\"v\":\"again\"}", Encoding.UTF8.GetString(again.Definition.Span));
    });

    /// <summary>The revision grows with every successful create, update and delete, and stays put on failed ones and on reads.</summary>
    [Fact]
    public Task Revision_grows_on_every_change_and_only_then() => RunAsync(async store =>
    {
        var revision = await store.GetRevisionAsync(Token);

        async Task Grew()
        {
            var now = await store.GetRevisionAsync(Token);
            Assert.True(now > revision, $"the revision should have grown from {revision}, is {now}");
            revision = now;
        }

        async Task Same() => Assert.Equal(revision, await store.GetRevisionAsync(Token));

        Assert.True(await store.CreateEntityAsync(Key("vk-1"), Token));
        await Grew();
        Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.Team, "t", "{}"), Token));
        await Grew();
        Assert.False(await store.CreateEntityAsync(Key("vk-1"), Token));
        await Same();
        Assert.NotNull(await store.UpdateEntityAsync(Key("vk-1", "{\"v\":2}"), 1, Token));
        await Grew();
        Assert.Null(await store.UpdateEntityAsync(Key("vk-1", "{\"v\":3}"), 1, Token));
        await Same();
        Assert.Null(await store.UpdateEntityAsync(Key("missing"), 1, Token));
        await Same();
        await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token);
        await store.ListEntitiesAsync(Token);
        await store.AppendUsageAsync([Record(Time.GetUtcNow())], Token);
        await Same();
        Assert.True(await store.DeleteEntityAsync(GovernanceEntityKind.Team, "t", Token));
        await Grew();
        Assert.False(await store.DeleteEntityAsync(GovernanceEntityKind.Team, "t", Token));
        await Same();
        Assert.True(await store.CreateEntityAsync(Entity(GovernanceEntityKind.Team, "t", "{}"), Token));
        await Grew();
    });

    /// <summary>
    /// Definitions are opaque documents kept byte for byte: whitespace, key order, escapes, non-ASCII text and a large
    /// document come back exactly as given, from get, list and update.
    /// </summary>
    [Fact]
    public Task Definitions_round_trip_byte_exact() => RunAsync(async store =>
    {
        var large = new StringBuilder("{\"items\":[");
        for (var i = 0; i < 5000; i++)
        {
            large.Append(i == 0 ? "" : ",").Append("{\"n\":").Append(i).Append(",\"s\":\"ü€😀\\n\\u0000\"}");
        }

        large.Append("]}");
        string[] definitions =
        [
            "{}",
            "{ \"z\" : 1,\n\t\"a\":[1, 2.50, -0e0, 1E+2],  \"\\u00e9\":\"é\" }   ",
            "{\"name\":\"Größe 東京 😀\",\"escaped\":\"\\\"quoted\\\" \\\\ \\/ \\b\\f\\n\\r\\t\",\"dup\":1,\"dup\":2}",
            "{\"hash\":\"sha256:" + new string('f', 64) + "\",\"big\":12345678901234567890123456789}",
            large.ToString(),
        ];

        for (var i = 0; i < definitions.Length; i++)
        {
            Assert.True(await store.CreateEntityAsync(Key($"vk-{i}", definitions[i]), Token));
        }

        var listed = (await store.ListEntitiesAsync(Token)).ToDictionary(e => e.Id, StringComparer.Ordinal);
        for (var i = 0; i < definitions.Length; i++)
        {
            var expected = Encoding.UTF8.GetBytes(definitions[i]);
            Assert.Equal(expected, (await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, $"vk-{i}", Token))!.Definition.ToArray());
            Assert.Equal(expected, listed[$"vk-{i}"].Definition.ToArray());
        }

        var updated = await store.UpdateEntityAsync(Key("vk-0", definitions[2]), 1, Token);
        Assert.Equal(Encoding.UTF8.GetBytes(definitions[2]), updated!.Definition.ToArray());
        Assert.Equal(Encoding.UTF8.GetBytes(definitions[2]), (await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-0", Token))!.Definition.ToArray());
    });

    /// <summary>The store keeps its own copy: changing the caller's buffer after create does not change the stored definition.</summary>
    [Fact]
    public Task Stored_definition_is_a_copy() => RunAsync(async store =>
    {
        var buffer = "{\"v\":1}"u8.ToArray();
        Assert.True(await store.CreateEntityAsync(new GovernanceEntity { Kind = GovernanceEntityKind.VirtualKey, Id = "vk-1", Definition = buffer }, Token));
        buffer[5] = (byte)'9';
        Assert.Equal("{\"v\":1}", Encoding.UTF8.GetString((await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-1", Token))!.Definition.Span));
    });

    /// <summary>Many concurrent creates of one kind and id: exactly one wins, the others get false; the winner's definition is stored.</summary>
    [Fact]
    public Task Concurrent_creates_of_one_id_have_one_winner() => RunAsync(async store =>
    {
        var revision = await store.GetRevisionAsync(Token);
        var results = await Task.WhenAll(Enumerable.Range(0, 32).Select(i => Task.Run(async () =>
            (Writer: i, Created: await store.CreateEntityAsync(Key("vk-race", $"{{\"writer\":{i}}}"), Token)))));

        var winner = Assert.Single(results, r => r.Created);
        var read = await store.GetEntityAsync(GovernanceEntityKind.VirtualKey, "vk-race", Token);
        Assert.Equal($"{{\"writer\":{winner.Writer}}}", Encoding.UTF8.GetString(read!.Definition.Span));
        Assert.Equal(1, read.Version);
        Assert.Single(await store.ListEntitiesAsync(Token));
        Assert.True(await store.GetRevisionAsync(Token) > revision);
    });

    /// <summary>Concurrent creates of different ids all succeed.</summary>
    [Fact]
    public Task Concurrent_creates_of_different_ids_all_succeed() => RunAsync(async store =>
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 32).Select(i => Task.Run(async () =>
            await store.CreateEntityAsync(Key($"vk-{i}"), Token))));

        Assert.All(results, r => Assert.True(r));
        Assert.Equal(32, (await store.ListEntitiesAsync(Token)).Count);
    });

    private static UsageRecord Record(
        DateTimeOffset time,
        string? key = "vk-1",
        string? team = null,
        string? customer = null,
        string provider = "openai",
        string model = "gpt-4o-mini",
        long input = 10,
        long output = 5,
        decimal? cost = 0.001m,
        string? requestId = null) => new()
    {
        Time = time,
        RequestId = requestId,
        VirtualKeyId = key,
        Team = team,
        Customer = customer,
        Provider = provider,
        Model = model,
        Operation = "chat_completion",
        Source = "sync",
        InputTokens = input,
        OutputTokens = output,
        CostUsd = cost,
        Status = 200,
        Duration = TimeSpan.FromMilliseconds(120),
    };

    /// <summary>An empty ledger lists nothing and sums to zero.</summary>
    [Fact]
    public Task Empty_ledger_lists_nothing_and_sums_to_zero() => RunAsync(async store =>
    {
        Assert.Empty(await store.ListUsageAsync(new UsageQuery(), Token));
        Assert.Equal(UsageTotals.Empty, await store.SumUsageAsync(new UsageQuery(), Token));
        await store.AppendUsageAsync([], Token);
        Assert.Empty(await store.ListUsageAsync(new UsageQuery(), Token));
    });

    /// <summary>Every field of a record comes back as appended (times and durations to the millisecond; a missing cost stays null, never zero).</summary>
    [Fact]
    public Task Usage_records_round_trip_every_field() => RunAsync(async store =>
    {
        var time = Time.GetUtcNow() + TimeSpan.FromMilliseconds(1234);
        var full = new UsageRecord
        {
            Time = time,
            RequestId = "chatcmpl-123",
            VirtualKeyId = "vk-ü",
            Team = "team-a",
            Customer = "cust-a",
            Provider = "anthropic",
            Model = "claude-3-5-haiku-20241022",
            Operation = "chat_completion_stream",
            Source = "stream",
            InputTokens = 1_000_000_000_123,
            OutputTokens = 456,
            CachedInputTokens = 78,
            ReasoningTokens = 9,
            CostUsd = 123.456789012m,
            Status = 429,
            Duration = TimeSpan.FromMilliseconds(98_765),
        };
        var bare = new UsageRecord
        {
            Time = time - TimeSpan.FromSeconds(1),
            Provider = "local",
            Model = "echo",
            Operation = "chat_completion",
            Source = "batch",
        };
        await store.AppendUsageAsync([bare, full], Token);

        var listed = await store.ListUsageAsync(new UsageQuery(), Token);
        Assert.Equal(2, listed.Count);
        var a = listed[0];
        Assert.Equal(full.Time, a.Time);
        Assert.Equal(full.RequestId, a.RequestId);
        Assert.Equal(full.VirtualKeyId, a.VirtualKeyId);
        Assert.Equal(full.Team, a.Team);
        Assert.Equal(full.Customer, a.Customer);
        Assert.Equal(full.Provider, a.Provider);
        Assert.Equal(full.Model, a.Model);
        Assert.Equal(full.Operation, a.Operation);
        Assert.Equal(full.Source, a.Source);
        Assert.Equal(full.InputTokens, a.InputTokens);
        Assert.Equal(full.OutputTokens, a.OutputTokens);
        Assert.Equal(full.CachedInputTokens, a.CachedInputTokens);
        Assert.Equal(full.ReasoningTokens, a.ReasoningTokens);
        Assert.Equal(full.CostUsd, a.CostUsd);
        Assert.Equal(full.Status, a.Status);
        Assert.Equal(full.Duration, a.Duration);

        var b = listed[1];
        Assert.Equal(bare.Time, b.Time);
        Assert.Null(b.RequestId);
        Assert.Null(b.VirtualKeyId);
        Assert.Null(b.Team);
        Assert.Null(b.Customer);
        Assert.Null(b.CostUsd);
        Assert.Equal("local", b.Provider);
        Assert.Equal("echo", b.Model);
        Assert.Equal("batch", b.Source);
        Assert.Equal(0, b.InputTokens);
        Assert.Equal(0, b.Status);
        Assert.Equal(TimeSpan.Zero, b.Duration);
    });

    /// <summary>The ledger lists newest first (whatever the order of appends), at most <see cref="UsageQuery.Limit"/> records.</summary>
    [Fact]
    public Task Usage_lists_newest_first_up_to_the_limit() => RunAsync(async store =>
    {
        var start = Time.GetUtcNow();
        int[] order = [3, 0, 7, 1, 9, 4, 2, 8, 6, 5];
        await store.AppendUsageAsync([.. order.Take(5).Select(i => Record(start + TimeSpan.FromMinutes(i), requestId: $"r{i}"))], Token);
        await store.AppendUsageAsync([.. order.Skip(5).Select(i => Record(start + TimeSpan.FromMinutes(i), requestId: $"r{i}"))], Token);

        var all = await store.ListUsageAsync(new UsageQuery(), Token);
        Assert.Equal(Enumerable.Range(0, 10).Reverse().Select(i => $"r{i}"), all.Select(r => r.RequestId));

        var three = await store.ListUsageAsync(new UsageQuery { Limit = 3 }, Token);
        Assert.Equal(["r9", "r8", "r7"], three.Select(r => r.RequestId));
        Assert.Empty(await store.ListUsageAsync(new UsageQuery { Limit = 0 }, Token));

        // The default limit is 100.
        await store.AppendUsageAsync([.. Enumerable.Range(0, 150).Select(i => Record(start - TimeSpan.FromSeconds(i + 1)))], Token);
        Assert.Equal(100, (await store.ListUsageAsync(new UsageQuery(), Token)).Count);
        Assert.Equal(160, (await store.ListUsageAsync(new UsageQuery { Limit = 1000 }, Token)).Count);
    });

    /// <summary><see cref="UsageQuery.Before"/> pages through the ledger: each page strictly older than the last record of the previous one, none lost or repeated.</summary>
    [Fact]
    public Task Usage_pages_with_before() => RunAsync(async store =>
    {
        var start = Time.GetUtcNow();
        await store.AppendUsageAsync([.. Enumerable.Range(0, 23).Select(i => Record(start + TimeSpan.FromSeconds(i), requestId: $"r{i}"))], Token);

        var seen = new List<string?>();
        DateTimeOffset? before = null;
        while (true)
        {
            var page = await store.ListUsageAsync(new UsageQuery { Limit = 5, Before = before }, Token);
            if (page.Count == 0)
            {
                break;
            }

            Assert.True(page.Count <= 5);
            Assert.All(page, r => Assert.True(before is null || r.Time < before));
            seen.AddRange(page.Select(r => r.RequestId));
            before = page[^1].Time;
        }

        Assert.Equal(Enumerable.Range(0, 23).Reverse().Select(i => $"r{i}"), seen);
        Assert.Empty(await store.ListUsageAsync(new UsageQuery { Before = start }, Token));
        Assert.Single(await store.ListUsageAsync(new UsageQuery { Before = start + TimeSpan.FromSeconds(1) }, Token));
    });

    /// <summary>Every filter of <see cref="UsageQuery"/> narrows both list and sum, and filters combine (all must match).</summary>
    [Fact]
    public Task Usage_filters_narrow_list_and_sum() => RunAsync(async store =>
    {
        var t0 = Time.GetUtcNow();
        UsageRecord[] records =
        [
            Record(t0, key: "vk-1", team: "team-a", customer: "cust-a", provider: "openai", model: "gpt-4o", input: 1, requestId: "a"),
            Record(t0 + TimeSpan.FromMinutes(1), key: "vk-1", team: "team-a", customer: "cust-a", provider: "anthropic", model: "claude", input: 2, requestId: "b"),
            Record(t0 + TimeSpan.FromMinutes(2), key: "vk-2", team: "team-a", customer: null, provider: "openai", model: "gpt-4o-mini", input: 4, requestId: "c"),
            Record(t0 + TimeSpan.FromMinutes(3), key: "vk-3", team: "team-b", customer: "cust-a", provider: "openai", model: "gpt-4o", input: 8, requestId: "d"),
            Record(t0 + TimeSpan.FromMinutes(4), key: null, team: null, customer: null, provider: "local", model: "echo", input: 16, requestId: "e"),
            Record(t0 + TimeSpan.FromMinutes(5), key: "vk-2", team: "team-b", customer: "cust-b", provider: "openai", model: "gpt-4o", input: 32, requestId: "f"),
        ];
        await store.AppendUsageAsync(records, Token);

        async Task Expect(UsageQuery query, string ids)
        {
            var listed = await store.ListUsageAsync(query, Token);
            Assert.Equal(ids, string.Concat(listed.Select(r => r.RequestId)));
            var expected = records.Where(r => ids.Contains(r.RequestId!, StringComparison.Ordinal)).ToArray();
            var totals = await store.SumUsageAsync(query, Token);
            Assert.Equal(expected.Length, totals.Requests);
            Assert.Equal(expected.Sum(r => r.InputTokens), totals.InputTokens);
        }

        await Expect(new UsageQuery(), "fedcba");
        await Expect(new UsageQuery { VirtualKeyId = "vk-1" }, "ba");
        await Expect(new UsageQuery { VirtualKeyId = "vk-2" }, "fc");
        await Expect(new UsageQuery { VirtualKeyId = "vk-9" }, "");
        await Expect(new UsageQuery { Team = "team-a" }, "cba");
        await Expect(new UsageQuery { Team = "team-b" }, "fd");
        await Expect(new UsageQuery { Customer = "cust-a" }, "dba");
        await Expect(new UsageQuery { Provider = "openai" }, "fdca");
        await Expect(new UsageQuery { Provider = "local" }, "e");
        await Expect(new UsageQuery { Model = "gpt-4o" }, "fda");
        await Expect(new UsageQuery { Model = "gpt-4" }, "");
        await Expect(new UsageQuery { From = t0 + TimeSpan.FromMinutes(2) }, "fedc");
        await Expect(new UsageQuery { To = t0 + TimeSpan.FromMinutes(2) }, "ba");
        await Expect(new UsageQuery { From = t0 + TimeSpan.FromMinutes(1), To = t0 + TimeSpan.FromMinutes(4) }, "dcb");
        await Expect(new UsageQuery { From = t0 + TimeSpan.FromMinutes(3), To = t0 + TimeSpan.FromMinutes(3) }, "");
        await Expect(new UsageQuery { Team = "team-a", Provider = "openai" }, "ca");
        await Expect(new UsageQuery { VirtualKeyId = "vk-2", Team = "team-b", Customer = "cust-b", Provider = "openai", Model = "gpt-4o" }, "f");
        await Expect(new UsageQuery { Customer = "cust-a", Model = "gpt-4o", From = t0 + TimeSpan.FromSeconds(1) }, "d");

        // Before and Limit page the list but never the sum.
        var paged = new UsageQuery { Provider = "openai", Before = t0 + TimeSpan.FromMinutes(3), Limit = 1 };
        Assert.Equal("c", string.Concat((await store.ListUsageAsync(paged, Token)).Select(r => r.RequestId)));
        var sum = await store.SumUsageAsync(paged, Token);
        Assert.Equal(4, sum.Requests);
        Assert.Equal(1 + 4 + 8 + 32, sum.InputTokens);
    });

    /// <summary>
    /// Sums add every token count and the known costs exactly (to at least 1e-9 USD, over many records), and count the
    /// records without a known cost apart (their tokens still count).
    /// </summary>
    [Fact]
    public Task Usage_sums_tokens_and_exact_costs() => RunAsync(async store =>
    {
        var t0 = Time.GetUtcNow();
        var records = new List<UsageRecord>();
        var expectedCost = 0m;
        for (var i = 0; i < 1000; i++)
        {
            // Costs with nine decimals, such as 37 tokens at $0.075 per million: 0.000002775.
            var cost = (i % 7 == 0) ? (decimal?)null : (i + 1) * 0.000000001m + (i % 3) * 0.000002775m;
            expectedCost += cost ?? 0m;
            records.Add(new UsageRecord
            {
                Time = t0 + TimeSpan.FromMilliseconds(i),
                VirtualKeyId = i % 2 == 0 ? "even" : "odd",
                Provider = "openai",
                Model = "gpt-4o-mini",
                Operation = "chat_completion",
                Source = "sync",
                InputTokens = i,
                OutputTokens = 2 * i,
                CachedInputTokens = i % 5,
                ReasoningTokens = i % 3,
                CostUsd = cost,
                Status = 200,
            });
        }

        records.Add(Record(t0 + TimeSpan.FromSeconds(2), key: "big", input: 3_000_000_000, output: 4_000_000_000, cost: 1234567.123456789m));
        expectedCost += 1234567.123456789m;
        await store.AppendUsageAsync(records, Token);

        var totals = await store.SumUsageAsync(new UsageQuery(), Token);
        Assert.Equal(1001, totals.Requests);
        Assert.Equal(records.Sum(r => r.InputTokens), totals.InputTokens);
        Assert.Equal(records.Sum(r => r.OutputTokens), totals.OutputTokens);
        Assert.Equal(records.Sum(r => r.CachedInputTokens), totals.CachedInputTokens);
        Assert.Equal(records.Sum(r => r.ReasoningTokens), totals.ReasoningTokens);
        Assert.Equal(expectedCost, totals.CostUsd);
        Assert.Equal(records.Count(r => r.CostUsd is null), totals.UnknownCostRequests);

        var even = await store.SumUsageAsync(new UsageQuery { VirtualKeyId = "even" }, Token);
        var evenRecords = records.Where(r => r.VirtualKeyId == "even").ToArray();
        Assert.Equal(500, even.Requests);
        Assert.Equal(evenRecords.Sum(r => r.CostUsd ?? 0m), even.CostUsd);
        Assert.Equal(evenRecords.Count(r => r.CostUsd is null), even.UnknownCostRequests);

        var single = await store.ListUsageAsync(new UsageQuery { VirtualKeyId = "odd", Limit = 1000 }, Token);
        Assert.Equal(
            records.Where(r => r.VirtualKeyId == "odd").OrderByDescending(r => r.Time).Select(r => r.CostUsd),
            single.Select(r => r.CostUsd));

        var tiny = await store.SumUsageAsync(new UsageQuery { VirtualKeyId = "none" }, Token);
        Assert.Equal(UsageTotals.Empty, tiny);
    });

    /// <summary>Concurrent appends all land: nothing lost or doubled.</summary>
    [Fact]
    public Task Concurrent_appends_all_land() => RunAsync(async store =>
    {
        var t0 = Time.GetUtcNow();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var b = 0; b < 10; b++)
            {
                await store.AppendUsageAsync([.. Enumerable.Range(0, 25).Select(i => Record(t0 + TimeSpan.FromMilliseconds((w * 1000) + (b * 25) + i), key: $"w{w}", cost: 0.000000001m))], Token);
            }
        })));

        var totals = await store.SumUsageAsync(new UsageQuery(), Token);
        Assert.Equal(2000, totals.Requests);
        Assert.Equal(0.000002m, totals.CostUsd);
        Assert.Equal(250, (await store.SumUsageAsync(new UsageQuery { VirtualKeyId = "w3" }, Token)).Requests);
        Assert.Equal(2000, (await store.ListUsageAsync(new UsageQuery { Limit = 5000 }, Token)).Select(r => r.Time).Distinct().Count());
    });
}
