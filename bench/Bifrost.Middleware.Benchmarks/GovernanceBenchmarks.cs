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
    private IBifrostClient _offClient = null!;
    private IBifrostClient _requiredClient = null!;
    private VirtualKeyStore _store = null!;
    private PricingCatalog _pricing = null!;
    private DefaultHttpContext _context = null!;
    private ChatCompletionRequest _request = null!;

    [GlobalSetup]
    public void Setup()
    {
        _off = Build(GovernanceMode.Off);
        _required = Build(GovernanceMode.Required);
        _offClient = _off.GetRequiredService<IBifrostClient>();
        _requiredClient = _required.GetRequiredService<IBifrostClient>();
        _store = _required.GetRequiredService<VirtualKeyStore>();
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

    private static ServiceProvider Build(GovernanceMode mode)
    {
        var services = new ServiceCollection();
        services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] };
            options.Governance.Mode = mode;
            if (mode != GovernanceMode.Off)
            {
                // A typical key: restricted to a provider and to models by a glob, so the layer walks its rules.
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "bench", Value = Secret, AllowedProviders = ["local"], AllowedModels = ["local/*"] });
            }
        });
        return services.BuildServiceProvider();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _off.Dispose();
        _required.Dispose();
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
