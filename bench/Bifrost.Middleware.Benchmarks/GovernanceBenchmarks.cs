using BenchmarkDotNet.Attributes;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Governance.Pricing;
using Bifrost.Middleware.Operations;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Bifrost.Middleware.Benchmarks;

/// <summary>
/// The governance layer's overhead (issue 14, target ≤ 2 µs and ≤ 1 KB per request for the check): the in-process
/// <see cref="IBifrostClient"/> chat call on the local provider with <c>Governance:Mode</c> Off (baseline) against Required
/// with a virtual key presented the way the endpoint reads it (<c>x-bf-vk</c> on the request, then
/// <see cref="GovernanceCaller.Authenticate"/>: SHA-256 of the secret, lookup, usable check, the caller made current),
/// and the pieces alone: the authentication, the key lookup, the cost computation.
/// </summary>
[MemoryDiagnoser]
public class GovernanceBenchmarks
{
    private const string Secret = "sk-bf-benchmark-0123456789abcdef";

    private ServiceProvider _off = null!;
    private ServiceProvider _required = null!;
    private ServiceProvider _budgeted = null!;
    private ServiceProvider _budgetedQueued = null!;
    private ServiceProvider _budgetedSqlite = null!;
    private ServiceProvider _requiredSqlite = null!;
    private IBifrostClient _requiredSqliteClient = null!;
    private VirtualKeyStore _requiredSqliteStore = null!;
    private IBifrostClient _budgetedSqliteClient = null!;
    private VirtualKeyStore _budgetedSqliteStore = null!;
    private string _sqliteDirectory = null!;
    private IBifrostClient _budgetedQueuedClient = null!;
    private VirtualKeyStore _budgetedQueuedStore = null!;
    private IBifrostClient _offClient = null!;
    private IBifrostClient _requiredClient = null!;
    private IBifrostClient _budgetedClient = null!;
    private VirtualKeyStore _store = null!;
    private VirtualKeyStore _budgetedStore = null!;
    private IGovernanceCounterStore _counters = null!;
    private GovernanceCounterCheck[] _checks = null!;
    private GovernanceCounterCharge[] _charges = null!;
    private PricingCatalog _pricing = null!;
    private DefaultHttpContext _context = null!;
    private ChatCompletionRequest _request = null!;

    [GlobalSetup]
    public void Setup()
    {
        _off = Build(GovernanceMode.Off);
        _required = Build(GovernanceMode.Required);
        _budgeted = Build(GovernanceMode.Required, budget: true);
        _budgetedQueued = Build(GovernanceMode.Required, budget: true);
        _budgetedQueuedClient = _budgetedQueued.GetRequiredService<IBifrostClient>();
        _sqliteDirectory = Path.Combine(Path.GetTempPath(), $"bifrost-governance-bench-{Guid.NewGuid():N}");
        _budgetedSqlite = Build(GovernanceMode.Required, budget: true, sqlitePath: Path.Combine(_sqliteDirectory, "governance.db"));
        _budgetedSqliteClient = _budgetedSqlite.GetRequiredService<IBifrostClient>();
        _budgetedSqliteStore = _budgetedSqlite.GetRequiredService<VirtualKeyStore>();
        _budgetedSqlite.GetRequiredService<UsageLedger>().StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        _requiredSqlite = Build(GovernanceMode.Required, sqlitePath: Path.Combine(_sqliteDirectory, "governance-key.db"));
        _requiredSqliteClient = _requiredSqlite.GetRequiredService<IBifrostClient>();
        _requiredSqliteStore = _requiredSqlite.GetRequiredService<VirtualKeyStore>();
        _requiredSqlite.GetRequiredService<UsageLedger>().StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        _budgetedQueuedStore = _budgetedQueued.GetRequiredService<VirtualKeyStore>();
        _offClient = _off.GetRequiredService<IBifrostClient>();
        _requiredClient = _required.GetRequiredService<IBifrostClient>();
        _budgetedClient = _budgeted.GetRequiredService<IBifrostClient>();
        _store = _required.GetRequiredService<VirtualKeyStore>();
        _budgetedStore = _budgeted.GetRequiredService<VirtualKeyStore>();
        _budgeted.GetRequiredService<UsageLedger>().StartAsync(CancellationToken.None).GetAwaiter().GetResult(); // the background writer, as in a host
        _counters = _budgeted.GetRequiredService<IGovernanceCounterStore>();
        var now = DateTimeOffset.UtcNow;
        _checks =
        [
            new("budget:team:team", now.AddDays(-1), now.AddDays(30), null, null, 1_000_000_000m, 20, 0.00002m),
            new("budget:vk:bench", now.AddDays(-1), now.AddDays(1), null, null, 1_000_000_000m, 20, 0.00002m),
            new("rate:vk:bench", now.AddDays(-1), now.AddDays(1), long.MaxValue, long.MaxValue, null, 20, 0.00002m),
            new("budget:vk:bench:provider:local", DateTimeOffset.MinValue, DateTimeOffset.MaxValue, null, null, 1_000_000_000m, 20, 0.00002m),
        ];
        _charges = [.. _checks.Select(static c => new GovernanceCounterCharge(c.Scope, c.WindowStart, c.WindowEnd, 5, 0.00001m))];
        _pricing = _required.GetRequiredService<PricingCatalog>();
        _context = new DefaultHttpContext();
        _context.Request.Headers["x-bf-vk"] = Secret;
        _request = new ChatCompletionRequest
        {
            Model = "local/echo",
            Messages = [ChatCompletionMessage.FromText("system", "You are terse."), ChatCompletionMessage.FromText("user", "Say hello to the benchmark, please.")],
        };

        // The key must reach the layer: fail the run rather than measure a call that skipped the check.
        GovernanceCaller.Authenticate(_context, _store);
        if (GovernanceCaller.Current?.Key?.Id != "bench")
        {
            throw new InvalidOperationException("The virtual key did not authenticate.");
        }

        GovernanceCaller.Current = null;
    }

    private static ServiceProvider Build(GovernanceMode mode, bool budget = false, string? sqlitePath = null)
    {
        var services = new ServiceCollection();
        var bifrost = services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] };
            options.Governance.Mode = mode;
            if (mode != GovernanceMode.Off)
            {
                // A typical key: restricted to a provider and to models by a glob, so the layer walks its rules.
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "bench", Value = Secret, AllowedProviders = ["local"], AllowedModels = ["local/*"], Team = budget ? "team" : null });
            }

            if (budget)
            {
                // The key, its team and the provider config each with a budget, and the key with request and token
                // limits: one admission over four windows in the in-memory counters, the input estimate reserved, the
                // real usage settled, a usage record queued for the (in-memory) ledger.
                options.Pricing["local/echo"] = new ModelPriceOptions { InputPerMillion = 1.0, OutputPerMillion = 2.0 };
                options.Governance.Teams.Add(new GovernanceGroupOptions { Id = "team", Budget = new() { MaxUsd = 1_000_000_000, Reset = "1M" } });
                var key = options.Governance.VirtualKeys[0];
                key.Budget = new GovernanceBudgetOptions { MaxUsd = 1_000_000_000, Reset = "1d" };
                key.RateLimits = new GovernanceRateLimitOptions { Requests = long.MaxValue, Tokens = long.MaxValue, Period = "1m" };
                key.Providers["local"] = new VirtualKeyProviderOptions { Budget = new() { MaxUsd = 1_000_000_000 } };
            }
        });
        if (sqlitePath is not null)
        {
            bifrost.UseSqliteGovernanceStore(sqlitePath);
        }

        return services.BuildServiceProvider();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _budgeted.GetRequiredService<UsageLedger>().StopAsync(CancellationToken.None).GetAwaiter().GetResult();
        _off.Dispose();
        _required.Dispose();
        _budgeted.Dispose();
        _budgetedQueued.Dispose();
        _budgetedSqlite.GetRequiredService<UsageLedger>().StopAsync(CancellationToken.None).GetAwaiter().GetResult();
        _budgetedSqlite.Dispose();
        _requiredSqlite.GetRequiredService<UsageLedger>().StopAsync(CancellationToken.None).GetAwaiter().GetResult();
        _requiredSqlite.Dispose();
        try
        {
            Directory.Delete(_sqliteDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held: left in the temp directory.
        }
    }

    [Benchmark(Baseline = true, Description = "chat, governance Off")]
    public Task<ChatCompletionResponse> ChatOff() => _offClient.ChatCompletionAsync(_request);

    /// <summary>What the endpoint does per request with governance on (read and check the key), then the call through the layer.</summary>
    [Benchmark(Description = "chat, governance Required + virtual key")]
    public Task<ChatCompletionResponse> ChatRequired()
    {
        GovernanceCaller.Authenticate(_context, _store);
        return _requiredClient.ChatCompletionAsync(_request);
    }

    /// <summary>The same with budgets (key, team, provider config) and request/token limits on the key's path.</summary>
    [Benchmark(Description = "chat, governance Required + virtual key with budgets and limits")]
    public Task<ChatCompletionResponse> ChatBudgeted()
    {
        GovernanceCaller.Authenticate(_context, _budgetedStore);
        return _budgetedClient.ChatCompletionAsync(_request);
    }

    /// <summary>The same without the ledger's background writer running (records only queued, as in the Required case): what the writer costs the measurement.</summary>
    [Benchmark(Description = "chat, budgets and limits, ledger writer not running")]
    public Task<ChatCompletionResponse> ChatBudgetedQueued()
    {
        GovernanceCaller.Authenticate(_context, _budgetedQueuedStore);
        return _budgetedQueuedClient.ChatCompletionAsync(_request);
    }

    /// <summary>A key without budgets or limits, with the SQLite governance store: the ledger writer appends every record to SQLite in the background.</summary>
    [Benchmark(Description = "chat, governance Required + virtual key, SQLite governance store (writer running)")]
    public Task<ChatCompletionResponse> ChatRequiredSqlite()
    {
        GovernanceCaller.Authenticate(_context, _requiredSqliteStore);
        return _requiredSqliteClient.ChatCompletionAsync(_request);
    }

    /// <summary>The same with the SQLite governance store registered: the ledger writer appends every record to SQLite in the background.</summary>
    [Benchmark(Description = "chat, budgets and limits, SQLite governance store (writer running)")]
    public Task<ChatCompletionResponse> ChatBudgetedSqlite()
    {
        GovernanceCaller.Authenticate(_context, _budgetedSqliteStore);
        return _budgetedSqliteClient.ChatCompletionAsync(_request);
    }

    [Benchmark(Description = "input estimate alone (TokenEstimate.Chat of the request)")]
    public long EstimateOnly() => InferenceOperations.Chat.EstimateInputTokens!(_request, "echo");

    [Benchmark(Description = "admission + settlement alone (4 windows, in-process counters)")]
    public async Task<bool> AdmitAndSettleOnly()
    {
        var admission = await _counters.TryAdmitAsync(_checks, CancellationToken.None);
        await _counters.SettleAsync(_charges, CancellationToken.None);
        return admission.Admitted;
    }

    [Benchmark(Description = "Authenticate alone (headers, SHA-256, lookup, caller)")]
    public object? AuthenticateOnly()
    {
        GovernanceCaller.Authenticate(_context, _store);
        return GovernanceCaller.Current;
    }

    [Benchmark(Description = "key lookup alone (SHA-256 + dictionary)")]
    public object? LookupOnly() => _store.FindBySecret(Secret);

    [Benchmark(Description = "cost alone (openai/gpt-4o, PricingCatalog.Cost)")]
    public double? CostOnly() => _pricing.Cost("openai", "gpt-4o", new TokenCounts(1200, 350, CachedInput: 200));
}
