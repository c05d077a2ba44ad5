using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Bifrost.Middleware.Testing;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>The <see cref="Governance.IGovernanceStore"/> contract, against a real PostgreSQL server; every test gets an empty schema of its own.</summary>
public sealed class PostgreSqlGovernanceStoreConformanceTests : GovernanceStoreConformanceTests<PostgreSqlGovernanceStore>, IAsyncDisposable
{
    private readonly List<string> _schemas = [];
    private NpgsqlDataSource? _dataSource;

    protected override async ValueTask<PostgreSqlGovernanceStore> CreateStoreAsync(TimeProvider timeProvider)
    {
        _dataSource ??= PostgresTestDatabase.CreateDataSource();
        var schema = PostgresTestDatabase.NewSchema();
        _schemas.Add(schema);
        var store = new PostgreSqlGovernanceStore(_dataSource, schema, timeProvider);
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
