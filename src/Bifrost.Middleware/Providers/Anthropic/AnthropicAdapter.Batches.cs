using System.Buffers.Text;
using System.Text;

namespace Bifrost.Middleware.Providers.Anthropic;

/// <summary>
/// Native batches on the Message Batches API. The gateway hands over OpenAI batch JSONL (chat completion bodies with
/// bare model names) and expects OpenAI batch objects and output files back, so this part translates:
/// <list type="bullet">
/// <item>create: each line's body becomes Messages <c>params</c> under its <c>custom_id</c> (ids Anthropic does not
/// accept — it allows 1-64 of <c>[A-Za-z0-9_-]</c> — are sent base64url-encoded behind a <c>bfx_</c> prefix and decoded
/// on the way back, so no state is kept);</item>
/// <item>status: <c>in_progress</c> → in_progress, <c>canceling</c> → cancelling, <c>ended</c> → completed (cancelled
/// when a cancel was initiated, expired when every request expired); counts: succeeded → completed/succeeded,
/// errored → failed, canceled, expired, processing → pending;</item>
/// <item>files: the batch's results (JSONL at <c>results_url</c>) are exposed as two synthetic files,
/// <c>{batchId}:output</c> (succeeded lines as <c>{custom_id, response: {status_code: 200, request_id, body:
/// chat.completion}}</c>) and <c>{batchId}:errors</c> (errored lines with the provider's status and error body;
/// canceled/expired lines as <c>error: {code: batch_cancelled|batch_expired}</c>), both in OpenAI's batch output format.</item>
/// </list>
/// </summary>
internal sealed partial class AnthropicAdapter : IProviderBatchAdapter
{
    internal const string OutputSuffix = NativeBatchFiles.OutputSuffix;
    internal const string ErrorsSuffix = NativeBatchFiles.ErrorsSuffix;
    private const string EncodedIdPrefix = "bfx_";

    public async Task<BatchObject> CreateBatchAsync(ProviderContext context, Stream input, ProviderBatchRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(request);
        if (!string.Equals(request.Endpoint, "/v1/chat/completions", StringComparison.Ordinal))
        {
            throw BifrostErrors.UnsupportedOperation($"Provider '{context.ProviderName}' runs native batches of /v1/chat/completions only, not '{request.Endpoint}'.", "endpoint");
        }

        // The request body can be large (up to 100,000 requests): it is written to a temporary file, never held in memory.
        await using var body = TempFiles.Create();
        await WriteBatchRequestAsync(context, input, body, cancellationToken).ConfigureAwait(false);
        body.Position = 0;

        using var message = CreateRequest(context, HttpMethod.Post, "messages/batches", stream: false);
        message.Content = new StreamContent(body) { Headers = { ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json") } };
        var batch = await _http.SendForJsonAsync(context, message, AnthropicJsonContext.Wire.AnthropicBatch, cancellationToken).ConfigureAwait(false);
        return ToBatchObject(batch);
    }

    public async Task<BatchObject> GetBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        return ToBatchObject(await GetAsync(context, "messages/batches/" + Uri.EscapeDataString(batchId), AnthropicJsonContext.Wire.AnthropicBatch, cancellationToken).ConfigureAwait(false));
    }

    public async Task<BatchObject> CancelBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        using var message = CreateRequest(context, HttpMethod.Post, "messages/batches/" + Uri.EscapeDataString(batchId) + "/cancel", stream: false);
        return ToBatchObject(await _http.SendForJsonAsync(context, message, AnthropicJsonContext.Wire.AnthropicBatch, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Opens <c>{batchId}:output</c> or <c>{batchId}:errors</c>: the batch's results, translated to OpenAI batch output lines.</summary>
    public async Task<Stream> OpenFileAsync(ProviderContext context, string fileId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(fileId);
        var (batchId, errors) = NativeBatchFiles.Parse(context, fileId, "Anthropic batch results", "batch id");

        var batch = await GetAsync(context, "messages/batches/" + Uri.EscapeDataString(batchId), AnthropicJsonContext.Wire.AnthropicBatch, cancellationToken).ConfigureAwait(false);
        var resultsUri = ResultsUri(context, batchId, batch.ResultsUrl);
        var temp = TempFiles.Create();
        try
        {
            using var message = _http.CreateRequest(context, HttpMethod.Get, resultsUri, stream: false);
            message.Headers.Accept.Clear();
            message.Headers.Accept.ParseAdd("application/x-jsonl");
            message.Headers.Accept.ParseAdd("application/json");
            using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);

            await using var results = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await TranslateResultsAsync(context, batchId, results, temp, errors, cancellationToken).ConfigureAwait(false);
            temp.Position = 0;
            return temp;
        }
        catch
        {
            await temp.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Writes <c>{"requests":[{"custom_id","params"}, ...]}</c> line by line from the OpenAI batch input.</summary>
    private static async Task WriteBatchRequestAsync(ProviderContext context, Stream input, Stream output, CancellationToken cancellationToken)
    {
        var maxTokens = MaxTokens(context);
        await using var writer = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true });
        writer.WriteStartObject();
        writer.WriteStartArray("requests");
        await foreach (var (number, customId, chat) in ChatBatchInput.ReadAsync(input, cancellationToken).ConfigureAwait(false))
        {
            AnthropicRequest request;
            try
            {
                request = AnthropicRequestTranslator.Translate(chat, maxTokens);
            }
            catch (BifrostException ex)
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} (custom_id '{customId}') cannot run on Anthropic: {ex.Message}", ex.Error.Error.Param);
            }

            request.Stream = null;
            writer.WriteStartObject();
            writer.WriteString("custom_id", EncodeCustomId(customId, number));
            writer.WritePropertyName("params");
            JsonSerializer.Serialize(writer, request, AnthropicJsonContext.Wire.AnthropicRequest);
            writer.WriteEndObject();
            if (writer.BytesPending > 65536)
            {
                await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task TranslateResultsAsync(ProviderContext context, string batchId, Stream results, Stream output, bool errors, CancellationToken cancellationToken)
    {
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var newline = "\n"u8.ToArray();
        await foreach (var result in ProviderBatchResults.ReadAsync(results, AnthropicJsonContext.Wire.AnthropicBatchResultLine, ex => Log.UnreadableResultLine(logger, context.ProviderName, ex), cancellationToken).ConfigureAwait(false))
        {
            if (result?.CustomId is not { } encodedId || result.Result is not { } outcome)
            {
                continue;
            }

            var succeeded = outcome.Type == "succeeded" && outcome.Message is not null;
            if (succeeded == errors)
            {
                continue;
            }

            var bytes = OutputLine(batchId, DecodeCustomId(encodedId), outcome, created);
            await output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
            await output.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One batch output line (<see cref="BatchLineWriter"/>) for one Anthropic result.</summary>
    private static byte[] OutputLine(string batchId, string customId, AnthropicBatchResult outcome, long created)
    {
        switch (outcome.Type)
        {
            case "succeeded":
                var chat = AnthropicResponseTranslator.ToChat(outcome.Message!, created);
                return BatchLineWriter.ResponseLine(batchId, customId, 200, outcome.Message!.Id, writer => JsonSerializer.Serialize(writer, chat, BifrostJson.Context.ChatCompletionResponse));
            case "errored":
                var detail = outcome.Error?.Error ?? outcome.Error;
                var status = AnthropicResponseTranslator.StatusOf(detail?.Type);
                return BatchLineWriter.ResponseLine(batchId, customId, status, null, writer =>
                {
                    writer.WriteStartObject();
                    writer.WriteStartObject("error");
                    writer.WriteString("message", detail?.Message ?? "The request failed.");
                    writer.WriteString("type", detail?.Type ?? BifrostException.DefaultType(status));
                    writer.WriteNull("param");
                    writer.WriteNull("code");
                    writer.WriteEndObject();
                    writer.WriteEndObject();
                });
            case "expired":
                return BatchLineWriter.ErrorLine(batchId, customId, "batch_expired", "The batch's processing window ended before this request ran.");
            default:
                return BatchLineWriter.CancelledLine(batchId, customId);
        }
    }

    private BatchObject ToBatchObject(AnthropicBatch batch)
    {
        var counts = batch.RequestCounts;
        var total = counts.Processing + counts.Succeeded + counts.Errored + counts.Canceled + counts.Expired;
        var ended = batch.ProcessingStatus == "ended";
        var status = batch.ProcessingStatus switch
        {
            "canceling" => "cancelling",
            "ended" when batch.CancelInitiatedAt is not null => "cancelled",
            "ended" when total > 0 && counts.Expired == total => "expired",
            "ended" => "completed",
            _ => "in_progress",
        };
        var id = batch.Id ?? string.Empty;
        var endedAt = batch.EndedAt?.ToUnixTimeSeconds() ?? (ended ? time.GetUtcNow().ToUnixTimeSeconds() : null);
        return new BatchObject
        {
            Id = id,
            Endpoint = "/v1/chat/completions",
            Status = status,
            CreatedAt = batch.CreatedAt?.ToUnixTimeSeconds() ?? time.GetUtcNow().ToUnixTimeSeconds(),
            InProgressAt = batch.CreatedAt?.ToUnixTimeSeconds(),
            ExpiresAt = batch.ExpiresAt?.ToUnixTimeSeconds(),
            CancellingAt = batch.CancelInitiatedAt?.ToUnixTimeSeconds(),
            CompletedAt = status is "completed" ? endedAt : null,
            CancelledAt = status is "cancelled" ? endedAt : null,
            ExpiredAt = status is "expired" ? endedAt : null,
            OutputFileId = ended && counts.Succeeded > 0 ? id + OutputSuffix : null,
            ErrorFileId = ended && counts.Errored + counts.Canceled + counts.Expired > 0 ? id + ErrorsSuffix : null,
            ProcessingStatus = batch.ProcessingStatus,
            ResultsUrl = batch.ResultsUrl,
            RequestCounts = new BatchRequestCounts
            {
                Total = total,
                Completed = counts.Succeeded,
                Succeeded = counts.Succeeded,
                Failed = counts.Errored,
                Expired = counts.Expired,
                Canceled = counts.Canceled,
                Pending = counts.Processing,
            },
        };
    }

    /// <summary>The results URL the provider gave when it is on the provider's own origin (the key goes there); otherwise the documented path.</summary>
    private static Uri ResultsUri(ProviderContext context, string batchId, string? resultsUrl)
    {
        var standard = Endpoint(context, "messages/batches/" + Uri.EscapeDataString(batchId) + "/results");
        return Uri.TryCreate(resultsUrl, UriKind.Absolute, out var given)
            && Uri.Compare(given, standard, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0
            ? given
            : standard;
    }

    /// <summary>Anthropic accepts custom ids of 1-64 characters of <c>[A-Za-z0-9_-]</c>; others travel base64url-encoded behind <c>bfx_</c>.</summary>
    internal static string EncodeCustomId(string customId, int line)
    {
        if (IsPlainId(customId))
        {
            return customId;
        }

        var encoded = EncodedIdPrefix + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(customId));
        return encoded.Length <= 64
            ? encoded
            : throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {line}: custom_id '{customId}' cannot be sent to Anthropic, which accepts up to 64 characters of [A-Za-z0-9_-] (other ids up to 45 bytes are encoded).", "custom_id");
    }

    internal static string DecodeCustomId(string customId)
    {
        if (!customId.StartsWith(EncodedIdPrefix, StringComparison.Ordinal))
        {
            return customId;
        }

        try
        {
            return Encoding.UTF8.GetString(Base64Url.DecodeFromChars(customId.AsSpan(EncodedIdPrefix.Length)));
        }
        catch (FormatException)
        {
            return customId;
        }
    }

    private static bool IsPlainId(string customId)
    {
        if (customId.Length is 0 or > 64 || customId.StartsWith(EncodedIdPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var c in customId)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not '_' and not '-')
            {
                return false;
            }
        }

        return true;
    }
}
