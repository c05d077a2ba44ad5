using System.Text.Json.Serialization.Metadata;

namespace Bifrost.Middleware.Operations;

/// <summary>
/// How the response cache keeps the chunks of a stream: each chunk written as one JSON value and read back as the chunk it
/// was (its wire data and whatever the pipeline attached to it that the wire does not carry, such as <c>extra_fields</c>
/// and usage), and which chunk closes a complete stream. An operation with a codec gets its streams cached
/// (<see cref="InferenceOperation{TRequest, TResponse, TChunk}.CacheCodec"/>); the cache layer knows nothing else of its chunks.
/// </summary>
/// <typeparam name="TChunk">The stream item type.</typeparam>
internal sealed class ChunkCodec<TChunk>
    where TChunk : class
{
    /// <summary>Writes one chunk as one JSON value.</summary>
    public required Action<Utf8JsonWriter, TChunk> Write { get; init; }

    /// <summary>Reads back a chunk written by <see cref="Write"/> (the element is not kept: copy what is kept).</summary>
    public required Func<JsonElement, TChunk> Read { get; init; }

    /// <summary>
    /// Whether a stream whose last chunk is this one is complete (Responses: <c>response.completed</c>; Anthropic:
    /// <c>message_stop</c>); a stream that ends otherwise is relayed but not stored. Null: every stream that ends without an
    /// error is complete (the <c>data:</c> streams, whose end the adapter checks).
    /// </summary>
    public Func<TChunk, bool>? Completes { get; init; }
}

/// <summary>The codecs of the built-in chunk shapes.</summary>
internal static class ChunkCodecs
{
    /// <summary>The chunk's own JSON (chat and text completion chunks, image stream events: their <c>extra_fields</c> are part of it).</summary>
    public static ChunkCodec<TChunk> Json<TChunk>(JsonTypeInfo<TChunk> info)
        where TChunk : class => new()
        {
            Write = (writer, chunk) => JsonSerializer.Serialize(writer, chunk, info),
            Read = element => element.Deserialize(info) ?? throw new JsonException("An empty cached chunk."),
        };

    /// <summary>
    /// An SSE event kept as <c>{"event": type, "data": {...}}</c> (<paramref name="extra"/>: more members of the event that
    /// the data does not carry; <paramref name="complete"/>: the event types that close a complete stream).
    /// </summary>
    public static ChunkCodec<TChunk> Events<TChunk>(
        Func<TChunk, string> typeOf,
        Func<TChunk, JsonElement> dataOf,
        Func<string, JsonElement, JsonElement, TChunk> create,
        string[] complete,
        Action<Utf8JsonWriter, TChunk>? extra = null)
        where TChunk : class => new()
        {
            Write = (writer, chunk) =>
            {
                writer.WriteStartObject();
                writer.WriteString("event"u8, typeOf(chunk));
                writer.WritePropertyName("data"u8);
                dataOf(chunk).WriteTo(writer);
                extra?.Invoke(writer, chunk);
                writer.WriteEndObject();
            },
            Read = element => create(element.GetProperty("event"u8).GetString() ?? throw new JsonException("A cached event without a type."), element.GetProperty("data"u8).Clone(), element),
            Completes = chunk => Array.IndexOf(complete, typeOf(chunk)) >= 0,
        };
}
