using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Testing;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>The whole <see cref="IGovernanceStore"/> contract against a fresh SQLite database file per test.</summary>
public sealed class SqliteGovernanceStoreConformanceTests : GovernanceStoreConformanceTests<IGovernanceStore>
{
    private readonly TempDirectory _directory = new("bifrost-sqlite-governance-conformance");

    protected override ValueTask<IGovernanceStore> CreateStoreAsync(TimeProvider timeProvider) =>
        ValueTask.FromResult<IGovernanceStore>(new SqliteGovernanceStore(Path.Combine(_directory.Path, "governance.db"), timeProvider));

    protected override async ValueTask DisposeStoreAsync(IGovernanceStore store)
    {
        await ((SqliteGovernanceStore)store).DisposeAsync();
        _directory.Dispose();
    }
}
