using System.Buffers;

namespace Bifrost.Middleware;

/// <summary>
/// Lines of an appendable file as one write: each line followed by <c>\n</c>, in a pooled buffer. Shared by the
/// file stores of every package (compiled into each, so it stays internal).
/// </summary>
internal static class LineJoin
{
    /// <summary>Rents a buffer holding <paramref name="lines"/>, each followed by a newline; return it to <see cref="ArrayPool{T}.Shared"/>.</summary>
    /// <param name="lines">The lines, without their newlines.</param>
    /// <param name="length">The bytes of the buffer that hold the lines.</param>
    public static byte[] Rent(IReadOnlyList<ReadOnlyMemory<byte>> lines, out int length)
    {
        ArgumentNullException.ThrowIfNull(lines);
        length = 0;
        foreach (var line in lines)
        {
            length = checked(length + line.Length + 1);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
        var at = 0;
        foreach (var line in lines)
        {
            line.CopyTo(buffer.AsMemory(at));
            at += line.Length;
            buffer[at++] = (byte)'\n';
        }

        return buffer;
    }

    /// <summary>Rents a buffer holding <paramref name="line"/> and a newline; return it to <see cref="ArrayPool{T}.Shared"/>.</summary>
    /// <param name="line">The line, without its newline.</param>
    /// <param name="length">The bytes of the buffer that hold the line: its length + 1.</param>
    public static byte[] Rent(ReadOnlyMemory<byte> line, out int length)
    {
        length = line.Length + 1;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        line.CopyTo(buffer);
        buffer[line.Length] = (byte)'\n';
        return buffer;
    }
}
