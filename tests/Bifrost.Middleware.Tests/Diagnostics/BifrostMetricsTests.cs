using System.Diagnostics.Metrics;
using Bifrost.Middleware.Diagnostics;
using Bifrost.Middleware.Operations;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Bifrost.Middleware.Tests.Diagnostics;

/// <summary>
/// One record per operation (<see cref="BifrostMetrics.RecordOperation"/>): each instrument gets exactly its documented tags
/// from the one tag list (duration with <c>error.type</c> only on a failure, the token histogram with <c>gen_ai.token.type</c>
/// and never <c>error.type</c>, the cost only for a success), and the observer gets the record once, as it gets each attempt.
/// </summary>
public sealed class BifrostMetricsTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public void Dispose() => _services.Dispose();

    private static Dictionary<string, object?> Tags(CollectedMeasurement<double> m) => new(m.Tags);

    private static Dictionary<string, object?> Tags(CollectedMeasurement<long> m) => new(m.Tags);

    [Fact]
    public void A_success_and_a_failure_record_each_instrument_with_its_documented_tags_and_the_observer_once_each()
    {
        var factory = _services.GetRequiredService<IMeterFactory>();
        var metrics = new BifrostMetrics(factory);
        using var duration = new MetricCollector<double>(factory, BifrostTelemetry.Name, BifrostTelemetry.OperationDuration);
        using var tokens = new MetricCollector<long>(factory, BifrostTelemetry.Name, BifrostTelemetry.TokenUsage);
        using var cost = new MetricCollector<double>(factory, BifrostTelemetry.Name, BifrostTelemetry.Cost);
        using var attempts = new MetricCollector<long>(factory, BifrostTelemetry.Name, BifrostTelemetry.Attempts);
        var observer = new Observer();
        metrics.Observe(observer);
        metrics.Observe(observer); // the same observer again: no change
        Assert.Throws<InvalidOperationException>(() => metrics.Observe(new Observer()));

        metrics.RecordOperation(new OperationRecord("chat", "openai", "gpt-4o-mini", 0.25, null, new TokenCounts(7, 11), 0.5));
        metrics.RecordOperation(new OperationRecord("chat", "openai", "gpt-4o-mini", 0.125, "rate_limit_exceeded", new TokenCounts(3, 2), 9.0));
        metrics.RecordAttempt("openai", "success");
        metrics.RecordAttempt("openai", "error");

        var durations = duration.GetMeasurementSnapshot();
        Assert.Equal([0.25, 0.125], durations.Select(static m => m.Value));
        Assert.Equal(
            new Dictionary<string, object?> { ["gen_ai.operation.name"] = "chat", ["gen_ai.provider.name"] = "openai", ["gen_ai.request.model"] = "gpt-4o-mini" },
            Tags(durations[0]));
        Assert.Equal(
            new Dictionary<string, object?> { ["gen_ai.operation.name"] = "chat", ["gen_ai.provider.name"] = "openai", ["gen_ai.request.model"] = "gpt-4o-mini", ["error.type"] = "rate_limit_exceeded" },
            Tags(durations[1]));

        var used = tokens.GetMeasurementSnapshot();
        Assert.Equal([7L, 11L, 3L, 2L], used.Select(static m => m.Value));
        Assert.Equal(["input", "output", "input", "output"], used.Select(static m => m.Tags["gen_ai.token.type"]));
        Assert.All(used, static m => Assert.Equal(["gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.token.type"], m.Tags.Keys.Order(StringComparer.Ordinal)));

        var costs = cost.GetMeasurementSnapshot();
        var only = Assert.Single(costs); // the failed call's cost is not counted
        Assert.Equal(0.5, only.Value);
        Assert.Equal(["gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model"], only.Tags.Keys.Order(StringComparer.Ordinal));

        Assert.Equal(["success", "error"], attempts.GetMeasurementSnapshot().Select(static m => m.Tags["bifrost.outcome"]));

        Assert.Equal(2, observer.Records.Count);
        Assert.Equal(new TokenCounts(7, 11), observer.Records[0].Usage);
        Assert.Equal("rate_limit_exceeded", observer.Records[1].ErrorType);
        Assert.Equal([("openai", "success"), ("openai", "error")], observer.Attempts);
    }

    [Fact]
    public void An_observer_alone_makes_the_metrics_enabled()
    {
        // (Whether a meter listener of another test enables the instruments does not matter: the observer is enough.)
        var metrics = new BifrostMetrics(_services.GetRequiredService<IMeterFactory>());
        var observer = new Observer();
        metrics.Observe(observer);
        metrics.RecordOperation(new OperationRecord("embeddings", null, null, 0.5, null, null, null));

        Assert.True(metrics.IsEnabled);
        var record = Assert.Single(observer.Records);
        Assert.Equal("embeddings", record.Operation);
    }

    private sealed class Observer : IOperationObserver
    {
        public List<OperationRecord> Records { get; } = [];

        public List<(string, string)> Attempts { get; } = [];

        public void OnOperation(in OperationRecord record) => Records.Add(record);

        public void OnAttempt(string provider, string outcome) => Attempts.Add((provider, outcome));
    }
}
