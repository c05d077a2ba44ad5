using BenchmarkDotNet.Running;
using Bifrost.Middleware.Benchmarks;
using Bifrost.Middleware.Benchmarks.Batches;

// Usage (Release only; see bench/README.md):
//   dotnet run -c Release --project bench/Bifrost.Middleware.Benchmarks -- --filter '*'
//   dotnet run -c Release --project bench/Bifrost.Middleware.Benchmarks -- --filter '*GatewayBenchmarks*' --job short
//   bench/Bifrost.Middleware.Benchmarks/bin/Release/net10.0/Bifrost.Middleware.Benchmarks batches all   (batch, upload, async)
//   bench/Bifrost.Middleware.Benchmarks/bin/Release/net10.0/Bifrost.Middleware.Benchmarks request-log 5000 20   (paced, SQLite log)
//   BIFROST_BENCH_POSTGRES=... bench/Bifrost.Middleware.Benchmarks/bin/Release/net10.0/Bifrost.Middleware.Benchmarks request-log 5000 10 postgres   (paced, PostgreSQL log)
if (args is [BatchCommand.Name, .. var rest])
{
    return await BatchCommand.RunAsync(rest);
}

if (args is [RequestLogPacedCommand.Name, .. var paced])
{
    return await RequestLogPacedCommand.RunAsync(paced);
}

// A benchmark that throws, or a class that fails validation, makes the exit code 1 (bench/smoke.sh relies on it).
var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return summaries.Any(static s => s.HasCriticalValidationErrors || s.Reports.Any(static r => !r.Success)) ? 1 : 0;
