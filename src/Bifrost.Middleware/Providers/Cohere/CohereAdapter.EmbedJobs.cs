using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Cohere;

/// <summary>
/// Native batches of <c>/v1/embeddings</c> lines on Cohere's Embed Jobs API (https://docs.cohere.com/docs/embed-jobs-api):
/// <list type="bullet">
/// <item>create: every text of every line becomes one row <c>{"text", "custom_id", "bifrost_index", "bifrost_format"}</c> of
/// a JSONL file (written to a temporary file), uploaded as a dataset of type <c>embed-input</c>
/// (<c>POST /v1/datasets?name=…&amp;type=embed-input&amp;keep_fields=…</c>, multipart field <c>data</c>,
/// https://docs.cohere.com/reference/create-dataset: <c>keep_fields</c> keeps the three mapping fields, which the output
/// carries next to each embedding). The dataset is validated asynchronously and must be <c>validated</c> before a job can
/// use it: <c>GET /v1/datasets/{id}</c> is polled (<c>failed</c> fails the batch with Cohere's <c>validation_error</c>).
/// Then <c>POST /v1/embed-jobs</c> with the model, the dataset, <c>input_type</c> (the lines' own, else
/// <c>search_document</c>), <c>embedding_types: ["float"]</c> and the name <c>bifrost-{lines}</c> (the line count, so
/// the job's counts need no state). A job runs one model (<see cref="Refuses"/>); <c>dimensions</c> and
/// token-id input have no embed-job equivalent (400 <c>invalid_batch_line</c>);</item>
/// <item>status (<c>GET /v1/embed-jobs/{id}</c>): <c>processing</c> → in_progress, <c>complete</c> → completed,
/// <c>cancelling</c> → cancelling, <c>cancelled</c> → cancelled, <c>failed</c> → failed; cancel is
/// <c>POST /v1/embed-jobs/{id}/cancel</c>;</item>
/// <item>output: <c>{jobId}:output</c> reads the job's output dataset (<c>GET /v1/datasets/{output_dataset_id}</c>), downloads
/// its parts (Avro files at <c>dataset_parts[].url</c>, fetched without the API key: the URL is the storage's), and writes one
/// OpenAI batch output line per <c>custom_id</c> (an embeddings list, each text at its <c>bifrost_index</c>, float or base64
/// as the line asked). Cohere's guide: "The Embed Jobs API will respect the original order of your dataset" and kept
/// fields come back with each row. Embed jobs report no token usage: the lines carry none (no cost).</item>
/// </list>
/// </summary>
internal sealed partial class CohereAdapter : IProviderBatchAdapter, INativeBatchEligibility
{
    internal const string OutputSuffix = NativeBatchFiles.OutputSuffix;

    /// <summary>The most texts one batch line may embed (OpenAI's limit for one embeddings request).</summary>
    internal const int MaxTextsPerLine = 2048;

    /// <summary>How long the dataset's validation is awaited before the batch fails.</summary>
    internal static readonly TimeSpan ValidationTimeout = TimeSpan.FromMinutes(30);

    /// <summary>The wait between two reads of the dataset's validation status.</summary>
    internal static readonly TimeSpan ValidationPollInterval = TimeSpan.FromSeconds(2);

    private static readonly string[] KeptFields = ["custom_id", "bifrost_index", "bifrost_format"];

    /// <summary>Embeddings of one model only: chat batches of a Cohere provider run line by line through the gateway.</summary>
    public string? Refuses(NativeBatchCandidate batch) => batch.RefusesUnlessOneModelOf("/v1/embeddings");

    public async Task<BatchObject> CreateBatchAsync(ProviderContext context, Stream input, ProviderBatchRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(request);
        if (!string.Equals(request.Endpoint, "/v1/embeddings", StringComparison.Ordinal))
        {
            throw BifrostErrors.UnsupportedOperation($"Provider '{context.ProviderName}' runs native batches of /v1/embeddings only (Cohere embed jobs), not '{request.Endpoint}'.", "endpoint");
        }

        await using var file = TempFiles.Create();
        var (model, inputType, lines) = await WriteEmbedInputAsync(input, file, cancellationToken).ConfigureAwait(false);
        file.Position = 0;

        var query = "v1/datasets?name=bifrost-batch-input&type=embed-input" + string.Concat(KeptFields.Select(static f => "&keep_fields=" + f));
        CohereDatasetCreated created;
        using (var upload = CreateRequest(context, HttpMethod.Post, query, stream: false))
        {
            var form = new MultipartFormDataContent();
            var data = new StreamContent(file, 81920) { Headers = { ContentType = new MediaTypeHeaderValue("application/jsonl") } };
            form.Add(data, "data", "bifrost-batch-input.jsonl");
            upload.Content = form;
            created = await _http.SendForJsonAsync(context, upload, CohereJsonContext.Wire.CohereDatasetCreated, cancellationToken).ConfigureAwait(false);
        }

        var datasetId = created.Id is { Length: > 0 } id ? id : throw UpstreamHttp.InvalidResponse(context, "a dataset without an id");
        await AwaitValidationAsync(context, datasetId, cancellationToken).ConfigureAwait(false);

        var job = new CohereEmbedJobRequest { Model = model, DatasetId = datasetId, InputType = inputType, Name = "bifrost-" + lines.ToString(CultureInfo.InvariantCulture) };
        var message = CreateRequest(context, HttpMethod.Post, "v1/embed-jobs", stream: false);
        message.Content = UpstreamClient.Json(job, CohereJsonContext.Wire.CohereEmbedJobRequest);
        var started = await _http.SendForJsonAsync(context, message, CohereJsonContext.Wire.CohereEmbedJob, cancellationToken).ConfigureAwait(false);
        var jobId = started.JobId is { Length: > 0 } j ? j : throw UpstreamHttp.InvalidResponse(context, "an embed job without a job_id");
        EmbedJobLog.Created(logger, context.ProviderName, jobId, datasetId, model, lines);
        return new BatchObject
        {
            Id = jobId,
            Endpoint = request.Endpoint,
            Status = BatchStatus.InProgress,
            CreatedAt = time.GetUtcNow().ToUnixTimeSeconds(),
            RequestCounts = new BatchRequestCounts { Total = lines },
        };
    }

    public async Task<BatchObject> GetBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        return ToBatchObject(batchId, await GetEmbedJobAsync(context, batchId, cancellationToken).ConfigureAwait(false));
    }

    /// <summary><c>POST /v1/embed-jobs/{id}/cancel</c>, then the job as it stands.</summary>
    public async Task<BatchObject> CancelBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        using (var message = CreateRequest(context, HttpMethod.Post, "v1/embed-jobs/" + Uri.EscapeDataString(batchId) + "/cancel", stream: false))
        {
            message.Content = UpstreamClient.Json("{}"u8.ToArray());
            using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        }

        return await GetBatchAsync(context, batchId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens <c>{jobId}:output</c>: the job's output dataset, translated to OpenAI batch output lines.</summary>
    public async Task<Stream> OpenFileAsync(ProviderContext context, string fileId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(fileId);
        if (!fileId.EndsWith(OutputSuffix, StringComparison.Ordinal) || fileId.Length == OutputSuffix.Length)
        {
            throw BifrostErrors.NotFound("file_not_found", $"Provider '{context.ProviderName}' has no file '{fileId}': Cohere embed job results are '<job id>{OutputSuffix}'.", "file_id");
        }

        var jobId = fileId[..^OutputSuffix.Length];
        var job = await GetEmbedJobAsync(context, jobId, cancellationToken).ConfigureAwait(false);
        var temp = TempFiles.Create();
        try
        {
            if (job.OutputDatasetId is { Length: > 0 } outputId)
            {
                var dataset = await GetDatasetAsync(context, outputId, cancellationToken).ConfigureAwait(false);
                await WriteOutputAsync(context, jobId, job.Model ?? context.Model, dataset, temp, cancellationToken).ConfigureAwait(false);
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

    /// <summary>Writes one dataset row per text; returns the one model, the one input_type and the number of lines.</summary>
    private static async Task<(string Model, string InputType, int Lines)> WriteEmbedInputAsync(Stream input, Stream output, CancellationToken cancellationToken)
    {
        string? model = null;
        string? inputType = null;
        var lines = 0;
        var newline = "\n"u8.ToArray();
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

            string customId;
            EmbeddingRequest body;
            try
            {
                using var document = JsonDocument.Parse(line);
                customId = document.RootElement.GetProperty("custom_id").GetString() ?? throw new JsonException("custom_id is null");
                body = document.RootElement.GetProperty("body").Deserialize(BifrostJson.Context.EmbeddingRequest) ?? throw new JsonException("body is null");
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} is not an embeddings request line: {ex.Message}");
            }

            var where = $"Batch input line {number} (custom_id '{customId}')";
            if (string.IsNullOrEmpty(body.Model))
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} names no model.", "model");
            }

            model ??= body.Model;
            if (!string.Equals(model, body.Model, StringComparison.Ordinal))
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} names model '{body.Model}', but a Cohere embed job runs one model ('{model}'): send one batch per model.", "model");
            }

            if (body.Input?.Texts is not { Count: > 0 } texts)
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where}: a Cohere embed job embeds text only ('input' must be a string or an array of strings).", "input");
            }

            if (texts.Count > MaxTextsPerLine)
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} has {texts.Count} inputs; at most {MaxTextsPerLine} per line.", "input");
            }

            if (body.Dimensions is not null)
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where}: 'dimensions' has no Cohere embed job equivalent.", "dimensions");
            }

            var lineType = DefaultInputType;
            if (body.AdditionalProperties?.TryGetValue("input_type", out var given) == true)
            {
                lineType = given.ValueKind == JsonValueKind.String && given.GetString() is { } value && InputTypes.Contains(value)
                    ? value
                    : throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where}: 'input_type' must be search_document, search_query, classification or clustering.", "input_type");
            }

            inputType ??= lineType;
            if (!string.Equals(inputType, lineType, StringComparison.Ordinal))
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where} has input_type '{lineType}', but the batch's first line has '{inputType}': a Cohere embed job has one input_type.", "input_type");
            }

            var format = body.EncodingFormat == "base64" ? "base64" : "float";
            for (var i = 0; i < texts.Count; i++)
            {
                if (string.IsNullOrEmpty(texts[i]))
                {
                    throw BifrostErrors.InvalidRequest("invalid_batch_line", $"{where}: input {i} is empty (Cohere's embed-input rows cannot be empty).", "input");
                }

                var row = new CohereEmbedInputRow { Text = texts[i], CustomId = customId, BifrostIndex = i.ToString(CultureInfo.InvariantCulture), BifrostFormat = format };
                await output.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(row, CohereJsonContext.Wire.CohereEmbedInputRow), cancellationToken).ConfigureAwait(false);
                await output.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
            }

            lines++;
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        return lines > 0 && model is not null
            ? (model, inputType ?? DefaultInputType, lines)
            : throw BifrostErrors.InvalidRequest("invalid_batch_line", "The batch input has no lines.");
    }

    /// <summary>Polls the dataset until Cohere validated it (<c>validated</c>, or <c>skipped</c>); <c>failed</c> or a timeout fails.</summary>
    private async Task AwaitValidationAsync(ProviderContext context, string datasetId, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + ValidationTimeout;
        while (true)
        {
            var dataset = await GetDatasetAsync(context, datasetId, cancellationToken).ConfigureAwait(false);
            switch (dataset.ValidationStatus)
            {
                case "validated" or "skipped":
                    return;
                case "failed":
                    throw BifrostErrors.InvalidRequest("invalid_batch_input", $"Cohere refused the batch's dataset '{datasetId}': {dataset.ValidationError ?? "validation failed"}.");
            }

            if (time.GetUtcNow() >= deadline)
            {
                throw BifrostErrors.ProviderError(504, BifrostErrors.ApiErrorType, "dataset_validation_timeout", $"Provider '{context.ProviderName}' did not validate dataset '{datasetId}' within {ValidationTimeout}.");
            }

            await Task.Delay(ValidationPollInterval, time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<CohereDataset> GetDatasetAsync(ProviderContext context, string datasetId, CancellationToken cancellationToken)
    {
        var message = CreateRequest(context, HttpMethod.Get, "v1/datasets/" + Uri.EscapeDataString(datasetId), stream: false);
        var envelope = await _http.SendForJsonAsync(context, message, CohereJsonContext.Wire.CohereDatasetEnvelope, cancellationToken).ConfigureAwait(false);
        return envelope.Dataset ?? throw UpstreamHttp.InvalidResponse(context, "a dataset answer without a dataset");
    }

    private async Task<CohereEmbedJob> GetEmbedJobAsync(ProviderContext context, string jobId, CancellationToken cancellationToken) =>
        await _http.SendForJsonAsync(context, CreateRequest(context, HttpMethod.Get, "v1/embed-jobs/" + Uri.EscapeDataString(jobId), stream: false), CohereJsonContext.Wire.CohereEmbedJob, cancellationToken).ConfigureAwait(false);

    private static BatchObject ToBatchObject(string jobId, CohereEmbedJob job)
    {
        var total = job.Name is { } name && name.StartsWith("bifrost-", StringComparison.Ordinal) && int.TryParse(name.AsSpan(8), NumberStyles.None, CultureInfo.InvariantCulture, out var lines) ? lines : 0;
        var status = job.Status switch
        {
            "complete" => BatchStatus.Completed,
            "failed" => BatchStatus.Failed,
            "cancelled" => BatchStatus.Cancelled,
            "cancelling" => BatchStatus.Cancelling,
            _ => BatchStatus.InProgress,
        };
        var batch = new BatchObject
        {
            Id = job.JobId is { Length: > 0 } id ? id : jobId,
            Endpoint = "/v1/embeddings",
            Status = status,
            RequestCounts = new BatchRequestCounts
            {
                Total = total,
                Completed = status == BatchStatus.Completed ? total : 0,
                Succeeded = status == BatchStatus.Completed ? total : 0,
                Failed = status == BatchStatus.Failed ? total : 0,
                Canceled = status == BatchStatus.Cancelled ? total : 0,
                Pending = status is BatchStatus.InProgress or BatchStatus.Cancelling ? total : 0,
            },
            OutputFileId = status == BatchStatus.Completed ? jobId + OutputSuffix : null,
        };
        if (status == BatchStatus.Failed)
        {
            batch.Errors = new BatchErrors { Data = [new BatchError { Code = "embed_job_failed", Message = $"Cohere embed job {jobId} failed." }] };
        }

        return batch;
    }

    /// <summary>Reads the output dataset's parts (in index order) and writes one line per run of rows with the same custom_id.</summary>
    private async Task WriteOutputAsync(ProviderContext context, string jobId, string model, CohereDataset dataset, Stream output, CancellationToken cancellationToken)
    {
        var newline = "\n"u8.ToArray();
        var client = httpClientFactory.CreateClient(HttpClientName);
        string? current = null;
        var format = "float";
        var data = new List<EmbeddingData>();
        foreach (var part in (dataset.DatasetParts ?? []).OrderBy(static p => p.Index ?? 0))
        {
            if (!Uri.TryCreate(part.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp))
            {
                throw UpstreamHttp.InvalidResponse(context, $"a dataset part '{part.Name}' without a download URL");
            }

            // The part's URL is the storage's (signed): it gets no API key. The provider's Timeout bounds the wait for headers.
            HttpResponseMessage response;
            using (var headers = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                headers.CancelAfter(context.Options.Timeout);
                try
                {
                    response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, headers.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw BifrostErrors.ProviderError(504, BifrostErrors.ApiErrorType, "provider_timeout", $"Provider '{context.ProviderName}' did not answer the download of dataset part '{part.Name}' within {context.Options.Timeout}.");
                }
                catch (HttpRequestException ex)
                {
                    throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "provider_unreachable", $"Provider '{context.ProviderName}' could not download dataset part '{part.Name}': {ex.Message}");
                }
            }

            using var answer = response;
            if (!answer.IsSuccessStatusCode)
            {
                throw BifrostErrors.ProviderError(502, BifrostErrors.ApiErrorType, "provider_download_failed", $"Provider '{context.ProviderName}' answered {(int)answer.StatusCode} to the download of dataset part '{part.Name}'.");
            }

            await using var stream = await answer.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            IAsyncEnumerator<JsonNode?> rows;
            rows = AvroContainerReader.ReadAsync(stream, cancellationToken).GetAsyncEnumerator(cancellationToken);
            await using (rows.ConfigureAwait(false))
            {
                while (true)
                {
                    bool more;
                    try
                    {
                        more = await rows.MoveNextAsync().ConfigureAwait(false);
                    }
                    catch (InvalidDataException ex)
                    {
                        throw UpstreamHttp.InvalidResponse(context, $"a dataset part '{part.Name}' that is not a readable Avro file ({ex.Message})");
                    }

                    if (!more)
                    {
                        break;
                    }

                    var row = rows.Current as JsonObject;
                    var customId = Text(row?["custom_id"]);
                    if (customId is null)
                    {
                        EmbedJobLog.RowWithoutCustomId(logger, context.ProviderName, jobId);
                        continue;
                    }

                    if (current is not null && customId != current)
                    {
                        await WriteLineAsync(output, jobId, current, model, format, data, newline, cancellationToken).ConfigureAwait(false);
                        data = [];
                    }

                    current = customId;
                    format = Text(row?["bifrost_format"]) ?? "float";
                    var index = int.TryParse(Text(row?["bifrost_index"]), NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : data.Count;
                    var floats = (row?["embeddings"] as JsonObject)?["float"] as JsonArray ?? row?["embedding"] as JsonArray;
                    if (floats is null)
                    {
                        throw UpstreamHttp.InvalidResponse(context, $"an output row of custom_id '{customId}' without float embeddings");
                    }

                    var vector = new float[floats.Count];
                    for (var k = 0; k < vector.Length; k++)
                    {
                        vector[k] = floats[k] is JsonValue value && value.TryGetValue<double>(out var number) ? (float)number : throw UpstreamHttp.InvalidResponse(context, $"a non-numeric embedding value for custom_id '{customId}'");
                    }

                    data.Add(new EmbeddingData { Index = index, Embedding = new EmbeddingVector(vector) });
                }
            }
        }

        if (current is not null)
        {
            await WriteLineAsync(output, jobId, current, model, format, data, newline, cancellationToken).ConfigureAwait(false);
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);

        static string? Text(JsonNode? node) => node?.GetValueKind() switch
        {
            JsonValueKind.String => node!.GetValue<string>(),
            JsonValueKind.Number => node!.ToJsonString(),
            _ => null,
        };
    }

    private static async Task WriteLineAsync(Stream output, string jobId, string customId, string model, string format, List<EmbeddingData> data, byte[] newline, CancellationToken cancellationToken)
    {
        var base64 = format == "base64";
        foreach (var item in data)
        {
            item.Embedding = item.Embedding.As(base64);
        }

        var answer = new EmbeddingResponse { Data = [.. data.OrderBy(static d => d.Index)], Model = model };
        var line = BatchLineWriter.ResponseLine(jobId, customId, 200, null, writer => JsonSerializer.Serialize(writer, answer, BifrostJson.Context.EmbeddingResponse));
        await output.WriteAsync(line, cancellationToken).ConfigureAwait(false);
        await output.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
    }

    private static partial class EmbedJobLog
    {
        [LoggerMessage(1340, LogLevel.Information, "Provider '{Provider}' created Cohere embed job {JobId} on dataset {DatasetId} for model '{Model}' ({Lines} lines).")]
        public static partial void Created(ILogger logger, string provider, string jobId, string datasetId, string model, int lines);

        [LoggerMessage(1341, LogLevel.Warning, "Provider '{Provider}': an output row of Cohere embed job {JobId} has no custom_id; it is skipped.")]
        public static partial void RowWithoutCustomId(ILogger logger, string provider, string jobId);
    }
}
