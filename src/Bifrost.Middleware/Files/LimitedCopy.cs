using System.Buffers;

namespace Bifrost.Middleware.Files;

/// <summary>Streams a file's content with a fixed pooled buffer, refusing it (413 <c>file_too_large</c>) past a size limit.</summary>
internal static class LimitedCopy
{
    private const int BufferSize = 81920;

    /// <summary>Copies <paramref name="source"/> to its end into <paramref name="target"/>; returns the bytes copied.</summary>
    /// <exception cref="BifrostException">413 once more than <paramref name="maxBytes"/> were read (what was written stays: the caller discards it).</exception>
    public static async Task<long> CopyAsync(Stream source, Stream target, long maxBytes, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            long total = 0;
            int read;
            while ((read = await source.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                total += read;
                if (total > maxBytes)
                {
                    throw BifrostErrors.FileTooLarge(maxBytes);
                }

                await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }

            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
