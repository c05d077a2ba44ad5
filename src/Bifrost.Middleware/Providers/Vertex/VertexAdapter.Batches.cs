using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.Providers.Gemini;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Vertex;

/// <summary>
/// Native batches on Vertex AI batch prediction for Gemini models
/// (https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage) and Claude models
/// (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude-batch; REST:
/// https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs), with the input and
/// output in Cloud Storage (<see cref="ProviderOptions.BatchGcsUri"/>) through the JSON API
/// (https://cloud.google.com/storage/docs/json_api/v1/objects — simple media upload, <c>alt=media</c> download, list by
/// prefix), authenticated as every Vertex call (the key as a bearer token, or the provider's authenticator).
/// <list type="bullet">
/// <item>create: each line's body becomes a <c>GenerateContentRequest</c> (the Gemini chat translator's, function-call ids
/// stripped as for every Vertex call) written as <c>{"request": …}</c>. Vertex echoes each line's request beside its
/// response but keeps no id of its own, and label values are too narrow for a <c>custom_id</c> (lowercase letters, digits,
/// <c>-</c>, <c>_</c>, 63 characters), so each request carries its line index as the label <c>bifrost_line</c> and the
/// custom ids go, in line order, to a second object beside the input (<c>custom_ids.jsonl</c>, one JSON string per line).
/// Both are uploaded under <c>{BatchGcsUri}/bifrost-batch-{time}-{random}/</c>, then a job is created for
/// <c>publishers/google/models/{model}</c> (one model per job, like Gemini's Batch API) with the predictions written to
/// <c>…/output</c> and the line count as the job label <c>bifrost_lines</c> (the job reports no total of its own);</item>
/// <item>status: <c>JOB_STATE_SUCCEEDED</c> / <c>_PARTIALLY_SUCCEEDED</c> → completed, <c>_FAILED</c> → failed (the job's
/// error), <c>_CANCELLED</c> → cancelled, <c>_EXPIRED</c> → expired, every other state in progress; counts from
/// <c>completionStats</c> (lines not run when a job was cancelled or expired are counted canceled or expired);</item>
/// <item>files: <c>{jobId}:output</c> and <c>{jobId}:errors</c> read every <c>predictions*.jsonl</c> object under the job's
/// <c>outputInfo.gcsOutputDirectory</c>: a line with a <c>response</c> and an empty <c>status</c> is a 200 chat completion,
/// any other line an error (its <c>status</c>: a <c>google.rpc.Status</c>, or a text, where Google's error envelope inside
/// it gives the code). Lines that never ran are only counted.</item>
/// </list>
/// Claude models (<c>claude-…</c>) batch the same way with their own rows, per "Batch predictions with Anthropic Claude
/// models": each input line is <c>{"custom_id", "request"}</c>, the request the Anthropic Messages body Vertex takes (the Claude
/// chat path's <see cref="ClaudeBody"/>: no <c>model</c>, <c>anthropic_version: vertex-2023-10-16</c>), so no label and no
/// custom ids object are needed; the job's model is <c>publishers/anthropic/models/{model}</c>; each prediction row carries
/// the input's columns (<c>custom_id</c>, <c>request</c>) beside <c>response</c> (an Anthropic Messages response, translated
/// by the Anthropic response translator) and <c>status</c> (read as for Gemini). A Claude line the Anthropic translator
/// refuses (<see cref="RefusesLine"/>) runs the batch line by line through the gateway. BigQuery input and output (the
/// other source the page documents) are not used: the gateway's batches are files, so Cloud Storage only.
/// Providers without <c>BatchGcsUri</c> or in express mode run line by line through the gateway (<see cref="Refuses"/>).
/// </summary>
internal sealed partial class VertexAdapter : IProviderBatchAdapter, INativeBatchLineEligibility
{
    internal const string OutputSuffix = NativeBatchFiles.OutputSuffix;
    internal const string ErrorsSuffix = NativeBatchFiles.ErrorsSuffix;

    /// <summary>The Cloud Storage JSON API's root when <see cref="ProviderOptions.StorageBaseUrl"/> is not set.</summary>
    internal const string DefaultStorageBaseUrl = "https://storage.googleapis.com";

    /// <summary>The request label carrying a line's index.</summary>
    internal const string LineLabel = "bifrost_line";

    /// <summary>The job label carrying the number of lines.</summary>
    internal const string LinesLabel = "bifrost_lines";

    internal const string InputObjectName = "input.jsonl";

    /// <summary>The model prefix of a Claude batch prediction job.</summary>
    internal const string ClaudePublisher = "publishers/anthropic/models/";
    internal const string CustomIdsObjectName = "custom_ids.jsonl";

    private const string JsonlMediaType = "application/jsonl";

    /// <summary>Gemini and Claude models of a provider with a project and <see cref="ProviderOptions.BatchGcsUri"/>.</summary>
    public string? Refuses(NativeBatchCandidate batch) =>
        batch.RefusesUnlessOneModelOf(NativeBatchCandidate.ChatEndpoint)
        ?? (IsExpress(batch.Provider.Options) ? "express mode has no batch prediction"
            : string.IsNullOrWhiteSpace(batch.Provider.Options.BatchGcsUri) ? "it has no BatchGcsUri (the Cloud Storage location of batches)"
            : null);

    /// <summary>A Claude line the Anthropic request translator refuses (logged); Gemini lines are checked when the batch is created.</summary>
    public string? RefusesLine(NativeBatchCandidate batch, int number, string customId, JsonElement body)
    {
        if (!IsClaude(batch.Model))
        {
            return null;
        }

        string? refused = null;
        try
        {
            AnthropicRequestTranslator.Translate(body.Deserialize(BifrostJson.Context.ChatCompletionRequest) ?? throw new JsonException("body is null"), AnthropicRequestTranslator.DefaultMaxTokens);
        }
        catch (BifrostException ex)
        {
            refused = ex.Message;
        }
        catch (JsonException ex)
        {
            refused = ex.Message;
        }

        if (refused is null)
        {
            return null;
        }

        var reason = $"line {number} (custom_id '{customId}') cannot be a Claude batch row: {refused}";
        Log.BatchRunsThroughGateway(logger, batch.Provider.Name, reason);
        return reason;
    }

    public async Task<BatchObject> CreateBatchAsync(ProviderContext context, Stream input, ProviderBatchRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(request);
        if (!string.Equals(request.Endpoint, "/v1/chat/completions", StringComparison.Ordinal))
        {
            throw BifrostErrors.UnsupportedOperation($"Provider '{context.ProviderName}' runs native batches of /v1/chat/completions only, not '{request.Endpoint}'.", "endpoint");
        }

        if (IsExpress(context.Options) || ParseGcsUri(context.Options.BatchGcsUri) is not { } location)
        {
            throw BifrostErrors.InvalidRequest("unsupported_operation", $"Provider '{context.ProviderName}' has no Vertex AI batch prediction: it needs a ProjectId and a BatchGcsUri (express mode has no batches).");
        }

        await using var lines = TempFiles.Create();
        await using var customIds = TempFiles.Create();
        var (model, count) = await WriteBatchInputAsync(context, input, lines, customIds, cancellationToken).ConfigureAwait(false);
        var claude = IsClaude(model);
        var stamp = time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
        var folder = location.Prefix + "bifrost-batch-" + stamp + "-" + Guid.NewGuid().ToString("N")[..8] + "/";
        if (!claude)
        {
            await UploadObjectAsync(context, location.Bucket, folder + CustomIdsObjectName, customIds, cancellationToken).ConfigureAwait(false);
        }

        await UploadObjectAsync(context, location.Bucket, folder + InputObjectName, lines, cancellationToken).ConfigureAwait(false);

        var job = new VertexBatchJob
        {
            DisplayName = "bifrost-" + stamp,
            Model = (claude ? ClaudePublisher : "publishers/google/models/") + model,
            InputConfig = new VertexBatchInputConfig { InstancesFormat = "jsonl", GcsSource = new VertexGcsSource { Uris = ["gs://" + location.Bucket + "/" + folder + InputObjectName] } },
            OutputConfig = new VertexBatchOutputConfig { PredictionsFormat = "jsonl", GcsDestination = new VertexGcsDestination { OutputUriPrefix = "gs://" + location.Bucket + "/" + folder + "output" } },
            Labels = new Dictionary<string, string>(StringComparer.Ordinal) { [LinesLabel] = count.ToString(CultureInfo.InvariantCulture) },
        };
        var message = _google.CreateRequest(context, HttpMethod.Post, JobsEndpoint(context, string.Empty), stream: false);
        message.Content = UpstreamClient.Json(job, VertexJsonContext.Wire.VertexBatchJob);
        var created = ToBatchObject(await _google.SendForJsonAsync(context, message, VertexJsonContext.Wire.VertexBatchJob, cancellationToken).ConfigureAwait(false));
        if (created.Id.Length == 0)
        {
            throw UpstreamHttp.InvalidResponse(context, "a batch prediction job without a name");
        }

        Log.BatchCreated(logger, context.ProviderName, created.Id, model);
        return created;
    }

    public async Task<BatchObject> GetBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        return ToBatchObject(await GetJobAsync(context, batchId, cancellationToken).ConfigureAwait(false));
    }

    /// <summary><c>POST batchPredictionJobs/{id}:cancel</c> (its answer is empty), then the job as it stands.</summary>
    public async Task<BatchObject> CancelBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(batchId);
        using (var message = _google.CreateRequest(context, HttpMethod.Post, JobsEndpoint(context, "/" + Uri.EscapeDataString(JobIdOf(batchId)) + ":cancel"), stream: false))
        {
            message.Content = UpstreamClient.Json("{}"u8.ToArray());
            using var response = await _google.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        }

        return await GetBatchAsync(context, batchId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens <c>{jobId}:output</c> or <c>{jobId}:errors</c>: the job's predictions, translated to OpenAI batch output lines.</summary>
    public async Task<Stream> OpenFileAsync(ProviderContext context, string fileId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(fileId);
        var (batchId, errors) = NativeBatchFiles.Parse(context, fileId, "Vertex AI batch results", "job id");

        var job = await GetJobAsync(context, batchId, cancellationToken).ConfigureAwait(false);
        var temp = TempFiles.Create();
        try
        {
            if (ParseGcsUri(job.OutputInfo?.GcsOutputDirectory) is { } output)
            {
                var input = job.InputConfig?.GcsSource?.Uris is [var inputUri, ..] ? ParseGcsUri(inputUri) : null;
                if (input is not { } source || source.Prefix.Length == 0)
                {
                    throw UpstreamHttp.InvalidResponse(context, "a batch prediction job without its Cloud Storage input");
                }

                var directory = source.Prefix.TrimEnd('/');
                var claude = job.Model?.StartsWith(ClaudePublisher, StringComparison.Ordinal) == true;
                var customIds = claude ? null : await ReadCustomIdsAsync(context, source.Bucket, directory[..(directory.LastIndexOf('/') + 1)] + CustomIdsObjectName, cancellationToken).ConfigureAwait(false);
                var model = job.Model is { } m ? m[(m.LastIndexOf('/') + 1)..] : string.Empty;
                var id = JobIdOf(job.Name ?? batchId);
                var created = time.GetUtcNow().ToUnixTimeSeconds();
                foreach (var name in await ListPredictionsAsync(context, output.Bucket, output.Prefix, cancellationToken).ConfigureAwait(false))
                {
                    using var message = _google.CreateRequest(context, HttpMethod.Get, ObjectUri(context, output.Bucket, name), stream: false);
                    using var response = await _google.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
                    await using var results = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                    await TranslateResultsAsync(context, id, model, customIds, results, temp, errors, created, cancellationToken).ConfigureAwait(false);
                }
            }

            await temp.FlushAsync(cancellationToken).ConfigureAwait(false);
            temp.Position = 0;
            return temp;
        }
        catch
        {
            await temp.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary><c>gs://bucket[/prefix]</c> → the bucket and the object prefix (empty, or ending with <c>/</c>); null when it is not one.</summary>
    internal static (string Bucket, string Prefix)? ParseGcsUri(string? uri)
    {
        if (string.IsNullOrWhiteSpace(uri) || !uri.StartsWith("gs://", StringComparison.Ordinal))
        {
            return null;
        }

        var rest = uri.Trim()["gs://".Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? string.Empty : rest[(slash + 1)..].Trim('/');
        if (bucket.Length is < 3 or > 222 || !bucket.All(static c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_' or '.'))
        {
            return null;
        }

        return (bucket, prefix.Length == 0 ? string.Empty : prefix + "/");
    }


    /// <summary>
    /// Writes <c>{"request": GenerateContentRequest}</c> per input line (labelled with its index) and its custom id, or for a
    /// Claude model <c>{"custom_id", "request": the Messages body}</c> (no custom ids); returns the one model they all name and the count.
    /// </summary>
    private static async Task<(string Model, int Count)> WriteBatchInputAsync(ProviderContext context, Stream input, Stream lines, Stream customIds, CancellationToken cancellationToken)
    {
        string? model = null;
        var newline = "\n"u8.ToArray();
        var count = 0;
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
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} (custom_id '{customId}') names model '{chat.Model}', but a Vertex AI batch prediction job runs one model ('{model}'): send one batch per model.", "model");
            }

            if (IsClaude(model))
            {
                AnthropicRequest body;
                try
                {
                    body = ClaudeBody(context, chat, stream: false);
                }
                catch (BifrostException ex)
                {
                    throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} (custom_id '{customId}') cannot run on Vertex AI: {ex.Message}", ex.Error.Error.Param);
                }

                await lines.WriteAsync("{\"custom_id\":"u8.ToArray(), cancellationToken).ConfigureAwait(false);
                await lines.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(customId, AnthropicJsonContext.Wire.String), cancellationToken).ConfigureAwait(false);
                await lines.WriteAsync(",\"request\":"u8.ToArray(), cancellationToken).ConfigureAwait(false);
                await lines.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(body, AnthropicJsonContext.Wire.AnthropicRequest), cancellationToken).ConfigureAwait(false);
                await lines.WriteAsync("}\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
                count++;
                continue;
            }

            GeminiRequest request;
            try
            {
                request = StripFunctionIds(GeminiRequestTranslator.Translate(chat, context.Options.DefaultMaxTokens));
            }
            catch (BifrostException ex)
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} (custom_id '{customId}') cannot run on Vertex AI: {ex.Message}", ex.Error.Error.Param);
            }

            var extra = request.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            using (var labels = JsonDocument.Parse("{\"" + LineLabel + "\":\"" + count.ToString(CultureInfo.InvariantCulture) + "\"}"))
            {
                extra["labels"] = labels.RootElement.Clone();
            }

            await lines.WriteAsync("{\"request\":"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            await lines.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(request, GeminiJsonContext.Wire.GeminiRequest), cancellationToken).ConfigureAwait(false);
            await lines.WriteAsync("}\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            await customIds.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(customId, GeminiJsonContext.Wire.String), cancellationToken).ConfigureAwait(false);
            await customIds.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
            count++;
        }

        if (count == 0 || model is null)
        {
            throw BifrostErrors.InvalidRequest("invalid_batch_line", "The batch input has no lines.");
        }

        await lines.FlushAsync(cancellationToken).ConfigureAwait(false);
        await customIds.FlushAsync(cancellationToken).ConfigureAwait(false);
        lines.Position = 0;
        customIds.Position = 0;
        return (model, count);
    }

    /// <summary>A simple media upload: <c>POST {storage}/upload/storage/v1/b/{bucket}/o?uploadType=media&amp;name={name}</c> with the bytes.</summary>
    private async Task UploadObjectAsync(ProviderContext context, string bucket, string name, FileStream content, CancellationToken cancellationToken)
    {
        var uri = new Uri($"{StorageRoot(context)}/upload/storage/v1/b/{Uri.EscapeDataString(bucket)}/o?uploadType=media&name={Uri.EscapeDataString(name)}", UriKind.Absolute);
        var message = _google.CreateRequest(context, HttpMethod.Post, uri, stream: false);
        message.Content = new StreamContent(content, 81920) { Headers = { ContentType = new MediaTypeHeaderValue(JsonlMediaType), ContentLength = content.Length } };
        var stored = await _google.SendForJsonAsync(context, message, VertexJsonContext.Wire.GcsObject, cancellationToken).ConfigureAwait(false);
        if (!string.Equals(stored.Name, name, StringComparison.Ordinal))
        {
            throw UpstreamHttp.InvalidResponse(context, "an upload answered for another object");
        }
    }

    /// <summary>The custom ids object, in line order.</summary>
    private async Task<List<string>> ReadCustomIdsAsync(ProviderContext context, string bucket, string name, CancellationToken cancellationToken)
    {
        using var message = _google.CreateRequest(context, HttpMethod.Get, ObjectUri(context, bucket, name), stream: false);
        using var response = await _google.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(body, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536);
        var ids = new List<string>();
        string? line;
        while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            if (line.Length == 0)
            {
                continue;
            }

            try
            {
                ids.Add(JsonSerializer.Deserialize(line, GeminiJsonContext.Wire.String) ?? throw new JsonException("null"));
            }
            catch (JsonException)
            {
                throw UpstreamHttp.InvalidResponse(context, $"a custom ids object ({name}) that is not JSON strings");
            }
        }

        return ids;
    }

    /// <summary>The <c>predictions*.jsonl</c> objects under a job's output directory (every page of <c>objects.list</c>, at most 100), in name order.</summary>
    private async Task<List<string>> ListPredictionsAsync(ProviderContext context, string bucket, string prefix, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        string? pageToken = null;
        for (var page = 0; page < 100; page++)
        {
            var uri = new Uri($"{StorageRoot(context)}/storage/v1/b/{Uri.EscapeDataString(bucket)}/o?prefix={Uri.EscapeDataString(prefix)}" + (pageToken is null ? string.Empty : "&pageToken=" + Uri.EscapeDataString(pageToken)), UriKind.Absolute);
            var list = await _google.SendForJsonAsync(context, _google.CreateRequest(context, HttpMethod.Get, uri, stream: false), VertexJsonContext.Wire.GcsObjectList, cancellationToken).ConfigureAwait(false);
            foreach (var item in list.Items ?? [])
            {
                var leaf = item.Name is { } n ? n[(n.LastIndexOf('/') + 1)..] : string.Empty;
                if (leaf.StartsWith("predictions", StringComparison.Ordinal) && leaf.EndsWith(".jsonl", StringComparison.Ordinal))
                {
                    names.Add(item.Name!);
                }
            }

            pageToken = list.NextPageToken;
            if (string.IsNullOrEmpty(pageToken))
            {
                break;
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    private async Task TranslateResultsAsync(ProviderContext context, string batchId, string model, List<string>? customIds, Stream results, Stream output, bool errors, long created, CancellationToken cancellationToken)
    {
        var newline = "\n"u8.ToArray();
        using var reader = new StreamReader(results, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536);
        string? text;
        while ((text = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            (bool Succeeded, byte[] Line)? translated;
            try
            {
                using var document = JsonDocument.Parse(text);
                translated = customIds is null ? ClaudeOutputLine(context, batchId, document.RootElement, created) : OutputLine(context, batchId, model, customIds, document.RootElement, created);
            }
            catch (JsonException ex)
            {
                Log.UnreadableResultLine(logger, context.ProviderName, ex);
                continue;
            }

            if (translated is not { } line)
            {
                Log.ResultLineWithoutLine(logger, context.ProviderName);
                continue;
            }

            if (line.Succeeded == errors)
            {
                continue;
            }

            await output.WriteAsync(line.Line, cancellationToken).ConfigureAwait(false);
            await output.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>One prediction line → one OpenAI batch output line; null when the line names no line of the input.</summary>
    private static (bool Succeeded, byte[] Line)? OutputLine(ProviderContext context, string batchId, string model, List<string> customIds, JsonElement root, long created)
    {
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("request", out var request) || request.ValueKind != JsonValueKind.Object
            || !request.TryGetProperty("labels", out var labels) || labels.ValueKind != JsonValueKind.Object
            || !labels.TryGetProperty(LineLabel, out var label) || label.ValueKind != JsonValueKind.String
            || !int.TryParse(label.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            || index >= customIds.Count)
        {
            return null;
        }

        var customId = customIds[index];
        root.TryGetProperty("status", out var status);
        var failed = status.ValueKind == JsonValueKind.Object || (status.ValueKind == JsonValueKind.String && status.GetString()!.Length > 0);
        if (!failed && root.TryGetProperty("response", out var answer) && answer.ValueKind == JsonValueKind.Object)
        {
            try
            {
                var response = answer.Deserialize(GeminiJsonContext.Wire.GeminiResponse) ?? throw UpstreamHttp.InvalidResponse(context, "an empty prediction");
                var chat = GeminiResponseTranslator.ToChat(response, model, created, context.ProviderName);
                return (true, BatchLineWriter.ResponseLine(batchId, customId, 200, response.ResponseId, writer => JsonSerializer.Serialize(writer, chat, BifrostJson.Context.ChatCompletionResponse)));
            }
            catch (BifrostException ex)
            {
                return (false, GeminiAdapter.ErrorResponseLine(batchId, customId, ex.StatusCode, ex.Message, ex.Error.Error.Code));
            }
            catch (JsonException ex)
            {
                return (false, GeminiAdapter.ErrorResponseLine(batchId, customId, 502, "The prediction is not a GenerateContentResponse: " + ex.Message, "invalid_provider_response"));
            }
        }

        var (code, name, message) = LineStatus(status);
        return (false, GeminiAdapter.ErrorResponseLine(batchId, customId, code, message, name));
    }

    /// <summary>One Claude prediction row → one OpenAI batch output line (its <c>custom_id</c> as is); null when the row has no <c>custom_id</c>.</summary>
    private static (bool Succeeded, byte[] Line)? ClaudeOutputLine(ProviderContext context, string batchId, JsonElement root, long created)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("custom_id", out var id) || id.ValueKind != JsonValueKind.String || id.GetString() is not { Length: > 0 } customId)
        {
            return null;
        }

        root.TryGetProperty("status", out var status);
        var failed = status.ValueKind == JsonValueKind.Object || (status.ValueKind == JsonValueKind.String && status.GetString()!.Length > 0);
        if (!failed && root.TryGetProperty("response", out var answer) && answer.ValueKind == JsonValueKind.Object)
        {
            AnthropicResponse? message = null;
            try
            {
                message = answer.Deserialize(AnthropicJsonContext.Wire.AnthropicResponse);
            }
            catch (JsonException)
            {
                // reported below
            }

            if (message is { Type: "message" })
            {
                var chat = AnthropicResponseTranslator.ToChat(message, created);
                return (true, BatchLineWriter.ResponseLine(batchId, customId, 200, message.Id, writer => JsonSerializer.Serialize(writer, chat, BifrostJson.Context.ChatCompletionResponse)));
            }

            return (false, GeminiAdapter.ErrorResponseLine(batchId, customId, 502, $"Provider '{context.ProviderName}' returned a prediction that is not a Claude Messages response.", "invalid_provider_response"));
        }

        var (code, name, text) = LineStatus(status);
        return (false, GeminiAdapter.ErrorResponseLine(batchId, customId, code, text, name));
    }

    /// <summary>
    /// A failed line's <c>status</c>: a <c>google.rpc.Status</c> object, or a text (its exact form is not documented), whose
    /// Google error envelope (<c>{"error": {"code", "message", "status"}}</c>) gives the code when it holds one; otherwise 500.
    /// </summary>
    internal static (int Status, string? Code, string Message) LineStatus(JsonElement status)
    {
        if (status.ValueKind == JsonValueKind.Object)
        {
            var rpc = status.Deserialize(VertexJsonContext.Wire.VertexRpcStatus);
            var (mapped, name) = GeminiAdapter.StatusOfRpc(new GeminiErrorDetail { Code = rpc?.Code, Status = rpc?.Status, Message = rpc?.Message });
            return (mapped, name, rpc?.Message is { Length: > 0 } m ? m : "The request failed.");
        }

        var text = status.ValueKind == JsonValueKind.String ? status.GetString()! : string.Empty;
        var brace = text.IndexOf('{', StringComparison.Ordinal);
        if (brace >= 0)
        {
            try
            {
                if (JsonSerializer.Deserialize(text.AsSpan(brace), GeminiJsonContext.Wire.GeminiErrorResponse)?.Error is { } error)
                {
                    var (mapped, name) = GeminiAdapter.StatusOfRpc(error);
                    return (mapped, name, error.Message is { Length: > 0 } m ? m : text);
                }
            }
            catch (JsonException)
            {
                // not an envelope: the text is the message
            }
        }

        return (500, null, text.Length > 0 ? text : "The request failed.");
    }

    private async Task<VertexBatchJob> GetJobAsync(ProviderContext context, string batchId, CancellationToken cancellationToken) =>
        await _google.SendForJsonAsync(context, _google.CreateRequest(context, HttpMethod.Get, JobsEndpoint(context, "/" + Uri.EscapeDataString(JobIdOf(batchId))), stream: false), VertexJsonContext.Wire.VertexBatchJob, cancellationToken).ConfigureAwait(false);

    private BatchObject ToBatchObject(VertexBatchJob job)
    {
        var stats = job.CompletionStats;
        var succeeded = (int)(stats?.SuccessfulCount ?? 0);
        var failed = (int)(stats?.FailedCount ?? 0);
        var total = job.Labels?.TryGetValue(LinesLabel, out var lines) == true && int.TryParse(lines, NumberStyles.None, CultureInfo.InvariantCulture, out var count)
            ? count
            : succeeded + failed + (int)(stats?.IncompleteCount ?? 0);
        var status = job.State switch
        {
            "JOB_STATE_SUCCEEDED" or "JOB_STATE_PARTIALLY_SUCCEEDED" => BatchStatus.Completed,
            "JOB_STATE_FAILED" => BatchStatus.Failed,
            "JOB_STATE_CANCELLED" => BatchStatus.Cancelled,
            "JOB_STATE_EXPIRED" => BatchStatus.Expired,
            _ => BatchStatus.InProgress,
        };
        var ended = status != BatchStatus.InProgress;
        var notRun = ended ? Math.Max(0, total - succeeded - failed) : 0;
        var id = JobIdOf(job.Name);
        var createdAt = GeminiAdapter.UnixSeconds(job.CreateTime) ?? time.GetUtcNow().ToUnixTimeSeconds();
        var endedAt = ended ? GeminiAdapter.UnixSeconds(job.EndTime) ?? time.GetUtcNow().ToUnixTimeSeconds() : (long?)null;
        var hasResults = ended && !string.IsNullOrEmpty(job.OutputInfo?.GcsOutputDirectory);
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
            Errors = status == BatchStatus.Failed && job.Error is { } error
                ? new BatchErrors { Data = [new BatchError { Code = GeminiAdapter.StatusOfRpc(new GeminiErrorDetail { Code = error.Code, Status = error.Status }).Code ?? "batch_failed", Message = error.Message }] }
                : null,
            ProcessingStatus = job.State,
            OperationName = job.Name,
            RequestCounts = new BatchRequestCounts
            {
                Total = total,
                Completed = succeeded,
                Succeeded = succeeded,
                Failed = failed,
                Canceled = status == BatchStatus.Cancelled ? notRun : 0,
                Expired = status == BatchStatus.Expired ? notRun : 0,
                Pending = ended ? 0 : Math.Max(0, total - succeeded - failed),
            },
        };
    }

    /// <summary><c>projects/…/batchPredictionJobs/{id}</c> → <c>{id}</c>.</summary>
    private static string JobIdOf(string? name) =>
        name is null ? string.Empty : name[(name.LastIndexOf('/') + 1)..];

    /// <summary><c>{BaseUrl}/projects/{project}/locations/{location}/batchPredictionJobs{suffix}</c>.</summary>
    private static Uri JobsEndpoint(ProviderContext context, string suffix)
    {
        var location = Location(context.Options);
        var baseUrl = string.IsNullOrWhiteSpace(context.Options.BaseUrl) ? DefaultBaseUrl(location) : context.Options.BaseUrl.TrimEnd('/');
        return new Uri($"{baseUrl}/projects/{Uri.EscapeDataString(context.Options.ProjectId!.Trim())}/locations/{Uri.EscapeDataString(location)}/batchPredictionJobs{suffix}", UriKind.Absolute);
    }

    private static string StorageRoot(ProviderContext context) =>
        string.IsNullOrWhiteSpace(context.Options.StorageBaseUrl) ? DefaultStorageBaseUrl : context.Options.StorageBaseUrl.TrimEnd('/');

    /// <summary><c>{storage}/storage/v1/b/{bucket}/o/{name}?alt=media</c>, the name escaped as one segment (<c>/</c> → <c>%2F</c>).</summary>
    private static Uri ObjectUri(ProviderContext context, string bucket, string name) =>
        new($"{StorageRoot(context)}/storage/v1/b/{Uri.EscapeDataString(bucket)}/o/{Uri.EscapeDataString(name)}?alt=media", UriKind.Absolute);

    private static partial class Log
    {
        [LoggerMessage(1320, LogLevel.Information, "Provider '{Provider}' created Vertex AI batch prediction job {ProviderBatchId} for model '{Model}'.")]
        public static partial void BatchCreated(ILogger logger, string provider, string providerBatchId, string model);

        [LoggerMessage(1321, LogLevel.Warning, "Provider '{Provider}' returned a Vertex AI prediction line that is not JSON; it is skipped.")]
        public static partial void UnreadableResultLine(ILogger logger, string provider, Exception exception);

        [LoggerMessage(1520, LogLevel.Information, "A batch for provider '{Provider}' runs line by line through the gateway, not on Vertex AI batch prediction: {Reason}.")]
        public static partial void BatchRunsThroughGateway(ILogger logger, string provider, string reason);

        [LoggerMessage(1322, LogLevel.Warning, "Provider '{Provider}' returned a Vertex AI prediction line without the bifrost_line label of a line of the input; it is skipped.")]
        public static partial void ResultLineWithoutLine(ILogger logger, string provider);
    }
}
