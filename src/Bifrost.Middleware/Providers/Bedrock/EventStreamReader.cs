using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>One decoded frame of <c>application/vnd.amazon.eventstream</c>: its string headers and its payload.</summary>
internal sealed record EventStreamFrame(IReadOnlyDictionary<string, string> Headers, ReadOnlyMemory<byte> Payload)
{
    /// <summary>A string header, or null.</summary>
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>
/// Reads AWS event-stream frames one at a time from a response body, never more than one frame in memory. A frame is
/// <c>[total length u32][headers length u32][prelude CRC32 u32][headers][payload][message CRC32 u32]</c>, big-endian, the
/// CRCs being CRC-32 (IEEE) of the 8 bytes before and of everything before it
/// (https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream, and AWSSDK.Core's
/// <c>EventStreamMessage</c>). Headers are <c>[name length u8][name][type u8][value]</c>; string (7) headers are kept,
/// the other types are skipped. A bad CRC, a frame over <see cref="MaxFrameBytes"/> or a body that ends inside a frame is
/// a 502 <c>invalid_provider_response</c>.
/// </summary>
internal sealed class EventStreamReader(Stream stream)
{
    /// <summary>The largest frame read (the event-stream specification's own limit is 16 MiB).</summary>
    public const int MaxFrameBytes = 16 * 1024 * 1024;

    private const int PreludeBytes = 12;
    private const int MinFrameBytes = PreludeBytes + 4;
    private readonly byte[] _prelude = new byte[PreludeBytes];

    /// <summary>The next frame, or null when the body ended cleanly between frames.</summary>
    public async ValueTask<EventStreamFrame?> ReadAsync(CancellationToken cancellationToken)
    {
        var read = await stream.ReadAtLeastAsync(_prelude, PreludeBytes, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            return null;
        }

        if (read < PreludeBytes)
        {
            throw Invalid("the event stream ended inside a frame's prelude");
        }

        var total = BinaryPrimitives.ReadUInt32BigEndian(_prelude);
        var headersLength = BinaryPrimitives.ReadUInt32BigEndian(_prelude.AsSpan(4));
        var preludeCrc = BinaryPrimitives.ReadUInt32BigEndian(_prelude.AsSpan(8));
        if (Crc32.HashToUInt32(_prelude.AsSpan(0, 8)) != preludeCrc)
        {
            throw Invalid("an event-stream frame whose prelude checksum does not match");
        }

        if (total < MinFrameBytes || total > MaxFrameBytes || headersLength > total - MinFrameBytes)
        {
            throw Invalid($"an event-stream frame of {total} bytes with {headersLength} bytes of headers (at most {MaxFrameBytes} bytes are read)");
        }

        var frame = new byte[total];
        _prelude.CopyTo(frame, 0);
        read = await stream.ReadAtLeastAsync(frame.AsMemory(PreludeBytes), (int)total - PreludeBytes, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read < total - PreludeBytes)
        {
            throw Invalid("the event stream ended inside a frame");
        }

        var messageCrc = BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan((int)total - 4));
        if (Crc32.HashToUInt32(frame.AsSpan(0, (int)total - 4)) != messageCrc)
        {
            throw Invalid("an event-stream frame whose message checksum does not match");
        }

        var headers = ParseHeaders(frame.AsSpan(PreludeBytes, (int)headersLength));
        return new EventStreamFrame(headers, frame.AsMemory(PreludeBytes + (int)headersLength, (int)(total - headersLength - MinFrameBytes)));
    }

    private static Dictionary<string, string> ParseHeaders(ReadOnlySpan<byte> span)
    {
        var headers = new Dictionary<string, string>(StringComparer.Ordinal);
        while (!span.IsEmpty)
        {
            var nameLength = span[0];
            if (nameLength == 0 || span.Length < 1 + nameLength + 1)
            {
                throw Invalid("an event-stream frame with a malformed header");
            }

            var name = Encoding.UTF8.GetString(span.Slice(1, nameLength));
            var type = span[1 + nameLength];
            span = span[(2 + nameLength)..];
            int valueLength = type switch
            {
                0 or 1 => 0, // bool true / false
                2 => 1, // byte
                3 => 2, // int16
                4 => 4, // int32
                5 or 8 => 8, // int64, timestamp
                9 => 16, // uuid
                6 or 7 => span.Length >= 2 ? 2 + BinaryPrimitives.ReadUInt16BigEndian(span) : int.MaxValue, // bytes, string
                _ => throw Invalid($"an event-stream header of unknown type {type}"),
            };
            if (valueLength > span.Length)
            {
                throw Invalid("an event-stream frame with a malformed header");
            }

            if (type == 7)
            {
                headers[name] = Encoding.UTF8.GetString(span[2..valueLength]);
            }

            span = span[valueLength..];
        }

        return headers;
    }

    private static BifrostException Invalid(string what) => BifrostErrors.InvalidProviderResponse($"Provider sent {what}.");
}
