using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Bifrost.Middleware.RequestLog;
using Microsoft.AspNetCore.TestHost;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>
/// The PostgreSQL request log beyond the contract: two store instances (two pools, as two app instances) on one schema,
/// the migration from a version-4 schema, and <c>UsePostgreSqlRequestLog</c> in a gateway (a chat call listed by the admin API).
/// </summary>
public sealed class PostgreSqlRequestLogTests : IAsyncDisposable
{
    private const string Admin = "/bifrost/admin";
    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private readonly List<NpgsqlDataSource> _dataSources = [];
    private WebApplication? _app;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        foreach (var dataSource in _dataSources)
        {
            await dataSource.DisposeAsync();
        }

        if (PostgresTestDatabase.ConnectionString is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_schema);
        }
    }

    private NpgsqlDataSource NewDataSource()
    {
        var dataSource = PostgresTestDatabase.CreateDataSource();
        _dataSources.Add(dataSource);
        return dataSource;
    }

    private static RequestLogEntry Entry(string id, DateTimeOffset time, string provider = "openai") => new()
    {
        Id = id,
        Time = time,
        Operation = "chat_completion",
        Source = "sync",
        Provider = provider,
        Model = "gpt-4o-mini",
        Status = 200,
        LatencyMs = 5,
    };

    private static async Task<List<RequestLogEntry>> ListAllAsync(PostgreSqlRequestLogStore store, RequestLogQuery query)
    {
        var all = new List<RequestLogEntry>();
        RequestLogQuery? next = query;
        while (next is not null)
        {
            var page = await store.QueryAsync(next, Ct);
            all.AddRange(page.Entries);
            next = page.Next;
        }

        return all;
    }

    [Fact]
    public async Task Two_instances_on_one_schema_see_each_others_entries_and_keep_ids_unique()
    {
        PostgresTestDatabase.Require();
        var a = new PostgreSqlRequestLogStore(NewDataSource(), _schema);
        var b = new PostgreSqlRequestLogStore(NewDataSource(), _schema);
        await Task.WhenAll(a.InitializeAsync(Ct), b.InitializeAsync(Ct)); // both migrate at once: one applies, the other waits

        // 2 x 300 entries written concurrently in batches of 50, interleaved in time, plus one id written by both
        await Task.WhenAll(
            Task.Run(async () =>
            {
                for (var batch = 0; batch < 6; batch++)
                {
                    await a.AppendAsync([.. Enumerable.Range(0, 50).Select(i => Entry($"a-{batch}-{i:D2}", T0.AddMilliseconds((batch * 100) + (i * 2)), "openai"))], Ct);
                }
            }, Ct),
            Task.Run(async () =>
            {
                for (var batch = 0; batch < 6; batch++)
                {
                    await b.AppendAsync([.. Enumerable.Range(0, 50).Select(i => Entry($"b-{batch}-{i:D2}", T0.AddMilliseconds((batch * 100) + (i * 2) + 1), "anthropic"))], Ct);
                }
            }, Ct));
        await a.AppendAsync([Entry("shared", T0.AddHours(1), "openai")], Ct);
        await b.AppendAsync([Entry("shared", T0.AddHours(1), "anthropic"), Entry("b-last", T0.AddHours(2), "anthropic")], Ct);

        var fromA = await ListAllAsync(a, new RequestLogQuery { Limit = 64 });
        var fromB = await ListAllAsync(b, new RequestLogQuery { Limit = 1000 });
        Assert.Equal(602, fromA.Count);
        Assert.Equal(fromA.Select(e => e.Id), fromB.Select(e => e.Id));
        Assert.Equal(602, fromA.Select(e => e.Id).Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(["b-last", "shared", "b-5-49", "a-5-49"], fromA.Take(4).Select(e => e.Id));

        // the id written by both is stored once: the first write wins, the second is skipped (not an error)
        Assert.Equal("openai", (await b.GetAsync("shared", Ct))!.Provider);
        Assert.Equal(301, (await ListAllAsync(a, new RequestLogQuery { Provider = "ANTHROPIC", Limit = 1000 })).Count);
        Assert.Equal(301, (await ListAllAsync(b, new RequestLogQuery { Provider = "openai", Limit = 1000 })).Count);
        Assert.NotNull(await a.GetAsync("b-3-17", Ct));
        Assert.NotNull(await b.GetAsync("a-3-17", Ct));

        // retention from either instance bounds the shared table: the newest 100 of both are kept
        Assert.Equal(502, await b.PruneAsync(T0.AddDays(-1), 100, Ct));
        Assert.Equal(fromA.Take(100).Select(e => e.Id), (await ListAllAsync(a, new RequestLogQuery { Limit = 1000 })).Select(e => e.Id));
        Assert.Equal(0, await a.PruneAsync(T0.AddDays(-1), 100, Ct));
    }

    [Fact]
    public async Task A_version_4_schema_is_migrated_to_5_and_keeps_its_jobs()
    {
        PostgresTestDatabase.Require();
        var dataSource = NewDataSource();

        // a schema as version 4 left it (jobs, files, governance), with a job in it: the later migrations undone
        var jobs = new PostgreSqlJobStore(dataSource, _schema, TimeProvider.System);
        await jobs.InitializeAsync(Ct);
        var job = await jobs.EnqueueAsync(new NewJob { Id = "job-v4", Kind = "chat_completion", Owner = "user:a", Payload = "{}"u8.ToArray(), ResultTtl = TimeSpan.FromMinutes(5) }, Ct);
        await using (var downgrade = dataSource.CreateCommand($"DROP TABLE \"{_schema}\".request_log; DROP INDEX \"{_schema}\".jobs_seq; DROP INDEX \"{_schema}\".jobs_owner_ready; DELETE FROM \"{_schema}\".bifrost_migrations WHERE version >= 5"))
        {
            await downgrade.ExecuteNonQueryAsync(Ct);
        }

        Assert.Equal(4, await MaxVersionAsync(dataSource));

        var store = new PostgreSqlRequestLogStore(dataSource, _schema);
        await store.InitializeAsync(Ct);
        Assert.Equal(PostgreSqlSchema.LatestVersion, await MaxVersionAsync(dataSource));
        Assert.True(PostgreSqlSchema.LatestVersion >= 5);
        await using (var described = dataSource.CreateCommand($"SELECT description FROM \"{_schema}\".bifrost_migrations WHERE version = 5"))
        {
            Assert.Equal("request log", await described.ExecuteScalarAsync(Ct));
        }

        await store.AppendAsync([Entry("after-migration", T0)], Ct);
        Assert.Equal("after-migration", (await store.GetAsync("after-migration", Ct))?.Id);
        Assert.Equal(job.Id, (await jobs.GetAsync(job.Id, Ct))?.Id);

        // the indexes serving the listing and the filters are there
        await using var indexes = dataSource.CreateCommand($"SELECT count(*) FROM pg_indexes WHERE schemaname = '{_schema}' AND tablename = 'request_log'");
        Assert.Equal(8L, await indexes.ExecuteScalarAsync(Ct)); // primary key, time, provider, model, status, owner, key, batch
    }

    private async Task<int> MaxVersionAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand($"SELECT max(version) FROM \"{_schema}\".bifrost_migrations");
        return (int)(await command.ExecuteScalarAsync(Ct))!;
    }

    [Fact]
    public async Task A_gateway_with_UsePostgreSqlRequestLog_lists_its_chat_calls_in_the_admin_api()
    {
        var connectionString = PostgresTestDatabase.Require();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "local";
            o.Providers["local"] = new ProviderOptions { Type = "local" };
        })
            .UsePostgreSqlJobStore(o => { o.ConnectionString = connectionString; o.Schema = _schema; o.Listen = false; })
            .UsePostgreSqlRequestLog(o => { o.ConnectionString = connectionString; o.Schema = _schema; });
        _app = builder.Build();
        _app.MapBifrost("/openai");
        _app.MapBifrostAdmin(Admin);
        await _app.StartAsync(Ct);
        var services = _app.Services;
        var store = Assert.IsType<PostgreSqlRequestLogStore>(services.GetRequiredService<IRequestLogStore>());
        Assert.Equal(_schema, store.Schema);
        Assert.Same(services.GetRequiredService<PostgreSqlStoreResources>().DataSource, services.GetRequiredService<PostgreSqlRequestLogResources>().DataSource);

        var client = _app.GetTestClient();
        for (var i = 0; i < 3; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions")
            {
                Content = new StringContent($$"""{"model":"local/echo","stream":{{(i == 2 ? "true" : "false")}},"messages":[{"role":"user","content":"call {{i}}"}]}""", Encoding.UTF8, "application/json"),
            };
            using var response = await client.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await response.Content.ReadAsStringAsync(Ct);
        }

        await services.GetRequiredService<IBifrostRequestLog>().FlushAsync(Ct);

        using var list = await client.GetAsync($"{Admin}/requests?provider=local&limit=2", Ct);
        var body = await list.Content.ReadAsStringAsync(Ct);
        Assert.True(list.StatusCode == HttpStatusCode.OK, body);
        var page = JsonDocument.Parse(body).RootElement;
        Assert.Equal("list", page.GetProperty("object").GetString());
        Assert.True(page.GetProperty("has_more").GetBoolean());
        var data = page.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        var newest = data[0];
        Assert.Equal("stream", newest.GetProperty("source").GetString());
        Assert.Equal("local", newest.GetProperty("provider").GetString());
        Assert.Equal("echo", newest.GetProperty("model").GetString());
        Assert.Equal(200, newest.GetProperty("status").GetInt32());
        Assert.Equal("chat_completion_stream", newest.GetProperty("operation").GetString());
        Assert.Equal(JsonValueKind.Null, newest.GetProperty("request_content").ValueKind); // content not captured by default

        using var rest = await client.GetAsync($"{Admin}/requests?provider=local&limit=2&cursor=" + Uri.EscapeDataString(page.GetProperty("next_cursor").GetString()!), Ct);
        var restPage = JsonDocument.Parse(await rest.Content.ReadAsStringAsync(Ct)).RootElement;
        Assert.Equal(1, restPage.GetProperty("data").GetArrayLength());
        Assert.False(restPage.GetProperty("has_more").GetBoolean());
        Assert.Equal("sync", restPage.GetProperty("data")[0].GetProperty("source").GetString());

        var id = newest.GetProperty("id").GetString();
        using var one = await client.GetAsync($"{Admin}/requests/{id}", Ct);
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal(id, JsonDocument.Parse(await one.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("id").GetString());

        // the rows are in the shared table, where another instance on this schema reads them
        await using var dataSource = NewDataSource();
        await using var count = dataSource.CreateCommand($"SELECT count(*) FROM \"{_schema}\".request_log WHERE provider = 'local'");
        Assert.Equal(3L, await count.ExecuteScalarAsync(Ct));
    }

    [Fact]
    public async Task With_CaptureContent_the_content_columns_are_filled()
    {
        var connectionString = PostgresTestDatabase.Require();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "local";
            o.Providers["local"] = new ProviderOptions { Type = "local" };
            o.RequestLog.CaptureContent = true;
        }).UsePostgreSqlRequestLog(o => { o.ConnectionString = connectionString; o.Schema = _schema; });
        _app = builder.Build();
        _app.MapBifrost("/openai");
        await _app.StartAsync(Ct);

        using (var response = await _app.GetTestClient().PostAsync(
            "/openai/v1/chat/completions",
            new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"captured words"}]}""", Encoding.UTF8, "application/json"),
            Ct))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await _app.Services.GetRequiredService<IBifrostRequestLog>().FlushAsync(Ct);
        await using var dataSource = NewDataSource();
        await using var command = dataSource.CreateCommand($"SELECT request_content, response_content FROM \"{_schema}\".request_log");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        Assert.Contains("captured words", reader.GetString(0), StringComparison.Ordinal);
        Assert.Contains("chat.completion", reader.GetString(1), StringComparison.Ordinal);
        Assert.False(await reader.ReadAsync(Ct));
    }

    [Fact]
    public void Bad_options_are_refused_when_registering()
    {
        var builder = new ServiceCollection().AddBifrost();
        Assert.Throws<ArgumentException>(() => builder.UsePostgreSqlRequestLog(" "));
        Assert.Throws<ArgumentException>(() => builder.UsePostgreSqlRequestLog(o => { o.ConnectionString = "Host=x"; o.Schema = "Bad-Schema"; }));
    }
}
