using Bifrost.Middleware.RequestLog;
using Bifrost.Middleware.Testing;

namespace Bifrost.Middleware.Tests.RequestLog;

/// <summary>The whole <see cref="IRequestLogStore"/> contract against the default in-memory ring, and what the ring adds: bounded memory.</summary>
public sealed class InMemoryRequestLogStoreConformanceTests : RequestLogStoreConformanceTests<IRequestLogStore>
{
    protected override ValueTask<IRequestLogStore> CreateStoreAsync(TimeProvider timeProvider) =>
        ValueTask.FromResult<IRequestLogStore>(new InMemoryRequestLogStore(10_000));

    [Fact]
    public async Task The_ring_keeps_only_the_newest_capacity_entries()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = new InMemoryRequestLogStore(5);
        var t0 = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
        for (var i = 0; i < 12; i++)
        {
            await store.AppendAsync([new RequestLogEntry { Id = $"r{i:D2}", Time = t0.AddSeconds(i), Operation = "chat_completion", Source = "sync", Status = 200 }], ct);
        }

        Assert.Equal(5, store.Count);
        var page = await store.QueryAsync(new RequestLogQuery(), ct);
        Assert.Equal(["r11", "r10", "r09", "r08", "r07"], page.Entries.Select(e => e.Id));
        Assert.Null(await store.GetAsync("r06", ct)); // overwritten, and gone from the index
        Assert.NotNull(await store.GetAsync("r07", ct));

        // After a prune by count the ring goes on overwriting the oldest.
        Assert.Equal(3, await store.PruneAsync(t0, 2, ct));
        await store.AppendAsync([new RequestLogEntry { Id = "r12", Time = t0.AddSeconds(12), Operation = "chat_completion", Source = "sync", Status = 200 }], ct);
        Assert.Equal(["r12", "r11", "r10"], (await store.QueryAsync(new RequestLogQuery(), ct)).Entries.Select(e => e.Id));
        Assert.Equal(3, store.Count);
    }

    [Fact]
    public async Task A_limit_out_of_range_is_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = new InMemoryRequestLogStore(10);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await store.QueryAsync(new RequestLogQuery { Limit = 0 }, ct));
        Assert.Throws<ArgumentOutOfRangeException>(() => RequestLogPage.Of(new RequestLogQuery { Limit = 0 }, []));
    }
}
