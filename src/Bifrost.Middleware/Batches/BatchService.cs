using Bifrost.Middleware.Gateway;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Batches;

/// <summary>The batch lifecycle on top of the job store: create (a job of kind <c>batch</c>), read, list, cancel.</summary>
internal sealed class BatchService(AsyncJobService jobs, IFileStore files, ProviderRegistry registry, Operations.OperationRegistry operations, IOptions<BifrostOptions> options, TimeProvider time, IJobCancellationSignal cancellations, Diagnostics.OperationalMetrics metrics)
{
    /// <summary>The batch endpoints OpenAI documents (a request for one the gateway does not serve says "not supported yet").</summary>
    internal static readonly string[] OpenAIEndpoints = ["/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses", "/v1/moderations", "/v1/images/generations", "/v1/images/edits"];

    public async Task<BatchObject> CreateAsync(string owner, BatchCreateRequest request, CancellationToken cancellationToken)
    {
        if (request.Requests is { } inline)
        {
            // Bifrost's inline requests: the same lines as an uploaded file, stored as one, so the rest is identical.
            if (!string.IsNullOrWhiteSpace(request.InputFileId))
            {
                throw Invalid("Give either 'input_file_id' or 'requests', not both.", "requests");
            }

            if (inline.Count == 0)
            {
                throw Invalid("'requests' must hold at least one request.", "requests");
            }

            if (string.IsNullOrWhiteSpace(request.Endpoint))
            {
                request.Endpoint = inline[0].ValueKind == JsonValueKind.Object && inline[0].TryGetProperty("url", out var url) && url.ValueKind == JsonValueKind.String
                    ? url.GetString()
                    : "/v1/chat/completions";
            }

            request.CompletionWindow ??= "24h";
        }
        else if (string.IsNullOrWhiteSpace(request.InputFileId))
        {
            throw Invalid("Either 'input_file_id' or 'requests' is required.", "input_file_id");
        }

        if (string.IsNullOrWhiteSpace(request.Endpoint))
        {
            throw Invalid("'endpoint' is required.", "endpoint");
        }

        if (request.Endpoint is null || operations.ForBatchUrl(request.Endpoint) is null)
        {
            throw Array.IndexOf(OpenAIEndpoints, request.Endpoint) >= 0
                ? Invalid($"Batches for '{request.Endpoint}' are not supported by this gateway yet; supported: {string.Join(", ", operations.BatchUrls)}.", "endpoint")
                : Invalid($"'endpoint' must be one of: {string.Join(", ", OpenAIEndpoints)}.", "endpoint");
        }

        if (request.CompletionWindow != "24h")
        {
            throw Invalid("'completion_window' must be \"24h\".", "completion_window");
        }

        if (request.Metadata is { } metadata)
        {
            if (metadata.Count > 16)
            {
                throw Invalid("'metadata' may hold at most 16 pairs.", "metadata");
            }

            if (metadata.Any(static p => p.Key.Length > 64 || (p.Value?.Length ?? 0) > 512))
            {
                throw Invalid("'metadata' keys are at most 64 characters and values at most 512.", "metadata");
            }
        }

        if (request.Model is not null)
        {
            registry.Resolve(request.Model, "model");
        }

        var inlineFile = request.Requests is { } items ? await StoreInlineRequestsAsync(owner, items, request.Endpoint, cancellationToken).ConfigureAwait(false) : null;
        request.InputFileId = inlineFile?.Id ?? request.InputFileId;
        var file = inlineFile ?? await files.GetAsync(request.InputFileId!, cancellationToken).ConfigureAwait(false);
        if (file is null || file.Owner != owner)
        {
            throw BifrostErrors.NotFound("file_not_found", $"No file '{request.InputFileId}'.", "input_file_id");
        }

        if (file.Purpose != "batch")
        {
            throw Invalid($"The input file must have purpose 'batch' (it has '{file.Purpose}').", "input_file_id");
        }

        var now = time.GetUtcNow();
        var batch = new BatchObject
        {
            Id = "batch_" + Guid.CreateVersion7().ToString("N"),
            Endpoint = request.Endpoint,
            InputFileId = request.InputFileId!,
            CompletionWindow = request.CompletionWindow,
            Status = BatchStatus.Validating,
            CreatedAt = now.ToUnixTimeSeconds(),
            ExpiresAt = (now + TimeSpan.FromHours(24)).ToUnixTimeSeconds(),
            Metadata = request.Metadata,
        };
        var payload = JsonSerializer.SerializeToUtf8Bytes(new BatchSpec { Batch = batch, Model = request.Model }, BifrostJson.Context.BatchSpec);
        JobRecord job;
        try
        {
            job = await jobs.SubmitAsync(BatchJobHandler.JobKind, payload, owner, options.Value.Batches.RetainFor, cancellationToken, batch.Id).ConfigureAwait(false);
        }
        catch when (inlineFile is not null)
        {
            await files.DeleteAsync(inlineFile.Id, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        return Compose(job, request.Model);
    }

    /// <summary>
    /// Writes inline requests as a batch input file (JSONL, <c>method</c> defaulting to POST and <c>url</c> to the batch's
    /// endpoint, <c>params</c> accepted for <c>body</c>), checks it with the rules and limits of an uploaded file, and stores it.
    /// </summary>
    private async Task<StoredFile> StoreInlineRequestsAsync(string owner, List<JsonElement> items, string? endpoint, CancellationToken cancellationToken)
    {
        await using var spool = TempFiles.Create();
        await using (var writer = new Utf8JsonWriter(spool, BifrostJson.WriterOptions))
        {
            foreach (var item in items)
            {
                if (item.ValueKind != JsonValueKind.Object)
                {
                    item.WriteTo(writer);
                }
                else
                {
                    writer.WriteStartObject();
                    foreach (var property in item.EnumerateObject())
                    {
                        if (property.NameEquals("params") && item.TryGetProperty("body", out _))
                        {
                            continue;
                        }

                        writer.WritePropertyName(property.NameEquals("params") ? "body" : property.Name);
                        property.Value.WriteTo(writer);
                    }

                    if (!item.TryGetProperty("method", out _))
                    {
                        writer.WriteString("method", "POST");
                    }

                    if (!item.TryGetProperty("url", out _))
                    {
                        writer.WriteString("url", endpoint);
                    }

                    writer.WriteEndObject();
                }

                await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
                writer.Reset();
                spool.WriteByte((byte)'\n');
            }
        }

        spool.Position = 0;
        var result = await Files.BatchInputValidator.ValidateAsync(spool, options.Value.Files.MaxBatchLines, operations.BatchUrls, cancellationToken).ConfigureAwait(false);
        if (result.Errors.Count > 0)
        {
            var details = string.Join("; ", result.Errors.Select(e => e.Line > 0 ? $"requests[{e.Line - 1}]: {e.Message}" : e.Message));
            throw Invalid($"Invalid batch requests: {details}.", "requests");
        }

        spool.Position = 0;
        var id = "file-" + Guid.CreateVersion7().ToString("N");
        var stored = await files.SaveAsync(new NewFile { Id = id, Filename = "requests.jsonl", Purpose = "batch", Owner = owner }, spool, options.Value.Files.MaxUploadBytes, cancellationToken).ConfigureAwait(false);
        metrics.FileStored(stored.Purpose, stored.Bytes);
        return stored;
    }

    public async Task<BatchObject> GetAsync(string owner, string id, CancellationToken cancellationToken)
    {
        var job = await jobs.FindAsync(id, BatchJobHandler.JobKind, owner, cancellationToken).ConfigureAwait(false) ?? throw NotFound(id);
        return Compose(job, null);
    }

    public async Task<BatchListResponse> ListAsync(string owner, int limit, string? after, CancellationToken cancellationToken)
    {
        var page = await jobs.Store.ListAsync(owner, BatchJobHandler.JobKind, limit + 1, after, cancellationToken).ConfigureAwait(false);
        var data = page.Take(limit).Select(job => Compose(job, null)).ToList();
        return new BatchListResponse { Data = data, HasMore = page.Count > limit, FirstId = data.FirstOrDefault()?.Id, LastId = data.LastOrDefault()?.Id };
    }

    /// <summary>
    /// Cancels a batch. A batch still validating or in progress answers <c>cancelling</c> (or <c>cancelled</c> when it had
    /// not started) and is guaranteed to end <c>cancelled</c>: the store records the request so the run's completion
    /// loses to it, and the run on this instance hears of it at once (other instances through the store). A batch already
    /// cancelling or cancelled answers as it is; one finalizing or ended otherwise answers 409 <c>batch_not_cancellable</c>.
    /// </summary>
    public async Task<BatchObject> CancelAsync(string owner, string id, CancellationToken cancellationToken)
    {
        var job = await jobs.FindAsync(id, BatchJobHandler.JobKind, owner, cancellationToken).ConfigureAwait(false) ?? throw NotFound(id);
        var current = Compose(job, null);
        if (current.Status is BatchStatus.Cancelled or BatchStatus.Cancelling)
        {
            return current;
        }

        if (job.IsFinished || current.Status is BatchStatus.Finalizing)
        {
            throw NotCancellable(id, current.Status);
        }

        var updated = await jobs.Store.RequestCancellationAsync(id, cancellationToken).ConfigureAwait(false)
            ?? await jobs.Store.GetAsync(id, cancellationToken).ConfigureAwait(false)
            ?? throw NotFound(id);
        var answer = Compose(updated, null);
        if (updated.IsFinished && answer.Status is not BatchStatus.Cancelled)
        {
            // It ended between the read and the request: the request was not recorded.
            throw NotCancellable(id, answer.Status);
        }

        if (!updated.IsFinished)
        {
            cancellations.CancellationRequested(id);
        }
        else if (job.Status == JobStatus.Pending && updated.Status == JobStatus.Cancelled)
        {
            metrics.JobFinished(BatchJobHandler.JobKind, "cancelled"); // it never ran: cancelled here, not by a worker
        }

        return answer;
    }

    private static BifrostException NotCancellable(string id, string status) =>
        BifrostErrors.Conflict("batch_not_cancellable", $"Batch '{id}' is already {status} and cannot be cancelled.", "batch_id");

    /// <summary>
    /// Writes <c>GET batches/{id}/results</c> in Bifrost's shape: <c>{"batch_id", "results": [{"custom_id", "response" | "error"}],
    /// "has_more", "extra_fields"}</c>, streamed from the output file then the error file (never whole in memory). A batch
    /// that has not ended has no results yet: an empty list with <c>has_more: true</c>.
    /// </summary>
    public async Task WriteResultsAsync(string owner, string id, System.IO.Pipelines.PipeWriter body, Action<BatchObject> beforeWrite, CancellationToken cancellationToken)
    {
        var batch = await GetAsync(owner, id, cancellationToken).ConfigureAwait(false);
        var ended = batch.Status is BatchStatus.Completed or BatchStatus.Failed or BatchStatus.Expired or BatchStatus.Cancelled;
        beforeWrite(batch);
        await using var writer = new Utf8JsonWriter(body, BifrostJson.WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("batch_id", batch.Id);
        writer.WriteStartArray("results");
        if (ended)
        {
            foreach (var fileId in new[] { batch.OutputFileId, batch.ErrorFileId })
            {
                if (fileId is null || await files.OpenReadAsync(fileId, cancellationToken).ConfigureAwait(false) is not { } stream)
                {
                    continue;
                }

                await using (stream)
                {
                    using var reader = new StreamReader(stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 65536);
                    string? line;
                    while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
                    {
                        if (line.Length == 0)
                        {
                            continue;
                        }

                        using var document = JsonDocument.Parse(line);
                        var root = document.RootElement;
                        writer.WriteStartObject();
                        if (root.TryGetProperty("custom_id", out var customId))
                        {
                            writer.WritePropertyName("custom_id");
                            customId.WriteTo(writer);
                        }

                        foreach (var name in (ReadOnlySpan<string>)["response", "error"])
                        {
                            if (root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
                            {
                                writer.WritePropertyName(name);
                                value.WriteTo(writer);
                            }
                        }

                        writer.WriteEndObject();
                        if (writer.BytesPending > 32 * 1024)
                        {
                            writer.Flush(); // into the pipe's buffer; the pipe sends it
                            await body.FlushAsync(cancellationToken).ConfigureAwait(false);
                        }
                    }
                }
            }
        }

        writer.WriteEndArray();
        writer.WriteBoolean("has_more", !ended);
        writer.WritePropertyName("extra_fields");
        JsonSerializer.Serialize(writer, batch.ExtraFields, BifrostJson.Context.BifrostExtraFields);
        writer.WriteEndObject();
        writer.Flush();
        await body.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Refuses (409 <c>file_in_use</c>) to let a file go while an unfinished batch of the owner reads it: a batch keeps
    /// its input readable for its whole life, so every line gets its result even when the input is deleted mid-run.
    /// </summary>
    public async Task EnsureNotInputOfRunningBatchAsync(string owner, string fileId, CancellationToken cancellationToken)
    {
        const int Page = 200;
        string? after = null;
        while (true)
        {
            var page = await jobs.Store.ListAsync(owner, BatchJobHandler.JobKind, Page, after, cancellationToken).ConfigureAwait(false);
            foreach (var job in page)
            {
                if (job.IsFinished)
                {
                    continue;
                }

                var spec = JsonSerializer.Deserialize(job.Payload.Span, BifrostJson.Context.BatchSpec);
                if (spec?.Batch.InputFileId == fileId)
                {
                    throw BifrostErrors.Conflict("file_in_use", $"The file '{fileId}' is the input of batch '{job.Id}', which has not ended; delete it after the batch ends (or cancel the batch).", "file_id");
                }
            }

            if (page.Count < Page)
            {
                return;
            }

            after = page[^1].Id;
        }
    }

    /// <summary>The batch object as a client sees it now, from the job's status, its saved progress or its final result.</summary>
    internal BatchObject Compose(JobRecord job, string? model)
    {
        var spec = JsonSerializer.Deserialize(job.Payload.Span, BifrostJson.Context.BatchSpec)!;
        model ??= spec.Model;
        BatchObject batch;
        if (job.IsFinished && job.StatusCode == 200 && job.Result is { } result)
        {
            batch = JsonSerializer.Deserialize(result.Span, BifrostJson.Context.BatchObject)!;
            if (job.Status == JobStatus.Cancelled && batch.Status != BatchStatus.Cancelled)
            {
                // The run ended on its own (every line had run) after the cancel request was recorded: the store kept
                // the request, so the batch is cancelled, with the results it has.
                var finishedAt = job.CompletedAt?.ToUnixTimeSeconds() ?? batch.CompletedAt ?? batch.ExpiredAt ?? batch.FailedAt;
                batch.Status = BatchStatus.Cancelled;
                batch.CancellingAt ??= finishedAt;
                batch.CancelledAt = finishedAt;
                batch.CompletedAt = null;
                batch.ExpiredAt = null;
                batch.FailedAt = null;
            }
        }
        else
        {
            batch = job.Progress is { } progress ? JsonSerializer.Deserialize(progress.Span, BifrostJson.Context.BatchProgress)!.Batch : spec.Batch;
            var finishedAt = job.CompletedAt?.ToUnixTimeSeconds();
            switch (job.Status)
            {
                case JobStatus.Cancelled:
                    batch.Status = BatchStatus.Cancelled;
                    batch.CancellingAt ??= finishedAt;
                    batch.CancelledAt = finishedAt;
                    batch.RequestCounts.Canceled += batch.RequestCounts.Pending;
                    batch.RequestCounts.Pending = 0;
                    break;
                case JobStatus.Failed:
                    batch.Status = BatchStatus.Failed;
                    batch.FailedAt = finishedAt;
                    batch.Errors = new BatchErrors { Data = [new BatchError { Code = "batch_failed", Message = ErrorMessage(job.Result) }] };
                    break;
                default:
                    if (job.CancellationRequested)
                    {
                        batch.Status = BatchStatus.Cancelling;
                        batch.CancellingAt ??= time.GetUtcNow().ToUnixTimeSeconds();
                    }

                    break;
            }
        }

        batch.ExtraFields = new BifrostExtraFields
        {
            RequestType = "batch",
            ModelRequested = registry.BareModel(model),
            Provider = model is null ? null : TryProvider(model),
        };
        return batch;
    }

    private string? TryProvider(string model)
    {
        try
        {
            return registry.Resolve(model, "model").Provider.Name;
        }
        catch (BifrostException)
        {
            return null;
        }
    }

    private static string ErrorMessage(ReadOnlyMemory<byte>? body)
    {
        if (body is { } bytes)
        {
            try
            {
                var error = JsonSerializer.Deserialize(bytes.Span, BifrostJson.Context.BifrostError);
                if (error?.Error.Message is { Length: > 0 } message)
                {
                    return message;
                }
            }
            catch (JsonException)
            {
            }
        }

        return "The batch failed.";
    }

    private static BifrostException Invalid(string message, string param) =>
        BifrostErrors.InvalidRequest("invalid_request", message, param);

    private static BifrostException NotFound(string id) =>
        BifrostErrors.NotFound("batch_not_found", $"No batch '{id}'.", "batch_id");
}
