using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;

namespace Bifrost.Middleware.Benchmarks;

/// <summary>
/// The gateway's own cost (target: mean ≤ 10 µs, ≤ 4 KB allocated per non-streaming call): <see cref="IBifrostClient"/>
/// on the deterministic local provider, resolved from a ServiceCollection exactly as a host would, one request object reused.
/// </summary>
[MemoryDiagnoser]
public class GatewayBenchmarks
{
    private ServiceProvider _services = null!;
    private IBifrostClient _client = null!;
    private ChatCompletionRequest _request = null!;
    private ChatCompletionRequest _streamRequest = null!;

    [GlobalSetup]
    public void Setup()
    {
        var services = new ServiceCollection();
        services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] };
        });
        _services = services.BuildServiceProvider();
        _client = _services.GetRequiredService<IBifrostClient>();
        _request = new ChatCompletionRequest
        {
            Model = "local/echo",
            Messages = [ChatCompletionMessage.FromText("system", "You are terse."), ChatCompletionMessage.FromText("user", "Say hello to the benchmark, please.")],
        };
        _streamRequest = new ChatCompletionRequest
        {
            Model = "local/echo",
            Messages = _request.Messages,
            Stream = true,
            StreamOptions = new ChatStreamOptions { IncludeUsage = true },
        };
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Description = "IBifrostClient.ChatCompletionAsync (local)")]
    public Task<ChatCompletionResponse> ChatCompletion() => _client.ChatCompletionAsync(_request);

    /// <summary>Streams the same answer (7 content chunks + role + stop + usage = 10 chunks) and consumes every chunk.</summary>
    [Benchmark(Description = "IBifrostClient.ChatCompletionStreamAsync (local, all chunks)")]
    public async Task<int> ChatCompletionStream()
    {
        var n = 0;
        await foreach (var chunk in _client.ChatCompletionStreamAsync(_streamRequest))
        {
            n += chunk.Choices.Count;
        }

        return n;
    }
}
