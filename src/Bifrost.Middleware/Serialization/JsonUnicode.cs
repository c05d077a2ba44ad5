using System.Text;

namespace Bifrost.Middleware.Serialization;

/// <summary>
/// The one rule for JSON text the gateway reads (request bodies, batch input lines, upstream answers): it must be valid
/// UTF-8, and its <c>\u</c> escapes must form valid UTF-16 — a high surrogate escape (<c>\uD800</c>–<c>\uDBFF</c>)
/// immediately followed by a low one (<c>\uDC00</c>–<c>\uDFFF</c>), never a lone or reversed one. System.Text.Json
/// accepts such text into <see cref="JsonElement"/>s (extension data, schemas, tool arguments) and fails only later, when
/// the value is re-serialized or read as a string; checking the raw bytes once, where a body is read, refuses it up front.
/// </summary>
/// <remarks>
/// In valid JSON a backslash appears only inside strings, as the start of an escape, so a linear scan that consumes each
/// escape is exact. The scanner is incremental (a body may arrive in chunks); what it cannot judge (a <c>\u</c> with
/// non-hex digits, an unterminated string) is invalid JSON that the parser reports anyway.
/// </remarks>
internal struct JsonUnicodeScanner
{
    private const int Normal = 0, AfterBackslash = 1, FirstHex = 2, ExpectBackslash = 3, ExpectU = 4, SecondHex = 5;

    private int _state;
    private int _hexCount;
    private int _hex;
    private long _escapeStart;
    private long _position;
    private int _carryLength;
    private uint _carry; // up to 3 bytes of an incomplete UTF-8 sequence at the end of the previous chunk

    /// <summary>Where the first invalid sequence starts (a byte offset in the whole text), once <see cref="Scan"/> or <see cref="Complete"/> returned false.</summary>
    public long ErrorOffset { get; private set; }

    /// <summary>What was wrong, once <see cref="Scan"/> or <see cref="Complete"/> returned false.</summary>
    public string? Error { get; private set; }

    /// <summary>Scans the next chunk; false when the text so far breaks the rule.</summary>
    public bool Scan(ReadOnlySpan<byte> chunk)
    {
        if (Error is not null)
        {
            return false;
        }

        var ok = ScanUtf8(chunk) && ScanEscapes(chunk);
        _position += chunk.Length;
        return ok;
    }

    /// <summary>At the end of the text: false when it ends inside a UTF-8 sequence or a surrogate pair.</summary>
    public bool Complete()
    {
        if (Error is not null)
        {
            return false;
        }

        if (_carryLength > 0)
        {
            return Fail(_position - _carryLength, "a truncated UTF-8 sequence");
        }

        return _state is ExpectBackslash or ExpectU or SecondHex ? Fail(_escapeStart, LoneHigh) : true;
    }

    private const string LoneHigh = "a lone UTF-16 high surrogate escape (\\uD800-\\uDBFF not followed by a \\uDC00-\\uDFFF escape)";
    private const string LoneLow = "a lone UTF-16 low surrogate escape (\\uDC00-\\uDFFF not preceded by a \\uD800-\\uDBFF escape)";

    private bool Fail(long offset, string error)
    {
        ErrorOffset = offset;
        Error = error;
        return false;
    }

    private bool ScanUtf8(ReadOnlySpan<byte> chunk)
    {
        var start = 0;
        if (_carryLength > 0)
        {
            // Complete the sequence that straddles the chunks.
            Span<byte> sequence = stackalloc byte[4];
            for (var i = 0; i < _carryLength; i++)
            {
                sequence[i] = (byte)(_carry >> (8 * i));
            }

            var needed = SequenceLength(sequence[0]);
            var take = Math.Min(needed - _carryLength, chunk.Length);
            chunk[..take].CopyTo(sequence[_carryLength..]);
            if (_carryLength + take < needed)
            {
                for (var i = 0; i < take; i++)
                {
                    if ((chunk[i] & 0xC0) != 0x80)
                    {
                        return Fail(_position - _carryLength, "invalid UTF-8");
                    }

                    _carry |= (uint)chunk[i] << (8 * (_carryLength + i));
                }

                _carryLength += take;
                return true;
            }

            if (!System.Text.Unicode.Utf8.IsValid(sequence[..needed]))
            {
                return Fail(_position - _carryLength, "invalid UTF-8");
            }

            start = take;
            _carryLength = 0;
            _carry = 0;
        }

        var rest = chunk[start..];
        var end = rest.Length;
        // An incomplete sequence at the end of the chunk is carried to the next one.
        for (var back = 1; back <= Math.Min(3, rest.Length); back++)
        {
            var b = rest[^back];
            if ((b & 0xC0) == 0x80)
            {
                continue;
            }

            if (b >= 0xC0 && SequenceLength(b) > back)
            {
                end = rest.Length - back;
            }

            break;
        }

        if (!System.Text.Unicode.Utf8.IsValid(rest[..end]))
        {
            return Fail(_position + start + FirstInvalidUtf8(rest[..end]), "invalid UTF-8");
        }

        for (var i = end; i < rest.Length; i++)
        {
            _carry |= (uint)rest[i] << (8 * (i - end));
        }

        _carryLength = rest.Length - end;
        return true;
    }

    private static int SequenceLength(byte lead) => lead switch
    {
        >= 0xF0 => 4,
        >= 0xE0 => 3,
        >= 0xC0 => 2,
        _ => 1,
    };

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> text)
    {
        var index = 0;
        while (index < text.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(text[index..], out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                return index;
            }

            index += consumed;
        }

        return index;
    }

    private bool ScanEscapes(ReadOnlySpan<byte> chunk)
    {
        var i = 0;
        while (i < chunk.Length)
        {
            switch (_state)
            {
                case Normal:
                    var next = chunk[i..].IndexOf((byte)'\\');
                    if (next < 0)
                    {
                        return true;
                    }

                    i += next + 1;
                    _state = AfterBackslash;
                    break;

                case AfterBackslash:
                    if (chunk[i] == (byte)'u')
                    {
                        _escapeStart = _position + i - 1;
                        _state = FirstHex;
                        _hex = 0;
                        _hexCount = 0;
                    }
                    else
                    {
                        _state = Normal; // a one-character escape (\" \\ \/ \b \f \n \r \t) or invalid JSON
                    }

                    i++;
                    break;

                case FirstHex or SecondHex:
                    var digit = HexValue(chunk[i]);
                    if (digit < 0)
                    {
                        if (_state == SecondHex)
                        {
                            return Fail(_escapeStart, LoneHigh);
                        }

                        _state = Normal; // not a \uXXXX escape: invalid JSON, which the parser reports
                        break;
                    }

                    i++;
                    _hex = (_hex << 4) | digit;
                    if (++_hexCount < 4)
                    {
                        break;
                    }

                    if (_state == FirstHex)
                    {
                        if (_hex is >= 0xD800 and <= 0xDBFF)
                        {
                            _state = ExpectBackslash;
                        }
                        else if (_hex is >= 0xDC00 and <= 0xDFFF)
                        {
                            return Fail(_escapeStart, LoneLow);
                        }
                        else
                        {
                            _state = Normal;
                        }
                    }
                    else
                    {
                        if (_hex is < 0xDC00 or > 0xDFFF)
                        {
                            return Fail(_escapeStart, LoneHigh);
                        }

                        _state = Normal;
                    }

                    break;

                case ExpectBackslash:
                    if (chunk[i] != (byte)'\\')
                    {
                        return Fail(_escapeStart, LoneHigh);
                    }

                    i++;
                    _state = ExpectU;
                    break;

                default: // ExpectU
                    if (chunk[i] != (byte)'u')
                    {
                        return Fail(_escapeStart, LoneHigh);
                    }

                    i++;
                    _state = SecondHex;
                    _hex = 0;
                    _hexCount = 0;
                    break;
            }
        }

        return true;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}

/// <summary>Checks whole texts against the rule of <see cref="JsonUnicodeScanner"/> and names where they break it.</summary>
internal static class JsonUnicode
{
    /// <summary>Null when <paramref name="json"/> keeps the rule; else what is wrong, where, and the JSON path of the value (when the text parses that far).</summary>
    public static (string Message, string? Path)? Check(ReadOnlySpan<byte> json)
    {
        var scanner = default(JsonUnicodeScanner);
        if (scanner.Scan(json) && scanner.Complete())
        {
            return null;
        }

        var path = PathAt(json, scanner.ErrorOffset);
        return (Describe(scanner.Error!, scanner.ErrorOffset, path), path);
    }

    /// <summary>The message of a <see cref="JsonException"/> for a text that breaks the rule.</summary>
    public static string Describe(string error, long offset, string? path) =>
        $"The JSON text contains {error} at byte {offset}{(path is null ? string.Empty : $" (in '{path}')")}; text must be valid UTF-8 and \\u escapes valid UTF-16.";

    /// <summary>The exception a reader throws for such a text: a <see cref="JsonException"/>, like any other unreadable JSON.</summary>
    public static JsonException Exception(string error, long offset, string? path) =>
        new(Describe(error, offset, path), path is null ? null : "$." + path, null, offset);

    /// <summary>
    /// The path (<c>messages[0].content</c>, <c>tools[1].function.parameters.\uD800</c>) of the token that contains byte
    /// <paramref name="offset"/>: a property name (shown as written, escapes and all) or a value. Null when the text does
    /// not parse up to there or the offset is at the root.
    /// </summary>
    public static string? PathAt(ReadOnlySpan<byte> json, long offset)
    {
        var frames = new List<(bool IsArray, int Index, string? Name)>();
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        try
        {
            while (reader.Read())
            {
                var contains = offset >= reader.TokenStartIndex && offset < reader.BytesConsumed;
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        frames[^1] = (false, 0, reader.ValueIsEscaped ? Encoding.UTF8.GetString(reader.ValueSpan) : reader.GetString());
                        if (contains)
                        {
                            return Build(frames);
                        }

                        break;

                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        frames.RemoveAt(frames.Count - 1);
                        break;

                    default:
                        if (frames.Count > 0 && frames[^1].IsArray)
                        {
                            frames[^1] = (true, frames[^1].Index + 1, null);
                        }

                        if (contains)
                        {
                            return Build(frames);
                        }

                        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                        {
                            frames.Add((reader.TokenType == JsonTokenType.StartArray, -1, null));
                        }

                        break;
                }
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }

    private static string? Build(List<(bool IsArray, int Index, string? Name)> frames)
    {
        var path = new StringBuilder();
        foreach (var (isArray, index, name) in frames)
        {
            if (isArray)
            {
                path.Append('[').Append(index).Append(']');
            }
            else if (name is not null)
            {
                if (path.Length > 0)
                {
                    path.Append('.');
                }

                path.Append(name);
            }
        }

        return path.Length == 0 ? null : path.ToString();
    }
}

/// <summary>
/// A read-only stream that checks what passes through it against the rule of <see cref="JsonUnicodeScanner"/> and throws
/// the exception <paramref name="failure"/> makes (from the error and its byte offset) at the first break, and at the
/// end when the text stops inside a sequence.
/// </summary>
internal sealed class JsonUnicodeValidatingStream(Stream inner, Func<string, long, Exception> failure) : ReadOnlyStream(inner)
{
    private JsonUnicodeScanner _scanner;
    private bool _completed;

    public override int Read(Span<byte> buffer) => Check(buffer, Inner.Read(buffer));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Check(buffer.Span, read);
    }

    private int Check(ReadOnlySpan<byte> buffer, int read)
    {
        if (read > 0)
        {
            if (!_scanner.Scan(buffer[..read]))
            {
                throw failure(_scanner.Error!, _scanner.ErrorOffset);
            }
        }
        else if (!_completed)
        {
            _completed = true;
            if (!_scanner.Complete())
            {
                throw failure(_scanner.Error!, _scanner.ErrorOffset);
            }
        }

        return read;
    }
}
