using Bifrost.Middleware.Governance;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary><c>UsePostgreSqlGovernanceStore</c>: both governance stores replaced, the schema migrated at start, one pool shared with the job store on the same database and schema.</summary>
public sealed class PostgreSqlGovernanceRegistrationTests : IAsyncDisposable
{
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private WebApplication? _app;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        if (PostgresTestDatabase.ConnectionString is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_schema);
        }
    }

    private async Task<IServiceProvider> StartAsync(Action<IBifrostBuilder> configure)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        configure(builder.Services.AddBifrost(o => o.Providers["local"] = new ProviderOptions { Type = "local" }));
        _app = builder.Build();
        await _app.StartAsync(Ct);
        return _app.Services;
    }

    [Fact]
    public async Task Registers_both_stores_migrates_at_start_and_shares_the_job_stores_pool_on_the_same_schema()
    {
        var connectionString = PostgresTestDatabase.Require();
        var services = await StartAsync(b => b
            .UsePostgreSqlJobStore(o => { o.ConnectionString = connectionString; o.Schema = _schema; })
            .UsePostgreSqlGovernanceStore(o => { o.ConnectionString = connectionString; o.Schema = _schema; }));

        var store = Assert.IsType<PostgreSqlGovernanceStore>(services.GetRequiredService<IGovernanceStore>());
        var counters = Assert.IsType<PostgreSqlGovernanceCounterStore>(services.GetRequiredService<IGovernanceCounterStore>());
        Assert.Equal(_schema, store.Schema);
        Assert.Equal(_schema, counters.Schema);
        Assert.Same(services.GetRequiredService<PostgreSqlStoreResources>().DataSource, services.GetRequiredService<PostgreSqlGovernanceResources>().DataSource);

        // migrated by the host's start: the tables are there before any call of the store
        await using var dataSource = PostgresTestDatabase.CreateDataSource();
        await using var command = dataSource.CreateCommand($"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{_schema}' AND table_name LIKE 'gov_%'");
        Assert.Equal(4L, await command.ExecuteScalarAsync(Ct));
        Assert.Equal(0, await store.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task Alone_or_on_another_schema_it_has_a_pool_of_its_own()
    {
        var connectionString = PostgresTestDatabase.Require();
        var services = await StartAsync(b => b.UsePostgreSqlGovernanceStore(o => { o.ConnectionString = connectionString; o.Schema = _schema; }));
        Assert.IsType<PostgreSqlGovernanceStore>(services.GetRequiredService<IGovernanceStore>());
        Assert.Null(services.GetService<PostgreSqlStoreResources>());
        Assert.NotNull(services.GetRequiredService<PostgreSqlGovernanceResources>().DataSource);
    }

    [Fact]
    public void Bad_options_are_refused_when_registering()
    {
        var builder = new ServiceCollection().AddBifrost();
        Assert.Throws<ArgumentException>(() => builder.UsePostgreSqlGovernanceStore(" "));
        Assert.Throws<ArgumentException>(() => builder.UsePostgreSqlGovernanceStore(o => { o.ConnectionString = "Host=x"; o.Schema = "Bad-Schema"; }));
    }
}
