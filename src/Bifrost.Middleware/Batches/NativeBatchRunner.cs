using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Governance.Pricing;
using Bifrost.Middleware.Operations;
using Bifrost.Middleware.RequestLog;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Batches;

/// <summary>
/// Runs a batch on a provider's own batch API: uploads the input with bare model names, creates the provider's batch,
/// polls it (mirroring its status and counts into our batch object), forwards a cancel, and copies the output and
/// error files back into our file store. The provider's batch id is saved as progress before polling starts, so a
/// resumed run polls the same batch instead of creating another one. Each output line whose answer reports usage gets
/// <c>extra_fields.cost</c> at the model's batch price (its <c>BatchDiscount</c> off), so the batch's cost is the sum of
/// its lines; with governance on, each line is recorded in the usage ledger (source <c>batch</c>). Each line the provider
/// answered (output and error files) is recorded in the request log as the line-by-line path records its lines (source
/// <c>batch</c>, the batch and custom ids, the provider, the answer's model, the line's <c>status_code</c>, tokens, cost;
/// the time is when the output was copied back, the latency 0: the provider reports no per-line times). The run has a
/// span (<see cref="Diagnostics.BatchTrace.StartNative"/>): the provider's batch id, polls and status changes, counts,
/// <c>error.type</c> on failure.
/// </summary>
internal sealed class NativeBatchRunner(ProviderRegistry registry, IFileStore files, IOptions<BifrostOptions> options, TimeProvider time, ILogger<NativeBatchRunner> logger, PricingCatalog pricing, UsageLedger ledger, Diagnostics.OperationalMetrics metrics, RequestLogWriter requestLog, OperationRegistry operations)
{
    private static readonly string[] Terminal = [BatchStatus.Completed, BatchStatus.Failed, BatchStatus.Expired, BatchStatus.Cancelled];

    /// <summary>
    /// The provider to run natively on: every line resolves to it, it opted in, and its adapter takes the batch (see
    /// <see cref="INativeBatchEligibility"/>; an adapter without it takes chat-completions batches). Otherwise null.
    /// </summary>
    public static ProviderRuntime? ChooseProvider(ProviderRegistry registry, IReadOnlySet<string> models, string? batchModel, string endpoint = NativeBatchCandidate.ChatEndpoint, int lines = 0) =>
        Choose(registry, models, batchModel, endpoint, lines)?.Provider;

    /// <summary>
    /// <see cref="ChooseProvider"/>, then, for an adapter that checks each line (<see cref="INativeBatchLineEligibility"/>),
    /// every line of the input: the provider when the adapter takes them all, otherwise null.
    /// </summary>
    public static async Task<ProviderRuntime?> ChooseProviderAsync(ProviderRegistry registry, IFileStore files, string inputFileId, IReadOnlySet<string> models, string? batchModel, string endpoint, int lines, CancellationToken cancellationToken)
    {
        if (Choose(registry, models, batchModel, endpoint, lines) is not { } candidate)
        {
            return null;
        }

        if (candidate.Provider.Adapter is not INativeBatchLineEligibility eligibility)
        {
            return candidate.Provider;
        }

        await using var input = await files.OpenReadAsync(inputFileId, cancellationToken).ConfigureAwait(false);
        if (input is null)
        {
            return null;
        }

        using var reader = new StreamReader(input, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536);
        string? line;
        var number = 0;
        while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                if (root.GetProperty("body") is not { ValueKind: JsonValueKind.Object } body
                    || eligibility.RefusesLine(candidate, number, root.GetProperty("custom_id").GetString() ?? string.Empty, body) is not null)
                {
                    return null;
                }
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                return null; // validated before; a line that is not one runs through the gateway, which reports it
            }
        }

        return candidate.Provider;
    }

    private static NativeBatchCandidate? Choose(ProviderRegistry registry, IReadOnlySet<string> models, string? batchModel, string endpoint, int lines)
    {
        if (models.Count == 0 || models.Count >= 256)
        {
            return null;
        }

        ProviderRuntime? chosen = null;
        var bareModels = new HashSet<string>(StringComparer.Ordinal);
        foreach (var lineModel in models)
        {
            var model = lineModel.Length == 0 ? batchModel : lineModel;
            if (model is null)
            {
                return null;
            }

            ResolvedModel resolved;
            try
            {
                resolved = registry.Resolve(model, "model");
            }
            catch (BifrostException)
            {
                return null;
            }

            if (chosen is not null && !ReferenceEquals(chosen, resolved.Provider))
            {
                return null;
            }

            chosen = resolved.Provider;
            bareModels.Add(resolved.Model);
        }

        if (chosen is not { Options.NativeBatches: true, Adapter: IProviderBatchAdapter adapter })
        {
            return null;
        }

        var candidate = new NativeBatchCandidate(chosen, endpoint, bareModels, lines);
        return (adapter is INativeBatchEligibility eligibility ? eligibility.Refuses(candidate) is null : endpoint == NativeBatchCandidate.ChatEndpoint)
            ? candidate
            : null;
    }

    public async Task<BatchObject> RunAsync(JobExecution execution, BatchProgress state, BatchSpec spec, CancellationToken cancellationToken)
    {
        var batch = state.Batch;
        using var trace = Diagnostics.BatchTrace.StartNative(batch.Id, batch.Endpoint, batch.RequestCounts.Total, state.NativeProvider ?? string.Empty, state.NativeBatchId, options.Value.Telemetry);
        BatchObject outcome;
        try
        {
            outcome = await RunCoreAsync(execution, state, spec, trace, cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex)
        {
            trace?.Failed(ex);
            throw;
        }

        if (trace is not null)
        {
            var counts = outcome.RequestCounts;
            trace.Finish(counts.Succeeded, counts.Failed, counts.Expired, counts.Canceled);
            if (outcome.Status is BatchStatus.Failed or BatchStatus.Expired)
            {
                var error = outcome.Errors?.Data.FirstOrDefault();
                trace.Failed(error?.Code ?? (outcome.Status == BatchStatus.Expired ? "batch_expired" : "batch_failed"), error?.Message);
            }
        }

        return outcome;
    }

    private async Task<BatchObject> RunCoreAsync(JobExecution execution, BatchProgress state, BatchSpec spec, Diagnostics.BatchTrace? trace, CancellationToken cancellationToken)
    {
        var batch = state.Batch;
        var provider = registry.Providers.FirstOrDefault(p => string.Equals(p.Name, state.NativeProvider, StringComparison.OrdinalIgnoreCase));
        if (provider?.Adapter is not IProviderBatchAdapter adapter)
        {
            return Fail(batch, "provider_unavailable", $"Provider '{state.NativeProvider}' is no longer configured for native batches.");
        }

        var context = new ProviderContext(provider.Name, provider.Options, string.Empty, provider.SelectAnyKey(Random.Shared)) { Authenticator = provider.Authenticator };
        if (state.NativeBatchId is null)
        {
            await using var input = await RewriteInputAsync(batch, spec, cancellationToken).ConfigureAwait(false);
            if (input is null)
            {
                return Fail(batch, "input_file_not_found", $"The input file '{batch.InputFileId}' no longer exists.");
            }

            var created = await adapter.CreateBatchAsync(
                context,
                input,
                new ProviderBatchRequest { Endpoint = batch.Endpoint, CompletionWindow = batch.CompletionWindow, Metadata = batch.Metadata },
                cancellationToken).ConfigureAwait(false);
            state.NativeBatchId = created.Id;
            trace?.ProviderBatchCreated(created.Id);
            await execution.SaveProgressAsync(Serialize(state), cancellationToken).ConfigureAwait(false);
            NativeLog.Created(logger, batch.Id, provider.Name, created.Id);
        }

        BatchObject upstream;
        while (true)
        {
            if (execution.CancellationRequested.IsCancellationRequested && !state.NativeCancelSent)
            {
                await adapter.CancelBatchAsync(context, state.NativeBatchId, cancellationToken).ConfigureAwait(false);
                state.NativeCancelSent = true;
                batch.CancellingAt ??= Now();
            }

            upstream = await adapter.GetBatchAsync(context, state.NativeBatchId, cancellationToken).ConfigureAwait(false);
            trace?.Polled(upstream.Status, upstream.RequestCounts);
            CopyCounts(upstream.RequestCounts, batch.RequestCounts);
            var terminal = Array.IndexOf(Terminal, upstream.Status) >= 0;
            batch.Status = terminal ? BatchStatus.Finalizing : state.NativeCancelSent ? BatchStatus.Cancelling : BatchStatus.InProgress;
            batch.FinalizingAt = terminal ? Now() : batch.FinalizingAt;
            await execution.SaveProgressAsync(Serialize(state), cancellationToken).ConfigureAwait(false);
            if (terminal)
            {
                break;
            }

            // A cancel request ends the wait at once, so the upstream batch is cancelled without waiting a poll.
            using var wake = state.NativeCancelSent ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, execution.CancellationRequested);
            try
            {
                await Task.Delay(options.Value.Batches.NativePollInterval, time, wake?.Token ?? cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
        }

        var suffix = batch.Id.StartsWith("batch_", StringComparison.Ordinal) ? batch.Id[6..] : batch.Id;
        var log = requestLog.Enabled ? new LineLog(requestLog, operations.ForBatchUrl(batch.Endpoint)?.Name ?? batch.Endpoint, execution.Job.Owner) : null;
        var costing = new OutputLines(pricing, options.Value.Governance?.Mode is { } mode && mode != GovernanceMode.Off ? ledger : null, log, time, provider.Name, batch, price: true);
        batch.OutputFileId = await CopyFileAsync(adapter, context, upstream.OutputFileId, $"file-{suffix}-output", $"{batch.Id}_output.jsonl", execution.Job.Owner, costing, cancellationToken).ConfigureAwait(false);
        var failures = log is null ? null : new OutputLines(pricing, null, log, time, provider.Name, batch, price: false); // read for the request log only
        batch.ErrorFileId = await CopyFileAsync(adapter, context, upstream.ErrorFileId, $"file-{suffix}-errors", $"{batch.Id}_errors.jsonl", execution.Job.Owner, failures, cancellationToken).ConfigureAwait(false);
        batch.Status = upstream.Status;
        batch.Errors = upstream.Errors;
        var now = Now();
        switch (upstream.Status)
        {
            case BatchStatus.Completed:
                batch.CompletedAt = now;
                break;
            case BatchStatus.Failed:
                batch.FailedAt = now;
                break;
            case BatchStatus.Expired:
                batch.ExpiredAt = now;
                break;
            default:
                batch.CancelledAt = now;
                break;
        }

        return batch;
    }

    /// <summary>A temporary copy of the input in which every body names the provider's bare model.</summary>
    private async Task<Stream?> RewriteInputAsync(BatchObject batch, BatchSpec spec, CancellationToken cancellationToken)
    {
        await using var input = await files.OpenReadAsync(batch.InputFileId, cancellationToken).ConfigureAwait(false);
        if (input is null)
        {
            return null;
        }

        var temp = TempFiles.Create();
        try
        {
            using var reader = new StreamReader(input, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536);
            string? line;
            var newline = "\n"u8.ToArray();
            while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                var node = JsonNode.Parse(line)!.AsObject();
                var body = node["body"]!.AsObject();
                var model = body["model"]?.GetValue<string>() ?? spec.Model;
                body["model"] = registry.Resolve(model, "model").Model;
                await temp.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(node, BifrostJson.Context.JsonNode), cancellationToken).ConfigureAwait(false);
                await temp.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
            }

            temp.Position = 0;
            return temp;
        }
        catch
        {
            await temp.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<string?> CopyFileAsync(IProviderBatchAdapter adapter, ProviderContext context, string? providerFileId, string id, string filename, string owner, OutputLines? costing, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(providerFileId))
        {
            return null;
        }

        if (await files.GetAsync(id, cancellationToken).ConfigureAwait(false) is not null)
        {
            return id; // copied by an earlier run
        }

        await using var upstreamContent = await adapter.OpenFileAsync(context, providerFileId, cancellationToken).ConfigureAwait(false);
        await using var content = costing is null ? upstreamContent : await costing.RewriteAsync(upstreamContent, cancellationToken).ConfigureAwait(false);
        var stored = await files.SaveAsync(new NewFile { Id = id, Filename = filename, Purpose = "batch_output", Owner = owner }, content, long.MaxValue, cancellationToken).ConfigureAwait(false);
        if (stored.Bytes == 0)
        {
            // No file for no lines (as OpenAI: error_file_id is null when nothing failed).
            await files.DeleteAsync(stored.Id, cancellationToken).ConfigureAwait(false);
            return null;
        }

        metrics.FileStored(stored.Purpose, stored.Bytes);
        return stored.Id;
    }

    /// <summary>Where a native batch's lines go in the request log: the writer, the operation's name, the batch's owner.</summary>
    private sealed record LineLog(RequestLogWriter Writer, string Operation, string Owner);

    /// <summary>
    /// Reads the provider's output (or error) lines as they are copied: with <c>price</c>, a line whose
    /// <c>response.body</c> reports <c>usage</c> (OpenAI's chat, completions, embeddings and responses shapes) gets
    /// <c>response.body.extra_fields.cost</c> at the batch price when the model's price is known and goes to the usage
    /// ledger (lines are otherwise copied unchanged; a line that is not JSON is kept as it came); each line with a
    /// <c>response</c> is recorded in the request log (lines without one never reached the model: not recorded, as the
    /// lines a cancel or expiry stops on the line-by-line path).
    /// </summary>
    private sealed class OutputLines(PricingCatalog pricing, UsageLedger? ledger, LineLog? log, TimeProvider time, string provider, BatchObject batch, bool price)
    {
        public async Task<Stream> RewriteAsync(Stream upstream, CancellationToken cancellationToken)
        {
            var temp = TempFiles.Create();
            try
            {
                using var reader = new StreamReader(upstream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536);
                string? line;
                var newline = "\n"u8.ToArray();
                while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
                {
                    if (string.IsNullOrWhiteSpace(line))
                    {
                        continue;
                    }

                    var bytes = Price(line) ?? Encoding.UTF8.GetBytes(line);
                    await temp.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                    await temp.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
                }

                temp.Position = 0;
                return temp;
            }
            catch
            {
                await temp.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        private byte[]? Price(string line)
        {
            JsonObject? node;
            try
            {
                node = JsonNode.Parse(line) as JsonObject;
            }
            catch (JsonException)
            {
                return null;
            }

            if (node?["response"] is not JsonObject response)
            {
                return null;
            }

            var body = response["body"] as JsonObject;
            var status = response["status_code"] is JsonValue s && s.TryGetValue<int>(out var code) ? code : 200;
            var model = body?["model"] is JsonValue m && m.TryGetValue<string>(out var name) ? name : null;
            TokenCounts? tokens = body?["usage"] is JsonObject usage ? TokensOf(usage) : null;
            double? cost = null;
            if (price && tokens is { } counted)
            {
                cost = pricing.Cost(provider, model, counted, batch: true);
                if (cost is { } usd)
                {
                    if (body!["extra_fields"] is not JsonObject extra)
                    {
                        extra = [];
                        body["extra_fields"] = extra;
                    }

                    extra["cost"] = usd;
                }

                ledger?.Record(new UsageRecord
                {
                    Time = time.GetUtcNow(),
                    RequestId = batch.Id,
                    VirtualKeyId = null, // a batch created with a virtual key never runs natively
                    Provider = provider,
                    Model = model ?? string.Empty,
                    Operation = batch.Endpoint ?? string.Empty,
                    Source = UsageSource.Batch,
                    InputTokens = counted.Input,
                    OutputTokens = counted.Output,
                    CachedInputTokens = counted.CachedInput,
                    ReasoningTokens = counted.Reasoning,
                    CostUsd = cost is { } c ? (decimal)c : null,
                    Status = status,
                });
            }

            if (log is not null)
            {
                Record(log, node, body, status, model, tokens, cost);
            }

            return cost is null ? null : JsonSerializer.SerializeToUtf8Bytes(node, BifrostJson.Context.JsonNode);
        }

        private void Record(LineLog log, JsonObject line, JsonObject? body, int status, string? model, TokenCounts? tokens, double? cost)
        {
            var now = time.GetUtcNow();
            var error = body?["error"] as JsonObject;
            log.Writer.Record(new RequestLogEntry
            {
                Id = RequestLogIds.New(now),
                Time = now,
                Owner = log.Owner,
                Operation = log.Operation,
                Source = RequestLogEntry.SourceBatch,
                Provider = provider,
                Model = model,
                Status = status,
                ErrorCode = status is >= 200 and < 300 ? null : Text(error?["code"]) ?? Text(error?["type"]) ?? "provider_error",
                LatencyMs = 0,
                InputTokens = tokens?.Input,
                OutputTokens = tokens?.Output,
                CostUsd = tokens is not null && cost is { } usd && double.IsFinite(usd) ? (decimal)usd : null,
                BatchId = batch.Id,
                CustomId = Text(line["custom_id"]),
                ResponseId = Text(body?["id"]),
                ResponseContent = log.Writer.CaptureContent && body is not null ? JsonSerializer.Serialize<JsonNode>(body, BifrostJson.Context.JsonNode) : null,
            });
        }

        private static string? Text(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

        /// <summary>OpenAI's usage (chat/completions/embeddings <c>prompt_tokens</c>…, Responses <c>input_tokens</c>…), read as the operations read it.</summary>
        private static TokenCounts TokensOf(JsonObject usage)
        {
            static long Read(JsonObject o, string name) => o[name] is JsonValue v && v.TryGetValue<long>(out var n) ? n : 0;
            static JsonElement? Details(JsonNode? node) => node is JsonObject o ? JsonSerializer.SerializeToElement(o, BifrostJson.Context.JsonNode) : null;
            return TokenCounts.Of(
                Read(usage, "prompt_tokens") + Read(usage, "input_tokens"),
                Read(usage, "completion_tokens") + Read(usage, "output_tokens"),
                Details(usage["prompt_tokens_details"] ?? usage["input_tokens_details"]),
                Details(usage["completion_tokens_details"] ?? usage["output_tokens_details"]));
        }
    }

    private static void CopyCounts(BatchRequestCounts from, BatchRequestCounts to)
    {
        to.Total = from.Total;
        to.Completed = from.Completed;
        to.Succeeded = from.Succeeded > 0 ? from.Succeeded : from.Completed;
        to.Failed = from.Failed;
        to.Expired = from.Expired;
        to.Canceled = from.Canceled;
        to.Pending = Math.Max(0, from.Total - to.Succeeded - from.Failed - from.Expired - from.Canceled);
    }

    private BatchObject Fail(BatchObject batch, string code, string message)
    {
        batch.Status = BatchStatus.Failed;
        batch.FailedAt = Now();
        batch.Errors = new BatchErrors { Data = [new BatchError { Code = code, Message = message }] };
        return batch;
    }

    private static byte[] Serialize(BatchProgress state) => JsonSerializer.SerializeToUtf8Bytes(state, BifrostJson.Context.BatchProgress);

    private long Now() => time.GetUtcNow().ToUnixTimeSeconds();
}

internal static partial class NativeLog
{
    [LoggerMessage(300, LogLevel.Information, "Batch {BatchId} runs on provider '{Provider}' as its batch {ProviderBatchId}.")]
    public static partial void Created(ILogger logger, string batchId, string provider, string providerBatchId);
}
