using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>Embeddings, legacy completions, the native Responses API and input-token counting upstream.</summary>
internal sealed partial class OpenAICompatibleAdapter
{
    public Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken) =>
        !_azure && request.ClientBytes is { } client && client.TryWriteBody(request.Model, stream: null, out var bytes)
            ? _http.SendForJsonAsync(context, WithBody(CreateRequest(context, HttpMethod.Post, "embeddings", stream: false), bytes), BifrostJson.Context.EmbeddingResponse, cancellationToken) // issue 18: the client's bytes
            : PostAsync(context, "embeddings", request, BifrostJson.Context.EmbeddingRequest, BifrostJson.Context.EmbeddingResponse, cancellationToken);

    private static HttpRequestMessage WithBody(HttpRequestMessage message, byte[] json)
    {
        message.Content = UpstreamClient.Json(json);
        return message;
    }

    public Task<TextCompletionResponse> TextCompletionAsync(ProviderContext context, TextCompletionRequest request, CancellationToken cancellationToken) =>
        PostAsync(context, "completions", request, BifrostJson.Context.TextCompletionRequest, BifrostJson.Context.TextCompletionResponse, cancellationToken);

    public IAsyncEnumerable<TextCompletionResponse> StreamTextCompletionAsync(ProviderContext context, TextCompletionRequest request, CancellationToken cancellationToken) =>
        StreamAsync(context, "completions", request, BifrostJson.Context.TextCompletionRequest, BifrostJson.Context.TextCompletionResponse, cancellationToken);

    public bool SupportsNativeResponses(ProviderContext context) =>
        context.Options.NativeResponses
        ?? (Uri.TryCreate(context.Options.BaseUrl, UriKind.Absolute, out var uri) && uri.Host.Equals("api.openai.com", StringComparison.OrdinalIgnoreCase));

    public Task<ResponsesResponse> ResponsesAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken) =>
        PostAsync(context, "responses", request, BifrostJson.Context.ResponsesRequest, BifrostJson.Context.ResponsesResponse, cancellationToken);

    public async IAsyncEnumerable<ResponsesStreamEvent> StreamResponsesAsync(ProviderContext context, ResponsesRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var deadline = _http.UntilFirstChunk(context, cancellationToken);
        using var response = await SendAsync(context, "responses", request, BifrostJson.Context.ResponsesRequest, stream: true, cancellationToken).ConfigureAwait(false);
        await using var body = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        var parser = SseParser.Create(body, static (eventType, data) =>
        {
            try
            {
                using var document = JsonDocument.Parse(data.ToArray());
                return (Type: eventType, Data: (JsonElement?)document.RootElement.Clone());
            }
            catch (JsonException)
            {
                return (Type: eventType, Data: (JsonElement?)null);
            }
        });
        await foreach (var item in parser.EnumerateAsync(deadline.Token).ConfigureAwait(false))
        {
            if (item.Data.Data is not { ValueKind: JsonValueKind.Object } data)
            {
                continue;
            }

            var type = data.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : item.Data.Type;
            deadline.Disarm();
            yield return new ResponsesStreamEvent(type, data);
        }
    }

    public async Task<int?> CountInputTokensAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken)
    {
        if (_azure || !SupportsNativeResponses(context))
        {
            // Azure documents no responses/input_tokens route: the gateway counts.
            return null;
        }

        var counted = await PostAsync(context, "responses/input_tokens", request, BifrostJson.Context.ResponsesRequest, BifrostJson.Context.InputTokensResponse, cancellationToken).ConfigureAwait(false);
        return counted.InputTokens;
    }

    /// <summary>POSTs a JSON request and reads the JSON answer.</summary>
    private Task<TResponse> PostAsync<TRequest, TResponse>(ProviderContext context, string path, TRequest request, JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
        where TResponse : class
    {
        var message = CreateRequest(context, HttpMethod.Post, path, stream: false);
        message.Content = Body(context, path, request, requestType);
        return _http.SendForJsonAsync(context, message, responseType, cancellationToken);
    }

    /// <summary>POSTs a JSON request and returns the successful answer (an error answer is thrown).</summary>
    private async Task<HttpResponseMessage> SendAsync<TRequest>(ProviderContext context, string path, TRequest request, JsonTypeInfo<TRequest> requestType, bool stream, CancellationToken cancellationToken)
    {
        using var message = CreateRequest(context, HttpMethod.Post, path, stream);
        message.Content = Body(context, path, request, requestType);
        return await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
    }

    private IAsyncEnumerable<TChunk> StreamAsync<TRequest, TChunk>(ProviderContext context, string path, TRequest request, JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TChunk> chunkType, CancellationToken cancellationToken)
        where TChunk : class =>
        StreamAsync(context, () =>
        {
            var message = CreateRequest(context, HttpMethod.Post, path, stream: true);
            message.Content = Body(context, path, request, requestType);
            return message;
        }, chunkType, cancellationToken);

    /// <summary>Sends the request the factory makes (JSON or a multipart form) and reads its answer as SSE chunks (<c>[DONE]</c> ends it; an <c>error</c> event is thrown).</summary>
    private async IAsyncEnumerable<TChunk> StreamAsync<TChunk>(ProviderContext context, Func<HttpRequestMessage> createMessage, JsonTypeInfo<TChunk> chunkType, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TChunk : class
    {
        using var deadline = _http.UntilFirstChunk(context, cancellationToken);
        HttpResponseMessage sent;
        using (var message = createMessage())
        {
            sent = await _http.SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
        }

        using var response = sent;
        await using var body = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        var parser = SseParser.Create(body, (eventType, data) =>
        {
            var trimmed = data.Trim((byte)' ');
            if (trimmed.SequenceEqual("[DONE]"u8))
            {
                return (Done: true, Chunk: (TChunk?)null, Error: (BifrostException?)null);
            }

            try
            {
                using var document = JsonDocument.Parse(trimmed.ToArray());
                if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("error", out var error) && !document.RootElement.TryGetProperty("choices", out _))
                {
                    var text = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) ? m.GetString() : error.ToString();
                    return (Done: false, Chunk: null, Error: BifrostErrors.ProviderError(500, null, null, text ?? "Provider stream failed."));
                }

                return (Done: false, Chunk: document.RootElement.Deserialize(chunkType), Error: null);
            }
            catch (JsonException ex)
            {
                return (Done: false, Chunk: null, Error: UpstreamHttp.InvalidStreamEvent(ex));
            }
        });
        await foreach (var item in parser.EnumerateAsync(deadline.Token).ConfigureAwait(false))
        {
            if (item.Data.Done)
            {
                yield break;
            }

            if (item.Data.Error is { } failure)
            {
                throw failure;
            }

            if (item.Data.Chunk is { } chunk)
            {
                deadline.Disarm();
                yield return chunk;
            }
        }
    }
}
