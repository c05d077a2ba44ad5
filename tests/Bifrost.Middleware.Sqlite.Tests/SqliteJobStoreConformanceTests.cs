using Bifrost.Middleware.Testing;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>The whole <see cref="IJobStore"/> contract against a fresh database file per test.</summary>
public sealed class SqliteJobStoreConformanceTests : JobStoreConformanceTests<SqliteJobStore>
{
    private readonly TempDirectory _directory = new("bifrost-sqlite-conformance");

    protected override ValueTask<SqliteJobStore> CreateStoreAsync(TimeProvider timeProvider) =>
        ValueTask.FromResult(new SqliteJobStore(Path.Combine(_directory.Path, "jobs.db"), timeProvider));

    protected override async ValueTask DisposeStoreAsync(SqliteJobStore store)
    {
        await store.DisposeAsync();
        _directory.Dispose();
    }
}
