using Bifrost.Middleware.Sqlite.Benchmarks;

// SQLite job store measurements (Release; figures and commands: bench/README.md):
//   dotnet run -c Release --project bench/Bifrost.Middleware.Sqlite.Benchmarks -- stores    in-memory vs SQLite: async submits/s, jobs/s, batch lines/s
//   dotnet run -c Release --project bench/Bifrost.Middleware.Sqlite.Benchmarks -- writers   one writer + semaphore vs a connection per operation
// Either with --smoke: tiny sizes, one pass (what bench/smoke.sh runs in CI so the benchmark cannot rot; no figures).
StoreBenchmarks.Smoke = args.Contains("--smoke");
switch (args.Where(static a => a != "--smoke").ToArray())
{
    case ["stores"]:
        await StoreBenchmarks.StoresAsync();
        return 0;
    case ["writers"]:
        await StoreBenchmarks.WritersAsync();
        return 0;
    default:
        Console.Error.WriteLine("usage: stores | writers [--smoke]");
        return 2;
}
