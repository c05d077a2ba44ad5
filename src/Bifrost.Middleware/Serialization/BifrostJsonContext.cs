using System.Text.Encodings.Web;

namespace Bifrost.Middleware.Serialization;

/// <summary>
/// The wire format: snake_case, nulls omitted (fields that must be present, such as <c>finish_reason</c>, opt out
/// per property). The gateway never uses the host's <c>JsonOptions</c>, so a host's naming policy cannot leak in.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    AllowTrailingCommas = false,
    ReadCommentHandling = JsonCommentHandling.Disallow,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(ChatCompletionResponse))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(BifrostError))]
[JsonSerializable(typeof(BifrostExtraFields))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(System.Text.Json.Nodes.JsonNode))]
[JsonSerializable(typeof(ChatContentPart))]
[JsonSerializable(typeof(Bifrost.Middleware.Files.FileObject))]
[JsonSerializable(typeof(Bifrost.Middleware.Files.FileListResponse))]
[JsonSerializable(typeof(Bifrost.Middleware.Files.FileDeletedResponse))]
[JsonSerializable(typeof(StoredFile))] // the file-system store's metadata file, not a wire type
[JsonSerializable(typeof(BatchObject))]
[JsonSerializable(typeof(EmbeddingRequest))]
[JsonSerializable(typeof(EmbeddingResponse))]
[JsonSerializable(typeof(ModerationRequest))]
[JsonSerializable(typeof(ModerationResponse))]
[JsonSerializable(typeof(ImageRequest))]
[JsonSerializable(typeof(ImageResponse))]
[JsonSerializable(typeof(RerankRequest))]
[JsonSerializable(typeof(RerankResponse))]
[JsonSerializable(typeof(TextCompletionRequest))]
[JsonSerializable(typeof(TextCompletionResponse))]
[JsonSerializable(typeof(ResponsesRequest))]
[JsonSerializable(typeof(ResponsesResponse))]
[JsonSerializable(typeof(IList<ResponsesItem>))]
[JsonSerializable(typeof(IList<ResponsesContentPart>))]
[JsonSerializable(typeof(InputTokensResponse))]
[JsonSerializable(typeof(ResponsesItem))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(Bifrost.Middleware.Batches.BatchCreateRequest))]
[JsonSerializable(typeof(Bifrost.Middleware.Batches.BatchSpec))]
[JsonSerializable(typeof(Bifrost.Middleware.Batches.BatchProgress))]
[JsonSerializable(typeof(Bifrost.Middleware.Batches.BatchListResponse))]
[JsonSerializable(typeof(SpeechRequest))]
[JsonSerializable(typeof(TranscriptionRequest))]
[JsonSerializable(typeof(AudioResponse))]

// Image edits and variations (issue 17, img).
[JsonSerializable(typeof(ImageEditRequest))]
[JsonSerializable(typeof(ImageStreamEvent))]
internal sealed partial class BifrostJsonContext : JsonSerializerContext;

/// <summary>The context every read and write of the gateway uses: the generated metadata with a relaxed encoder (no \u0027 for quotes in messages).</summary>
internal static class BifrostJson
{
    public static BifrostJsonContext Context { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static JsonWriterOptions WriterOptions { get; } = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };
}
