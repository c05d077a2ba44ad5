using BenchmarkDotNet.Running;

// Usage (Release only):
//   dotnet run -c Release --project tests/Bifrost.Middleware.Benchmarks -- --filter '*'
//   dotnet run -c Release --project tests/Bifrost.Middleware.Benchmarks -- --filter '*GatewayBenchmarks*' --job short
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
