using Bifrost.Middleware.RequestLog;
using Bifrost.Middleware.Testing;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>The whole <see cref="IRequestLogStore"/> contract against a fresh SQLite database file per test.</summary>
public sealed class SqliteRequestLogStoreConformanceTests : RequestLogStoreConformanceTests<IRequestLogStore>
{
    private readonly TempDirectory _directory = new("bifrost-sqlite-request-log-conformance");

    protected override ValueTask<IRequestLogStore> CreateStoreAsync(TimeProvider timeProvider) =>
        ValueTask.FromResult<IRequestLogStore>(new SqliteRequestLogStore(Path.Combine(_directory.Path, "requests.db"), timeProvider));

    protected override async ValueTask DisposeStoreAsync(IRequestLogStore store)
    {
        await ((SqliteRequestLogStore)store).DisposeAsync();
        _directory.Dispose();
    }
}
