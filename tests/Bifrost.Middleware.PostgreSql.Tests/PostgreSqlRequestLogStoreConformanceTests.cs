using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Bifrost.Middleware.RequestLog;
using Bifrost.Middleware.Testing;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>The whole <see cref="IRequestLogStore"/> contract against a real PostgreSQL server; every test gets an empty schema of its own.</summary>
public sealed class PostgreSqlRequestLogStoreConformanceTests : RequestLogStoreConformanceTests<IRequestLogStore>, IAsyncDisposable
{
    private readonly List<string> _schemas = [];
    private NpgsqlDataSource? _dataSource;

    protected override async ValueTask<IRequestLogStore> CreateStoreAsync(TimeProvider timeProvider)
    {
        _dataSource ??= PostgresTestDatabase.CreateDataSource();
        var schema = PostgresTestDatabase.NewSchema();
        _schemas.Add(schema);
        var store = new PostgreSqlRequestLogStore(_dataSource, schema);
        await store.InitializeAsync(TestContext.Current.CancellationToken);
        return store;
    }

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is null)
        {
            return;
        }

        foreach (var schema in _schemas)
        {
            await PostgresTestDatabase.DropSchemaAsync(_dataSource, schema);
        }

        await _dataSource.DisposeAsync();
    }
}
