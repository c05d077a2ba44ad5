using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>
/// Native batches on Bedrock batch inference (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference.html),
/// for the model families of <see cref="BedrockBatchModels"/>: Claude, Amazon Nova and Meta Llama 3 chat completions, Titan
/// Text Embeddings V2 embeddings. The gateway hands over OpenAI batch JSONL (bodies with bare model names) and expects
/// OpenAI batch objects and output files back, so this part translates:
/// <list type="bullet">
/// <item>create: each line becomes a record <c>{"recordId": custom_id, "modelInput": the model's InvokeModel body}</c>
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html: "the format of the modelInput JSON
/// object must match the body field for the model that you use in the InvokeModel request"), written to a temporary file and uploaded
/// with S3 <c>PutObject</c> to <c>{S3Uri}/{job name}/input.jsonl</c>, then <c>POST /model-invocation-job</c> on the control
/// plane (<c>https://bedrock.{Region}.amazonaws.com</c>) with the job name, the role, the one model of the batch, the input
/// and <c>{S3Uri}/{job name}/output/</c> (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateModelInvocationJob.html).
/// A job runs one model: a batch of several models, of a model of no family, of an endpoint its family does not serve, of
/// fewer lines than <see cref="BedrockBatchOptions.MinimumRecords"/>, or of a provider without
/// <see cref="ProviderOptions.BedrockBatch"/> or SigV4 signing runs line by line through the gateway instead
/// (<see cref="Refuses"/>), as does a batch with a line its family cannot write exactly (<see cref="RefusesLine"/>: tools or
/// images for Nova and Llama, several texts for Titan, ...);</item>
/// <item>status: <c>GET /model-invocation-job/{jobArn}</c>: Submitted/Validating/Scheduled/InProgress → in_progress,
/// Stopping → cancelling, Completed and PartiallyCompleted → completed, Failed → failed (the job's message as the error),
/// Stopped → cancelled, Expired → expired; counts from <c>totalRecordCount</c>, <c>successRecordCount</c>,
/// <c>errorRecordCount</c> (records a partial, stopped or expired job never ran are counted failed, canceled or expired);
/// cancel is <c>POST /model-invocation-job/{jobArn}/stop</c>;</item>
/// <item>files: the job's output (<c>{output prefix}/{job id}/input.jsonl.out</c>, read with S3 <c>GetObject</c>:
/// https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-results.html) is exposed as two synthetic files,
/// <c>{jobArn}:output</c> (records with a <c>modelOutput</c>, read by the family of the job's model, as <c>{custom_id,
/// response: {status_code: 200, request_id, body: chat.completion or the embeddings list, with usage}}</c>) and <c>{jobArn}:errors</c> (records with an <c>error</c>: its <c>errorCode</c> as the
/// status), both in OpenAI's batch output format.</item>
/// </list>
/// S3 requests carry <c>x-amz-content-sha256</c> and ask to be signed for service <c>s3</c> (request option
/// <see cref="SigningServiceOption"/>, read by the SigV4 authenticator); control-plane requests are signed for <c>bedrock</c>.
/// </summary>
internal sealed partial class BedrockAdapter : IProviderBatchAdapter, INativeBatchLineEligibility
{
    internal const string OutputSuffix = NativeBatchFiles.OutputSuffix;
    internal const string ErrorsSuffix = NativeBatchFiles.ErrorsSuffix;

    /// <summary>The <c>anthropic_version</c> Claude's InvokeModel body on Bedrock requires.</summary>
    internal const string AnthropicVersion = "bedrock-2023-05-31";

    /// <summary>The request option naming the SigV4 service a request is signed for (<c>s3</c>); package Bifrost.Middleware.Bedrock reads it.</summary>
    internal const string SigningServiceOption = "Bifrost.SigV4Service";

    private const string InputFileName = "input.jsonl";
    private static readonly HttpRequestOptionsKey<string> SigningService = new(SigningServiceOption);

    /// <summary>Why a batch cannot run on Bedrock batch inference (logged), or null when it can.</summary>
    public string? Refuses(NativeBatchCandidate candidate)
    {
        var provider = candidate.Provider;
        var family = candidate.Models.Count == 1 ? BedrockBatchModels.For(candidate.Model) : null;
        var reason = candidate.RefusesUnlessOneModelOf(family?.Endpoint ?? candidate.Endpoint)
            ?? (provider.Options.BedrockBatch is not { } batch ? "it has no BedrockBatch settings (S3Uri and RoleArn)"
            : provider.Authenticator is null ? "its requests are not signed with SigV4 (UseBedrockSigV4): S3 does not take a Bedrock API key"
            : family is null ? $"model '{candidate.Model}' is of no family whose InvokeModel body the gateway writes for batch inference ({BedrockBatchModels.Names})"
            : candidate.Lines < batch.MinimumRecords ? $"the batch has {candidate.Lines} lines, fewer than the {batch.MinimumRecords} a Bedrock batch inference job needs (BedrockBatch:MinimumRecords)"
            : null);
        if (reason is not null)
        {
            Log.BatchRunsThroughGateway(logger, provider.Name, reason);
        }

        return reason;
    }

    /// <summary>Why a line of a batch <see cref="Refuses"/> accepted cannot be written exactly as its model's InvokeModel body (logged), or null.</summary>
    public string? RefusesLine(NativeBatchCandidate candidate, int number, string customId, JsonElement body)
    {
        if (BedrockBatchModels.For(candidate.Model) is not { } family)
        {
            return null;
        }

        string? refused;
        try
        {
            refused = family.Refuses(body);
        }
        catch (JsonException ex)
        {
            refused = ex.Message;
        }

        if (refused is null)
        {
            return null;
        }

        var reason = $"line {number} (custom_id '{customId}') has {refused}, which {family.Name} batch records cannot carry";
        Log.BatchRunsThroughGateway(logger, candidate.Provider.Name, reason);
        return reason;
    }

    public async Task<BatchObject> CreateBatchAsync(ProviderContext context, Stream input, ProviderBatchRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(request);
        var (batch, location) = BatchSettings(context);
        await using var file = TempFiles.Create();
        var (model, sha256) = await WriteRecordsAsync(context, request.Endpoint, input, file, cancellationToken).ConfigureAwait(false);
        file.Position = 0;

        var jobName = "bifrost-" + Guid.NewGuid().ToString("N");
        var folder = location.Prefix + jobName + "/";
        using (var put = S3Request(context, batch, HttpMethod.Put, location.Bucket, folder + InputFileName))
        {
            put.Headers.TryAddWithoutValidation("x-amz-content-sha256", sha256);
            put.Content = new StreamContent(file, 81920) { Headers = { ContentType = new MediaTypeHeaderValue("application/jsonl"), ContentLength = file.Length } };
            using var uploaded = await SendS3Async(context, put, cancellationToken).ConfigureAwait(false);
        }

        var body = new BedrockBatchJobRequest
        {
            JobName = jobName,
            RoleArn = batch.RoleArn!.Trim(),
            ClientRequestToken = jobName,
            ModelId = model,
            InputDataConfig = new BedrockBatchInputDataConfig { S3InputDataConfig = new BedrockS3InputDataConfig { S3Uri = location.ToUri(folder + InputFileName), S3InputFormat = "JSONL" } },
            OutputDataConfig = new BedrockBatchOutputDataConfig { S3OutputDataConfig = new BedrockS3OutputDataConfig { S3Uri = location.ToUri(folder + "output/") } },
            TimeoutDurationInHours = TimeoutHours(request.CompletionWindow),
        };
        var message = _http.CreateRequest(context, HttpMethod.Post, ControlPlane(context, batch, "model-invocation-job"), stream: false);
        message.Content = UpstreamClient.Json(body, BedrockJsonContext.Wire.BedrockBatchJobRequest);
        var created = await _http.SendForJsonAsync(context, message, BedrockJsonContext.Wire.BedrockBatchJobCreated, cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrEmpty(created.JobArn))
        {
            throw UpstreamHttp.InvalidResponse(context, "a batch inference job without a jobArn");
        }

        Log.BatchCreated(logger, context.ProviderName, created.JobArn, model);
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        return new BatchObject { Id = created.JobArn, Endpoint = request.Endpoint, Status = BatchStatus.InProgress, CreatedAt = now, InProgressAt = now, ProcessingStatus = "Submitted" };
    }

    public async Task<BatchObject> GetBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        return ToBatchObject(batchId, await GetJobAsync(context, batchId, cancellationToken).ConfigureAwait(false));
    }

    /// <summary><c>POST /model-invocation-job/{jobArn}/stop</c> (its answer is empty), then the job as it stands.</summary>
    public async Task<BatchObject> CancelBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        var (batch, _) = BatchSettings(context);
        using (var message = _http.CreateRequest(context, HttpMethod.Post, ControlPlane(context, batch, "model-invocation-job/" + Uri.EscapeDataString(batchId) + "/stop"), stream: false))
        {
            using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        }

        return await GetBatchAsync(context, batchId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens <c>{jobArn}:output</c> or <c>{jobArn}:errors</c>: the job's output records, translated to OpenAI batch output lines.</summary>
    public async Task<Stream> OpenFileAsync(ProviderContext context, string fileId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(fileId);
        var (jobArn, errors) = NativeBatchFiles.Parse(context, fileId, "Bedrock batch results", "job ARN");

        var (batch, _) = BatchSettings(context);
        var job = await GetJobAsync(context, jobArn, cancellationToken).ConfigureAwait(false);
        var temp = TempFiles.Create();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            if (OutputObject(jobArn, job) is { } output)
            {
                using var message = S3Request(context, batch, HttpMethod.Get, output.Bucket, output.Prefix);
                message.Headers.TryAddWithoutValidation("x-amz-content-sha256", EmptySha256);
                using var response = await SendS3Async(context, message, cancellationToken, allowNotFound: true).ConfigureAwait(false);
                if (response.StatusCode != HttpStatusCode.NotFound)
                {
                    await using var results = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                    await TranslateResultsAsync(context, jobArn, job.ModelId ?? string.Empty, results, temp, errors, seen, cancellationToken).ConfigureAwait(false);
                }
            }

            if (errors && job.Status is "PartiallyCompleted" or "Stopped" or "Expired")
            {
                await WriteNotRunAsync(context, batch, jobArn, job, seen, temp, cancellationToken).ConfigureAwait(false);
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

    /// <summary>Claude on Bedrock: a foundation model id, an inference profile (<c>us.anthropic.claude-…</c>) or a foundation model ARN.</summary>
    internal static bool IsClaude(string model) => BedrockBatchModels.For(model)?.Name == "Claude";

    /// <summary>Bedrock's <c>timeoutDurationInHours</c> (24 to 168) from a completion window such as <c>24h</c>; null leaves Bedrock's default.</summary>
    internal static int? TimeoutHours(string? completionWindow) =>
        completionWindow is { Length: > 1 } window && window[^1] == 'h' && int.TryParse(window.AsSpan(0, window.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var hours)
            ? Math.Clamp(hours, 24, 168)
            : null;

    /// <summary>The job's output object, <c>{output prefix}/{job id}/input.jsonl.out</c>, or null when the job names no output.</summary>
    internal static BedrockS3Location? OutputObject(string jobArn, BedrockBatchJob job)
    {
        var outputUri = job.OutputDataConfig?.S3OutputDataConfig?.S3Uri;
        var inputUri = job.InputDataConfig?.S3InputDataConfig?.S3Uri;
        if (!BedrockS3Location.TryParse(outputUri, out var output) || string.IsNullOrEmpty(inputUri))
        {
            return null;
        }

        var arn = job.JobArn ?? jobArn;
        var jobId = arn[(arn.LastIndexOf('/') + 1)..];
        var inputName = inputUri[(inputUri.LastIndexOf('/') + 1)..];
        // Prefix holds the object's key here.
        return new BedrockS3Location(output.Bucket, output.Prefix + jobId + "/" + inputName + ".out");
    }

    private const string EmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    private static (BedrockBatchOptions Batch, BedrockS3Location Location) BatchSettings(ProviderContext context)
    {
        if (context.Options.BedrockBatch is not { } batch || !BedrockS3Location.TryParse(batch.S3Uri, out var location) || string.IsNullOrWhiteSpace(batch.RoleArn))
        {
            throw BifrostErrors.InvalidRequest("invalid_request", $"Provider '{context.ProviderName}' has no BedrockBatch settings (S3Uri and RoleArn): its batches cannot run on Bedrock batch inference.");
        }

        if (context.Authenticator is null)
        {
            throw BifrostErrors.InvalidRequest("invalid_request", $"Provider '{context.ProviderName}' does not sign its requests with SigV4 (UseBedrockSigV4): S3 does not take a Bedrock API key.");
        }

        return (batch, location);
    }

    /// <summary>
    /// Writes one record per input line, its <c>modelInput</c> written by the family of the line's model; returns the one model
    /// they all name and the file's SHA-256 (hex, for S3's <c>x-amz-content-sha256</c>). A line of another model, of a model of
    /// no family or of an endpoint its family does not serve, or one its family cannot write (<see cref="RefusesLine"/> let
    /// through none of them) is a 400 <c>invalid_batch_line</c>.
    /// </summary>
    private static async Task<(string Model, string Sha256)> WriteRecordsAsync(ProviderContext context, string endpoint, Stream input, Stream output, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new ArrayBufferWriter<byte>(4096);
        string? model = null;
        BedrockBatchFamily? family = null;
        var written = 0;
        using var reader = new StreamReader(input, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536, leaveOpen: true);
        string? line;
        var number = 0;
        while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            using var document = ParseLine(line, number, out var customId, out var body);
            var where = $"Batch input line {number} (custom_id '{customId}')";
            var lineModel = body.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
            if (string.IsNullOrEmpty(lineModel))
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} names no model.", "model");
            }

            model ??= lineModel;
            family ??= BedrockBatchModels.For(model) is { } f && f.Endpoint == endpoint
                ? f
                : throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} names model '{model}', which Bedrock batch inference does not run for {endpoint} here ({BedrockBatchModels.Names}).", "model");
            if (!string.Equals(model, lineModel, StringComparison.Ordinal))
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} names model '{lineModel}', but a Bedrock batch runs one model ('{model}').", "model");
            }

            buffer.ResetWrittenCount();
            try
            {
                if (family.Refuses(body) is { } refused)
                {
                    throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} cannot run on Bedrock batch inference: it has {refused}.");
                }

                using var writer = new Utf8JsonWriter(buffer);
                writer.WriteStartObject();
                writer.WriteString("recordId", customId);
                writer.WritePropertyName("modelInput");
                family.WriteInput(writer, body, context.Options.DefaultMaxTokens);
                writer.WriteEndObject();
            }
            catch (BifrostException ex) when (ex.Error.Error.Code != "invalid_batch_line")
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} cannot run on Bedrock: {ex.Message}", ex.Error.Error.Param);
            }
            catch (JsonException ex)
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} is not a {endpoint} request: {ex.Message}");
            }

            buffer.Write("\n"u8);
            hash.AppendData(buffer.WrittenSpan);
            await output.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
            written++;
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        return written > 0 && model is not null
            ? (model, Convert.ToHexStringLower(hash.GetHashAndReset()))
            : throw BifrostErrors.InvalidRequest("invalid_batch_line", "The batch input has no lines.");
    }

    /// <summary>An input line's <c>custom_id</c> and <c>body</c>; a line without them is a 400 <c>invalid_batch_line</c>.</summary>
    private static JsonDocument ParseLine(string line, int number, out string customId, out JsonElement body)
    {
        JsonDocument? document = null;
        try
        {
            document = JsonDocument.Parse(line);
            customId = document.RootElement.GetProperty("custom_id").GetString() ?? throw new JsonException("custom_id is null");
            body = document.RootElement.GetProperty("body");
            return body.ValueKind == JsonValueKind.Object ? document : throw new JsonException("body is not an object");
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            document?.Dispose();
            throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} is not a batch request line: {ex.Message}");
        }
    }

    /// <summary>
    /// The records a partially completed, stopped or expired job never ran (in its input, not in its output), as error lines:
    /// <c>batch_cancelled</c> for a stopped job, <c>batch_expired</c> for an expired one, <c>batch_not_processed</c> for a
    /// partial one — so every custom id appears once in the results, as on the line-by-line path.
    /// </summary>
    private async Task WriteNotRunAsync(ProviderContext context, BedrockBatchOptions batch, string jobArn, BedrockBatchJob job, HashSet<string> seen, Stream output, CancellationToken cancellationToken)
    {
        if (!BedrockS3Location.TryParse(job.InputDataConfig?.S3InputDataConfig?.S3Uri, out var input) || input.Prefix.Length < 2)
        {
            return;
        }

        using var message = S3Request(context, batch, HttpMethod.Get, input.Bucket, input.Prefix.TrimEnd('/'));
        message.Headers.TryAddWithoutValidation("x-amz-content-sha256", EmptySha256);
        using var response = await SendS3Async(context, message, cancellationToken, allowNotFound: true).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return;
        }

        var newline = "\n"u8.ToArray();
        await using var records = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await foreach (var record in ProviderBatchResults.ReadAsync(records, BedrockJsonContext.Wire.BedrockBatchRecord, ex => Log.UnreadableResultLine(logger, context.ProviderName, ex), cancellationToken).ConfigureAwait(false))
        {
            if (record?.RecordId is not { Length: > 0 } customId || !seen.Add(customId))
            {
                continue;
            }

            var line = job.Status switch
            {
                "Stopped" => BatchLineWriter.CancelledLine(jobArn, customId),
                "Expired" => BatchLineWriter.ErrorLine(jobArn, customId, "batch_expired", "The Bedrock batch inference job expired before this request ran."),
                _ => BatchLineWriter.ErrorLine(jobArn, customId, "batch_not_processed", "The Bedrock batch inference job ended (PartiallyCompleted) before this request ran."),
            };
            await output.WriteAsync(line, cancellationToken).ConfigureAwait(false);
            await output.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task TranslateResultsAsync(ProviderContext context, string jobArn, string model, Stream results, Stream output, bool errors, HashSet<string> seen, CancellationToken cancellationToken)
    {
        var family = BedrockBatchModels.For(model);
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var newline = "\n"u8.ToArray();
        await foreach (var record in ProviderBatchResults.ReadAsync(results, BedrockJsonContext.Wire.BedrockBatchRecord, ex => Log.UnreadableResultLine(logger, context.ProviderName, ex), cancellationToken).ConfigureAwait(false))
        {
            if (record?.RecordId is not { Length: > 0 } customId)
            {
                Log.ResultLineWithoutRecordId(logger, context.ProviderName);
                continue;
            }

            seen.Add(customId);

            var (succeeded, bytes) = OutputLine(context, jobArn, family, model, customId, record, created);
            if (succeeded == errors)
            {
                continue;
            }

            await output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
            await output.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// One batch output line for one record: a model output the family of the job's model reads → 200 with its OpenAI body (a
    /// chat completion, or an embeddings list); an error (or an output that is not the model's answer) → its status and error body.
    /// </summary>
    private static (bool Succeeded, byte[] Line) OutputLine(ProviderContext context, string jobArn, BedrockBatchFamily? family, string model, string customId, BedrockBatchRecord record, long created)
    {
        if (record.Error is null && record.ModelOutput is { ValueKind: JsonValueKind.Object } modelOutput)
        {
            BedrockBatchAnswer? answer = null;
            try
            {
                var completionId = "chatcmpl-" + BatchLineWriter.LineId(jobArn, customId)["batch_req_".Length..];
                answer = family?.ReadOutput(modelOutput, new BedrockBatchOutputContext(completionId, model, created));
            }
            catch (JsonException)
            {
                // reported below
            }
            catch (BifrostException ex)
            {
                return (false, ErrorResponseLine(jobArn, customId, ex.StatusCode, ex.Message, ex.Error.Error.Code));
            }

            if (answer is not null)
            {
                return (true, BatchLineWriter.ResponseLine(jobArn, customId, 200, answer.RequestId, answer.WriteBody));
            }

            return (false, ErrorResponseLine(jobArn, customId, 502, $"Provider '{context.ProviderName}' returned a model output that is not a{(family is null ? "n answer of a model the gateway reads" : " " + family.Name + " answer")}.", "invalid_provider_response"));
        }

        var status = record.Error?.ErrorCode is { } code && code is >= 400 and < 600 ? code : 500;
        return (false, ErrorResponseLine(jobArn, customId, status, record.Error?.ErrorMessage is { Length: > 0 } text ? text : "The record failed.", null));
    }

    private static byte[] ErrorResponseLine(string jobArn, string customId, int status, string message, string? code) =>
        BatchLineWriter.ErrorResponseLine(jobArn, customId, status, message, BifrostException.DefaultType(status), code);

    private async Task<BedrockBatchJob> GetJobAsync(ProviderContext context, string jobArn, CancellationToken cancellationToken)
    {
        var (batch, _) = BatchSettings(context);
        var message = _http.CreateRequest(context, HttpMethod.Get, ControlPlane(context, batch, "model-invocation-job/" + Uri.EscapeDataString(jobArn)), stream: false);
        return await _http.SendForJsonAsync(context, message, BedrockJsonContext.Wire.BedrockBatchJob, cancellationToken).ConfigureAwait(false);
    }

    private BatchObject ToBatchObject(string jobArn, BedrockBatchJob job)
    {
        var status = job.Status switch
        {
            "Completed" or "PartiallyCompleted" => BatchStatus.Completed,
            "Failed" => BatchStatus.Failed,
            "Stopped" => BatchStatus.Cancelled,
            "Expired" => BatchStatus.Expired,
            "Stopping" => BatchStatus.Cancelling,
            _ => BatchStatus.InProgress,
        };
        var ended = status is BatchStatus.Completed or BatchStatus.Failed or BatchStatus.Cancelled or BatchStatus.Expired;
        var total = job.TotalRecordCount ?? 0;
        var succeeded = job.SuccessRecordCount ?? 0;
        var failed = job.ErrorRecordCount ?? 0;
        var notRun = ended ? Math.Max(0, total - succeeded - failed) : 0;
        var id = job.JobArn is { Length: > 0 } arn ? arn : jobArn;
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var createdAt = job.SubmitTime?.ToUnixTimeSeconds() ?? now;
        var endedAt = ended ? job.EndTime?.ToUnixTimeSeconds() ?? now : (long?)null;
        var hasResults = ended && OutputObject(id, job) is not null;
        return new BatchObject
        {
            Id = id,
            Endpoint = BedrockBatchModels.For(job.ModelId)?.Endpoint ?? BedrockBatchModels.ChatEndpoint,
            Status = status,
            CreatedAt = createdAt,
            InProgressAt = createdAt,
            ExpiresAt = job.JobExpirationTime?.ToUnixTimeSeconds(),
            CompletedAt = status == BatchStatus.Completed ? endedAt : null,
            FailedAt = status == BatchStatus.Failed ? endedAt : null,
            CancelledAt = status == BatchStatus.Cancelled ? endedAt : null,
            ExpiredAt = status == BatchStatus.Expired ? endedAt : null,
            // Both files when the job ended: what it ran is in its output (also for a failed, stopped or expired job); a
            // file that turns out empty is dropped by the gateway when copied.
            OutputFileId = hasResults ? id + OutputSuffix : null,
            ErrorFileId = hasResults ? id + ErrorsSuffix : null,
            Errors = status == BatchStatus.Failed
                ? new BatchErrors { Data = [new BatchError { Code = "batch_failed", Message = job.Message is { Length: > 0 } m ? m : "The Bedrock batch inference job failed." }] }
                : null,
            ProcessingStatus = job.Status,
            RequestCounts = new BatchRequestCounts
            {
                Total = total,
                Completed = succeeded,
                Succeeded = succeeded,
                // records a partially completed or failed job did not run count as failed
                Failed = failed + (status is BatchStatus.Completed or BatchStatus.Failed ? notRun : 0),
                Canceled = status == BatchStatus.Cancelled ? notRun : 0,
                Expired = status == BatchStatus.Expired ? notRun : 0,
                Pending = ended ? 0 : Math.Max(0, total - (job.ProcessedRecordCount ?? succeeded + failed)),
            },
        };
    }

    /// <summary><c>{ControlPlaneUrl or https://bedrock.{Region}.amazonaws.com}/{path}</c>.</summary>
    internal static Uri ControlPlane(ProviderContext context, BedrockBatchOptions batch, string path)
    {
        var baseUrl = string.IsNullOrWhiteSpace(batch.ControlPlaneUrl)
            ? $"https://bedrock.{context.Options.Region?.Trim()}.amazonaws.com"
            : batch.ControlPlaneUrl.TrimEnd('/');
        return new Uri(baseUrl + "/" + path, UriKind.Absolute);
    }

    /// <summary>
    /// An S3 object's URL: path-style on <see cref="BedrockBatchOptions.S3Endpoint"/> when set, else virtual-hosted
    /// <c>https://{bucket}.s3.{Region}.amazonaws.com/{key}</c>; each key segment percent-encoded.
    /// </summary>
    internal static Uri S3Object(ProviderContext context, BedrockBatchOptions batch, string bucket, string key)
    {
        var escapedKey = string.Join('/', key.Split('/').Select(Uri.EscapeDataString));
        var url = string.IsNullOrWhiteSpace(batch.S3Endpoint)
            ? $"https://{bucket}.s3.{context.Options.Region?.Trim()}.amazonaws.com/{escapedKey}"
            : $"{batch.S3Endpoint.TrimEnd('/')}/{bucket}/{escapedKey}";
        return new Uri(url, UriKind.Absolute);
    }

    /// <summary>A bare S3 request (none of the provider's headers or key), to be signed for service <c>s3</c>.</summary>
    private static HttpRequestMessage S3Request(ProviderContext context, BedrockBatchOptions batch, HttpMethod method, string bucket, string key)
    {
        var message = new HttpRequestMessage(method, S3Object(context, batch, bucket, key));
        message.Options.Set(SigningService, "s3");
        return message;
    }

    /// <summary>Sends an S3 request; an error answer (S3's XML <c>&lt;Error&gt;&lt;Code&gt;…&lt;Message&gt;…</c>) is thrown with its status, code and message.</summary>
    private async Task<HttpResponseMessage> SendS3Async(ProviderContext context, HttpRequestMessage message, CancellationToken cancellationToken, bool allowNotFound = false)
    {
        var response = await _http.SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode || (allowNotFound && response.StatusCode == HttpStatusCode.NotFound))
        {
            return response;
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            var text = await UpstreamHttp.ReadErrorTextAsync(response, cancellationToken).ConfigureAwait(false);
            var code = XmlElement(text, "Code");
            var detail = XmlElement(text, "Message") ?? response.ReasonPhrase ?? "no message";
            throw BifrostErrors.ProviderError(status, null, code ?? "s3_error", $"S3 answered {status} ({code ?? "no code"}): {detail}", null, UpstreamHttp.ParseRetryAfter(response, time));
        }
    }

    /// <summary>The text of the first <c>&lt;name&gt;…&lt;/name&gt;</c> of an S3 error document (no XML parser: the document is not trusted).</summary>
    private static string? XmlElement(string text, string name)
    {
        var start = text.IndexOf("<" + name + ">", StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        start += name.Length + 2;
        var end = text.IndexOf("</" + name + ">", start, StringComparison.Ordinal);
        return end > start ? WebUtility.HtmlDecode(text[start..end]).Trim() : null;
    }

    private static partial class Log
    {
        [LoggerMessage(1300, LogLevel.Information, "Provider '{Provider}' created Bedrock batch inference job {JobArn} for model '{Model}'.")]
        public static partial void BatchCreated(ILogger logger, string provider, string jobArn, string model);

        [LoggerMessage(1301, LogLevel.Information, "A batch for provider '{Provider}' runs line by line through the gateway, not on Bedrock batch inference: {Reason}.")]
        public static partial void BatchRunsThroughGateway(ILogger logger, string provider, string reason);

        [LoggerMessage(1302, LogLevel.Warning, "Provider '{Provider}' returned a Bedrock batch output record that is not JSON; it is skipped.")]
        public static partial void UnreadableResultLine(ILogger logger, string provider, Exception exception);

        [LoggerMessage(1303, LogLevel.Warning, "Provider '{Provider}' returned a Bedrock batch output record without a recordId; it is skipped.")]
        public static partial void ResultLineWithoutRecordId(ILogger logger, string provider);
    }
}
