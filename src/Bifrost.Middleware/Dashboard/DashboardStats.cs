using System.Collections.Concurrent;
using Bifrost.Middleware.Diagnostics;

namespace Bifrost.Middleware.Dashboard;

/// <summary>
/// What the dashboard shows of the traffic, taken from the gateway's own telemetry (<see cref="BifrostMetrics"/>, this
/// host's only): one record per operation (<see cref="IOperationObserver.OnOperation"/>, one lock) and a lock-free count
/// per provider attempt, the same figures an exporter gets from the meter without a listener callback per measurement. Per
/// second, for the last <see cref="WindowSeconds"/> seconds, the operations with their outcome and latency, tokens and
/// cost, by provider and model; provider attempts by outcome and each provider's last errors. In memory, per instance,
/// bounded; started when the host maps the dashboard.
/// </summary>
internal sealed class DashboardStats : IOperationObserver
{
    public const int WindowSeconds = 900;
    private const int LastErrors = 10;

    // Latency buckets: 1 ms · 2^(i/4), i = 0..63 (1 ms to ≈ 55 min); a percentile is read as its bucket's upper bound.
    private const int LatencyBuckets = 64;

    private static readonly string[] Outcomes = ["success", "retry", "fallback", "error"];

    private readonly TimeProvider _time;
    private readonly BifrostMetrics _metrics;
    private readonly Lock _gate = new();
    private readonly Second[] _seconds = new Second[WindowSeconds];
    private readonly Dictionary<string, ProviderTotals> _providers = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Provider, string Model), ModelTotals> _models = [];
    private readonly ConcurrentDictionary<string, AttemptCounts> _attempts = new(StringComparer.Ordinal);
    private readonly DateTimeOffset _started;
    private long _requests;
    private long _errors;
    private long _inputTokens;
    private long _outputTokens;
    private double _cost;
    private int _started0;

    public DashboardStats(BifrostMetrics metrics, TimeProvider time)
    {
        _time = time;
        _metrics = metrics;
        _started = time.GetUtcNow();
        for (var i = 0; i < _seconds.Length; i++)
        {
            _seconds[i] = new Second();
        }
    }

    /// <summary>Starts observing the gateway's operations (once; the dashboard calls it when mapped).</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started0, 1) == 0)
        {
            _metrics.Observe(this);
        }
    }

    /// <summary>One finished operation: every figure it moves, under one lock.</summary>
    public void OnOperation(in OperationRecord record)
    {
        var provider = record.Provider ?? "(none)";
        var model = record.Model ?? "(none)";
        var error = record.ErrorType;
        var bucket = Bucket(record.Seconds);
        var cost = error is null ? record.Cost : null;
        lock (_gate)
        {
            var second = Current();
            _requests++;
            second.Requests++;
            second.Latency[bucket]++;
            var totals = Provider(provider);
            totals.Requests++;
            var models = Model(provider, model);
            models.Requests++;
            models.Latency[bucket]++;
            if (error is not null)
            {
                _errors++;
                second.Errors++;
                totals.Errors++;
                models.Errors++;
                totals.LastErrors.Enqueue(new DashboardError(_time.GetUtcNow(), error, model));
                if (totals.LastErrors.Count > LastErrors)
                {
                    totals.LastErrors.Dequeue();
                }
            }

            if (record.Usage is { } usage)
            {
                _inputTokens += usage.Input;
                second.InputTokens += usage.Input;
                models.InputTokens += usage.Input;
                _outputTokens += usage.Output;
                second.OutputTokens += usage.Output;
                models.OutputTokens += usage.Output;
            }

            if (cost is { } usd)
            {
                _cost += usd;
                second.Cost += usd;
                models.Cost += usd;
            }
        }
    }

    /// <summary>A provider attempt: counted without a lock (the snapshot reads the counts as they are).</summary>
    public void OnAttempt(string provider, string outcome)
    {
        var index = Array.IndexOf(Outcomes, outcome);
        if (index >= 0)
        {
            var counts = _attempts.GetOrAdd(provider, static _ => new AttemptCounts());
            Interlocked.Increment(ref counts.ByOutcome[index]);
        }
    }

    /// <summary>A consistent copy of what is shown: totals since start, the last 15 minutes in 10-second points, providers and models.</summary>
    public DashboardOverview Snapshot()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var nowSecond = now.ToUnixTimeSeconds();
            var points = new List<DashboardPoint>(WindowSeconds / 10);
            var recent = new long[LatencyBuckets];
            long recentRequests = 0, recentErrors = 0, lastTen = 0;
            for (var start = nowSecond - WindowSeconds + 1; start <= nowSecond; start += 10)
            {
                var latency = new long[LatencyBuckets];
                long requests = 0, errors = 0, tokens = 0;
                double cost = 0;
                for (var s = start; s < start + 10 && s <= nowSecond; s++)
                {
                    var second = _seconds[s % WindowSeconds];
                    if (second.At != s)
                    {
                        continue;
                    }

                    requests += second.Requests;
                    errors += second.Errors;
                    tokens += second.InputTokens + second.OutputTokens;
                    cost += second.Cost;
                    Add(latency, second.Latency);
                    if (s > nowSecond - 300)
                    {
                        recentRequests += second.Requests;
                        recentErrors += second.Errors;
                        Add(recent, second.Latency);
                    }

                    if (s > nowSecond - 10)
                    {
                        lastTen += second.Requests;
                    }
                }

                points.Add(new DashboardPoint(start * 1000, requests, errors, Percentile(latency, requests, 0.5), Percentile(latency, requests, 0.95), tokens, cost));
            }

            return new DashboardOverview
            {
                Now = now.ToUnixTimeMilliseconds(),
                StartedAt = _started.ToUnixTimeMilliseconds(),
                RequestsPerSecond = lastTen / 10.0,
                LatencyP50Ms = Percentile(recent, recentRequests, 0.5),
                LatencyP95Ms = Percentile(recent, recentRequests, 0.95),
                LatencyP99Ms = Percentile(recent, recentRequests, 0.99),
                ErrorRate = recentRequests == 0 ? 0 : (double)recentErrors / recentRequests,
                Requests = _requests,
                Errors = _errors,
                InputTokens = _inputTokens,
                OutputTokens = _outputTokens,
                CostUsd = _cost,
                Series = points,
                Providers = [.. _providers.Keys.Union(_attempts.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(name =>
                {
                    var totals = _providers.GetValueOrDefault(name);
                    long requests = totals?.Requests ?? 0, errors = totals?.Errors ?? 0;
                    return new DashboardProvider(
                        name,
                        requests,
                        errors,
                        requests == 0 ? 1 : 1 - ((double)errors / requests),
                        Attempts(name),
                        totals is null ? [] : [.. totals.LastErrors.Reverse()]);
                })],
                Models = [.. _models.OrderByDescending(static m => m.Value.Requests).Select(static m => new DashboardModel(
                    m.Key.Provider,
                    m.Key.Model,
                    m.Value.Requests,
                    m.Value.Errors,
                    m.Value.InputTokens,
                    m.Value.OutputTokens,
                    m.Value.Cost,
                    Percentile(m.Value.Latency, m.Value.Requests, 0.95)))],
            };
        }
    }

    // Under the lock: this second's bucket, cleared when it held an older second.
    private Second Current()
    {
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        var second = _seconds[now % WindowSeconds];
        if (second.At != now)
        {
            second.Reset(now);
        }

        return second;
    }

    // The attempts of a provider by outcome, those that happened (as a counter's series: an outcome appears once counted).
    private Dictionary<string, long> Attempts(string provider)
    {
        var attempts = new Dictionary<string, long>(StringComparer.Ordinal);
        if (_attempts.TryGetValue(provider, out var counts))
        {
            for (var i = 0; i < Outcomes.Length; i++)
            {
                if (Volatile.Read(ref counts.ByOutcome[i]) is var count and > 0)
                {
                    attempts[Outcomes[i]] = count;
                }
            }
        }

        return attempts;
    }

    private ProviderTotals Provider(string provider)
    {
        if (!_providers.TryGetValue(provider, out var totals))
        {
            _providers[provider] = totals = new ProviderTotals();
        }

        return totals;
    }

    private ModelTotals Model(string provider, string model)
    {
        if (!_models.TryGetValue((provider, model), out var totals))
        {
            _models[(provider, model)] = totals = new ModelTotals();
        }

        return totals;
    }

    private static int Bucket(double seconds)
    {
        var ms = seconds * 1000;
        return ms <= 1 ? 0 : Math.Min(LatencyBuckets - 1, (int)Math.Ceiling(4 * Math.Log2(ms)));
    }

    private static double? Percentile(long[] buckets, long count, double quantile)
    {
        if (count == 0)
        {
            return null;
        }

        var rank = (long)Math.Ceiling(quantile * count);
        long seen = 0;
        for (var i = 0; i < buckets.Length; i++)
        {
            seen += buckets[i];
            if (seen >= rank)
            {
                return Math.Round(Math.Pow(2, i / 4.0), 2);
            }
        }

        return Math.Round(Math.Pow(2, (LatencyBuckets - 1) / 4.0), 2);
    }

    private static void Add(long[] into, long[] from)
    {
        for (var i = 0; i < into.Length; i++)
        {
            into[i] += from[i];
        }
    }

    private sealed class Second
    {
        public long At = -1;
        public long Requests;
        public long Errors;
        public long InputTokens;
        public long OutputTokens;
        public double Cost;
        public readonly long[] Latency = new long[LatencyBuckets];

        public void Reset(long at)
        {
            At = at;
            Requests = Errors = InputTokens = OutputTokens = 0;
            Cost = 0;
            Array.Clear(Latency);
        }
    }

    private sealed class ProviderTotals
    {
        public long Requests;
        public long Errors;
        public readonly Queue<DashboardError> LastErrors = new();
    }

    private sealed class AttemptCounts
    {
        public readonly long[] ByOutcome = new long[Outcomes.Length];
    }

    private sealed class ModelTotals
    {
        public long Requests;
        public long Errors;
        public long InputTokens;
        public long OutputTokens;
        public double Cost;
        public readonly long[] Latency = new long[LatencyBuckets];
    }
}

/// <summary>The overview the dashboard polls (<c>GET {prefix}/api/overview</c>).</summary>
internal sealed class DashboardOverview
{
    public long Now { get; init; }

    public long StartedAt { get; init; }

    public double RequestsPerSecond { get; init; }

    public double? LatencyP50Ms { get; init; }

    public double? LatencyP95Ms { get; init; }

    public double? LatencyP99Ms { get; init; }

    public double ErrorRate { get; init; }

    public long Requests { get; init; }

    public long Errors { get; init; }

    public long InputTokens { get; init; }

    public long OutputTokens { get; init; }

    public double CostUsd { get; init; }

    public required IReadOnlyList<DashboardPoint> Series { get; init; }

    public required IReadOnlyList<DashboardProvider> Providers { get; init; }

    public required IReadOnlyList<DashboardModel> Models { get; init; }
}

internal sealed record DashboardPoint(long Time, long Requests, long Errors, double? P50Ms, double? P95Ms, long Tokens, double CostUsd);

internal sealed record DashboardProvider(string Name, long Requests, long Errors, double SuccessRate, IReadOnlyDictionary<string, long> Attempts, IReadOnlyList<DashboardError> LastErrors);

internal sealed record DashboardModel(string Provider, string Model, long Requests, long Errors, long InputTokens, long OutputTokens, double CostUsd, double? P95Ms);

internal sealed record DashboardError(DateTimeOffset Time, string ErrorType, string Model);
