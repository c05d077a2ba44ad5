using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Races;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// The batch races (<see cref="BatchRaceScenario"/>) against the PostgreSQL job and file stores, and a cancel sent to
/// another instance, which reaches the running batch through the store's notification.
/// </summary>
public sealed class PostgreSqlBatchRaceTests : BatchRaceTestsBase, IAsyncDisposable
{
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private readonly List<WebApplication> _apps = [];

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        if (PostgresTestDatabase.ConnectionString is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_schema);
        }
    }

    private async Task<HttpClient> StartHostAsync(StartedLinesCounter counter, int concurrency = Concurrency, TimeSpan? pollInterval = null)
    {
        var connectionString = PostgresTestDatabase.Require();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "local";
            o.Providers["local"] = new ProviderOptions { Type = "local" };
            o.Batches.Concurrency = concurrency;
            o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(50);
            o.Jobs.PollInterval = pollInterval ?? TimeSpan.FromMilliseconds(50);
        })
            .UsePostgreSqlJobStore(o =>
            {
                o.ConnectionString = connectionString;
                o.Schema = _schema;
            })
            .AddPlugin(counter);
        var app = builder.Build();
        app.MapBifrost("/openai");
        _apps.Add(app);
        await app.StartAsync(TestContext.Current.CancellationToken);
        return app.GetTestClient();
    }

    /// <summary>One repetition fewer of the last stage than the other stores: each PostgreSQL run costs more.</summary>
    protected override double[] CancelStages => [0, 0.1, 0.5, 1, 1];

    protected override async Task RunAsync(StartedLinesCounter counter, Func<BatchRaceScenario, Task> test)
    {
        var client = await StartHostAsync(counter);
        await test(new BatchRaceScenario(client, counter, Concurrency));
    }

    [Fact]
    public async Task A_cancel_sent_to_another_instance_reaches_the_running_batch_through_the_store()
    {
        // A runs the batch; B starts after A claimed it, so only A runs it. The workers' own look at the store comes every
        // 10 s here, far longer than the whole batch takes: only B's notification can stop A in time.
        const int Lines = 300;
        const int Slots = 2;
        var counterA = new StartedLinesCounter();
        var clientA = await StartHostAsync(counterA, Slots, TimeSpan.FromSeconds(10));
        var scenario = new BatchRaceScenario(clientA, counterA, Slots);
        await scenario.CancelOnceAsync(Lines, 20, cancelVia: () => StartHostAsync(new StartedLinesCounter(), Slots, TimeSpan.FromSeconds(10)), lineDelayMs: 20, maxStartedAfterAck: 3 * Slots);
    }
}
