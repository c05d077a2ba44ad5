using System.Diagnostics;
using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;

namespace Bifrost.Middleware.Benchmarks;

/// <summary>
/// What traces and metrics cost per call (issue 15: ≤ 5 % and no allocations when nothing listens): the
/// <see cref="GatewayBenchmarks"/> chat call on the local provider with nothing listening (baseline), with an in-process
/// <see cref="ActivityListener"/> sampling every span of the "Bifrost.Middleware" source (all data, recorded; the spans
/// are dropped when they stop, as an exporter's batch would take them), and with a <see cref="MeterListener"/> reading
/// every measurement of the meter. Each case's listener is attached only while that case runs.
/// </summary>
[MemoryDiagnoser]
public class TelemetryBenchmarks
{
    private ServiceProvider _services = null!;
    private IBifrostClient _client = null!;
    private ChatCompletionRequest _request = null!;
    private ActivityListener? _spans;
    private MeterListener? _meters;
    private long _measurements;

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
    }

    [GlobalSetup(Target = nameof(ChatWithSpanListener))]
    public void SetupSpans()
    {
        Setup();
        _spans = new ActivityListener
        {
            ShouldListenTo = static source => source.Name == "Bifrost.Middleware",
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(_spans);
    }

    [GlobalSetup(Target = nameof(ChatWithMeterListener))]
    public void SetupMeters()
    {
        Setup();
        _meters = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "Bifrost.Middleware")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _meters.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref _measurements));
        _meters.SetMeasurementEventCallback<long>((_, _, _, _) => Interlocked.Increment(ref _measurements));
        _meters.Start();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _spans?.Dispose();
        _meters?.Dispose();
        _services.Dispose();
    }

    [Benchmark(Baseline = true, Description = "chat, nothing listening")]
    public Task<ChatCompletionResponse> ChatQuiet() => _client.ChatCompletionAsync(_request);

    [Benchmark(Description = "chat, every span sampled (ActivityListener)")]
    public Task<ChatCompletionResponse> ChatWithSpanListener() => _client.ChatCompletionAsync(_request);

    [Benchmark(Description = "chat, every measurement read (MeterListener)")]
    public Task<ChatCompletionResponse> ChatWithMeterListener() => _client.ChatCompletionAsync(_request);
}
