using Bifrost.Middleware.Testing;

namespace Bifrost.Middleware.Tests.Jobs;

public sealed class InMemoryJobStoreConformanceTests : JobStoreConformanceTests<InMemoryJobStore>
{
    protected override Task<InMemoryJobStore> CreateStoreAsync(TimeProvider timeProvider) => Task.FromResult(new InMemoryJobStore(timeProvider));
}
