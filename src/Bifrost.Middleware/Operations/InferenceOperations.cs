using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Responses;

namespace Bifrost.Middleware.Operations;

/// <summary>The built-in inference operations: chat completions, legacy text completions, embeddings, the Responses API.</summary>
internal static partial class InferenceOperations
{
    public static readonly InferenceOperation<ChatCompletionRequest, ChatCompletionResponse, ChatCompletionChunk> Chat = new()
    {
        Name = "chat_completion",
        StreamName = "chat_completion_stream",
        MetricName = "chat",
        Summary = "chat completion",
        Paths = ["chat/completions"],
        BatchLineUrl = "/v1/chat/completions",
        RequestInfo = BifrostJson.Context.ChatCompletionRequest,
        ResponseInfo = BifrostJson.Context.ChatCompletionResponse,
        ChunkInfo = BifrostJson.Context.ChatCompletionChunk,
        StreamShape = StreamShape.DataLines,
        Validate = RequestValidator.Validate,
        Call = static (call, r, ct) => call.Adapter.ChatCompletionAsync(call.Context, r.ForProvider(call.Target.Model, stream: false), ct),
        CallStream = static (call, r, ct) => call.Adapter.StreamChatCompletionAsync(call.Context, r.ForProvider(call.Target.Model, stream: true), ct),
        ChunksOf = static whole => ChatCompletionChunks.Of(whole, includeUsage: true),
        NewStreamCapture = static limit => new ChatStreamCapture(limit),
        EstimateInputTokens = static (r, _) => Tokenization.TokenEstimate.Chat(r.Messages, r.Tools),
        ClientCall = static (client, r, ct) => client.ChatCompletionAsync(r, ct),
        ClientStream = static (client, r, ct) => client.ChatCompletionStreamAsync(r, ct),
        Pending = static (job, _, model) => PendingEnvelope<ChatCompletionResponse, ChatChoice>(new(), job, model, "chat_completion"),
    };

    public static readonly InferenceOperation<TextCompletionRequest, TextCompletionResponse, TextCompletionResponse> TextCompletion = new()
    {
        Name = "text_completion",
        StreamName = "text_completion_stream",
        Summary = "text completion (legacy)",
        Paths = ["completions"],
        BatchLineUrl = "/v1/completions",
        RequestInfo = BifrostJson.Context.TextCompletionRequest,
        ResponseInfo = BifrostJson.Context.TextCompletionResponse,
        ChunkInfo = BifrostJson.Context.TextCompletionResponse,
        StreamShape = StreamShape.DataLines,
        Validate = RequestValidator.Validate,
        Call = static (call, r, ct) => call.Adapter.TextCompletionAsync(call.Context, r.ForProvider(call.Target.Model, stream: false), ct),
        CallStream = static (call, r, ct) => call.Adapter.StreamTextCompletionAsync(call.Context, r.ForProvider(call.Target.Model, stream: true), ct),
        ChunksOf = static whole => [whole],
        EstimateInputTokens = static (r, _) => Tokenization.TokenEstimate.Text(r.Prompt),
        ClientCall = static (client, r, ct) => client.TextCompletionAsync(r, ct),
        ClientStream = static (client, r, ct) => client.TextCompletionStreamAsync(r, ct),
        Pending = static (job, _, model) => PendingEnvelope<TextCompletionResponse, TextChoice>(new(), job, model, "text_completion"),
    };

    public static readonly InferenceOperation<EmbeddingRequest, EmbeddingResponse, EmbeddingResponse> Embeddings = new()
    {
        Name = "embedding",
        MetricName = "embeddings",
        Summary = "embeddings",
        Paths = ["embeddings"],
        BatchLineUrl = "/v1/embeddings",
        RequestInfo = BifrostJson.Context.EmbeddingRequest,
        ResponseInfo = BifrostJson.Context.EmbeddingResponse,
        Validate = RequestValidator.Validate,
        EstimateInputTokens = static (r, _) => Tokenization.TokenEstimate.Text(r.Input),
        Call = static (call, r, ct) => call.Adapter.EmbeddingsAsync(call.Context, r.ForProvider(call.Target.Model), ct),
        Complete = static (request, response, target) =>
        {
            // The caller gets the encoding it asked for, whatever the provider sent (the Node SDK asks for base64 by default).
            var base64 = request.EncodingFormat == "base64";
            foreach (var item in response.Data)
            {
                try
                {
                    item.Embedding = item.Embedding.As(base64);
                }
                catch (FormatException)
                {
                    throw BifrostErrors.InvalidProviderResponse($"Provider '{target.Provider.Name}' sent an embedding that is not valid base64.");
                }
            }

            return response;
        },
        CostUsageOf = static r => r.Usage is { } usage ? new TokenCounts(usage.PromptTokens, 0) : null,
        ClientCall = static (client, r, ct) => client.EmbeddingsAsync(r, ct),
        Pending = static (job, _, model) => new EmbeddingResponse
        {
            Model = model,
            ExtraFields = new BifrostExtraFields { RequestType = "embedding", ModelRequested = model },
            AdditionalProperties = new Dictionary<string, JsonElement> { ["id"] = JsonSerializer.SerializeToElement(job.Id, BifrostJson.Context.String) },
        },
    };

    public static readonly InferenceOperation<ResponsesRequest, ResponsesResponse, ResponsesStreamEvent> Responses = new()
    {
        Name = "responses",
        StreamName = "responses_stream",
        Summary = "Responses API",
        Paths = ["responses"],
        BatchLineUrl = "/v1/responses",
        RequestInfo = BifrostJson.Context.ResponsesRequest,
        ResponseInfo = BifrostJson.Context.ResponsesResponse,
        StreamShape = StreamShape.Events,
        NewStreamCapture = static limit => new ResponsesStreamCapture(limit),
        CacheCodec = ResponsesEvents.CacheCodec,
        Validate = RequestValidator.Validate,
        CheckBeforeQueue = static (request, target) =>
        {
            if (!target.Provider.Adapter.SupportsNativeResponses(new ProviderContext(target.Provider.Name, target.Provider.Options, target.Model, null)))
            {
                try
                {
                    ResponsesChatConverter.ToChat(request, stream: false); // refuses what chat completions cannot express, before a job is stored
                }
                catch (BifrostException ex)
                {
                    // The same extra_fields as the synchronous call's refusal.
                    ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = "responses", Provider = target.Provider.Name, ModelRequested = target.Model };
                    throw;
                }
            }
        },
        Call = static async (call, r, ct) =>
        {
            var adapter = call.Adapter;
            if (adapter.SupportsNativeResponses(call.Context))
            {
                return await adapter.ResponsesAsync(call.Context, r.ForProvider(call.Target.Model, stream: false), ct).ConfigureAwait(false);
            }

            var chat = ResponsesChatConverter.ToChat(r, stream: false).ForProvider(call.Target.Model, stream: false);
            var answer = await adapter.ChatCompletionAsync(call.Context, chat, ct).ConfigureAwait(false);
            return ResponsesChatConverter.FromChat(answer, r);
        },
        CallStream = static (call, r, ct) =>
        {
            var adapter = call.Adapter;
            if (adapter.SupportsNativeResponses(call.Context))
            {
                return adapter.StreamResponsesAsync(call.Context, r.ForProvider(call.Target.Model, stream: true), ct);
            }

            var chat = ResponsesChatConverter.ToChat(r, stream: true).ForProvider(call.Target.Model, stream: true);
            return ResponsesChatConverter.StreamFromChat(adapter.StreamChatCompletionAsync(call.Context, chat, ct), r, call.Time, ct);
        },
        WithChunkExtraFields = ResponsesEvents.WithExtraFields,
        ChunkExtraFieldsOf = ResponsesEvents.ExtraFieldsOf,
        ChunkUsageOf = ResponsesEvents.UsageOf,
        ClientCall = static (client, r, ct) => client.ResponsesAsync(r, ct),
        ClientStream = static (client, r, ct) => client.ResponsesStreamAsync(r, ct),
        Pending = static (job, request, model) => new ResponsesResponse
        {
            Id = job.Id,
            CreatedAt = job.CreatedAt.ToUnixTimeSeconds(),
            Status = job.Status == JobStatus.Processing ? "in_progress" : "queued",
            Model = model,
            Instructions = request?.Instructions is { } instructions ? new ResponsesInput(instructions) : null,
            ExtraFields = new BifrostExtraFields { RequestType = "responses", ModelRequested = model },
        },
    };

    /// <summary>A completion's shape for a job still pending or running: its id, creation time and model, no choices.</summary>
    private static T PendingEnvelope<T, TChoice>(T empty, JobRecord job, string? model, string requestType)
        where T : CompletionEnvelope<TChoice>
    {
        empty.Id = job.Id;
        empty.Created = job.CreatedAt.ToUnixTimeSeconds();
        empty.Model = model;
        empty.ExtraFields = new BifrostExtraFields { RequestType = requestType, ModelRequested = model };
        return empty;
    }

    /// <summary>The built-in inference operations, in the order their routes are mapped.</summary>
    public static IEnumerable<BifrostOperation> All => [Chat, Embeddings, TextCompletion, Responses, Moderations, ImageGeneration, Rerank, ImageEdit, ImageVariation];
}

/// <summary><c>extra_fields</c> and usage of streamed Responses events (JSON objects kept as <see cref="JsonElement"/>).</summary>
internal static class ResponsesEvents
{
    /// <summary>
    /// The response cache's form of an event: its type and data (<c>extra_fields</c> included); a stream is complete when it
    /// ends with <c>response.completed</c> or <c>response.incomplete</c> (a length-limited answer, as a chat stream that
    /// finished with <c>length</c>), never with <c>response.failed</c> or <c>error</c>.
    /// </summary>
    public static readonly ChunkCodec<ResponsesStreamEvent> CacheCodec = ChunkCodecs.Events<ResponsesStreamEvent>(
        static e => e.Type,
        static e => e.Data,
        static (type, data, _) => new ResponsesStreamEvent(type, data),
        ["response.completed", "response.incomplete"]);

    /// <summary>The event with <c>extra_fields</c> set: its properties copied once into a new element (no string or node round trip).</summary>
    public static ResponsesStreamEvent WithExtraFields(ResponsesStreamEvent item, BifrostExtraFields extra)
    {
        if (item.Data.ValueKind != JsonValueKind.Object)
        {
            return item;
        }

        using var buffer = new PooledBufferWriter();
        using (var writer = new Utf8JsonWriter(buffer, BifrostJson.WriterOptions))
        {
            writer.WriteStartObject();
            foreach (var property in item.Data.EnumerateObject())
            {
                if (!property.NameEquals("extra_fields"u8))
                {
                    property.WriteTo(writer);
                }
            }

            writer.WritePropertyName("extra_fields"u8);
            JsonSerializer.Serialize(writer, extra, BifrostJson.Context.BifrostExtraFields);
            writer.WriteEndObject();
        }

        var reader = new Utf8JsonReader(buffer.WrittenMemory.Span);
        return new ResponsesStreamEvent(item.Type, JsonElement.ParseValue(ref reader));
    }

    public static BifrostExtraFields? ExtraFieldsOf(ResponsesStreamEvent item) =>
        item.Data.ValueKind == JsonValueKind.Object && item.Data.TryGetProperty("extra_fields"u8, out var extra) && extra.ValueKind == JsonValueKind.Object
            ? extra.Deserialize(BifrostJson.Context.BifrostExtraFields)
            : null;

    /// <summary>The usage of <c>response.completed</c> (and of a <c>response.incomplete</c> that carries one).</summary>
    public static TokenCounts? UsageOf(ResponsesStreamEvent item)
    {
        if (item.Type is not ("response.completed" or "response.incomplete")
            || item.Data.ValueKind != JsonValueKind.Object
            || !item.Data.TryGetProperty("response"u8, out var response)
            || response.ValueKind != JsonValueKind.Object
            || !response.TryGetProperty("usage"u8, out var usage)
            || usage.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        return TokenCounts.Of(
            Number(usage, "input_tokens"u8),
            Number(usage, "output_tokens"u8),
            usage.TryGetProperty("input_tokens_details"u8, out var input) ? input : null,
            usage.TryGetProperty("output_tokens_details"u8, out var output) ? output : null);

        static long Number(JsonElement usage, ReadOnlySpan<byte> name) =>
            usage.TryGetProperty(name, out var value) && value.TryGetInt64(out var number) ? number : 0;
    }
}
