using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Sqlite.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>What the SQLite store adds to the shared contract: registration, durability across reopen and restart, schema versioning, several stores (processes) on one file.</summary>
public sealed class SqliteJobStoreTests : IDisposable
{
    private readonly TempDirectory _directory = new("bifrost-sqlite");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string DatabasePath => Path.Combine(_directory.Path, "jobs.db");

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task UseSqliteJobStore_replaces_the_default_store_and_resolves_a_relative_path_against_the_content_root()
    {
        await using var host = await InProcessHost.StartAsync(_directory.Path, b => b.UseSqliteJobStore("App_Data/bifrost/jobs.db"));

        var store = Assert.IsType<SqliteJobStore>(host.Services.GetRequiredService<IJobStore>());
        Assert.Same(store, host.Services.GetRequiredService<SqliteJobStore>());
        Assert.Equal(Path.Combine(_directory.Path, "App_Data", "bifrost", "jobs.db"), store.DatabasePath);
        Assert.True(File.Exists(store.DatabasePath));
    }

    [Fact]
    public void A_later_AddBifrost_keeps_the_sqlite_store()
    {
        var services = new ServiceCollection();
        services.AddBifrost().UseSqliteJobStore(DatabasePath);
        services.AddBifrost(); // its in-memory default is a TryAdd: it must not win

        using var provider = services.BuildServiceProvider();
        var store = Assert.IsType<SqliteJobStore>(provider.GetRequiredService<IJobStore>());
        Assert.Equal(DatabasePath, store.DatabasePath);
        Assert.Single(services, d => d.ServiceType == typeof(IJobStore));
    }

    [Theory]
    [InlineData(":memory:")]
    [InlineData("Data Source=jobs;Mode=Memory;Cache=Shared")]
    [InlineData("Data Source=jobs.db;Mode=ReadOnly")]
    public void Databases_that_cannot_keep_jobs_are_refused(string connectionString)
    {
        var services = new ServiceCollection();
        Assert.Throws<ArgumentException>(() => services.AddBifrost().UseSqliteJobStore(connectionString));
        Assert.Throws<ArgumentException>(() => new SqliteJobStore(connectionString, TimeProvider.System));
    }

    [Fact]
    public async Task A_connection_string_works_like_a_path()
    {
        await using var store = new SqliteJobStore($"Data Source={DatabasePath};Default Timeout=5", TimeProvider.System);
        Assert.Equal(DatabasePath, store.DatabasePath);
        await store.EnqueueAsync(NewJob("a"), Ct);
        Assert.NotNull(await store.GetAsync("a", Ct));
    }

    [Fact]
    public async Task Reopening_the_file_keeps_every_job_byte_for_byte_and_the_schema_version()
    {
        var payload = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(); // a BLOB, not text
        await using (var store = new SqliteJobStore(DatabasePath, TimeProvider.System))
        {
            await store.EnqueueAsync(NewJob("pending", payload), Ct);
            await store.EnqueueAsync(NewJob("done"), Ct);
            var lease = await store.TryClaimAsync("w", TimeSpan.FromMinutes(1), Ct);
            Assert.Equal("pending", lease!.JobId);
            Assert.True(await store.ReleaseAsync(lease, DateTimeOffset.UtcNow.AddMinutes(1), countAttempt: true, Ct)); // backoff: "done" is claimed next, whatever the clock resolution
            var done = await store.TryClaimAsync("w", TimeSpan.FromMinutes(1), Ct);
            Assert.Equal("done", done!.JobId);
            Assert.True(await store.SaveProgressAsync(done, payload, Ct));
            Assert.True(await store.CompleteAsync(done, new JobOutcome(201, payload), Ct));
        }

        await using (var reopened = new SqliteJobStore(DatabasePath, TimeProvider.System))
        {
            var pending = await reopened.GetAsync("pending", Ct);
            Assert.Equal(JobStatus.Pending, pending!.Status);
            Assert.Equal(1, pending.Attempts);
            Assert.Equal(payload, pending.Payload.ToArray());
            var done = await reopened.GetAsync("done", Ct);
            Assert.Equal(JobStatus.Completed, done!.Status);
            Assert.Equal(201, done.StatusCode);
            Assert.Equal(payload, done.Result!.Value.ToArray());
            Assert.Equal(payload, done.Progress!.Value.ToArray());
            Assert.Equal(1, await reopened.CountUnfinishedAsync(Ct));
        }

        using var connection = new SqliteConnection($"Data Source={DatabasePath}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT group_concat(version) FROM bifrost_schema_version; PRAGMA journal_mode;";
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        Assert.Equal("1,2,3,4,5", reader.GetString(0)); // each migration recorded once although the file was opened twice
        Assert.True(reader.NextResult() && reader.Read());
        Assert.Equal("wal", reader.GetString(0));
    }

    [Fact]
    public async Task A_database_written_by_a_newer_schema_is_refused()
    {
        await using (new SqliteJobStore(DatabasePath, TimeProvider.System))
        {
        }

        using (var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "INSERT INTO bifrost_schema_version (version, applied_at, description) VALUES (99, 0, 'from the future');";
            command.ExecuteNonQuery();
        }

        var error = Assert.Throws<InvalidOperationException>(() => new SqliteJobStore(DatabasePath, TimeProvider.System));
        Assert.Contains("schema version 99", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_stores_on_one_file_like_two_processes_never_hand_out_the_same_job()
    {
        const int jobs = 300;
        await using var a = new SqliteJobStore(DatabasePath, TimeProvider.System);
        await using var b = new SqliteJobStore(DatabasePath, TimeProvider.System);
        var enqueue = Enumerable.Range(0, jobs).Select(i => (i % 2 == 0 ? a : b).EnqueueAsync(NewJob($"job-{i}"), Ct).AsTask());
        await Task.WhenAll(enqueue);

        var claimed = new ConcurrentBag<string>();
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(
            async () =>
            {
                var store = w % 2 == 0 ? a : b;
                while (await store.TryClaimAsync($"w{w}", TimeSpan.FromMinutes(1), Ct) is { } lease)
                {
                    claimed.Add(lease.JobId);
                    Assert.True(await store.CompleteAsync(lease, new JobOutcome(200, "{}"u8.ToArray()), Ct));
                }
            },
            Ct));
        await Task.WhenAll(workers);

        Assert.Equal(jobs, claimed.Count);
        Assert.Equal(jobs, claimed.Distinct().Count());
        Assert.Equal(0, await a.CountUnfinishedAsync(Ct));
    }

    [Fact]
    public async Task A_failed_write_in_a_group_commit_fails_only_its_caller()
    {
        // Many concurrent writes share commits; the duplicates among them fail alone, the rest are stored.
        await using var store = new SqliteJobStore(DatabasePath, TimeProvider.System);
        var attempts = Enumerable.Range(0, 200).Select(i => store.EnqueueAsync(NewJob($"job-{i % 150}"), Ct).AsTask()).ToList();
        try
        {
            await Task.WhenAll(attempts);
        }
        catch (InvalidOperationException)
        {
        }

        Assert.Equal(50, attempts.Count(t => t.IsFaulted && t.Exception!.InnerException is InvalidOperationException));
        Assert.Equal(150, attempts.Count(t => t.IsCompletedSuccessfully));
        Assert.Equal(150, await store.CountUnfinishedAsync(Ct));
        Assert.True(store.Writer.Grouped.Writes > 0, "no two writes shared a commit");

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.EnqueueAsync(NewJob("never"), cancelled.Token).AsTask());
        Assert.Null(await store.GetAsync("never", Ct));
    }

    [Fact]
    public async Task Async_jobs_survive_a_host_restart()
    {
        string finishedId;
        string queuedId;
        await using (var first = await InProcessHost.StartAsync(_directory.Path, b => b.UseSqliteJobStore(DatabasePath)))
        {
            finishedId = await SubmitAsync(first.Client, "kept across restarts");
            await WaitCompletedAsync(first.Client, finishedId);
        }

        // A job stored while no host runs (as another process would store it), picked up by the next start.
        queuedId = "job-stored-offline";
        await using (var offline = new SqliteJobStore(DatabasePath, TimeProvider.System))
        {
            await offline.EnqueueAsync(
                new NewJob
                {
                    Id = queuedId,
                    Kind = "chat_completion",
                    Owner = "anonymous", // the default owner of unauthenticated callers
                    Payload = "{\"model\":\"local/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"queued while nobody worked\"}]}"u8.ToArray(),
                    ResultTtl = TimeSpan.FromHours(1),
                },
                Ct);
        }

        await using var second = await InProcessHost.StartAsync(_directory.Path, b => b.UseSqliteJobStore(DatabasePath));
        Assert.Equal("kept across restarts", Content(await WaitCompletedAsync(second.Client, finishedId)));
        Assert.Equal("queued while nobody worked", Content(await WaitCompletedAsync(second.Client, queuedId)));
    }

    private static NewJob NewJob(string id, byte[]? payload = null) => new()
    {
        Id = id,
        Kind = "chat_completion",
        Owner = "owner",
        Payload = payload ?? "{}"u8.ToArray(),
        ResultTtl = TimeSpan.FromHours(1),
    };

    private static async Task<string> SubmitAsync(HttpClient client, string prompt)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StringContent($"{{\"model\":\"local/echo\",\"messages\":[{{\"role\":\"user\",\"content\":\"{prompt}\"}}]}}", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-bf-async", "true");
        using var response = await client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> WaitCompletedAsync(HttpClient client, string id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            using var response = await client.GetAsync(new Uri($"v1/async/chat/completions/{id}", UriKind.Relative), Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            using var json = JsonDocument.Parse(text);
            var completed = json.RootElement.GetProperty("status").GetString() == "completed";
            Assert.True(response.StatusCode == (completed ? HttpStatusCode.OK : HttpStatusCode.Accepted), text); // 202 until finished
            if (completed)
            {
                return json.RootElement.GetProperty("result").Clone();
            }

            Assert.True(DateTime.UtcNow < deadline, $"job {id} did not complete: {text}");
            await Task.Delay(50, Ct);
        }
    }

    private static string? Content(JsonElement result) =>
        result.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
}
