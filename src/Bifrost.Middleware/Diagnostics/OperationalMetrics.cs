using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Bifrost.Middleware.Diagnostics;

/// <summary>Names of the operational instruments (jobs, admission, batches, files) of the meter <c>Bifrost.Middleware</c>, and their tags.</summary>
internal static class OperationalTelemetry
{
    public const string JobsQueued = "bifrost.jobs.queued";
    public const string JobsRunning = "bifrost.jobs.running";
    public const string JobsFinished = "bifrost.jobs.finished";
    public const string JobWaitDuration = "bifrost.job.wait.duration";
    public const string JobRunDuration = "bifrost.job.run.duration";
    public const string AdmissionRefusals = "bifrost.admission.refusals";
    public const string BatchLines = "bifrost.batch.lines";
    public const string FilesStoredBytes = "bifrost.files.stored.bytes";
    public const string FilesStored = "bifrost.files.stored";
    public const string RecordsDropped = "bifrost.records.dropped";

    public const string JobKindTag = "bifrost.job.kind";
    public const string JobStatusTag = "bifrost.job.status";
    public const string AdmissionSourceTag = "bifrost.admission.source";
    public const string StatusCodeTag = "http.response.status_code";
    public const string FilePurposeTag = "bifrost.file.purpose";
    public const string RecordKindTag = "bifrost.record.kind";

    /// <summary>The admission source of the job queue's 429s (<c>job_queue_full</c>, <c>owner_queue_full</c>, <c>owner_storage_full</c>).</summary>
    public const string JobQueueSource = "job_queue";

    /// <summary>The admission source of governance's 401/402/403/429s.</summary>
    public const string GovernanceSource = "governance";

    /// <summary>The admission source of the uploads refused with 413 <c>owner_storage_full</c> (the caller's storage quota).</summary>
    public const string FileUploadSource = "file_upload";
}

/// <summary>
/// The gateway's operational instruments: jobs queued, running and finished, job wait and run time, admission refusals,
/// batch lines done and files stored. Created from the host's <see cref="IMeterFactory"/> on the meter
/// <c>Bifrost.Middleware</c> (beside <see cref="BifrostMetrics"/>). Counters and histograms record only when something
/// listens (<see cref="Instrument.Enabled"/>); the observable instruments are read only when a listener collects.
/// </summary>
internal sealed class OperationalMetrics
{
    /// <summary>How long a collection waits for the store's count of unfinished jobs before it reports the previous one.</summary>
    private static readonly TimeSpan QueuedWait = TimeSpan.FromMilliseconds(250);

    private static readonly InstrumentAdvice<double> JobSeconds = new()
    {
        HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400],
    };

    private readonly IServiceProvider _services;
    private IJobStore? _store;
    private readonly Counter<long> _finished;
    private readonly Histogram<double> _wait;
    private readonly Histogram<double> _run;
    private readonly Counter<long> _refusals;
    private readonly Counter<long> _batchLines;
    private readonly Counter<long> _fileBytes;
    private readonly Counter<long> _files;
    private Func<IEnumerable<string>>? _runningKinds;
    private string[] _kinds = [];
    private long _unfinished = -1;
    private int _refreshing;

    public OperationalMetrics(IMeterFactory meterFactory, IServiceProvider services)
    {
        _services = services; // the job store is resolved at the first collection, not when the pipeline is built
        var meter = meterFactory.Create(BifrostTelemetry.Name);
        meter.CreateObservableGauge(
            OperationalTelemetry.JobsQueued,
            ObserveQueued,
            unit: "{job}",
            description: "Jobs in the job store that have not finished (pending + processing, every instance sharing the store): the figure Jobs:MaxQueuedJobs bounds.");
        meter.CreateObservableUpDownCounter(
            OperationalTelemetry.JobsRunning,
            ObserveRunning,
            unit: "{job}",
            description: "Jobs this instance's workers run now, by job kind.");
        _finished = meter.CreateCounter<long>(OperationalTelemetry.JobsFinished, unit: "{job}", description: "Jobs that reached a final status (completed, failed, cancelled), by job kind.");
        _wait = meter.CreateHistogram(OperationalTelemetry.JobWaitDuration, unit: "s", description: "Time a job waited from its submission to its first start by a worker, by job kind.", advice: JobSeconds);
        _run = meter.CreateHistogram(OperationalTelemetry.JobRunDuration, unit: "s", description: "Time one run of a job took, from its claim to its end, by job kind and the run's outcome.", advice: JobSeconds);
        _refusals = meter.CreateCounter<long>(OperationalTelemetry.AdmissionRefusals, unit: "{request}", description: "Requests refused before any work was done: the job queue's 429s, uploads over the storage quota (413) and governance's 401/402/403/429s, by error code.");
        _batchLines = meter.CreateCounter<long>(OperationalTelemetry.BatchLines, unit: "{line}", description: "Batch lines done, by outcome (succeeded, failed, expired, cancelled).");
        _fileBytes = meter.CreateCounter<long>(OperationalTelemetry.FilesStoredBytes, unit: "By", description: "Bytes written to the file store (uploads, inline batch inputs, batch output and error files), by purpose.");
        _files = meter.CreateCounter<long>(OperationalTelemetry.FilesStored, unit: "{file}", description: "Files written to the file store, by purpose.");
        meter.CreateObservableCounter(
            OperationalTelemetry.RecordsDropped,
            ObserveDropped,
            unit: "{record}",
            description: "Records the background writers dropped instead of storing (queue full, store failing, redactor failing), by record kind (request_log, usage): 0 while the request log and the usage ledger are complete.");
    }

    private IEnumerable<Measurement<long>> ObserveDropped()
    {
        var log = _services.GetService<RequestLog.RequestLogWriter>();
        var ledger = _services.GetService<Governance.UsageLedger>();
        return
        [
            new(log?.Dropped ?? 0, new KeyValuePair<string, object?>(OperationalTelemetry.RecordKindTag, "request_log")),
            new(ledger?.Dropped ?? 0, new KeyValuePair<string, object?>(OperationalTelemetry.RecordKindTag, "usage")),
        ];
    }

    /// <summary>Makes the workers' running jobs observable: <paramref name="kinds"/> are reported (0 included), <paramref name="running"/> gives the kinds of the jobs running now.</summary>
    public void TrackRunning(IEnumerable<string> kinds, Func<IEnumerable<string>> running)
    {
        _kinds = [.. kinds.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        _runningKinds = running;
    }

    /// <summary>A job's first start: the time it waited since its submission.</summary>
    public void JobStarted(JobRecord job, DateTimeOffset now)
    {
        if (_wait.Enabled)
        {
            var waited = (job.StartedAt ?? now) - job.CreatedAt;
            _wait.Record(Math.Max(0, waited.TotalSeconds), new KeyValuePair<string, object?>(OperationalTelemetry.JobKindTag, job.Kind));
        }
    }

    /// <summary>A run ended: its duration with its outcome (<c>completed</c>, <c>failed</c>, <c>cancelled</c>, <c>retry</c>, <c>released</c>, <c>lease_lost</c>).</summary>
    public void JobRunEnded(string kind, string outcome, TimeSpan duration)
    {
        if (_run.Enabled)
        {
            _run.Record(duration.TotalSeconds, new KeyValuePair<string, object?>(OperationalTelemetry.JobKindTag, kind), new KeyValuePair<string, object?>(BifrostTelemetry.OutcomeTag, outcome));
        }
    }

    /// <summary>A job reached a final status (<c>completed</c>, <c>failed</c>, <c>cancelled</c>); <paramref name="errorType"/> is the error code of a failure.</summary>
    public void JobFinished(string kind, string status, string? errorType = null)
    {
        if (_finished.Enabled)
        {
            var tags = new TagList
            {
                { OperationalTelemetry.JobKindTag, kind },
                { OperationalTelemetry.JobStatusTag, status },
            };
            if (errorType is not null)
            {
                tags.Add(BifrostTelemetry.ErrorTypeTag, errorType);
            }

            _finished.Add(1, tags);
        }
    }

    /// <summary>Counts an admission refusal and returns the exception, to be thrown: <c>throw metrics.Refused(error, source)</c>.</summary>
    public BifrostException Refused(BifrostException error, string source)
    {
        if (_refusals.Enabled)
        {
            _refusals.Add(
                1,
                new KeyValuePair<string, object?>(BifrostTelemetry.ErrorTypeTag, error.Error.Error.Code ?? error.Error.Error.Type ?? "unknown"),
                new KeyValuePair<string, object?>(OperationalTelemetry.StatusCodeTag, error.StatusCode),
                new KeyValuePair<string, object?>(OperationalTelemetry.AdmissionSourceTag, source));
        }

        return error;
    }

    /// <summary>Counts a governance refusal (401, 402, 403, 429); other errors (a 400, a 503 of an unreachable store) are not refusals.</summary>
    public void GovernanceRefused(BifrostException error)
    {
        if (error.StatusCode is 401 or 402 or 403 or 429)
        {
            Refused(error, OperationalTelemetry.GovernanceSource);
        }
    }

    /// <summary>Batch lines done with one outcome (<c>succeeded</c>, <c>failed</c>, <c>expired</c>, <c>cancelled</c>).</summary>
    public void BatchLines(string outcome, long count = 1)
    {
        if (count > 0 && _batchLines.Enabled)
        {
            _batchLines.Add(count, new KeyValuePair<string, object?>(BifrostTelemetry.OutcomeTag, outcome));
        }
    }

    /// <summary>A file written to the file store.</summary>
    public void FileStored(string purpose, long bytes)
    {
        var tag = new KeyValuePair<string, object?>(OperationalTelemetry.FilePurposeTag, purpose);
        if (_files.Enabled)
        {
            _files.Add(1, tag);
        }

        if (_fileBytes.Enabled)
        {
            _fileBytes.Add(bytes, tag);
        }
    }

    private IEnumerable<Measurement<long>> ObserveRunning()
    {
        if (_runningKinds is not { } running)
        {
            return [];
        }

        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var kind in _kinds)
        {
            counts[kind] = 0;
        }

        foreach (var kind in running())
        {
            counts[kind] = counts.GetValueOrDefault(kind) + 1;
        }

        var measurements = new List<Measurement<long>>(counts.Count);
        foreach (var (kind, count) in counts)
        {
            measurements.Add(new Measurement<long>(count, new KeyValuePair<string, object?>(OperationalTelemetry.JobKindTag, kind)));
        }

        return measurements;
    }

    /// <summary>
    /// The store's figure, read at each collection: at once when the store answers synchronously (the in-memory store),
    /// else waited for a moment (<see cref="QueuedWait"/>); a read that takes longer goes on in the background and this
    /// collection reports the previous figure (a collection never hangs on a slow database). Nothing is reported before
    /// a first figure is known, nor after a read failed.
    /// </summary>
    private IEnumerable<Measurement<long>> ObserveQueued()
    {
        if (Interlocked.Exchange(ref _refreshing, 1) == 0)
        {
            Task? running = null;
            try
            {
                var store = _store ??= _services.GetRequiredService<IJobStore>();
                var pending = store.CountUnfinishedAsync(CancellationToken.None);
                if (pending.IsCompletedSuccessfully)
                {
                    Volatile.Write(ref _unfinished, pending.Result);
                    Volatile.Write(ref _refreshing, 0);
                }
                else
                {
                    running = ReadAsync(pending);
                }
            }
            catch (Exception)
            {
                Volatile.Write(ref _unfinished, -1);
                Volatile.Write(ref _refreshing, 0);
            }

            running?.Wait(QueuedWait);
        }

        var unfinished = Volatile.Read(ref _unfinished);
        return unfinished < 0 ? [] : [new Measurement<long>(unfinished)];
    }

    private async Task ReadAsync(ValueTask<long> pending)
    {
        try
        {
            Volatile.Write(ref _unfinished, await pending.ConfigureAwait(false));
        }
        catch (Exception)
        {
            Volatile.Write(ref _unfinished, -1); // the store failed: report nothing rather than an old figure
        }
        finally
        {
            Volatile.Write(ref _refreshing, 0);
        }
    }
}
