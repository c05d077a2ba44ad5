using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Testing;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>The whole <see cref="IGovernanceStore"/> contract against the default in-memory store.</summary>
public sealed class InMemoryGovernanceStoreConformanceTests : GovernanceStoreConformanceTests<IGovernanceStore>
{
    protected override ValueTask<IGovernanceStore> CreateStoreAsync(TimeProvider timeProvider) =>
        ValueTask.FromResult<IGovernanceStore>(new InMemoryGovernanceStore(timeProvider));

    [Fact]
    public async Task Records_of_the_same_time_list_the_last_appended_first()
    {
        var time = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var store = new InMemoryGovernanceStore(TimeProvider.System);
        await store.AppendUsageAsync([.. Enumerable.Range(0, 3).Select(i => Record(time, $"r{i}"))], TestContext.Current.CancellationToken);
        await store.AppendUsageAsync([Record(time, "r3"), Record(time - TimeSpan.FromSeconds(1), "older")], TestContext.Current.CancellationToken);

        var listed = await store.ListUsageAsync(new UsageQuery(), TestContext.Current.CancellationToken);
        Assert.Equal(["r3", "r2", "r1", "r0", "older"], listed.Select(r => r.RequestId));
    }

    private static UsageRecord Record(DateTimeOffset time, string id) =>
        new() { Time = time, RequestId = id, Provider = "local", Model = "echo", Operation = "chat_completion", Source = "sync" };
}
