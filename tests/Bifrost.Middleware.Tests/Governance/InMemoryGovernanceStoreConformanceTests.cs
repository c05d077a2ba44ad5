using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Testing;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>The whole <see cref="IGovernanceStore"/> contract against the default in-memory store.</summary>
public sealed class InMemoryGovernanceStoreConformanceTests : GovernanceStoreConformanceTests<IGovernanceStore>
{
    protected override ValueTask<IGovernanceStore> CreateStoreAsync(TimeProvider timeProvider) =>
        ValueTask.FromResult<IGovernanceStore>(new InMemoryGovernanceStore(timeProvider));
}
