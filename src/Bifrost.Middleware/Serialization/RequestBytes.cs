using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Text.Encodings.Web;

namespace Bifrost.Middleware.Serialization;

/// <summary>
/// The JSON bytes a client sent for a chat or embeddings request (issue 18, JSON pass-through): kept, in a pooled buffer, by the endpoint that
/// parsed them, so an OpenAI-compatible adapter can forward them with only <c>model</c> rewritten (<see cref="RequestSplice"/>)
/// instead of serializing the typed request again. The endpoint attaches them only where nothing but the gateway's own
/// built-in code sees the request before the adapter (no plugin, the built-in <see cref="IBifrostClient"/>), and releases
/// them when its call is over; after that (or for a copy made later) <see cref="TryWriteBody"/> answers false and the
/// adapter serializes the typed request as before.
/// </summary>
internal sealed class RequestBytes
{
    private byte[]? _buffer;
    private readonly int _length;

    private RequestBytes(byte[] buffer, int length)
    {
        _buffer = buffer;
        _length = length;
    }

    /// <summary>Takes ownership of <paramref name="rented"/> (from <see cref="ArrayPool{T}.Shared"/>), of which the first <paramref name="length"/> bytes are the body.</summary>
    public static RequestBytes Own(byte[] rented, int length) => new(rented, length);

    /// <summary>
    /// The request body for one provider attempt, spliced from the client's bytes (<see cref="RequestSplice.TryWrite"/>):
    /// false when released or when the bytes cannot stand for the typed request (the caller serializes it).
    /// </summary>
    /// <param name="model">The provider's model.</param>
    /// <param name="stream">For a chat request, whether the attempt streams; null for a request without chat's stream fields (embeddings).</param>
    /// <param name="body">The body to send.</param>
    public bool TryWriteBody(string? model, bool? stream, [NotNullWhen(true)] out byte[]? body)
    {
        lock (this)
        {
            if (_buffer is null || string.IsNullOrEmpty(model))
            {
                body = null;
                return false;
            }

            return RequestSplice.TryWrite(_buffer.AsSpan(0, _length), model, stream, out body);
        }
    }

    /// <summary>Returns the buffer to the pool; every later <see cref="TryWriteBody"/> answers false.</summary>
    public void Release()
    {
        byte[]? buffer;
        lock (this)
        {
            buffer = _buffer;
            _buffer = null;
        }

        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>
/// Writes a client's request bytes for a provider: the top-level members in the client's order and bytes, <c>model</c>'s
/// value replaced by the provider's model, <c>fallbacks</c> (Bifrost's own) dropped, and for a chat request on a non-streamed
/// attempt <c>stream</c> and <c>stream_options</c> dropped — what serializing the typed request for the attempt
/// (<c>ForProvider</c>) sends, without parsing or writing any value again. It refuses (false, and the
/// typed request is serialized instead) whenever the bytes could mean something else than that typed request: a property name
/// written with escapes (<c>"fallb\u0061cks"</c> would otherwise slip through), a top-level name twice, a streamed attempt
/// whose <c>stream</c> is not <c>true</c>, a chat request's <c>metadata</c> with a value that is not a string (the typed reader turns numbers
/// and booleans into text), more than <see cref="MaxMembers"/> members, or anything that is not one JSON object.
/// </summary>
internal static class RequestSplice
{
    /// <summary>The most top-level members spliced (a chat request has about 30 documented ones).</summary>
    public const int MaxMembers = 64;

    private static readonly JsonReaderOptions ReaderOptions = new() { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false, MaxDepth = 256 };

    /// <param name="json">The client's body.</param>
    /// <param name="model">The provider's model.</param>
    /// <param name="stream">For a chat request, whether the attempt streams; null for a request without chat's fields (embeddings).</param>
    /// <param name="body">The body to send.</param>
    public static bool TryWrite(ReadOnlySpan<byte> json, string model, bool? stream, [NotNullWhen(true)] out byte[]? body)
    {
        body = null;
        Span<Member> members = stackalloc Member[MaxMembers];
        var count = 0;
        var modelIndex = -1;
        var reader = new Utf8JsonReader(json, ReaderOptions);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    break;
                }

                if (reader.TokenType != JsonTokenType.PropertyName || reader.ValueIsEscaped || count == MaxMembers)
                {
                    return false;
                }

                var nameStart = (int)reader.TokenStartIndex;
                var nameEnd = nameStart + reader.ValueSpan.Length + 2; // the quotes (no escapes: the span is the name as written)
                var kind = Kind(reader.ValueSpan, chat: stream is not null);
                if (!reader.Read())
                {
                    return false;
                }

                var valueStart = (int)reader.TokenStartIndex;
                var ok = kind switch
                {
                    MemberKind.Stream => stream != true || reader.TokenType == JsonTokenType.True,
                    MemberKind.Metadata => StringValues(ref reader),
                    _ => true,
                };
                if (!ok)
                {
                    return false;
                }

                reader.Skip(); // to the end of an object or array; a no-op on a scalar
                var member = new Member(nameStart, nameEnd, valueStart, (int)reader.BytesConsumed, kind);
                for (var i = 0; i < count; i++)
                {
                    if (json[members[i].NameStart..members[i].NameEnd].SequenceEqual(json[nameStart..nameEnd]))
                    {
                        return false;
                    }
                }

                if (kind == MemberKind.Model)
                {
                    modelIndex = count;
                }

                members[count++] = member;
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.CurrentDepth != 0)
            {
                return false;
            }

            while (reader.Read())
            {
                // trailing content after the object: the typed reader would have refused it already; refuse too
                return false;
            }
        }
        catch (JsonException)
        {
            return false;
        }

        var value = JsonEncodedText.Encode(model, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).EncodedUtf8Bytes;
        var length = 2; // { }
        var kept = 0;
        if (modelIndex < 0)
        {
            length += "\"model\":\"\""u8.Length + value.Length;
            kept++;
        }

        for (var i = 0; i < count; i++)
        {
            var m = members[i];
            if (Dropped(m.Kind, stream))
            {
                continue;
            }

            length += (m.Kind == MemberKind.Model ? m.ValueStart - m.NameStart + value.Length + 2 : m.ValueEnd - m.NameStart) + (kept++ > 0 ? 1 : 0);
        }

        var output = new byte[length];
        var at = 0;
        output[at++] = (byte)'{';
        kept = 0;
        if (modelIndex < 0)
        {
            "\"model\":\""u8.CopyTo(output.AsSpan(at));
            at += "\"model\":\""u8.Length;
            value.CopyTo(output.AsSpan(at));
            at += value.Length;
            output[at++] = (byte)'"';
            kept++;
        }

        for (var i = 0; i < count; i++)
        {
            var m = members[i];
            if (Dropped(m.Kind, stream))
            {
                continue;
            }

            if (kept++ > 0)
            {
                output[at++] = (byte)',';
            }

            if (m.Kind == MemberKind.Model)
            {
                json[m.NameStart..m.ValueStart].CopyTo(output.AsSpan(at));
                at += m.ValueStart - m.NameStart;
                output[at++] = (byte)'"';
                value.CopyTo(output.AsSpan(at));
                at += value.Length;
                output[at++] = (byte)'"';
            }
            else
            {
                json[m.NameStart..m.ValueEnd].CopyTo(output.AsSpan(at));
                at += m.ValueEnd - m.NameStart;
            }
        }

        output[at++] = (byte)'}';
        Debug.Assert(at == length, "the splice's computed length");
        body = output;
        return true;
    }

    private static bool Dropped(MemberKind kind, bool? stream) =>
        kind == MemberKind.Fallbacks || (stream == false && kind is MemberKind.Stream or MemberKind.StreamOptions);

    private static MemberKind Kind(ReadOnlySpan<byte> name, bool chat) =>
        name.SequenceEqual("model"u8) ? MemberKind.Model
        : name.SequenceEqual("fallbacks"u8) ? MemberKind.Fallbacks
        : !chat ? MemberKind.Other
        : name.SequenceEqual("stream"u8) ? MemberKind.Stream
        : name.SequenceEqual("stream_options"u8) ? MemberKind.StreamOptions
        : name.SequenceEqual("metadata"u8) ? MemberKind.Metadata
        : MemberKind.Other;

    /// <summary>Whether the value at the reader is null or an object whose values are all strings (what the typed reader keeps as written).</summary>
    private static bool StringValues(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return true;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return false;
        }

        var copy = reader; // read ahead on a copy; the caller skips the value on its own reader
        while (copy.Read() && copy.TokenType != JsonTokenType.EndObject)
        {
            if (copy.TokenType != JsonTokenType.PropertyName || !copy.Read() || copy.TokenType != JsonTokenType.String)
            {
                return false;
            }
        }

        return true;
    }

    private enum MemberKind : byte
    {
        Other,
        Model,
        Fallbacks,
        Stream,
        StreamOptions,
        Metadata,
    }

    private readonly record struct Member(int NameStart, int NameEnd, int ValueStart, int ValueEnd, MemberKind Kind);
}
