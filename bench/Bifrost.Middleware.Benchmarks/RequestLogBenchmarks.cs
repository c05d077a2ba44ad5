using BenchmarkDotNet.Attributes;
using Bifrost.Middleware.RequestLog;
using Microsoft.Extensions.DependencyInjection;

namespace Bifrost.Middleware.Benchmarks;

/// <summary>
/// What the request log adds to a call: <see cref="IBifrostClient"/> chat on the local provider with
/// <c>RequestLog:Enabled</c> false (baseline) against the default (in-memory ring, the background writer running, so
/// entries are written as in a host).
/// </summary>
[MemoryDiagnoser]
public class RequestLogBenchmarks
{
    private ServiceProvider _off = null!;
    private ServiceProvider _on = null!;
    private IBifrostClient _clientOff = null!;
    private IBifrostClient _clientOn = null!;
    private ChatCompletionRequest _request = null!;

    [GlobalSetup]
    public void Setup()
    {
        _off = Build(enabled: false);
        _on = Build(enabled: true);
        _clientOff = _off.GetRequiredService<IBifrostClient>();
        _clientOn = _on.GetRequiredService<IBifrostClient>();
        _on.GetRequiredService<RequestLogWriter>().StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        _request = new ChatCompletionRequest
        {
            Model = "local/echo",
            Messages = [ChatCompletionMessage.FromText("system", "You are terse."), ChatCompletionMessage.FromText("user", "Say hello to the benchmark, please.")],
        };
    }

    private static ServiceProvider Build(bool enabled)
    {
        var services = new ServiceCollection();
        services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] };
            options.RequestLog.Enabled = enabled;
        });
        return services.BuildServiceProvider();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        var writer = _on.GetRequiredService<RequestLogWriter>();
        writer.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
        Console.WriteLine($"// request log: {writer.Written} entries written, {writer.Dropped} dropped");
        _on.Dispose();
        _off.Dispose();
    }

    [Benchmark(Baseline = true, Description = "chat, request log off")]
    public Task<ChatCompletionResponse> Off() => _clientOff.ChatCompletionAsync(_request);

    [Benchmark(Description = "chat, request log on (in memory)")]
    public Task<ChatCompletionResponse> On() => _clientOn.ChatCompletionAsync(_request);
}
