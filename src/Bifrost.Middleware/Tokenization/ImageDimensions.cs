using System.Buffers.Binary;

namespace Bifrost.Middleware.Tokenization;

/// <summary>
/// Reads the pixel size of a PNG, JPEG, GIF or WebP image from its header bytes only. For a base64 <c>data:</c> URL
/// only the few base64 characters that hold the needed header bytes are decoded (base64 is addressable by position),
/// so a multi-megabyte image costs a few dozen decoded bytes.
/// </summary>
internal static class ImageDimensions
{
    private const int MaxJpegSegments = 1024;

    /// <summary>Reads the size of the image in a <c>data:[mime];base64,...</c> URL.</summary>
    /// <param name="url">The URL; anything that is not a base64 data URL yields <see langword="false"/>.</param>
    /// <param name="width">The width in pixels.</param>
    /// <param name="height">The height in pixels.</param>
    /// <returns>Whether the size could be read. The format is recognized from the bytes, not from the declared media type.</returns>
    public static bool TryReadDataUrl(string? url, out int width, out int height)
    {
        width = 0;
        height = 0;
        if (url is null || !url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var comma = url.IndexOf(',', StringComparison.Ordinal);
        if (comma < 0 || !url.AsSpan(5, comma - 5).EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var payload = url.AsSpan(comma + 1).Trim();
        string? compact = null;
        if (payload.ContainsAny(" \t\r\n"))
        {
            // Rare: line-wrapped base64. Positions only map to bytes without whitespace.
            compact = string.Concat(payload.ToString().Split([' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
            payload = compact.AsSpan();
        }

        var source = new HeaderSource(payload);
        return TryParse(ref source, out width, out height);
    }

    /// <summary>Reads the size of an image from its bytes (only the header is looked at).</summary>
    /// <param name="bytes">The image bytes, or at least its header.</param>
    /// <param name="width">The width in pixels.</param>
    /// <param name="height">The height in pixels.</param>
    /// <returns>Whether the bytes start with a PNG, JPEG, GIF or WebP header holding the size.</returns>
    public static bool TryRead(ReadOnlySpan<byte> bytes, out int width, out int height)
    {
        var source = new HeaderSource(bytes);
        return TryParse(ref source, out width, out height);
    }

    private static bool TryParse(ref HeaderSource source, out int width, out int height)
    {
        width = 0;
        height = 0;
        Span<byte> head = stackalloc byte[30];
        if (!source.TryRead(0, head[..4]))
        {
            return false;
        }

        if (head[0] == 0x89 && head[1] == (byte)'P' && head[2] == (byte)'N' && head[3] == (byte)'G')
        {
            // 8-byte signature, then the IHDR chunk: length, "IHDR", width (BE32), height (BE32).
            if (!source.TryRead(0, head[..24]) || !head.Slice(12, 4).SequenceEqual("IHDR"u8))
            {
                return false;
            }

            return Result(BinaryPrimitives.ReadUInt32BigEndian(head[16..]), BinaryPrimitives.ReadUInt32BigEndian(head[20..]), out width, out height);
        }

        if (head[0] == (byte)'G' && head[1] == (byte)'I' && head[2] == (byte)'F' && head[3] == (byte)'8')
        {
            // "GIF87a"/"GIF89a", then the logical screen width and height (LE16).
            if (!source.TryRead(0, head[..10]))
            {
                return false;
            }

            return Result(BinaryPrimitives.ReadUInt16LittleEndian(head[6..]), BinaryPrimitives.ReadUInt16LittleEndian(head[8..]), out width, out height);
        }

        if (head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF)
        {
            return TryParseJpeg(ref source, out width, out height);
        }

        if (head[0] == (byte)'R' && head[1] == (byte)'I' && head[2] == (byte)'F' && head[3] == (byte)'F')
        {
            return TryParseWebP(ref source, out width, out height);
        }

        return false;
    }

    private static bool TryParseJpeg(ref HeaderSource source, out int width, out int height)
    {
        width = 0;
        height = 0;
        Span<byte> segment = stackalloc byte[9];
        var position = 2;
        for (var i = 0; i < MaxJpegSegments; i++)
        {
            if (!source.TryRead(position, segment[..2]) || segment[0] != 0xFF)
            {
                return false;
            }

            var marker = segment[1];
            if (marker == 0xFF)
            {
                position++; // fill byte
                continue;
            }

            if (marker is 0x01 or 0xD8 or (>= 0xD0 and <= 0xD7))
            {
                position += 2; // markers without a length
                continue;
            }

            if (marker is 0xD9 or 0xDA)
            {
                return false; // end of image or start of scan before any frame header
            }

            if (!source.TryRead(position + 2, segment.Slice(2, 2)))
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(segment[2..]);
            if (length < 2)
            {
                return false;
            }

            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision (1), height (BE16), width (BE16).
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC)
            {
                if (!source.TryRead(position + 4, segment.Slice(4, 5)))
                {
                    return false;
                }

                return Result(BinaryPrimitives.ReadUInt16BigEndian(segment[7..]), BinaryPrimitives.ReadUInt16BigEndian(segment[5..]), out width, out height);
            }

            position += 2 + length;
        }

        return false;
    }

    private static bool TryParseWebP(ref HeaderSource source, out int width, out int height)
    {
        width = 0;
        height = 0;
        Span<byte> head = stackalloc byte[30];
        if (!source.TryRead(0, head[..30]) || !head.Slice(8, 4).SequenceEqual("WEBP"u8))
        {
            return false;
        }

        var chunk = head.Slice(12, 4);
        if (chunk.SequenceEqual("VP8 "u8))
        {
            // Lossy: 3-byte frame tag, start code 9D 01 2A, then 14-bit width and height (LE16, 2 scale bits on top).
            if (head[23] != 0x9D || head[24] != 0x01 || head[25] != 0x2A)
            {
                return false;
            }

            return Result(BinaryPrimitives.ReadUInt16LittleEndian(head[26..]) & 0x3FFFu, BinaryPrimitives.ReadUInt16LittleEndian(head[28..]) & 0x3FFFu, out width, out height);
        }

        if (chunk.SequenceEqual("VP8L"u8))
        {
            // Lossless: signature 0x2F, then width-1 and height-1 as 14-bit fields.
            if (head[20] != 0x2F)
            {
                return false;
            }

            var bits = BinaryPrimitives.ReadUInt32LittleEndian(head[21..]);
            return Result((bits & 0x3FFFu) + 1, ((bits >> 14) & 0x3FFFu) + 1, out width, out height);
        }

        if (chunk.SequenceEqual("VP8X"u8))
        {
            // Extended: 4 bytes of flags, then canvas width-1 and height-1 as LE24.
            var w = (uint)(head[24] | (head[25] << 8) | (head[26] << 16)) + 1;
            var h = (uint)(head[27] | (head[28] << 8) | (head[29] << 16)) + 1;
            return Result(w, h, out width, out height);
        }

        return false;
    }

    private static bool Result(uint w, uint h, out int width, out int height)
    {
        if (w is 0 or > int.MaxValue || h is 0 or > int.MaxValue)
        {
            width = 0;
            height = 0;
            return false;
        }

        width = (int)w;
        height = (int)h;
        return true;
    }

    /// <summary>Random access to the first bytes of an image held as raw bytes or as base64 text.</summary>
    private readonly ref struct HeaderSource
    {
        private const int MaxRead = 32;
        private readonly ReadOnlySpan<byte> _bytes;
        private readonly ReadOnlySpan<char> _base64;
        private readonly bool _isBase64;

        public HeaderSource(ReadOnlySpan<byte> bytes) => _bytes = bytes;

        public HeaderSource(ReadOnlySpan<char> base64)
        {
            _base64 = base64;
            _isBase64 = true;
        }

        public bool TryRead(int offset, Span<byte> destination)
        {
            if (offset < 0 || destination.Length is 0 or > MaxRead)
            {
                return false;
            }

            if (!_isBase64)
            {
                if ((long)offset + destination.Length > _bytes.Length)
                {
                    return false;
                }

                _bytes.Slice(offset, destination.Length).CopyTo(destination);
                return true;
            }

            // Byte n lives in the 4-character group n / 3: decode just the groups covering the range.
            var firstGroup = offset / 3;
            var lastGroup = (offset + destination.Length - 1) / 3;
            var charStart = (long)firstGroup * 4;
            if (charStart >= _base64.Length)
            {
                return false;
            }

            Span<char> chars = stackalloc char[((MaxRead / 3) + 2) * 4];
            chars = chars[..((lastGroup - firstGroup + 1) * 4)];
            var available = (int)Math.Min(chars.Length, _base64.Length - charStart);
            _base64.Slice((int)charStart, available).CopyTo(chars);
            chars[available..].Fill('='); // unpadded tail; an incomplete group fails to decode below

            Span<byte> decoded = stackalloc byte[((MaxRead / 3) + 2) * 3];
            if (!Convert.TryFromBase64Chars(chars, decoded, out var written))
            {
                return false;
            }

            var skip = offset - (firstGroup * 3);
            if (written < skip + destination.Length)
            {
                return false;
            }

            decoded.Slice(skip, destination.Length).CopyTo(destination);
            return true;
        }
    }
}
