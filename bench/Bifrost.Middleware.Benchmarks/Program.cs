using BenchmarkDotNet.Running;
using Bifrost.Middleware.Benchmarks.Batches;

// Usage (Release only; see bench/README.md):
//   dotnet run -c Release --project bench/Bifrost.Middleware.Benchmarks -- --filter '*'
//   dotnet run -c Release --project bench/Bifrost.Middleware.Benchmarks -- --filter '*GatewayBenchmarks*' --job short
//   bench/Bifrost.Middleware.Benchmarks/bin/Release/net10.0/Bifrost.Middleware.Benchmarks batches all   (batch, upload, async)
if (args is [BatchCommand.Name, .. var rest])
{
    return await BatchCommand.RunAsync(rest);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
