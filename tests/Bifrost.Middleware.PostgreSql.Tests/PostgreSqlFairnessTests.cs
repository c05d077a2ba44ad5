using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Shared;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// One caller cannot starve the others on the PostgreSQL store (see <see cref="StarvationScenario"/>), with one instance
/// and with two instances sharing the schema: the per-owner cap is counted in the store, across both.
/// </summary>
public sealed class PostgreSqlFairnessTests : IAsyncDisposable
{
    private readonly string _schema = PostgresTestDatabase.NewSchema();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_caller_with_more_slow_jobs_than_workers_does_not_hold_up_another_callers_job(int instances)
    {
        var connectionString = PostgresTestDatabase.Require();
        await StarvationScenario.RunAsync(
            b => b.UsePostgreSqlJobStore(o =>
            {
                o.ConnectionString = connectionString;
                o.Schema = _schema;
            }),
            instances);
    }

    public async ValueTask DisposeAsync()
    {
        if (PostgresTestDatabase.ConnectionString is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_schema);
        }
    }
}
