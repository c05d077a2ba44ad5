using Bifrost.Middleware.Testing;

namespace Bifrost.Middleware.Tests.Jobs;

public sealed class InMemoryJobStoreConformanceTests : JobStoreConformanceTests<InMemoryJobStore>
{
    protected override ValueTask<InMemoryJobStore> CreateStoreAsync(TimeProvider timeProvider) => ValueTask.FromResult(new InMemoryJobStore(timeProvider));
}
