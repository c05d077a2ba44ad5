using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Sqlite.Tests;
using Bifrost.Middleware.Sqlite.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Bifrost.Middleware.Sqlite.Benchmarks;

/// <summary>
/// Two small measurements (figures and commands: bench/README.md), each a command of this program:
/// <c>dotnet run -c Release --project bench/Bifrost.Middleware.Sqlite.Benchmarks -- stores</c> (async submits/s through
/// TestServer, the jobs/s the workers complete, and batch lines/s, in-memory vs SQLite: default durability, plus FULL and
/// NORMAL everywhere for comparison) and <c>-- writers</c> (the store's statements on raw connections, one writer vs a
/// connection per operation).
/// </summary>
internal static class StoreBenchmarks
{
    private const int SubmitConcurrency = 16;

    /// <summary>
    /// Smoke mode (<c>--smoke</c>, run by CI so the benchmark cannot rot): tiny sizes, each store once, figures meaningless.
    /// </summary>
    public static bool Smoke { get; set; }

    private static int Submits => Smoke ? 200 : 5000;

    private static int BatchLines => Smoke ? 500 : 20000;

    private static CancellationToken Ct => CancellationToken.None;

    /// <summary>Async submits/s and batch lines/s, in-memory vs SQLite (the <c>stores</c> command).</summary>
    public static async Task StoresAsync()
    {
        var stores = new (string Name, SqliteDurability? Durability, SqliteWriterMode Mode)[]
        {
            ("in-memory", null, default),
            ("sqlite: default (group commit; FULL for accepts)", SqliteDurability.Acknowledged, SqliteWriterMode.GroupCommit),
            ("sqlite: semaphore writer, FULL for accepts", SqliteDurability.Acknowledged, SqliteWriterMode.Semaphore),
            ("sqlite: group commit, FULL everywhere", SqliteDurability.Full, SqliteWriterMode.GroupCommit),
            ("sqlite: group commit, NORMAL everywhere", SqliteDurability.Normal, SqliteWriterMode.GroupCommit),
        };
        var report = new StringBuilder();
        var runs = 0;
        report.AppendLine(CultureInfo.InvariantCulture, $"{Environment.ProcessorCount} cores, {Submits} submits x {SubmitConcurrency} concurrent, batch of {BatchLines} lines (Batches:Concurrency 16, local/echo, no delay)");
        // The first pass (in-memory, not reported) only warms the JIT up; then each store twice, in rounds.
        foreach (var (name, durability, writerMode) in Smoke ? stores : stores.Take(1).Concat(stores).Concat(stores))
        {
            using var directory = new TempDirectory("bifrost-bench");
            await using var host = await InProcessHost.StartAsync(
                directory.Path,
                builder =>
                {
                    if (durability is { } mode)
                    {
                        var path = Path.Combine(directory.Path, "jobs.db");
                        builder.Services.RemoveAll<IJobStore>();
                        builder.Services.AddSingleton<IJobStore>(_ => new SqliteJobStore(path, TimeProvider.System, null, mode, writerMode));
                    }
                },
                options =>
                {
                    options.Batches.Concurrency = 16;
                    options.Jobs.PollInterval = TimeSpan.FromMilliseconds(100);
                    options.Jobs.MaxQueuedJobs = Math.Max(options.Jobs.MaxQueuedJobs, Submits * 2);
                    options.Jobs.MaxQueuedJobsPerOwner = Math.Max(options.Jobs.MaxQueuedJobsPerOwner, Submits * 2); // one caller submits them all
                });
            var store = host.Services.GetRequiredService<IJobStore>();

            await SubmitManyAsync(host.Client, 100); // warm-up
            await WaitDrainedAsync(store);
            await WaitBatchCompletedAsync(host.Client, await CreateBatchAsync(host.Client, await UploadAsync(host.Client, 200)), 200);

            var clock = Stopwatch.StartNew();
            await SubmitManyAsync(host.Client, Submits);
            var submitted = clock.Elapsed;
            await WaitDrainedAsync(store);
            var drained = clock.Elapsed;

            var fileId = await UploadAsync(host.Client, BatchLines);
            clock.Restart();
            var batchId = await CreateBatchAsync(host.Client, fileId);
            await WaitBatchCompletedAsync(host.Client, batchId, BatchLines);
            var batch = clock.Elapsed;

            if (++runs == 1)
            {
                continue;
            }

            report.AppendLine(CultureInfo.InvariantCulture,
                $"{name,-50} submits/s {Submits / submitted.TotalSeconds,7:F0}   jobs completed/s {Submits / drained.TotalSeconds,7:F0}   batch lines/s {BatchLines / batch.TotalSeconds,7:F0}");
        }

        Console.WriteLine(report.ToString());
        await File.WriteAllTextAsync(Path.Combine(Path.GetTempPath(), "bifrost-sqlite-bench.txt"), report.ToString(), Ct);
    }

    /// <summary>
    /// Why the store has one writer connection: the store's own claim/complete statements, 8 producers enqueueing and 8
    /// workers claiming and completing, with (a) one connection behind a SemaphoreSlim and (b) a pooled connection per
    /// operation that relies on SQLite's busy timeout, under synchronous NORMAL and FULL.
    /// </summary>
    public static async Task WritersAsync()
    {
        var jobs = Smoke ? 200 : 4000;
        const string schema =
            "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, status INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 0, ready_at INTEGER NOT NULL, lease_expires_at INTEGER, payload BLOB, result BLOB);" +
            "CREATE INDEX ix_ready ON jobs(ready_at, seq) WHERE status = 0; CREATE INDEX ix_lease ON jobs(lease_expires_at, seq) WHERE status = 1;";
        const string insert = "INSERT INTO jobs (id, status, ready_at, payload) VALUES ($id, 0, 1, $p);";
        const string claim = "UPDATE jobs SET status = 1, version = version + 1, lease_expires_at = 30001 WHERE seq = COALESCE((SELECT seq FROM jobs WHERE status = 1 AND lease_expires_at <= 1 ORDER BY lease_expires_at, seq LIMIT 1), (SELECT seq FROM jobs WHERE status = 0 AND ready_at <= 1 ORDER BY ready_at, seq LIMIT 1)) RETURNING id, version;";
        const string complete = "UPDATE jobs SET status = 2, result = $p WHERE id = $id AND version = $v AND status = 1 AND lease_expires_at > 1;";
        var payload = new byte[400];
        var report = new StringBuilder();
        foreach (var synchronous in new[] { "NORMAL", "FULL" })
        {
            foreach (var single in new[] { true, false })
            {
                using var directory = new TempDirectory("bifrost-writers");
                var connectionString = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = Path.Combine(directory.Path, "w.db"), Pooling = !single }.ToString();
                using (var setup = new Microsoft.Data.Sqlite.SqliteConnection(connectionString))
                {
                    setup.Open();
                    Execute(setup, "PRAGMA journal_mode = WAL;" + schema);
                }

                using var gate = new SemaphoreSlim(1, 1);
                using var shared = single ? new Microsoft.Data.Sqlite.SqliteConnection(connectionString) : null;
                shared?.Open();
                if (shared is not null)
                {
                    Execute(shared, $"PRAGMA busy_timeout = 30000; PRAGMA synchronous = {synchronous};");
                }

                async Task<T> WriteAsync<T>(Func<Microsoft.Data.Sqlite.SqliteConnection, T> write)
                {
                    if (shared is not null)
                    {
                        await gate.WaitAsync(Ct);
                        try
                        {
                            return write(shared);
                        }
                        finally
                        {
                            gate.Release();
                        }
                    }

                    using var connection = new Microsoft.Data.Sqlite.SqliteConnection(connectionString);
                    connection.Open();
                    Execute(connection, $"PRAGMA busy_timeout = 30000; PRAGMA synchronous = {synchronous};");
                    return write(connection);
                }

                var enqueued = 0;
                var completed = 0;
                var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
                var clock = Stopwatch.StartNew();
                var producers = Enumerable.Range(0, 8).Select(_ => Task.Run(
                    async () =>
                    {
                        int i;
                        while ((i = Interlocked.Increment(ref enqueued)) <= jobs)
                        {
                            var start = Stopwatch.GetTimestamp();
                            await WriteAsync(c =>
                            {
                                using var command = c.CreateCommand();
                                command.CommandText = insert;
                                command.Parameters.AddWithValue("$id", $"job-{i}");
                                command.Parameters.AddWithValue("$p", payload);
                                return command.ExecuteNonQuery();
                            });
                            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                        }
                    },
                    Ct));
                var workers = Enumerable.Range(0, 8).Select(_ => Task.Run(
                    async () =>
                    {
                        while (Volatile.Read(ref completed) < jobs)
                        {
                            var job = await WriteAsync(c =>
                            {
                                using var command = c.CreateCommand();
                                command.CommandText = claim;
                                using var reader = command.ExecuteReader();
                                return reader.Read() ? (reader.GetString(0), reader.GetInt64(1)) : ((string Id, long Version)?)null;
                            });
                            if (job is not { } claimed)
                            {
                                await Task.Delay(1, Ct);
                                continue;
                            }

                            await WriteAsync(c =>
                            {
                                using var command = c.CreateCommand();
                                command.CommandText = complete;
                                command.Parameters.AddWithValue("$id", claimed.Item1);
                                command.Parameters.AddWithValue("$v", claimed.Item2);
                                command.Parameters.AddWithValue("$p", payload);
                                return command.ExecuteNonQuery();
                            });
                            Interlocked.Increment(ref completed);
                        }
                    },
                    Ct));
                await Task.WhenAll(producers.Concat(workers));
                var seconds = clock.Elapsed.TotalSeconds;
                var sorted = latencies.Order().ToArray();
                report.AppendLine(CultureInfo.InvariantCulture,
                    $"synchronous={synchronous,-6} {(single ? "one writer + semaphore" : "connection per operation"),-25} {jobs / seconds,6:F0} jobs/s (enqueue+claim+complete), enqueue p50 {sorted[sorted.Length / 2],6:F2} ms, p99 {sorted[(int)(sorted.Length * 0.99)],7:F2} ms");
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            }
        }

        Console.WriteLine(report.ToString());
    }

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new InvalidOperationException(message);
        }
    }

    private static void Execute(Microsoft.Data.Sqlite.SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static async Task SubmitManyAsync(HttpClient client, int count)
    {
        var next = 0;
        var senders = Enumerable.Range(0, SubmitConcurrency).Select(_ => Task.Run(
            async () =>
            {
                while (Interlocked.Increment(ref next) <= count)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
                    {
                        Content = new StringContent("{\"model\":\"local/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"bench\"}]}", Encoding.UTF8, "application/json"),
                    };
                    request.Headers.Add("x-bf-async", "true");
                    using var response = await client.SendAsync(request, Ct);
                    Check(response.StatusCode == HttpStatusCode.OK, $"submit answered {response.StatusCode}");
                }
            },
            Ct));
        await Task.WhenAll(senders);
    }

    private static async Task WaitDrainedAsync(IJobStore store)
    {
        var deadline = Stopwatch.StartNew();
        while (await store.CountUnfinishedAsync(Ct) > 0)
        {
            Check(deadline.Elapsed < TimeSpan.FromMinutes(3), "jobs did not drain");
            await Task.Delay(5, Ct);
        }
    }

    private static async Task<string> UploadAsync(HttpClient client, int lines)
    {
        var input = new StringBuilder();
        for (var i = 0; i < lines; i++)
        {
            input.Append(CultureInfo.InvariantCulture, $"{{\"custom_id\":\"l{i}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"local/echo\",\"messages\":[{{\"role\":\"user\",\"content\":\"line {i}\"}}]}}}}\n");
        }

        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" } };
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(input.ToString()));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
        form.Add(file, "file", "bench.jsonl");
        using var response = await client.PostAsync(new Uri("v1/files", UriKind.Relative), form, Ct);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        return json.RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<string> CreateBatchAsync(HttpClient client, string fileId)
    {
        using var content = new StringContent($"{{\"input_file_id\":\"{fileId}\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}}", Encoding.UTF8, "application/json");
        using var response = await client.PostAsync(new Uri("v1/batches", UriKind.Relative), content, Ct);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        return json.RootElement.GetProperty("id").GetString()!;
    }

    private static async Task WaitBatchCompletedAsync(HttpClient client, string batchId, int lines)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            using var response = await client.GetAsync(new Uri($"v1/batches/{batchId}", UriKind.Relative), Ct);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
            var status = json.RootElement.GetProperty("status").GetString();
            if (status == "completed")
            {
                var completed = json.RootElement.GetProperty("request_counts").GetProperty("completed").GetInt32();
                Check(completed == lines, $"batch completed {completed} of {lines} lines");
                return;
            }

            Check(status is "validating" or "in_progress" or "finalizing", $"batch {status}");
            Check(deadline.Elapsed < TimeSpan.FromMinutes(3), "batch did not complete");
            await Task.Delay(20, Ct);
        }
    }
}
