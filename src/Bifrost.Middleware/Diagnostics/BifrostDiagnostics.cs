using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Bifrost.Middleware.Diagnostics;

/// <summary>Names of the meter, activity source and instruments (OpenTelemetry GenAI semantic conventions).</summary>
internal static class BifrostTelemetry
{
    public const string Name = "Bifrost.Middleware";

    public const string OperationDuration = "gen_ai.client.operation.duration";
    public const string TokenUsage = "gen_ai.client.token.usage";
    public const string Attempts = "bifrost.provider.attempts";
    public const string TimeToFirstChunk = "gen_ai.client.operation.time_to_first_chunk";
    public const string Cost = "bifrost.cost";

    public const string OperationNameTag = "gen_ai.operation.name";
    public const string ProviderTag = "gen_ai.provider.name";
    public const string RequestModelTag = "gen_ai.request.model";
    public const string TokenTypeTag = "gen_ai.token.type";
    public const string ErrorTypeTag = "error.type";
    public const string OutcomeTag = "bifrost.outcome";

    public static readonly ActivitySource ActivitySource = new(Name, typeof(BifrostTelemetry).Assembly.GetName().Version?.ToString());
}

/// <summary>The gateway's instruments, created from the host's <see cref="IMeterFactory"/>.</summary>
internal sealed class BifrostMetrics
{
    public BifrostMetrics(IMeterFactory meterFactory)
    {
        var meter = Meter = meterFactory.Create(BifrostTelemetry.Name);
        Duration = meter.CreateHistogram<double>(
            BifrostTelemetry.OperationDuration,
            unit: "s",
            description: "Duration of gateway operations, from the request to the last byte of the answer.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92] });
        TokenUsage = meter.CreateHistogram<long>(BifrostTelemetry.TokenUsage, unit: "{token}", description: "Tokens used per request, by token type.");
        Attempts = meter.CreateCounter<long>(BifrostTelemetry.Attempts, unit: "{attempt}", description: "Provider attempts, by outcome (success, retry, fallback, error).");
        TimeToFirstChunk = meter.CreateHistogram<double>(
            BifrostTelemetry.TimeToFirstChunk,
            unit: "s",
            description: "Time from a streamed request to its first chunk (streams that fail before it record nothing here).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24] });
        Cost = meter.CreateCounter<double>(BifrostTelemetry.Cost, unit: "{USD}", description: "Cost of the answers at the pricing catalog's prices (answers of unpriced models are not counted).");
    }

    public Histogram<double> TimeToFirstChunk { get; }

    public Counter<double> Cost { get; }

    /// <summary>This host's meter (the dashboard listens to it alone).</summary>
    public Meter Meter { get; }

    public Histogram<double> Duration { get; }

    public Histogram<long> TokenUsage { get; }

    public Counter<long> Attempts { get; }

    /// <summary>
    /// Whether anyone listens to the per-operation instruments or observes the operations (checked per call, so a listener
    /// may attach at any time).
    /// </summary>
    public bool IsEnabled => _observer is not null || Duration.Enabled || TokenUsage.Enabled || TimeToFirstChunk.Enabled || Cost.Enabled;

    private IOperationObserver? _observer;

    /// <summary>
    /// Gives every finished operation and every provider attempt to <paramref name="observer"/> as well, one call each,
    /// whatever listens to the meter (the dashboard: one record per request instead of a listener callback per measurement).
    /// One observer per host; it stays for the host's life.
    /// </summary>
    public void Observe(IOperationObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        if (Interlocked.CompareExchange(ref _observer, observer, null) is { } existing && !ReferenceEquals(existing, observer))
        {
            throw new InvalidOperationException("The gateway's operations are already observed.");
        }
    }

    public void RecordTimeToFirstChunk(string operation, string? provider, string? model, double seconds)
    {
        if (TimeToFirstChunk.Enabled)
        {
            var tags = new TagList { { BifrostTelemetry.OperationNameTag, operation }, { BifrostTelemetry.ProviderTag, provider }, { BifrostTelemetry.RequestModelTag, model } };
            TimeToFirstChunk.Record(seconds, in tags);
        }
    }

    public void RecordAttempt(string provider, string outcome)
    {
        if (Attempts.Enabled)
        {
            Attempts.Add(1, new KeyValuePair<string, object?>(BifrostTelemetry.ProviderTag, provider), new KeyValuePair<string, object?>(BifrostTelemetry.OutcomeTag, outcome));
        }

        _observer?.OnAttempt(provider, outcome);
    }

    /// <summary>
    /// A finished operation, once per call: its duration (with <c>error.type</c> when it failed), its token usage (input and
    /// output, when reported) and, when it succeeded, its cost; then the observer. One <see cref="TagList"/> on the stack
    /// serves every instrument (no allocation, no boxing: every tag value is a string).
    /// </summary>
    public void RecordOperation(in OperationRecord record)
    {
        var tags = new TagList
        {
            { BifrostTelemetry.OperationNameTag, record.Operation },
            { BifrostTelemetry.ProviderTag, record.Provider },
            { BifrostTelemetry.RequestModelTag, record.Model },
        };
        if (record.ErrorType is null && record.Cost is { } cost && Cost.Enabled)
        {
            Cost.Add(cost, in tags);
        }

        if (record.Usage is { } tokens && TokenUsage.Enabled)
        {
            tags.Add(BifrostTelemetry.TokenTypeTag, "input");
            TokenUsage.Record(tokens.Input, in tags);
            tags[3] = new KeyValuePair<string, object?>(BifrostTelemetry.TokenTypeTag, "output");
            TokenUsage.Record(tokens.Output, in tags);
            tags.RemoveAt(3);
        }

        if (Duration.Enabled)
        {
            if (record.ErrorType is not null)
            {
                tags.Add(BifrostTelemetry.ErrorTypeTag, record.ErrorType);
            }

            Duration.Record(record.Seconds, in tags);
        }

        _observer?.OnOperation(in record);
    }
}

/// <summary>
/// One finished gateway operation as the telemetry layer records it, once per call: the operation's metric name, the
/// provider and model that served it (of its <c>extra_fields</c>), its duration, its error type when it failed, the tokens
/// it reported and its cost (recorded only for a call that succeeded).
/// </summary>
internal readonly record struct OperationRecord(string Operation, string? Provider, string? Model, double Seconds, string? ErrorType, Operations.TokenCounts? Usage, double? Cost);

/// <summary>Takes the gateway's operations directly from <see cref="BifrostMetrics"/> (one call per operation, one per provider attempt).</summary>
internal interface IOperationObserver
{
    /// <summary>A finished operation (called on the request's thread: keep it short, never throw).</summary>
    void OnOperation(in OperationRecord record);

    /// <summary>A provider attempt ended with <paramref name="outcome"/> (<c>success</c>, <c>retry</c>, <c>fallback</c>, <c>error</c>).</summary>
    void OnAttempt(string provider, string outcome);
}

/// <summary>All log messages of the gateway. Prompts and completions are never logged.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Warning, "Provider '{Provider}': key variable '{Variable}' is not set; the key is skipped.")]
    public static partial void KeyVariableMissing(ILogger logger, string provider, string variable);

    [LoggerMessage(2, LogLevel.Information, "Provider '{Provider}' attempt {Attempt} failed with {StatusCode} ({Code}); retrying in {DelayMs} ms.")]
    public static partial void Retrying(ILogger logger, string provider, int attempt, int statusCode, string? code, long delayMs);

    [LoggerMessage(3, LogLevel.Warning, "Provider '{Provider}' failed with {StatusCode} ({Code}); falling back to '{Fallback}'.")]
    public static partial void FallingBack(ILogger logger, string provider, int statusCode, string? code, string fallback);

    [LoggerMessage(4, LogLevel.Warning, "Provider '{Provider}' failed with {StatusCode} ({Code}): {Message}")]
    public static partial void ProviderFailed(ILogger logger, string provider, int statusCode, string? code, string message);

    [LoggerMessage(5, LogLevel.Error, "Provider adapter '{Provider}' threw an unexpected exception.")]
    public static partial void AdapterCrashed(ILogger logger, string provider, Exception exception);

    [LoggerMessage(6, LogLevel.Warning, "Listing the models of provider '{Provider}' failed; it is left out of the list.")]
    public static partial void ListModelsFailed(ILogger logger, string provider, Exception exception);

    [LoggerMessage(7, LogLevel.Debug, "Stream from provider '{Provider}' failed after it started; the error is sent to the client as an SSE event.")]
    public static partial void StreamFailedAfterStart(ILogger logger, string provider, Exception exception);

    [LoggerMessage(8, LogLevel.Debug, "Request {Method} {Path} rejected with {StatusCode}: {Message}")]
    public static partial void RequestRejected(ILogger logger, string method, string path, int statusCode, string message);

    [LoggerMessage(9, LogLevel.Error, "Request {Method} {Path} (request id {RequestId}) failed with an unexpected exception; answered 500 internal_error.")]
    public static partial void RequestCrashed(ILogger logger, string method, string path, string requestId, Exception exception);

    [LoggerMessage(10, LogLevel.Error, "Request {Method} {Path} (request id {RequestId}) failed with an unexpected exception after its answer started; {Outcome}.")]
    public static partial void RequestCrashedAfterStart(ILogger logger, string method, string path, string requestId, string outcome, Exception exception);
}
