using System.Diagnostics;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.PostgreSql;
using Npgsql;

/// <summary>
/// <c>--governance</c>: the shared counter store's admissions (<see cref="PostgreSqlGovernanceCounterStore.TryAdmitAsync"/>,
/// one round trip each) and settlements, as the governance layer calls them for a key with a request limit and a budget
/// (two windows per call), from 1 to 32 concurrent callers: all on one key (one hot pair of rows: admissions of a window
/// are serialized by its row lock) and each on a key of its own.
/// </summary>
internal static class GovernanceBench
{
    public static async Task<int> RunAsync(string postgres, int calls, int rounds)
    {
        Console.WriteLine($"governance: calls={calls} rounds={rounds} cpus={Environment.ProcessorCount} load={LoadAverage()}");
        Console.WriteLine("| keys | callers | admissions/s | p50 ms | p99 ms | settlements/s |");
        Console.WriteLine("|---|---|---|---|---|---|");
        var schema = "bench_" + Guid.NewGuid().ToString("N")[..12];
        await using var dataSource = NpgsqlDataSource.Create(postgres);
        var store = new PostgreSqlGovernanceCounterStore(dataSource, schema, TimeProvider.System);
        await store.InitializeAsync(CancellationToken.None);
        try
        {
            foreach (var shared in new[] { true, false })
            {
                foreach (var callers in new[] { 1, 4, 16, 32 })
                {
                    var results = new List<(double Admits, double P50, double P99, double Settles)>();
                    for (var round = 0; round < rounds; round++)
                    {
                        results.Add(await RunOnceAsync(store, shared, callers, calls));
                    }

                    var best = results.OrderBy(r => r.Admits).ElementAt(results.Count / 2);
                    Console.WriteLine($"| {(shared ? "one" : "one per caller")} | {callers} | {best.Admits:F0} | {best.P50:F2} | {best.P99:F2} | {best.Settles:F0} |");
                }
            }
        }
        finally
        {
            await using var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            await drop.ExecuteNonQueryAsync();
        }

        Console.WriteLine($"load={LoadAverage()}");
        return 0;
    }

    private static async Task<(double Admits, double P50, double P99, double Settles)> RunOnceAsync(PostgreSqlGovernanceCounterStore store, bool shared, int callers, int calls)
    {
        var start = DateTimeOffset.UtcNow;
        var run = Guid.NewGuid().ToString("N")[..8];
        GovernanceCounterCheck[] Checks(int caller)
        {
            var key = shared ? $"{run}:k" : $"{run}:k{caller}";
            return
            [
                new($"budget:vk:{key}", start.AddDays(-1), start.AddDays(1), null, null, 1_000_000m, 100, 0.0001m),
                new($"rl:vk:{key}", start, start.AddMinutes(10), long.MaxValue, long.MaxValue, null, 100, 0m),
            ];
        }

        GovernanceCounterCharge[] Charges(int caller) => [.. Checks(caller).Select(c => new GovernanceCounterCharge(c.Scope, c.WindowStart, c.WindowEnd, 20, 0.00002m))];

        // warm up: every caller's connection open, the function's plans cached
        await Task.WhenAll(Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                await store.TryAdmitAsync(Checks(c), CancellationToken.None);
            }
        })));

        var latencies = new double[calls];
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            var checks = Checks(c);
            int i;
            while ((i = Interlocked.Increment(ref next)) < calls)
            {
                var t = Stopwatch.GetTimestamp();
                var admission = await store.TryAdmitAsync(checks, CancellationToken.None);
                latencies[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                if (!admission.Admitted)
                {
                    throw new InvalidOperationException("refused");
                }
            }
        })));
        var admits = calls / clock.Elapsed.TotalSeconds;

        next = -1;
        clock.Restart();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            var charges = Charges(c);
            while (Interlocked.Increment(ref next) < calls)
            {
                await store.SettleAsync(charges, CancellationToken.None);
            }
        })));
        var settles = calls / clock.Elapsed.TotalSeconds;

        Array.Sort(latencies);
        return (admits, latencies[calls / 2], latencies[(int)(calls * 0.99)], settles);
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
