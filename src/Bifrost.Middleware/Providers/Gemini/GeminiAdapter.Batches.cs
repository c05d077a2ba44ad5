using System.Globalization;
using System.Net.Http.Headers;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Gemini;

/// <summary>
/// Native batches on the Gemini Batch API (https://ai.google.dev/api/batch-mode; notes in research16/gemini-batch.md).
/// The gateway hands over OpenAI batch JSONL (chat completion bodies with bare model names) and expects OpenAI batch
/// objects and output files back, so this part translates:
/// <list type="bullet">
/// <item>create: each line's body becomes a <c>GenerateContentRequest</c> (the chat translator's) keyed by its
/// <c>custom_id</c> in a JSONL file (<c>{"key","request"}</c> per line, written to a temporary file, never held in memory),
/// uploaded with the Files API's resumable upload (<c>{origin}/upload/v1beta/files</c>), then
/// <c>models/{model}:batchGenerateContent</c> with <c>inputConfig.fileName</c>. A Gemini batch runs one model: every line
/// must name the same model (a batch of several models runs line by line through the gateway instead, see
/// <see cref="Refuses"/>);</item>
/// <item>status: <c>BATCH_STATE_PENDING</c>/<c>RUNNING</c> → in_progress, <c>SUCCEEDED</c> → completed, <c>FAILED</c> →
/// failed (the operation's error as the batch error), <c>CANCELLED</c> → cancelled, <c>EXPIRED</c> → expired; counts from
/// <c>batchStats</c> (requests not run when a batch was cancelled or expired are counted canceled or expired);</item>
/// <item>files: the batch's responses file (<c>download/v1beta/files/…:download?alt=media</c>) is exposed as two synthetic
/// files, <c>{batchId}:output</c> (lines with a response, as <c>{custom_id, response: {status_code: 200, request_id, body:
/// chat.completion}}</c>) and <c>{batchId}:errors</c> (lines with an error: the gRPC code as the HTTP status, Google's status
/// name as the code), both in OpenAI's batch output format. Requests that never ran are not listed (the uploaded input
/// cannot be downloaded back to name them): they are only counted.</item>
/// </list>
/// </summary>
internal sealed partial class GeminiAdapter : IProviderBatchAdapter, INativeBatchEligibility
{
    /// <summary>A Gemini batch runs chat completions of one model.</summary>
    public string? Refuses(NativeBatchCandidate batch) => batch.RefusesUnlessOneModelOf(NativeBatchCandidate.ChatEndpoint);

    internal const string OutputSuffix = NativeBatchFiles.OutputSuffix;
    internal const string ErrorsSuffix = NativeBatchFiles.ErrorsSuffix;
    private const string JsonlMediaType = "application/jsonl";

    private static readonly string[] GrpcStatusNames =
    [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ];

    public async Task<BatchObject> CreateBatchAsync(ProviderContext context, Stream input, ProviderBatchRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(request);
        if (!string.Equals(request.Endpoint, "/v1/chat/completions", StringComparison.Ordinal))
        {
            throw BifrostErrors.UnsupportedOperation($"Provider '{context.ProviderName}' runs native batches of /v1/chat/completions only, not '{request.Endpoint}'.", "endpoint");
        }

        await using var file = TempFiles.Create();
        var model = await WriteBatchInputAsync(context, input, file, cancellationToken).ConfigureAwait(false);
        file.Position = 0;
        var fileName = await UploadAsync(context, file, "bifrost-batch-input.jsonl", cancellationToken).ConfigureAwait(false);

        var body = new GeminiBatchCreateRequest
        {
            Batch = new GeminiBatchSpec
            {
                DisplayName = "bifrost-" + time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture),
                InputConfig = new GeminiBatchInputConfig { FileName = fileName },
            },
        };
        var message = CreateRequest(context, HttpMethod.Post, "models/" + Uri.EscapeDataString(model) + ":batchGenerateContent", stream: false);
        message.Content = UpstreamClient.Json(body, GeminiJsonContext.Wire.GeminiBatchCreateRequest);
        var operation = await _http.SendForJsonAsync(context, message, GeminiJsonContext.Wire.GeminiBatchOperation, cancellationToken).ConfigureAwait(false);
        var created = ToBatchObject(operation);
        if (created.Id.Length == 0)
        {
            throw UpstreamHttp.InvalidResponse(context, "a batch without a name");
        }

        Log.BatchCreated(logger, context.ProviderName, created.Id, model);
        return created;
    }

    public async Task<BatchObject> GetBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        return ToBatchObject(await GetOperationAsync(context, batchId, cancellationToken).ConfigureAwait(false));
    }

    /// <summary><c>POST batches/{id}:cancel</c> (its answer is empty), then the batch as it stands.</summary>
    public async Task<BatchObject> CancelBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        using (var message = CreateRequest(context, HttpMethod.Post, BatchPath(batchId) + ":cancel", stream: false))
        {
            message.Content = UpstreamClient.Json("{}"u8.ToArray());
            using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        }

        return await GetBatchAsync(context, batchId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens <c>{batchId}:output</c> or <c>{batchId}:errors</c>: the batch's responses file, translated to OpenAI batch output lines.</summary>
    public async Task<Stream> OpenFileAsync(ProviderContext context, string fileId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(fileId);
        var (batchId, errors) = NativeBatchFiles.Parse(context, fileId, "Gemini batch results", "batch id");

        var operation = await GetOperationAsync(context, batchId, cancellationToken).ConfigureAwait(false);
        var responsesFile = ResponsesFile(operation);
        var temp = TempFiles.Create();
        try
        {
            if (responsesFile is not null)
            {
                using var message = _http.CreateRequest(context, HttpMethod.Get, FilesEndpoint(context, "download", FilePath(responsesFile) + ":download?alt=media"), stream: false);
                message.Headers.Accept.Clear();
                message.Headers.Accept.ParseAdd("application/jsonl");
                message.Headers.Accept.ParseAdd("application/json");
                using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
                await using var results = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                var model = operation.Metadata?.Model is { } m && m.StartsWith("models/", StringComparison.Ordinal) ? m["models/".Length..] : operation.Metadata?.Model ?? string.Empty;
                await TranslateResultsAsync(context, BatchIdOf(operation.Name) is { Length: > 0 } id ? id : batchId, model, results, temp, errors, cancellationToken).ConfigureAwait(false);
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

    /// <summary>Writes <c>{"key": custom_id, "request": GenerateContentRequest}</c> per input line; returns the one model they all name.</summary>
    private static async Task<string> WriteBatchInputAsync(ProviderContext context, Stream input, Stream output, CancellationToken cancellationToken)
    {
        string? model = null;
        var newline = "\n"u8.ToArray();
        var written = 0;
        await foreach (var (number, customId, chat) in ChatBatchInput.ReadAsync(input, cancellationToken).ConfigureAwait(false))
        {
            if (string.IsNullOrEmpty(chat.Model))
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} (custom_id '{customId}') names no model.", "model");
            }

            if (model is null)
            {
                model = chat.Model;
            }
            else if (!string.Equals(model, chat.Model, StringComparison.Ordinal))
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} (custom_id '{customId}') names model '{chat.Model}', but a Gemini batch runs one model ('{model}'): send one batch per model.", "model");
            }

            GeminiRequest request;
            try
            {
                request = GeminiRequestTranslator.Translate(chat, context.Options.DefaultMaxTokens);
            }
            catch (BifrostException ex)
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} (custom_id '{customId}') cannot run on Gemini: {ex.Message}", ex.Error.Error.Param);
            }

            await output.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(new GeminiBatchInputLine { Key = customId, Request = request }, GeminiJsonContext.Wire.GeminiBatchInputLine), cancellationToken).ConfigureAwait(false);
            await output.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
            written++;
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        return written > 0 && model is not null
            ? model
            : throw BifrostErrors.InvalidRequest("invalid_batch_line", "The batch input has no lines.");
    }

    /// <summary>The Files API's resumable upload: a start request (the session URL comes back in <c>X-Goog-Upload-URL</c>), then the bytes with <c>upload, finalize</c>.</summary>
    private async Task<string> UploadAsync(ProviderContext context, FileStream file, string displayName, CancellationToken cancellationToken)
    {
        Uri session;
        using (var start = _http.CreateRequest(context, HttpMethod.Post, FilesEndpoint(context, "upload", "files"), stream: false))
        {
            start.Headers.TryAddWithoutValidation("X-Goog-Upload-Protocol", "resumable");
            start.Headers.TryAddWithoutValidation("X-Goog-Upload-Command", "start");
            start.Headers.TryAddWithoutValidation("X-Goog-Upload-Header-Content-Length", file.Length.ToString(CultureInfo.InvariantCulture));
            start.Headers.TryAddWithoutValidation("X-Goog-Upload-Header-Content-Type", JsonlMediaType);
            start.Content = UpstreamClient.Json(new GeminiUploadStart { File = new GeminiUploadFile { DisplayName = displayName } }, GeminiJsonContext.Wire.GeminiUploadStart);
            using var answer = await _http.SendSuccessAsync(context, start, cancellationToken).ConfigureAwait(false);
            var location = answer.Headers.TryGetValues("X-Goog-Upload-URL", out var values) ? values.FirstOrDefault() : null;
            var api = Endpoint(context, string.Empty);
            // The key goes to the session URL: only when it is on the API's own origin.
            if (!Uri.TryCreate(location, UriKind.Absolute, out var given)
                || Uri.Compare(given, api, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) != 0)
            {
                throw UpstreamHttp.InvalidResponse(context, "an upload start without an upload URL on the API's origin");
            }

            session = given;
        }

        using var upload = _http.CreateRequest(context, HttpMethod.Post, session, stream: false);
        upload.Headers.TryAddWithoutValidation("X-Goog-Upload-Offset", "0");
        upload.Headers.TryAddWithoutValidation("X-Goog-Upload-Command", "upload, finalize");
        upload.Content = new StreamContent(file, 81920) { Headers = { ContentType = new MediaTypeHeaderValue(JsonlMediaType), ContentLength = file.Length } };
        var uploaded = await _http.SendForJsonAsync(context, upload, GeminiJsonContext.Wire.GeminiFileEnvelope, cancellationToken).ConfigureAwait(false);
        return uploaded.File?.Name is { Length: > 0 } name ? name : throw UpstreamHttp.InvalidResponse(context, "an uploaded file without a name");
    }

    private async Task TranslateResultsAsync(ProviderContext context, string batchId, string model, Stream results, Stream output, bool errors, CancellationToken cancellationToken)
    {
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var newline = "\n"u8.ToArray();
        await foreach (var result in ProviderBatchResults.ReadAsync(results, GeminiJsonContext.Wire.GeminiBatchResultLine, ex => Log.UnreadableResultLine(logger, context.ProviderName, ex), cancellationToken).ConfigureAwait(false))
        {
            if (result?.Key is not { } customId)
            {
                Log.ResultLineWithoutKey(logger, context.ProviderName);
                continue;
            }

            var (succeeded, bytes) = OutputLine(context, batchId, customId, model, result, created);
            if (succeeded == errors)
            {
                continue;
            }

            await output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
            await output.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One batch output line for one result: a response → 200 with the chat completion; an error (or an answer that is not one) → its status and error body.</summary>
    private static (bool Succeeded, byte[] Line) OutputLine(ProviderContext context, string batchId, string customId, string model, GeminiBatchResultLine result, long created)
    {
        if (result.Error is null && result.Response is { } response)
        {
            try
            {
                var chat = GeminiResponseTranslator.ToChat(response, model, created, context.ProviderName);
                return (true, BatchLineWriter.ResponseLine(batchId, customId, 200, response.ResponseId, writer => JsonSerializer.Serialize(writer, chat, BifrostJson.Context.ChatCompletionResponse)));
            }
            catch (BifrostException ex)
            {
                return (false, ErrorResponseLine(batchId, customId, ex.StatusCode, ex.Message, ex.Error.Error.Code));
            }
        }

        var (status, code) = StatusOfRpc(result.Error);
        return (false, ErrorResponseLine(batchId, customId, status, result.Error?.Message is { Length: > 0 } message ? message : "The request failed.", code));
    }

    /// <summary>An OpenAI batch output line with an error body (shared with the Vertex adapter's batches).</summary>
    internal static byte[] ErrorResponseLine(string batchId, string customId, int status, string message, string? code) =>
        BatchLineWriter.ErrorResponseLine(batchId, customId, status, message, GeminiResponseTranslator.TypeOf(status), code);

    /// <summary>A <c>google.rpc.Status</c> (gRPC code, or an HTTP status where one is given) → the HTTP status and Google's status name.</summary>
    internal static (int Status, string? Code) StatusOfRpc(GeminiErrorDetail? error)
    {
        var code = error?.Code ?? 2;
        if (code is >= 400 and < 600)
        {
            return (code, error?.Status);
        }

        var name = error?.Status ?? (code >= 0 && code < GrpcStatusNames.Length ? GrpcStatusNames[code] : null);
        var status = name switch
        {
            "CANCELLED" => 499,
            "INVALID_ARGUMENT" or "FAILED_PRECONDITION" or "OUT_OF_RANGE" => 400,
            "DEADLINE_EXCEEDED" => 504,
            "NOT_FOUND" => 404,
            "ALREADY_EXISTS" or "ABORTED" => 409,
            "PERMISSION_DENIED" => 403,
            "RESOURCE_EXHAUSTED" => 429,
            "UNIMPLEMENTED" => 501,
            "UNAVAILABLE" => 503,
            "UNAUTHENTICATED" => 401,
            _ => 500,
        };
        return (status, name);
    }

    private async Task<GeminiBatchOperation> GetOperationAsync(ProviderContext context, string batchId, CancellationToken cancellationToken) =>
        await _http.SendForJsonAsync(context, CreateRequest(context, HttpMethod.Get, BatchPath(batchId), stream: false), GeminiJsonContext.Wire.GeminiBatchOperation, cancellationToken).ConfigureAwait(false);

    private BatchObject ToBatchObject(GeminiBatchOperation operation)
    {
        var metadata = operation.Metadata;
        var stats = metadata?.BatchStats;
        var total = (int)(stats?.RequestCount ?? 0);
        var succeeded = (int)(stats?.SuccessfulRequestCount ?? 0);
        var failed = (int)(stats?.FailedRequestCount ?? 0);
        var pending = (int)(stats?.PendingRequestCount ?? Math.Max(0, total - succeeded - failed));
        var state = metadata?.State;
        var status = state switch
        {
            "BATCH_STATE_SUCCEEDED" => BatchStatus.Completed,
            "BATCH_STATE_FAILED" => BatchStatus.Failed,
            "BATCH_STATE_CANCELLED" => BatchStatus.Cancelled,
            "BATCH_STATE_EXPIRED" => BatchStatus.Expired,
            _ => BatchStatus.InProgress,
        };
        var ended = status != BatchStatus.InProgress;
        var notRun = ended ? Math.Max(0, total - succeeded - failed) : 0;
        var id = BatchIdOf(operation.Name ?? metadata?.Name);
        var createdAt = UnixSeconds(metadata?.CreateTime) ?? time.GetUtcNow().ToUnixTimeSeconds();
        var endedAt = ended ? UnixSeconds(metadata?.EndTime) ?? time.GetUtcNow().ToUnixTimeSeconds() : (long?)null;
        var hasResults = ended && ResponsesFile(operation) is not null;
        return new BatchObject
        {
            Id = id,
            Endpoint = "/v1/chat/completions",
            Status = status,
            CreatedAt = createdAt,
            InProgressAt = createdAt,
            CompletedAt = status == BatchStatus.Completed ? endedAt : null,
            FailedAt = status == BatchStatus.Failed ? endedAt : null,
            CancelledAt = status == BatchStatus.Cancelled ? endedAt : null,
            ExpiredAt = status == BatchStatus.Expired ? endedAt : null,
            // Both files when there are results: a file that turns out empty is dropped by the gateway when copied.
            OutputFileId = hasResults ? id + OutputSuffix : null,
            ErrorFileId = hasResults ? id + ErrorsSuffix : null,
            Errors = status == BatchStatus.Failed && operation.Error is { } error
                ? new BatchErrors { Data = [new BatchError { Code = StatusOfRpc(error).Code ?? "batch_failed", Message = error.Message }] }
                : null,
            ProcessingStatus = state,
            OperationName = operation.Name,
            RequestCounts = new BatchRequestCounts
            {
                Total = total,
                Completed = succeeded,
                Succeeded = succeeded,
                Failed = failed,
                Canceled = status == BatchStatus.Cancelled ? notRun : 0,
                Expired = status == BatchStatus.Expired ? notRun : 0,
                Pending = ended ? 0 : pending,
            },
        };
    }

    /// <summary>The responses file's name (<c>files/…</c>) from the batch's <c>output</c>, or the finished operation's <c>response</c>.</summary>
    private static string? ResponsesFile(GeminiBatchOperation operation) =>
        operation.Metadata?.Output?.ResponsesFile is { Length: > 0 } name ? name
        : operation.Response?.ResponsesFile is { Length: > 0 } fromResponse ? fromResponse
        : null;

    /// <summary><c>batches/{id}</c> → <c>{id}</c>.</summary>
    private static string BatchIdOf(string? name) =>
        name is null ? string.Empty : name.StartsWith("batches/", StringComparison.Ordinal) ? name["batches/".Length..] : name;

    private static string BatchPath(string batchId) => "batches/" + Uri.EscapeDataString(BatchIdOf(batchId));

    /// <summary><c>files/{id}</c> with the id escaped as one path segment.</summary>
    private static string FilePath(string fileName) =>
        "files/" + Uri.EscapeDataString(fileName.StartsWith("files/", StringComparison.Ordinal) ? fileName["files/".Length..] : fileName);

    /// <summary>
    /// The Files API's upload and download hosts: BaseUrl with <c>upload/</c> or <c>download/</c> before its version segment
    /// (<c>https://generativelanguage.googleapis.com/v1beta</c> → <c>…/upload/v1beta/{path}</c>).
    /// </summary>
    internal static Uri FilesEndpoint(ProviderContext context, string prefix, string path)
    {
        var baseUrl = string.IsNullOrWhiteSpace(context.Options.BaseUrl) ? DefaultBaseUrl : context.Options.BaseUrl.TrimEnd('/');
        var authority = baseUrl.IndexOf("://", StringComparison.Ordinal) + 3;
        var slash = baseUrl.LastIndexOf('/');
        var url = slash < authority
            ? baseUrl + "/" + prefix + "/" + path
            : baseUrl[..slash] + "/" + prefix + baseUrl[slash..] + "/" + path;
        return new Uri(url, UriKind.Absolute);
    }

    /// <summary>An RFC 3339 time (up to 9 fractional digits) as Unix seconds, or null.</summary>
    internal static long? UnixSeconds(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        var dot = value.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0)
        {
            var end = dot + 1;
            while (end < value.Length && char.IsAsciiDigit(value[end]))
            {
                end++;
            }

            if (end - dot - 1 > 7)
            {
                value = string.Concat(value.AsSpan(0, dot + 8), value.AsSpan(end));
            }
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed)
            ? parsed.ToUnixTimeSeconds()
            : null;
    }

    private static partial class Log
    {
        [LoggerMessage(1120, LogLevel.Information, "Provider '{Provider}' created Gemini batch {ProviderBatchId} for model '{Model}'.")]
        public static partial void BatchCreated(ILogger logger, string provider, string providerBatchId, string model);

        [LoggerMessage(1121, LogLevel.Warning, "Provider '{Provider}' returned a Gemini batch result line that is not JSON; it is skipped.")]
        public static partial void UnreadableResultLine(ILogger logger, string provider, Exception exception);

        [LoggerMessage(1122, LogLevel.Warning, "Provider '{Provider}' returned a Gemini batch result line without a key; it is skipped.")]
        public static partial void ResultLineWithoutKey(ILogger logger, string provider);
    }
}
