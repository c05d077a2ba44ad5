using BenchmarkDotNet.Attributes;
using Bifrost.Middleware.Governance;
using Microsoft.Extensions.DependencyInjection;

namespace Bifrost.Middleware.Benchmarks;

/// <summary>
/// The usage ledger's write path (issue 14): <c>UsageLedger.Record</c> of <see cref="Records"/> settled requests
/// (what the request path pays: a queue write), then <c>UsageLedger.FlushAsync</c> until the background writer has
/// appended them all to the store in batches, for the in-memory store and the SQLite store
/// (<c>UseSqliteGovernanceStore</c>, a file in the temp directory). Reported per record (OperationsPerInvoke).
/// </summary>
[MemoryDiagnoser]
public class LedgerBenchmarks
{
    private const int Records = 10_000;

    private ServiceProvider _services = null!;
    private UsageLedger _ledger = null!;
    private IGovernanceStore _store = null!;
    private UsageRecord[] _records = null!;
    private string? _directory;

    /// <summary><c>memory</c> or <c>sqlite</c>.</summary>
    [Params("memory", "sqlite")]
    public string Store { get; set; } = "memory";

    [GlobalSetup]
    public void Setup()
    {
        var services = new ServiceCollection();
        var bifrost = services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] };
        });
        if (Store == "sqlite")
        {
            _directory = Path.Combine(Path.GetTempPath(), $"bifrost-ledger-bench-{Guid.NewGuid():N}");
            bifrost.UseSqliteGovernanceStore(Path.Combine(_directory, "governance.db"));
        }

        _services = services.BuildServiceProvider();
        _store = _services.GetRequiredService<IGovernanceStore>();
        _ledger = _services.GetRequiredService<UsageLedger>();
        _ledger.StartAsync(CancellationToken.None).GetAwaiter().GetResult();

        var now = DateTimeOffset.UtcNow;
        _records = [.. Enumerable.Range(0, Records).Select(i => new UsageRecord
        {
            Time = now.AddMilliseconds(i),
            RequestId = $"chatcmpl-{i}",
            VirtualKeyId = $"vk-{i % 20}",
            Team = i % 2 == 0 ? "team-a" : null,
            Provider = "openai",
            Model = "gpt-4o-mini",
            Operation = "chat_completion",
            Source = "sync",
            InputTokens = 120 + (i % 50),
            OutputTokens = 40 + (i % 30),
            CostUsd = 0.0000435m + (i % 7 * 0.000000001m),
            Status = 200,
            Duration = TimeSpan.FromMilliseconds(250),
        })];
    }

    /// <summary>Records queued and written by the background writer; per record.</summary>
    [Benchmark(OperationsPerInvoke = Records)]
    public async Task RecordAndFlush()
    {
        foreach (var record in _records)
        {
            _ledger.Record(record);
        }

        await _ledger.FlushAsync(CancellationToken.None);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_ledger.Dropped != 0)
        {
            throw new InvalidOperationException($"{_ledger.Dropped} records were dropped: the measurement is not of the write path.");
        }

        _ledger.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
        _services.Dispose();
        if (_directory is not null)
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}
