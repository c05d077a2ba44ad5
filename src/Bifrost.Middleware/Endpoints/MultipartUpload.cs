using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// The bounds and errors of a multipart upload (<c>POST files</c>): only the <c>file</c> part may be large; every other
/// part is a small text field read with a bound, the parts, their headers and the filename are bounded, and a body that
/// is malformed or ends early is a 400 in the Bifrost shape (never a 500, never a 413 quoting the file limit).
/// </summary>
internal static class MultipartUpload
{
    /// <summary>Largest non-file field (<c>purpose</c>, or an unknown field, which is ignored).</summary>
    public const int MaxFieldBytes = 4096;

    /// <summary>Most parts in one upload (<c>file</c>, <c>purpose</c>, and a few ignored extras).</summary>
    public const int MaxParts = 16;

    /// <summary>Most headers in one part.</summary>
    public const int MaxHeadersPerPart = 16;

    /// <summary>Longest header block of one part (a very long filename ends up here).</summary>
    public const int MaxHeaderBytesPerPart = 16 * 1024;

    /// <summary>Longest filename kept.</summary>
    public const int MaxFilenameChars = 1024;

    /// <summary>Longest boundary (RFC 2046).</summary>
    public const int MaxBoundaryChars = 70;

    public const string InvalidMultipartCode = "invalid_multipart";

    /// <summary>The boundary of a <c>multipart/form-data</c> content type, or a 400.</summary>
    public static string Boundary(string? contentType)
    {
        if (!MediaTypeHeaderValue.TryParse(contentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            throw FileEndpoints.BadRequest("The upload must be multipart/form-data with a 'file' part and a 'purpose' field.", null);
        }

        var boundary = HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value;
        if (string.IsNullOrWhiteSpace(boundary))
        {
            throw Invalid("The multipart/form-data content type has no 'boundary' parameter.", null);
        }

        if (boundary.Length > MaxBoundaryChars)
        {
            throw Invalid($"The multipart boundary is longer than {MaxBoundaryChars} characters.", null);
        }

        return boundary;
    }

    /// <summary>The next part, or null at the closing boundary; a malformed or truncated body is a 400.</summary>
    public static async Task<MultipartSection?> NextSectionAsync(MultipartReader reader, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.ReadNextSectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException ex)
        {
            throw Malformed(ex);
        }
        catch (IOException ex) when (ex is not BadHttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            throw Truncated();
        }
    }

    /// <summary>The file name of the <c>file</c> part (the last path segment), or <c>upload</c>; over <see cref="MaxFilenameChars"/> → 400.</summary>
    public static string Filename(ContentDispositionHeaderValue disposition)
    {
        var filename = HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value;
        if (filename is { Length: > MaxFilenameChars })
        {
            throw Invalid($"The filename of the 'file' part is longer than {MaxFilenameChars} characters.", "file");
        }

        return string.IsNullOrWhiteSpace(filename) ? "upload" : Path.GetFileName(filename);
    }

    /// <summary>Reads a text field whole, up to <see cref="MaxFieldBytes"/>; a longer one is a 400 naming it (read no further).</summary>
    public static async Task<string> ReadFieldAsync(Stream body, string? name, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(MaxFieldBytes + 1);
        try
        {
            var total = 0;
            while (total <= MaxFieldBytes)
            {
                var read = await body.ReadAsync(buffer.AsMemory(total, MaxFieldBytes + 1 - total), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return Encoding.UTF8.GetString(buffer, 0, total);
                }

                total += read;
            }

            throw name is null
                ? Invalid($"A multipart part without a name is longer than {MaxFieldBytes} bytes; only the 'file' part may be large.", null)
                : Invalid($"The multipart field '{Shorten(name)}' is longer than {MaxFieldBytes} bytes; only the 'file' part may be large.", name.Length <= 64 ? name : null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The multipart reader's format and limit errors (all about framing or headers, never the file size) as a 400.</summary>
    public static BifrostException Malformed(InvalidDataException ex)
    {
        var message = ex.Message;
        if (message.Contains("headers count", StringComparison.OrdinalIgnoreCase))
        {
            return Invalid($"A multipart part has more than {MaxHeadersPerPart} headers.", null);
        }

        if (message.Contains("line length", StringComparison.OrdinalIgnoreCase) || message.Contains("headers length", StringComparison.OrdinalIgnoreCase))
        {
            return Invalid($"A multipart part's headers (e.g. its filename) are longer than {MaxHeaderBytesPerPart} bytes.", null);
        }

        if (message.Contains("body length", StringComparison.OrdinalIgnoreCase))
        {
            // Only the preamble is read with the reader's own limit: the body does not start with the declared boundary.
            return Invalid("The multipart body does not start with the boundary declared in the Content-Type header.", null);
        }

        return Invalid($"The multipart body is malformed: {message}", null);
    }

    /// <summary>The body ended before the closing boundary.</summary>
    public static BifrostException Truncated() =>
        Invalid("The multipart body ended before its closing boundary (truncated upload); nothing was stored.", null);

    public static BifrostException Invalid(string message, string? param) =>
        BifrostErrors.InvalidRequest(InvalidMultipartCode, message, param);

    public static string Shorten(string value) => value.Length <= 64 ? value : string.Concat(value.AsSpan(0, 64), "…");
}

/// <summary>
/// A part's body as read by the file store: an early end of the request body (the multipart reader's
/// <see cref="IOException"/>) becomes a 400, so it is told apart from a failure of the store itself.
/// </summary>
internal sealed class MultipartSectionStream(Stream inner) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException ex)
        {
            throw MultipartUpload.Malformed(ex);
        }
        catch (IOException ex) when (ex is not BadHttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            throw MultipartUpload.Truncated();
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
