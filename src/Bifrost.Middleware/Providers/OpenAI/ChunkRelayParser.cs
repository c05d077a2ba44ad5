using System.Buffers;

namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>
/// Issue 18, streamed chat at the floor's cost: the parser of one relayed OpenAI-compatible stream
/// (<see cref="ChatCompletionRequest.RelayChunks"/>). Instead of deserializing every chunk into its typed shape (choices,
/// deltas and their strings) only to serialize it again for the client, one <see cref="Utf8JsonReader"/> pass reads
/// what the gateway's layers use — <c>id</c>, <c>model</c>, <c>created</c> and <c>usage</c> — checks that
/// <c>choices</c> is an array, and keeps the event's bytes (pooled) for the SSE writer, which splices the chunk's
/// <c>extra_fields</c> in. The <c>id</c> and <c>model</c> strings of the previous chunk are reused when the bytes are the
/// same (every chunk of a stream repeats them). Whatever it does not recognise as a plain chunk goes to the typed parse,
/// which decides as before: an <c>error</c> member or SSE <c>error</c> event, a provider's own <c>extra_fields</c>,
/// data spread over several <c>data:</c> lines, invalid JSON, an empty object, a member of an unexpected type.
/// </summary>
internal sealed class ChunkRelayParser<TEvent>(Func<string, ReadOnlySpan<byte>, TEvent> typed, Func<ChatCompletionChunk, TEvent> relayed)
{
    private string? _id;
    private byte[]? _idBytes;
    private string? _model;
    private byte[]? _modelBytes;

    /// <summary>One SSE event: a relayed chunk, or the typed parse's result.</summary>
    public TEvent Parse(string eventType, ReadOnlySpan<byte> data)
    {
        var json = data.Trim(" \t"u8);
        return string.Equals(eventType, "message", StringComparison.Ordinal) && TryRelay(json) is { } chunk ? relayed(chunk) : typed(eventType, data);
    }

    private ChatCompletionChunk? TryRelay(ReadOnlySpan<byte> json)
    {
        if (json.Length < 2 || json[0] != (byte)'{' || json[^1] != (byte)'}' || json.IndexOfAny((byte)'\n', (byte)'\r') >= 0)
        {
            return null;
        }

        string? id = null, model = null;
        long created = 0;
        ChatUsage? usage = null;
        var members = 0;
        var choices = false;
        try
        {
            var reader = new Utf8JsonReader(json);
            reader.Read();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                members++;
                if (reader.ValueTextEquals("id"u8))
                {
                    if (!ReadString(ref reader, ref _id, ref _idBytes, out id))
                    {
                        return null;
                    }
                }
                else if (reader.ValueTextEquals("model"u8))
                {
                    if (!ReadString(ref reader, ref _model, ref _modelBytes, out model))
                    {
                        return null;
                    }
                }
                else if (reader.ValueTextEquals("created"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Null && !reader.TryGetInt64(out created))
                    {
                        return null;
                    }
                }
                else if (reader.ValueTextEquals("usage"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Null)
                    {
                        usage = JsonSerializer.Deserialize(ref reader, BifrostJson.Context.ChatUsage);
                    }
                }
                else if (reader.ValueTextEquals("choices"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartArray || choices)
                    {
                        return null;
                    }

                    choices = true;
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("error"u8) || reader.ValueTextEquals("extra_fields"u8))
                {
                    return null; // an error event, or a provider's own extra_fields: the typed parse decides
                }
                else
                {
                    reader.Skip();
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || members == 0 || !choices || reader.Read())
            {
                return null;
            }
        }
        catch (JsonException)
        {
            return null; // the typed parse reports it
        }

        var buffer = ArrayPool<byte>.Shared.Rent(json.Length);
        json.CopyTo(buffer);
        var chunk = new ChatCompletionChunk { Id = id, Model = model, Created = created, Usage = usage };
        chunk.SetProviderJson(buffer, json.Length);
        return chunk;
    }

    /// <summary>A string member (or null), the previous chunk's string when its bytes are the same; false for another type.</summary>
    private static bool ReadString(ref Utf8JsonReader reader, ref string? last, ref byte[]? lastBytes, out string? value)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.Null)
        {
            value = null;
            return true;
        }

        if (reader.TokenType != JsonTokenType.String)
        {
            value = null;
            return false;
        }

        if (lastBytes is not null && !reader.ValueIsEscaped && reader.ValueSpan.SequenceEqual(lastBytes))
        {
            value = last;
            return true;
        }

        value = last = reader.GetString();
        lastBytes = reader.ValueIsEscaped ? null : reader.ValueSpan.ToArray();
        return true;
    }
}
