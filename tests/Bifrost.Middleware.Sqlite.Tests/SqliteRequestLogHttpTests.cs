using Bifrost.Middleware.RequestLog;
using Bifrost.Middleware.Sqlite.Tests.Infrastructure;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>With <c>UseSqliteRequestLog</c>, calls through HTTP land in the SQLite request log and survive a restart of the host.</summary>
public sealed class SqliteRequestLogHttpTests : IDisposable
{
    private readonly TempDirectory _directory = new("bifrost-sqlite-request-log-http");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Calls_are_in_the_sqlite_request_log_after_a_restart()
    {
        const int calls = 7;
        await using (var host = await InProcessHost.StartAsync(_directory.Path, b => b.UseSqliteRequestLog("App_Data/requests.db")))
        {
            Assert.IsType<SqliteRequestLogStore>(host.Services.GetRequiredService<IRequestLogStore>());
            for (var i = 0; i < calls; i++)
            {
                using var response = await host.Client.PostAsync(
                    "v1/chat/completions",
                    JsonContent.Create(new { model = "local/echo", stream = i % 2 == 1, messages = new[] { new { role = "user", content = $"call {i}" } } }),
                    Ct);
                Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Ct));
                await response.Content.ReadAsStringAsync(Ct);
            }

            await host.Services.GetRequiredService<IBifrostRequestLog>().FlushAsync(Ct);
        }

        Assert.True(File.Exists(Path.Combine(_directory.Path, "App_Data", "requests.db")));
        await using var restarted = await InProcessHost.StartAsync(_directory.Path, b => b.UseSqliteRequestLog("App_Data/requests.db"));
        var page = await restarted.Services.GetRequiredService<IBifrostRequestLog>().QueryAsync(new RequestLogQuery { Provider = "local" }, Ct);
        Assert.Equal(calls, page.Entries.Count);
        Assert.Equal(4, page.Entries.Count(e => e.Source == "sync"));
        Assert.Equal(3, page.Entries.Count(e => e.Source == "stream" && e.TimeToFirstChunkMs is not null));
        Assert.All(page.Entries, e =>
        {
            Assert.Equal(200, e.Status);
            Assert.Equal("echo", e.Model);
            Assert.Equal("anonymous", e.Owner);
        });
    }
}
