using System.Net.Http.Headers;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>OpenAI's batch API upstream: <c>POST files</c> (purpose batch), <c>POST batches</c>, <c>GET batches/{id}</c>, <c>POST batches/{id}/cancel</c>, <c>GET files/{id}/content</c>.</summary>
internal sealed partial class OpenAICompatibleAdapter : IProviderBatchAdapter
{
    public async Task<BatchObject> CreateBatchAsync(ProviderContext context, Stream input, ProviderBatchRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_azure)
        {
            // Azure: each line names its Global Batch deployment; a dated api-version spells the urls without /v1.
            await using var rewritten = await Azure.AzureBatches.RewriteInputAsync(context.Options, input, cancellationToken).ConfigureAwait(false);
            return await CreateBatchCoreAsync(context, rewritten, Azure.AzureBatches.Endpoint(context.Options, request.Endpoint), request, cancellationToken).ConfigureAwait(false);
        }

        return await CreateBatchCoreAsync(context, input, request.Endpoint, request, cancellationToken).ConfigureAwait(false);
    }

    private async Task<BatchObject> CreateBatchCoreAsync(ProviderContext context, Stream input, string endpoint, ProviderBatchRequest request, CancellationToken cancellationToken)
    {
        string fileId;
        using (var upload = CreateRequest(context, HttpMethod.Post, "files", stream: false))
        {
            var file = new StreamContent(input);
            file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
            upload.Content = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { file, "file", "batch.jsonl" } };
            using var response = await _http.SendSuccessAsync(context, upload, cancellationToken).ConfigureAwait(false);
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            using var document = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken).ConfigureAwait(false);
            fileId = document.RootElement.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String
                ? id.GetString()!
                : throw UpstreamHttp.InvalidResponse(context, "a file object without an id");
        }

        using var create = CreateRequest(context, HttpMethod.Post, "batches", stream: false);
        using var buffer = new MemoryStream();
        await using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("input_file_id", fileId);
            writer.WriteString("endpoint", endpoint);
            writer.WriteString("completion_window", request.CompletionWindow);
            if (request.Metadata is { Count: > 0 } metadata)
            {
                writer.WriteStartObject("metadata");
                foreach (var (key, value) in metadata)
                {
                    writer.WriteString(key, value);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        create.Content = UpstreamClient.Json(buffer.ToArray());
        return await SendBatchAsync(context, create, cancellationToken).ConfigureAwait(false);
    }

    public async Task<BatchObject> GetBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        using var message = CreateRequest(context, HttpMethod.Get, "batches/" + Uri.EscapeDataString(batchId), stream: false);
        return await SendBatchAsync(context, message, cancellationToken).ConfigureAwait(false);
    }

    public async Task<BatchObject> CancelBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken)
    {
        using var message = CreateRequest(context, HttpMethod.Post, "batches/" + Uri.EscapeDataString(batchId) + "/cancel", stream: false);
        return await SendBatchAsync(context, message, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Stream> OpenFileAsync(ProviderContext context, string fileId, CancellationToken cancellationToken)
    {
        var message = CreateRequest(context, HttpMethod.Get, "files/" + Uri.EscapeDataString(fileId) + "/content", stream: false);
        try
        {
            var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return new OwningStream(body, response, message);
        }
        catch
        {
            message.Dispose();
            throw;
        }
    }

    private async Task<BatchObject> SendBatchAsync(ProviderContext context, HttpRequestMessage message, CancellationToken cancellationToken)
    {
        using var response = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_azure)
            {
                return Azure.AzureBatches.Read(await System.Text.Json.Nodes.JsonNode.ParseAsync(body, cancellationToken: cancellationToken).ConfigureAwait(false));
            }

            return await JsonSerializer.DeserializeAsync(body, BifrostJson.Context.BatchObject, cancellationToken).ConfigureAwait(false)
                ?? throw UpstreamHttp.InvalidResponse(context, "an empty batch object");
        }
        catch (JsonException ex)
        {
            throw UpstreamHttp.InvalidResponse(context, $"an invalid batch object ({ex.Message})");
        }
    }

    /// <summary>A response stream that disposes its response and request with it.</summary>
    private sealed class OwningStream(Stream inner, HttpResponseMessage response, HttpRequestMessage request) : ReadOnlyStream(inner)
    {
        public override int Read(Span<byte> buffer) => Inner.Read(buffer);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => Inner.ReadAsync(buffer, cancellationToken);

        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            if (disposing)
            {
                response.Dispose();
                request.Dispose();
            }
        }
    }
}
