using System.Buffers;
using System.Text.Json.Serialization.Metadata;

namespace Bifrost.Middleware.Serialization;

/// <summary>
/// Parses a JSON body of known, modest length (a Content-Length up to <see cref="MaxLength"/>) by reading it whole into a
/// pooled buffer and deserializing synchronously: the serializer's non-resumable path is cheaper than the async,
/// resumable one, and such a body is at hand in one or two reads anyway. Same result and same exceptions as
/// <see cref="JsonSerializer.DeserializeAsync{TValue}(Stream, JsonTypeInfo{TValue}, CancellationToken)"/>: a failed or
/// truncated read throws from the read, invalid JSON a <see cref="JsonException"/> from the parse, and trailing
/// non-whitespace after the value is rejected in both. Both paths apply the rule of <see cref="JsonUnicodeScanner"/>
/// (valid UTF-8, valid UTF-16 escapes): a text that breaks it is a <see cref="JsonException"/> too, naming the value's
/// path when the whole text is at hand.
/// </summary>
internal static class BufferedJson
{
    public const long MaxLength = 1024 * 1024;

    /// <summary>Whether a body of this Content-Length is read whole (otherwise: stream it through DeserializeAsync).</summary>
    public static bool Fits(long? contentLength) => contentLength is > 0 and <= MaxLength;

    public static ValueTask<T?> DeserializeAsync<T>(Stream body, long? contentLength, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken) =>
        Fits(contentLength)
            ? ReadWholeAsync(body, (int)contentLength!.Value, typeInfo, cancellationToken)
            : JsonSerializer.DeserializeAsync(new JsonUnicodeValidatingStream(body, static (error, offset) => JsonUnicode.Exception(error, offset, null)), typeInfo, cancellationToken);

    private static async ValueTask<T?> ReadWholeAsync<T>(Stream body, int length, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var read = await body.ReadAtLeastAsync(buffer.AsMemory(0, length), length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            Validate(buffer.AsSpan(0, read));
            return JsonSerializer.Deserialize(buffer.AsSpan(0, read), typeInfo);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// <see cref="DeserializeAsync"/>, keeping the bytes of a body that <see cref="Fits"/> (issue 18: forwarded as they are
    /// where the request reaches a provider of the same format unchanged). The caller owns the returned bytes and must
    /// <see cref="RequestBytes.Release"/> them; null for a body read as a stream. Nothing is read beyond the body's Content-Length.
    /// </summary>
    public static async ValueTask<(T? Value, RequestBytes? Bytes)> DeserializeKeepingBytesAsync<T>(Stream body, long? contentLength, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        if (!Fits(contentLength))
        {
            return (await DeserializeAsync(body, contentLength, typeInfo, cancellationToken).ConfigureAwait(false), null);
        }

        var length = (int)contentLength!.Value;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var read = await body.ReadAtLeastAsync(buffer.AsMemory(0, length), length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            Validate(buffer.AsSpan(0, read));
            var value = JsonSerializer.Deserialize(buffer.AsSpan(0, read), typeInfo);
            return (value, RequestBytes.Own(buffer, read));
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>Throws a <see cref="JsonException"/> when <paramref name="json"/> breaks the rule of <see cref="JsonUnicodeScanner"/>.</summary>
    public static void Validate(ReadOnlySpan<byte> json)
    {
        if (JsonUnicode.Check(json) is { } problem)
        {
            throw new JsonException(problem.Message, problem.Path is null ? null : "$." + problem.Path, null, null);
        }
    }
}
