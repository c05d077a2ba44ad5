using System.Diagnostics;
using Bifrost.Middleware.RequestLog;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Bifrost.Middleware.Benchmarks;

/// <summary>
/// <c>request-log RATE SECONDS [postgres]</c>: calls <see cref="IBifrostClient"/> (local provider) at a paced RATE per second for
/// SECONDS with the SQLite request log (a file in the temp directory), or with <c>postgres</c> the PostgreSQL one (the
/// connection string from <c>BIFROST_BENCH_POSTGRES</c>, else <c>BIFROST_TEST_POSTGRES</c>; a fresh schema, dropped
/// afterwards), <c>RequestLog:MaxEntries</c> 100,000, then counts
/// the entries the log holds (they must equal the calls: none lost) and prints the process's peak working set during
/// the load and after the count (issue 15: "request-log writes at 5,000 requests/s keep the log complete, with bounded
/// memory"). The harness keeps no answer, so the peak is the gateway's.
/// </summary>
internal static class RequestLogPacedCommand
{
    public const string Name = "request-log";

    public static async Task<int> RunAsync(string[] args)
    {
        var postgres = args.Length == 3 && args[2] == "postgres";
        if (args.Length is not (2 or 3) || (args.Length == 3 && !postgres) || !int.TryParse(args[0], out var rate) || !int.TryParse(args[1], out var seconds) || rate < 1 || seconds < 1)
        {
            Console.Error.WriteLine("usage: request-log RATE SECONDS [postgres]");
            return 2;
        }

        var connectionString = Environment.GetEnvironmentVariable("BIFROST_BENCH_POSTGRES") is { Length: > 0 } bench ? bench : Environment.GetEnvironmentVariable("BIFROST_TEST_POSTGRES");
        if (postgres && string.IsNullOrEmpty(connectionString))
        {
            Console.Error.WriteLine("request-log ... postgres: set BIFROST_BENCH_POSTGRES (or BIFROST_TEST_POSTGRES) to an Npgsql connection string");
            return 2;
        }

        var db = Path.Combine(Path.GetTempPath(), $"bifrost-request-log-{Guid.NewGuid():N}.db");
        var schema = "bench_" + Guid.NewGuid().ToString("N")[..12];
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        var bifrost = builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "local";
            o.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] };
            o.RequestLog.MaxEntries = 100_000;
        });
        if (postgres)
        {
            bifrost.UsePostgreSqlRequestLog(o =>
            {
                o.ConnectionString = connectionString;
                o.Schema = schema;
            });
        }
        else
        {
            bifrost.UseSqliteRequestLog(db);
        }

        using var host = builder.Build();
        await host.StartAsync();
        var client = host.Services.GetRequiredService<IBifrostClient>();
        var request = new ChatCompletionRequest { Model = "local/echo", Messages = [ChatCompletionMessage.FromText("user", "Say hello to the paced run, please.")] };

        var total = (long)rate * seconds;
        var done = 0L;
        async Task CallAsync()
        {
            await client.ChatCompletionAsync(request);
            Interlocked.Increment(ref done);
        }

        var clock = Stopwatch.StartNew();
        long sent = 0;
        while (sent < total)
        {
            var due = Math.Min(total, (long)(clock.Elapsed.TotalSeconds * rate));
            for (; sent < due; sent++)
            {
                _ = CallAsync();
            }

            await Task.Delay(1);
        }

        while (Interlocked.Read(ref done) < total)
        {
            await Task.Delay(10);
        }

        var elapsed = clock.Elapsed;
        var peakDuringLoad = PeakWorkingSet();
        var log = host.Services.GetRequiredService<IBifrostRequestLog>();
        await log.FlushAsync(CancellationToken.None);
        long entries = 0;
        var query = new RequestLogQuery { Limit = RequestLogQuery.MaxLimit };
        while (true)
        {
            var page = await log.QueryAsync(query, CancellationToken.None);
            entries += page.Entries.Count;
            if (page.Next is null)
            {
                break;
            }

            query = page.Next;
        }

        Console.WriteLine($"BENCH request_log store={(postgres ? "postgresql" : "sqlite")} rate={rate}/s seconds={seconds} calls={total} elapsed_s={elapsed.TotalSeconds:F1} entries={entries} lost={total - entries} peak_ws_load_kb={peakDuringLoad} peak_ws_after_count_kb={PeakWorkingSet()}");
        await host.StopAsync();
        if (postgres)
        {
            await using var dataSource = NpgsqlDataSource.Create(connectionString!);
            await using var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
        else
        {
            File.Delete(db);
        }

        return entries == total ? 0 : 1;
    }

    private static long PeakWorkingSet() =>
        File.ReadLines("/proc/self/status").FirstOrDefault(static l => l.StartsWith("VmHWM:", StringComparison.Ordinal)) is { } line
            ? long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)
            : -1;
}
