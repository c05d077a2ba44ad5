// Job store throughput, end to end over HTTP on loopback: an in-process Kestrel host with the gateway (local provider,
// instant echo) on each store in turn.
//   async submits/s: POST chat/completions with x-bf-async: true from --concurrency clients (accepted = stored)
//   async jobs/s:    from the first submit until the store holds no unfinished job (all run and stored)
//   batch lines/s:   a batch of --lines lines, from its creation until it reads completed
//   CPU/job, CPU/line: CPU time of this process (app: the gateway, its workers and the load generator) and of every
//                    process named postgres on the machine (pg), over the submits and runs, and over the batch, per job
//                    or line: the cost, which other load on the machine changes far less than the rates (Linux only)
// Usage: dotnet run -c Release --project bench/Bifrost.Middleware.PostgreSql.Benchmarks -- [--postgres <conn>] [--submits 5000]
//        [--lines 5000] [--concurrency 32] [--rounds 3] [--workers N (Jobs:Workers; default the library's)]   (--postgres defaults to $BIFROST_TEST_POSTGRES; without it only in-memory runs)
//        [--owners N]: the async submits come from N callers (client i sends "Authorization: Bearer bench-owner-<i mod N>", so
//                      the jobs belong to N owners; default 1: one caller, whose per-owner cap — half the workers — bounds
//                      how many of its jobs run at once, on every instance together)
//        [--instances N]: N gateway hosts in this process on the same store (PostgreSQL: one schema; in-memory: each its own
//                      store, so only 1 makes sense there), submits spread over them round robin, every instance's workers
//                      running jobs; the batch runs on the first. Two instances on one 2-core machine share its cores.
//        --governance [--calls 5000]: the shared governance counters instead (admissions and settlements/s, see GovernanceBench.cs)
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware;
using Npgsql;

var settings = Settings.Parse(args);
if (args.Contains("--governance"))
{
    return settings.Postgres is { } connectionString
        ? await GovernanceBench.RunAsync(connectionString, settings.Calls, settings.Rounds)
        : throw new InvalidOperationException("--governance needs --postgres or BIFROST_TEST_POSTGRES");
}

var stores = new List<string>();
if (settings.Instances == 1)
{
    stores.Add("in-memory"); // an in-memory store is one instance's own: several instances share nothing
}

if (settings.Postgres is not null)
{
    stores.Add("postgresql");
    stores.Add("postgresql-jobs+fs-files");
}

Console.WriteLine($"submits={settings.Submits} lines={settings.Lines} concurrency={settings.Concurrency} workers={(settings.Workers > 0 ? settings.Workers : "default")} owners={settings.Owners} instances={settings.Instances} rounds={settings.Rounds} cpus={Environment.ProcessorCount} load={LoadAverage()}");
Console.WriteLine("| store | round | async submits/s | async jobs/s | batch lines/s | CPU/job µs (app + pg) | CPU/line µs (app + pg) |");
Console.WriteLine("|---|---|---|---|---|---|---|");
var results = new Dictionary<string, List<Result>>();
for (var round = 1; round <= settings.Rounds; round++)
{
    foreach (var store in stores)
    {
        var result = await RunAsync(store, settings);
        (results.TryGetValue(store, out var list) ? list : results[store] = []).Add(result);
        Console.WriteLine($"| {store} | {round} | {result.Submits:F0} | {result.Jobs:F0} | {result.Lines:F0} | {result.JobCpu} | {result.LineCpu} |");
    }
}

Console.WriteLine();
Console.WriteLine("| store | async submits/s (median) | async jobs/s (median) | batch lines/s (median) | CPU/job µs (median, app + pg) | CPU/line µs (median, app + pg) |");
Console.WriteLine("|---|---|---|---|---|---|");
foreach (var (store, list) in results)
{
    Console.WriteLine($"| {store} | {Median(list.Select(r => r.Submits)):F0} | {Median(list.Select(r => r.Jobs)):F0} | {Median(list.Select(r => r.Lines)):F0} | {new Cpu(Median(list.Select(r => r.JobCpu.App)), Median(list.Select(r => r.JobCpu.Postgres)))} | {new Cpu(Median(list.Select(r => r.LineCpu.App)), Median(list.Select(r => r.LineCpu.Postgres)))} |");
}

Console.WriteLine($"load={LoadAverage()}");
return 0;

static async Task<Result> RunAsync(string store, Settings settings)
{
    var schema = "bench_" + Guid.NewGuid().ToString("N")[..12];
    var filesDirectory = Path.Combine(Path.GetTempPath(), "bifrost-bench-" + Guid.NewGuid().ToString("N")[..8]);
    var apps = new List<WebApplication>();
    var clients = new List<HttpClient>();
    try
    {
        for (var i = 0; i < settings.Instances; i++)
        {
            var instance = BuildHost(store, settings, schema, filesDirectory);
            apps.Add(instance);
            await instance.StartAsync();
            clients.Add(new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = new Uri(instance.Urls.Single()), Timeout = TimeSpan.FromMinutes(5) });
        }

        var app = apps[0];
        var client = clients[0];
        var jobs = app.Services.GetRequiredService<IJobStore>();

        // Warm up (JIT, connection pools), then wait for an idle store.
        await SubmitManyAsync(clients, 200, settings.Concurrency, settings.Owners);
        await WaitIdleAsync(jobs);

        var cpu = CpuSnapshot.Read();
        var clock = Stopwatch.StartNew();
        await SubmitManyAsync(clients, settings.Submits, settings.Concurrency, settings.Owners);
        var submitted = clock.Elapsed;
        await WaitIdleAsync(jobs);
        var ran = clock.Elapsed;
        var jobCpu = CpuSnapshot.Read().Since(cpu).Per(settings.Submits);

        var fileId = await UploadAsync(client, settings.Lines);
        cpu = CpuSnapshot.Read();
        clock.Restart();
        var batchId = await CreateBatchAsync(client, fileId);
        while (true)
        {
            var batch = await GetJsonAsync(client, $"openai/v1/batches/{batchId}");
            var status = batch.GetProperty("status").GetString();
            if (status == "completed")
            {
                var completed = batch.GetProperty("request_counts").GetProperty("completed").GetInt32();
                if (completed != settings.Lines)
                {
                    throw new InvalidOperationException($"batch completed {completed} of {settings.Lines} lines");
                }

                break;
            }

            if (status is "failed" or "expired" or "cancelled")
            {
                throw new InvalidOperationException($"batch ended {status}: {batch}");
            }

            await Task.Delay(20);
        }

        var batchTime = clock.Elapsed;
        var lineCpu = CpuSnapshot.Read().Since(cpu).Per(settings.Lines);
        return new Result(settings.Submits / submitted.TotalSeconds, settings.Submits / ran.TotalSeconds, settings.Lines / batchTime.TotalSeconds, jobCpu, lineCpu);
    }
    finally
    {
        foreach (var client in clients)
        {
            client.Dispose();
        }

        foreach (var app in apps)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        if (Directory.Exists(filesDirectory))
        {
            Directory.Delete(filesDirectory, recursive: true);
        }

        if (store.StartsWith("postgresql", StringComparison.Ordinal))
        {
            await using var dataSource = NpgsqlDataSource.Create(settings.Postgres!);
            await using var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
    }
}

static WebApplication BuildHost(string store, Settings settings, string schema, string filesDirectory)
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders();
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    var bifrost = builder.Services.AddBifrost(options =>
    {
        options.DefaultProvider = "local";
        options.Providers["local"] = new ProviderOptions { Type = "local" };
        options.Files.Directory = filesDirectory;
        options.Jobs.MaxQueuedJobs = 1_000_000;
        options.Jobs.MaxQueuedJobsPerOwner = 1_000_000; // one caller submits everything: its queue quota (default 1,000) would refuse it
        if (settings.Workers > 0)
        {
            options.Jobs.Workers = settings.Workers; // --workers: job workers (default 4; one owner runs at most half of them)
        }
    });
    if (store.StartsWith("postgresql", StringComparison.Ordinal))
    {
        bifrost.UsePostgreSqlJobStore(o =>
        {
            o.ConnectionString = settings.Postgres;
            o.Schema = schema;
            o.UseForFiles = store == "postgresql";
        });
    }

    var app = builder.Build();
    app.MapBifrost("/openai");
    return app;
}

static async Task SubmitManyAsync(IReadOnlyList<HttpClient> clients, int count, int concurrency, int owners)
{
    var body = """{"model":"local/echo","messages":[{"role":"user","content":"Hello, async world!"}]}""";
    var next = -1;
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async caller =>
    {
        var client = clients[caller % clients.Count];
        var owner = "Bearer bench-owner-" + (caller % owners).ToString(System.Globalization.CultureInfo.InvariantCulture);
        while (Interlocked.Increment(ref next) < count)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "openai/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Add("x-bf-async", "true");
            request.Headers.TryAddWithoutValidation("Authorization", owner);
            using var response = await client.SendAsync(request);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"submit answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }
        }
    }));
}

static async Task WaitIdleAsync(IJobStore jobs)
{
    while (await jobs.CountUnfinishedAsync(CancellationToken.None) > 0)
    {
        await Task.Delay(10);
    }
}

static async Task<string> UploadAsync(HttpClient client, int lines)
{
    var jsonl = new StringBuilder();
    for (var i = 0; i < lines; i++)
    {
        jsonl.Append(new JsonObject
        {
            ["custom_id"] = $"line-{i}",
            ["method"] = "POST",
            ["url"] = "/v1/chat/completions",
            ["body"] = new JsonObject { ["model"] = "local/echo", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"line {i}" }) },
        }.ToJsonString()).Append('\n');
    }

    using var form = new MultipartFormDataContent();
    form.Add(new StringContent("batch"), "purpose");
    var file = new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl.ToString()));
    file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
    form.Add(file, "file", "bench.jsonl");
    using var response = await client.PostAsync("openai/v1/files", form);
    var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    return response.IsSuccessStatusCode ? json.GetProperty("id").GetString()! : throw new InvalidOperationException($"upload: {json}");
}

static async Task<string> CreateBatchAsync(HttpClient client, string fileId)
{
    var body = new JsonObject { ["input_file_id"] = fileId, ["endpoint"] = "/v1/chat/completions", ["completion_window"] = "24h" }.ToJsonString();
    using var response = await client.PostAsync("openai/v1/batches", new StringContent(body, Encoding.UTF8, "application/json"));
    var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    return response.IsSuccessStatusCode ? json.GetProperty("id").GetString()! : throw new InvalidOperationException($"create batch: {json}");
}

static async Task<JsonElement> GetJsonAsync(HttpClient client, string path)
{
    using var response = await client.GetAsync(path);
    return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
}

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

internal sealed record Settings(string? Postgres, int Submits, int Lines, int Concurrency, int Rounds, int Calls, int Workers, int Owners, int Instances)
{
    public static Settings Parse(string[] args)
    {
        string? Value(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        int Int(string name, int fallback) => Value(name) is { } v ? int.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : fallback;
        var postgres = Value("--postgres") ?? Environment.GetEnvironmentVariable("BIFROST_TEST_POSTGRES");
        return new Settings(string.IsNullOrWhiteSpace(postgres) ? null : postgres, Int("--submits", 5000), Int("--lines", 5000), Int("--concurrency", 32), Int("--rounds", 3), Int("--calls", 5000), Int("--workers", 0), Math.Max(1, Int("--owners", 1)), Math.Max(1, Int("--instances", 1)));
    }
}

internal sealed record Result(double Submits, double Jobs, double Lines, Cpu JobCpu, Cpu LineCpu);

/// <summary>CPU time in µs: this process's and the postgres processes'.</summary>
internal readonly record struct Cpu(double App, double Postgres)
{
    public Cpu Per(int count) => new(App / count, Postgres / count);

    public override string ToString() => $"{App + Postgres:F0} ({App:F0} + {Postgres:F0})";
}

/// <summary>This process's CPU time and each postgres process's (utime + stime from /proc, in µs), at one moment.</summary>
internal sealed record CpuSnapshot(double App, Dictionary<int, double> Postgres)
{
    private const double MicrosecondsPerTick = 10_000; // USER_HZ = 100 on Linux

    /// <summary>The CPU used since <paramref name="earlier"/>; a postgres process that ended meanwhile is not counted (an undercount, never negative).</summary>
    public Cpu Since(CpuSnapshot earlier) =>
        new(App - earlier.App, Postgres.Sum(p => p.Value - earlier.Postgres.GetValueOrDefault(p.Key)));

    public static CpuSnapshot Read()
    {
        var app = Process.GetCurrentProcess().TotalProcessorTime.TotalMicroseconds;
        var postgres = new Dictionary<int, double>();
        if (!Directory.Exists("/proc"))
        {
            return new CpuSnapshot(app, postgres);
        }

        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                var open = stat.IndexOf('(', StringComparison.Ordinal);
                var close = stat.LastIndexOf(')');
                if (open < 0 || close < open || stat[(open + 1)..close] != "postgres")
                {
                    continue;
                }

                // After "(comm) " comes field 3 (state); utime and stime are fields 14 and 15.
                var fields = stat[(close + 2)..].Split(' ');
                postgres[pid] = (long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) * MicrosecondsPerTick;
            }
            catch (IOException)
            {
                // the process ended meanwhile
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return new CpuSnapshot(app, postgres);
    }
}
