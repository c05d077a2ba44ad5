using System.Collections.Concurrent;
using System.Text;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Operations;
using Microsoft.Extensions.Options;
using static Bifrost.Middleware.Batches.BatchLineWriter;

namespace Bifrost.Middleware.Batches;

/// <summary>
/// Runs a batch: validates the input (<c>validating</c>), streams its lines through <see cref="IBifrostClient"/> with
/// bounded concurrency (<c>in_progress</c>), appends each result to the output or error file and saves the counts as
/// progress, then commits the files (<c>finalizing</c>) and ends <c>completed</c>, <c>expired</c> or <c>cancelled</c>.
/// Results are keyed by <c>custom_id</c>: a run resumed after a crash or a lost lease reads what the files already
/// hold and runs only the other lines, so no line is written twice and none is lost.
/// </summary>
internal sealed class BatchJobHandler(IServiceProvider services, OperationRegistry operations, IFileStore files, ProviderRegistry registry, NativeBatchRunner native, IOptions<BifrostOptions> options, TimeProvider time, ILogger<BatchJobHandler> logger) : IJobHandler
{
    public const string JobKind = "batch";
    private const int StoppedLinesPerWrite = 500;
    private readonly BatchesOptions _options = options.Value.Batches;
    private readonly FilesOptions _files = options.Value.Files;
    private readonly TimeSpan _maxLineDuration = options.Value.Jobs.MaxRunDuration;
    private readonly TelemetryOptions _telemetry = options.Value.Telemetry;
    private readonly Diagnostics.OperationalMetrics _metrics = services.GetRequiredService<Diagnostics.OperationalMetrics>();

    public string Kind => JobKind;

    /// <summary>A batch is bounded by its completion window, not by Jobs:MaxRunDuration; that deadline applies to each line instead.</summary>
    public bool HasRunDeadline => false;

    public async Task<JobRunResult> ExecuteAsync(JobExecution execution, CancellationToken cancellationToken)
    {
        var spec = JsonSerializer.Deserialize(execution.Job.Payload.Span, BifrostJson.Context.BatchSpec) ?? throw new InvalidOperationException("Empty batch payload.");
        var state = execution.Job.Progress is { } progress
            ? JsonSerializer.Deserialize(progress.Span, BifrostJson.Context.BatchProgress)!
            : new BatchProgress { Batch = spec.Batch };
        var batch = state.Batch;
        batch.ExtraFields = null;

        if (batch.Status == BatchStatus.Validating)
        {
            var (failure, models) = await ValidateAsync(batch, cancellationToken).ConfigureAwait(false);
            if (failure is not null)
            {
                return Finish(failure, cancelled: false);
            }

            // Native provider batches carry chat completions (what every provider batch API has in common), or another
            // endpoint the provider's adapter takes (INativeBatchEligibility: Cohere's embed jobs run embeddings).
            // A batch created with a virtual key runs line by line through the gateway, where the key's rules apply to each line.
            state.NativeProvider = Governance.GovernanceCaller.Current is null ? (await NativeBatchRunner.ChooseProviderAsync(registry, files, batch.InputFileId, models, spec.Model, batch.Endpoint, batch.RequestCounts.Total, cancellationToken).ConfigureAwait(false))?.Name : null;
            batch.Status = BatchStatus.InProgress;
            batch.InProgressAt = Now();
            await execution.SaveProgressAsync(Serialize(state), cancellationToken).ConfigureAwait(false);
        }

        if (state.NativeProvider is not null)
        {
            var outcome = await native.RunAsync(execution, state, spec, cancellationToken).ConfigureAwait(false);
            var counts = outcome.RequestCounts; // a native batch's lines are known when it ends
            _metrics.BatchLines("succeeded", counts.Succeeded);
            _metrics.BatchLines("failed", counts.Failed);
            _metrics.BatchLines("expired", counts.Expired);
            _metrics.BatchLines("cancelled", counts.Canceled);
            return Finish(outcome, outcome.Status == BatchStatus.Cancelled);
        }

        var owner = execution.Job.Owner;
        var suffix = batch.Id.StartsWith("batch_", StringComparison.Ordinal) ? batch.Id[6..] : batch.Id;
        await using var output = await files.OpenAppendAsync(new NewFile { Id = $"file-{suffix}-output", Filename = $"{batch.Id}_output.jsonl", Purpose = "batch_output", Owner = owner }, cancellationToken).ConfigureAwait(false);
        await using var errors = await files.OpenAppendAsync(new NewFile { Id = $"file-{suffix}-errors", Filename = $"{batch.Id}_errors.jsonl", Purpose = "batch_output", Owner = owner }, cancellationToken).ConfigureAwait(false);

        var run = new RunState(batch.RequestCounts.Total, _metrics);
        using var trace = Diagnostics.BatchTrace.Start(batch.Id, batch.Endpoint, batch.RequestCounts.Total, _telemetry);
        await ReadExistingAsync(output, run, isErrorFile: false, cancellationToken).ConfigureAwait(false);
        await ReadExistingAsync(errors, run, isErrorFile: true, cancellationToken).ConfigureAwait(false);

        var expiresAt = batch.ExpiresAt is { } e ? DateTimeOffset.FromUnixTimeSeconds(e) : DateTimeOffset.MaxValue;
        using var stopFeeding = CancellationTokenSource.CreateLinkedTokenSource(execution.CancellationRequested);
        using var expiry = new CancellationTokenSource(Clamp(expiresAt - time.GetUtcNow()), time);
        using var stopRegistration = expiry.Token.Register(static s => ((CancellationTokenSource)s!).Cancel(), stopFeeding);
        // Lines finished meanwhile are written together (one round trip for a database store), in the order they finished,
        // behind the lines' backs: a line hands its result over and the next one starts; it counts once written.
        using var writer = new ResultWriter(new GroupedLineAppender(output), new GroupedLineAppender(errors), cancellationToken);

        // Null while the run goes on; once stopped, whether by a cancel (true) or the window's end (false).
        bool? Stopped() => execution.CancellationRequested.IsCancellationRequested ? true : expiry.IsCancellationRequested ? false : null;

        using var progressStop = new CancellationTokenSource();
        var progressTask = SaveProgressLoopAsync(execution, state, run, progressStop.Token);

        // The input is read once, front to back, through one open stream: the lines a cancel or expiry stopped are read
        // on from where the run stopped, so every custom_id gets its line even if the file is gone from the store by then.
        await using var input = await files.OpenReadAsync(batch.InputFileId, cancellationToken).ConfigureAwait(false)
            ?? throw BifrostErrors.NotFound("input_file_not_found", $"The input file '{batch.InputFileId}' no longer exists.");
        using var reader = new StreamReader(input, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536, leaveOpen: true);
        try
        {
            await Parallel.ForEachAsync(
                PendingLinesAsync(reader, run, stopFeeding.Token, cancellationToken),
                new ParallelOptions { MaxDegreeOfParallelism = _options.Concurrency, CancellationToken = cancellationToken },
                async (line, token) => await RunLineAsync(batch, spec, line, writer, run, Stopped, trace, token).ConfigureAwait(false)).ConfigureAwait(false);
        }
        finally
        {
            await writer.WaitWrittenAsync().ConfigureAwait(false); // every result handed over is written (or failed) and counted
            await progressStop.CancelAsync().ConfigureAwait(false);
            await progressTask.ConfigureAwait(false);
        }

        writer.ThrowIfFailed(); // a result that could not be written fails the run (it is resumed: the line runs again)

        var cancelled = execution.CancellationRequested.IsCancellationRequested;
        var expired = !cancelled && expiry.IsCancellationRequested;
        if (cancelled || expired)
        {
            if (cancelled)
            {
                batch.CancellingAt ??= Now();
            }

            // Lines never run are reported in the error file, so every custom_id appears exactly once in the results;
            // written a few hundred at a time (one write each), as a cancel may leave most of a large batch unrun.
            var stopped = new List<ReadOnlyMemory<byte>>(StoppedLinesPerWrite);
            var ids = new List<string>(StoppedLinesPerWrite);
            await foreach (var line in PendingLinesAsync(reader, run, CancellationToken.None, cancellationToken).ConfigureAwait(false))
            {
                stopped.Add(StoppedLine(batch.Id, line.CustomId, cancelled));
                ids.Add(line.CustomId);
                if (stopped.Count == StoppedLinesPerWrite)
                {
                    await WriteStoppedAsync(writer.Errors, run, stopped, ids, cancelled, cancellationToken).ConfigureAwait(false);
                }
            }

            await WriteStoppedAsync(writer.Errors, run, stopped, ids, cancelled, cancellationToken).ConfigureAwait(false);
        }

        batch.Status = BatchStatus.Finalizing;
        batch.FinalizingAt = Now();
        run.CopyTo(batch.RequestCounts);
        trace?.Finish(run.Succeeded, run.Failed, run.Expired, run.Canceled);
        await execution.SaveProgressAsync(Serialize(state), cancellationToken).ConfigureAwait(false);

        batch.OutputFileId = output.Length > 0 ? Stored(await output.CommitAsync(cancellationToken).ConfigureAwait(false)).Id : null;
        batch.ErrorFileId = errors.Length > 0 ? Stored(await errors.CommitAsync(cancellationToken).ConfigureAwait(false)).Id : null;
        var now = Now();
        if (cancelled)
        {
            batch.Status = BatchStatus.Cancelled;
            batch.CancelledAt = now;
        }
        else if (expired)
        {
            batch.Status = BatchStatus.Expired;
            batch.ExpiredAt = now;
        }
        else
        {
            batch.Status = BatchStatus.Completed;
            batch.CompletedAt = now;
        }

        BatchLog.Finished(logger, batch.Id, batch.Status, batch.RequestCounts.Succeeded, batch.RequestCounts.Failed);
        return Finish(batch, cancelled);
    }

    private StoredFile Stored(StoredFile file)
    {
        _metrics.FileStored(file.Purpose, file.Bytes);
        return file;
    }

    /// <summary>The <c>validating</c> phase: the input exists, every line is well-formed and calls the batch's endpoint. Returns the failed batch, or null.</summary>
    private async Task<(BatchObject? Failure, IReadOnlySet<string> Models)> ValidateAsync(BatchObject batch, CancellationToken cancellationToken)
    {
        await using var input = await files.OpenReadAsync(batch.InputFileId, cancellationToken).ConfigureAwait(false);
        BatchInputValidator.Result result;
        if (input is null)
        {
            result = new BatchInputValidator.Result(0, [(0, $"the input file '{batch.InputFileId}' does not exist")], new HashSet<string>());
        }
        else
        {
            result = await BatchInputValidator.ValidateAsync(input, _files.MaxBatchLines, operations.BatchUrls, cancellationToken).ConfigureAwait(false);
        }

        var errors = result.Errors.Select(e => new BatchError { Code = "invalid_request", Message = e.Message, Line = e.Line > 0 ? e.Line : null }).ToList();
        foreach (var url in result.Urls.Where(u => u != batch.Endpoint))
        {
            errors.Add(new BatchError { Code = "mismatched_endpoint", Message = $"Lines call '{url}' but the batch endpoint is '{batch.Endpoint}'.", Param = "url" });
        }

        batch.RequestCounts.Total = result.Lines;
        batch.RequestCounts.Pending = result.Lines;
        if (errors.Count == 0)
        {
            return (null, result.Models);
        }

        batch.Status = BatchStatus.Failed;
        batch.FailedAt = Now();
        batch.Errors = new BatchErrors { Data = errors };
        return (batch, result.Models);
    }

    private async Task RunLineAsync(BatchObject batch, BatchSpec spec, InputLine line, ResultWriter writer, RunState run, Func<bool?> stopped, Diagnostics.BatchTrace? trace, CancellationToken cancellationToken)
    {
        // The last look before the line starts: a cancel (or the window's end) that came after the line was read stops it here.
        if (stopped() is { } cancelled)
        {
            await WriteStoppedAsync(batch.Id, line.CustomId, writer.Errors, run, cancelled, cancellationToken).ConfigureAwait(false);
            return;
        }

        using var quiet = trace?.EnterLine(); // past the first lines, the line's spans are left out
        byte[] result;
        bool success;
        try
        {
            using var document = JsonDocument.Parse(line.Json);
            var body = document.RootElement.GetProperty("body");

            // Each line gets Jobs:MaxRunDuration: a line that runs longer fails alone with job_timeout, the batch goes on.
            using var lineDeadline = new CancellationTokenSource(_maxLineDuration, time);
            using var lineCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lineDeadline.Token);
            BatchLineAnswer call;
            try
            {
                call = await CallAsync(batch.Endpoint, body, spec.Model, new BatchLineId(batch.Id, line.CustomId), lineCts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (lineDeadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested && ex is OperationCanceledException or BifrostException)
            {
                throw BifrostErrors.Timeout("job_timeout", $"The request ran longer than the gateway allows one request of a batch to run (Jobs:MaxRunDuration = {_maxLineDuration}) and was stopped.");
            }

            var (requestId, writeBody) = call;
            result = ResponseLine(batch.Id, line.CustomId, 200, requestId, writeBody);
            success = true;
        }
        catch (BifrostException ex)
        {
            result = ResponseLine(batch.Id, line.CustomId, ex.StatusCode, null, writer => JsonSerializer.Serialize(writer, ex.Error, BifrostJson.Context.BifrostError));
            success = false;
            trace?.LineFailed(line.CustomId, ex.StatusCode, ex.Error.Error.Code);
        }
        catch (JsonException ex)
        {
            // The same 400 the route answers over HTTP for this body.
            var error = BifrostException.InvalidJson(ex).Error;
            result = ResponseLine(batch.Id, line.CustomId, error.StatusCode, null, writer => JsonSerializer.Serialize(writer, error, BifrostJson.Context.BifrostError));
            success = false;
            trace?.LineFailed(line.CustomId, error.StatusCode, error.Error.Code);
        }

        // Handed over, not awaited: the line counts once its result is written (a crash before loses it uncounted, and a
        // resumed run runs it again); the next line starts meanwhile, so lines do not wait for the store in turn.
        await writer.HandOverAsync(success, result, () =>
        {
            run.Finished(line.CustomId);
            if (success)
            {
                Interlocked.Increment(ref run.Succeeded);
            }
            else
            {
                Interlocked.Increment(ref run.Failed);
            }

            _metrics.BatchLines(success ? "succeeded" : "failed");
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One line's request through the gateway, by the operation that serves the batch's endpoint.</summary>
    private Task<BatchLineAnswer> CallAsync(string endpoint, JsonElement body, string? defaultModel, BatchLineId line, CancellationToken cancellationToken) =>
        (operations.ForBatchUrl(endpoint) ?? throw BifrostErrors.InvalidValue($"Batch lines of '{endpoint}' are not served by this gateway.", "url"))
            .RunBatchLineAsync(services, body, defaultModel, line, cancellationToken);

    /// <summary>Reports a line that never ran because the batch was cancelled or its window ended.</summary>
    private static async Task WriteStoppedAsync(string batchId, string customId, GroupedLineAppender errors, RunState run, bool cancelled, CancellationToken cancellationToken)
    {
        await errors.AppendAsync(StoppedLine(batchId, customId, cancelled), cancellationToken).ConfigureAwait(false);
        run.Stopped(customId, cancelled);
    }

    /// <summary>Reports lines that never ran, in one write; clears the lists.</summary>
    private static async Task WriteStoppedAsync(GroupedLineAppender errors, RunState run, List<ReadOnlyMemory<byte>> lines, List<string> ids, bool cancelled, CancellationToken cancellationToken)
    {
        if (lines.Count == 0)
        {
            return;
        }

        await errors.AppendAsync(lines, cancellationToken).ConfigureAwait(false);

        foreach (var id in ids)
        {
            run.Stopped(id, cancelled);
        }

        lines.Clear();
        ids.Clear();
    }

    private static byte[] StoppedLine(string batchId, string customId, bool cancelled) => cancelled
        ? CancelledLine(batchId, customId)
        : ErrorLine(batchId, customId, "batch_expired", "The batch's completion window ended before this request ran.");

    /// <summary>Streams the input's requests whose custom_id has no result yet; stops yielding when <paramref name="stop"/> fires.</summary>
    private static async IAsyncEnumerable<InputLine> PendingLinesAsync(StreamReader reader, RunState run, CancellationToken stop, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? text;
        while (!stop.IsCancellationRequested && (text = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            var customId = ReadCustomId(text);
            if (customId is null || run.IsDone(customId))
            {
                continue;
            }

            yield return new InputLine(customId, text);
        }
    }

    /// <summary>Counts and remembers the results a previous run already wrote.</summary>
    private static async Task ReadExistingAsync(IAppendableFile file, RunState run, bool isErrorFile, CancellationToken cancellationToken)
    {
        if (file.Length == 0)
        {
            return;
        }

        await using var stream = await file.OpenReadAsync(cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 65536);
        string? text;
        while ((text = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            if (ReadCustomId(text) is not { } id || !run.AddExisting(id))
            {
                continue;
            }

            if (!isErrorFile)
            {
                run.Succeeded++;
                continue;
            }

            var code = ReadErrorCode(text);
            if (code == "batch_expired")
            {
                run.Expired++;
            }
            else if (code == "batch_cancelled")
            {
                run.Canceled++;
            }
            else
            {
                run.Failed++;
            }
        }
    }

    private async Task SaveProgressLoopAsync(JobExecution execution, BatchProgress state, RunState run, CancellationToken stop)
    {
        var batch = state.Batch;
        try
        {
            using var wake = CancellationTokenSource.CreateLinkedTokenSource(stop, execution.CancellationRequested);
            while (true)
            {
                // A cancel request wakes the loop at once, so the batch shows cancelling (and when) without waiting a tick.
                try
                {
                    await Task.Delay(_options.ProgressInterval, time, batch.CancellingAt is null ? wake.Token : stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                }

                run.CopyTo(batch.RequestCounts);
                if (execution.CancellationRequested.IsCancellationRequested && batch.CancellingAt is null)
                {
                    batch.Status = BatchStatus.Cancelling;
                    batch.CancellingAt = Now();
                }

                await execution.SaveProgressAsync(Serialize(state), stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            BatchLog.ProgressFailed(logger, batch.Id, ex);
        }
    }

    private static string? ReadCustomId(string line)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(line));
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isId = reader.ValueTextEquals("custom_id"u8);
                reader.Read();
                if (isId)
                {
                    return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }

                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }

    private static string? ReadErrorCode(string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String
                ? code.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static JobRunResult Finish(BatchObject batch, bool cancelled) => new(new JobOutcome(200, Serialize(batch)), cancelled);

    private static byte[] Serialize(BatchObject batch) => JsonSerializer.SerializeToUtf8Bytes(batch, BifrostJson.Context.BatchObject);

    private static byte[] Serialize(BatchProgress state) => JsonSerializer.SerializeToUtf8Bytes(state, BifrostJson.Context.BatchProgress);

    private long Now() => time.GetUtcNow().ToUnixTimeSeconds();

    private static TimeSpan Clamp(TimeSpan delay) =>
        delay <= TimeSpan.Zero ? TimeSpan.Zero : delay > TimeSpan.FromDays(49) ? TimeSpan.FromDays(49) : delay;

    private readonly record struct InputLine(string CustomId, string Json);

    /// <summary>
    /// The output and error files' writers, and the results handed over but not yet written: at most
    /// <see cref="MaxUnwritten"/> (a line waits to hand its result over beyond that), written with the run's token.
    /// </summary>
    private sealed class ResultWriter(GroupedLineAppender output, GroupedLineAppender errors, CancellationToken runToken) : IDisposable
    {
        public const int MaxUnwritten = 1024;
        private readonly SemaphoreSlim _unwritten = new(MaxUnwritten, MaxUnwritten);
        private Exception? _failure;

        public GroupedLineAppender Output => output;

        public GroupedLineAppender Errors => errors;

        /// <summary>Hands a result over (waiting while <see cref="MaxUnwritten"/> are unwritten); <paramref name="written"/> runs once it is written.</summary>
        public async Task HandOverAsync(bool success, byte[] line, Action written, CancellationToken cancellationToken)
        {
            ThrowIfFailed();
            await _unwritten.WaitAsync(cancellationToken).ConfigureAwait(false);

            // Appended in the order handed over (the appender queues the line before its first await), with the run's token.
            _ = (success ? output : errors).AppendAsync(line, runToken).ContinueWith(
                static (write, state) =>
                {
                    var (self, onWritten) = ((ResultWriter, Action))state!;
                    if (write.IsCompletedSuccessfully)
                    {
                        onWritten();
                    }
                    else
                    {
                        Interlocked.CompareExchange(ref self._failure, write.Exception?.InnerException ?? new OperationCanceledException(), null);
                    }

                    self._unwritten.Release();
                },
                (this, written),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }

        /// <summary>Waits until every result handed over was written (or failed) and counted (all the permits are back); never throws.</summary>
        public async Task WaitWrittenAsync()
        {
            for (var i = 0; i < MaxUnwritten; i++)
            {
                await _unwritten.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            }

            _unwritten.Release(MaxUnwritten);
        }

        public void Dispose() => _unwritten.Dispose();

        public void ThrowIfFailed()
        {
            if (Volatile.Read(ref _failure) is { } failure)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            }
        }
    }

    /// <summary>Which custom_ids have a result (from earlier runs or this one), and the counts.</summary>
    private sealed class RunState(int total, Diagnostics.OperationalMetrics metrics)
    {
        private readonly ConcurrentDictionary<string, byte> _done = new(StringComparer.Ordinal);
        public int Succeeded;
        public int Failed;
        public int Expired;
        public int Canceled;

        public bool IsDone(string customId) => _done.ContainsKey(customId);

        public bool AddExisting(string customId) => _done.TryAdd(customId, 0);

        public void Finished(string customId) => _done.TryAdd(customId, 0);

        /// <summary>A line reported as never run (cancelled or expired).</summary>
        public void Stopped(string customId, bool cancelled)
        {
            _done.TryAdd(customId, 0);
            if (cancelled)
            {
                Interlocked.Increment(ref Canceled);
            }
            else
            {
                Interlocked.Increment(ref Expired);
            }

            metrics.BatchLines(cancelled ? "cancelled" : "expired");
        }

        public void CopyTo(BatchRequestCounts counts)
        {
            counts.Total = total;
            counts.Succeeded = Volatile.Read(ref Succeeded);
            counts.Completed = counts.Succeeded;
            counts.Failed = Volatile.Read(ref Failed);
            counts.Expired = Volatile.Read(ref Expired);
            counts.Canceled = Volatile.Read(ref Canceled);
            counts.Pending = Math.Max(0, total - counts.Succeeded - counts.Failed - counts.Expired - counts.Canceled);
        }
    }
}

internal static partial class BatchLog
{
    [LoggerMessage(200, LogLevel.Information, "Batch {BatchId} ended {Status}: {Succeeded} succeeded, {Failed} failed.")]
    public static partial void Finished(ILogger logger, string batchId, string status, int succeeded, int failed);

    [LoggerMessage(201, LogLevel.Warning, "Batch {BatchId}: saving progress failed.")]
    public static partial void ProgressFailed(ILogger logger, string batchId, Exception exception);
}
