using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Bifrost.Middleware.Providers.Local;

/// <summary>
/// Image generation of the local provider (issue 17, J): each image is a valid 8×8 RGB PNG of one colour, taken from the
/// SHA-256 of the prompt and the image's index, so the same request always gives the same bytes. <c>b64_json</c> (the
/// default) carries the PNG's base64; <c>url</c> a <c>data:image/png;base64,...</c> URL (the local provider stores nothing).
/// <c>revised_prompt</c> echoes the prompt.
/// </summary>
internal sealed partial class LocalProviderAdapter
{
    /// <summary>The width and height of local images.</summary>
    internal const int ImageSide = 8;

    public Task<ImageResponse> ImageGenerationAsync(ProviderContext context, ImageRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var prompt = request.Prompt ?? string.Empty;
        var response = new ImageResponse { Created = time.GetUtcNow().ToUnixTimeSeconds(), Model = context.Model };
        var n = Math.Max(1, request.N ?? 1);
        for (var i = 0; i < n; i++)
        {
            var base64 = Convert.ToBase64String(Png(prompt, i));
            response.Data.Add(request.ResponseFormat == "url"
                ? new ImageData { Url = "data:image/png;base64," + base64, RevisedPrompt = prompt }
                : new ImageData { B64Json = base64, RevisedPrompt = prompt });
        }

        return Task.FromResult(response);
    }

    /// <summary>
    /// A streamed generation (issue 17, img): for each image, <c>partial_images</c> <c>image_generation.partial_image</c>
    /// events (the PNG of <c>partial:{k}</c> and the prompt, <c>partial_image_index</c> k), then
    /// <c>image_generation.completed</c> with the same PNG the unstreamed call answers and a usage of the prompt's pieces.
    /// </summary>
    public IAsyncEnumerable<ImageStreamEvent> StreamImageGenerationAsync(ProviderContext context, ImageRequest request, CancellationToken cancellationToken) =>
        StreamImagesAsync("image_generation", request.Prompt ?? string.Empty, request.Prompt, request.N, request.PartialImages, request.Size, request.Quality, request.Background, request.OutputFormat, cancellationToken);

    // Image edits and variations (issue 17, img): the same 8×8 PNGs, of the colour the uploaded images' bytes (SHA-256 of each,
    // in order, and of the mask), the prompt and the image's index hash to; revised_prompt echoes an edit's prompt.

    public Task<ImageResponse> ImageEditAsync(ProviderContext context, ImageEditRequest request, CancellationToken cancellationToken) =>
        ImageUploadAsync(context, "edit", request, cancellationToken);

    public Task<ImageResponse> ImageVariationAsync(ProviderContext context, ImageEditRequest request, CancellationToken cancellationToken) =>
        ImageUploadAsync(context, "variation", request, cancellationToken);

    /// <summary>
    /// A streamed edit (issue 17, media): for each image, <c>partial_images</c> <c>image_edit.partial_image</c> events (the PNG
    /// of <c>partial:{k}</c> and the edit's seed, <c>partial_image_index</c> k), then <c>image_edit.completed</c> with the same
    /// PNG the unstreamed edit answers and a usage of the prompt's pieces (input) and the image's pixels (output).
    /// </summary>
    public async IAsyncEnumerable<ImageStreamEvent> StreamImageEditAsync(ProviderContext context, ImageEditRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var seed = await ImageUploadSeedAsync("edit", request, cancellationToken).ConfigureAwait(false);
        await foreach (var item in StreamImagesAsync("image_edit", seed, request.Prompt, request.N, request.PartialImages, request.Size, request.Quality, request.Background, request.OutputFormat, cancellationToken).ConfigureAwait(false))
        {
            yield return item;
        }
    }

    /// <summary>
    /// The events of a streamed generation or edit (<paramref name="kind"/>: <c>image_generation</c> or <c>image_edit</c>): for
    /// each image, <paramref name="partialImages"/> <c>{kind}.partial_image</c> events (the PNG of <c>partial:{k}</c> and
    /// <paramref name="seed"/>), then <c>{kind}.completed</c> with the PNG of <paramref name="seed"/> and a usage of the prompt's
    /// pieces (input) and the image's pixels (output).
    /// </summary>
    private async IAsyncEnumerable<ImageStreamEvent> StreamImagesAsync(
        string kind, string seed, string? prompt, int? n, int? partialImages, string? size, string? quality, string? background, string? format,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        size ??= "1024x1024";
        quality ??= "auto";
        background ??= "opaque";
        format ??= "png";
        var count = Math.Max(1, n ?? 1);
        for (var i = 0; i < count; i++)
        {
            for (var k = 0; k < (partialImages ?? 0); k++)
            {
                await Task.Yield();
                cancellationToken.ThrowIfCancellationRequested();
                yield return new ImageStreamEvent
                {
                    Type = kind + ".partial_image",
                    B64Json = Convert.ToBase64String(Png($"partial:{k}\n{seed}", i)),
                    CreatedAt = created,
                    Size = size,
                    Quality = quality,
                    Background = background,
                    OutputFormat = format,
                    PartialImageIndex = k,
                };
            }

            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            var input = CountPieces(prompt ?? string.Empty);
            yield return new ImageStreamEvent
            {
                Type = kind + ".completed",
                B64Json = Convert.ToBase64String(Png(seed, i)),
                CreatedAt = created,
                Size = size,
                Quality = quality,
                Background = background,
                OutputFormat = format,
                Usage = new ImageUsage { InputTokens = input, OutputTokens = ImageSide * ImageSide, TotalTokens = input + (ImageSide * ImageSide) },
            };
        }
    }

    /// <summary>
    /// The text an edit's or variation's colours are hashed from: <c>{kind}:{each image's key, comma-separated}|{mask key}|{prompt}</c>,
    /// where an image's key is the SHA-256 of its bytes (an upload, or a base64 <c>data:</c> URL's bytes, so a JSON edit of the
    /// same image gives the same PNG), or <c>url:{image_url}</c> / <c>file:{file_id}</c> for references the local provider
    /// cannot fetch.
    /// </summary>
    internal static async Task<string> ImageUploadSeedAsync(string kind, ImageEditRequest request, CancellationToken cancellationToken)
    {
        var seed = new StringBuilder(kind).Append(':');
        for (var i = 0; i < request.Images.Count; i++)
        {
            seed.Append(i == 0 ? string.Empty : ",").Append(await ImageKeyAsync(request.Images[i], "images", cancellationToken).ConfigureAwait(false));
        }

        seed.Append('|');
        if (request.Mask is { } mask)
        {
            seed.Append(await ImageKeyAsync(mask, "mask", cancellationToken).ConfigureAwait(false));
        }

        return seed.Append('|').Append(request.Prompt).ToString();
    }

    private static async Task<string> ImageKeyAsync(ImageFile image, string param, CancellationToken cancellationToken)
    {
        if (image.ImageUrl is { } url)
        {
            const string Base64Marker = ";base64,";
            var marker = url.IndexOf(Base64Marker, StringComparison.OrdinalIgnoreCase);
            if (!url.StartsWith("data:", StringComparison.OrdinalIgnoreCase) || marker < 0)
            {
                return "url:" + url;
            }

            try
            {
                return Convert.ToHexStringLower(SHA256.HashData(Convert.FromBase64String(url[(marker + Base64Marker.Length)..])));
            }
            catch (FormatException)
            {
                throw BifrostErrors.InvalidValue($"An 'image_url' data URL in '{param}' is not valid base64.", param);
            }
        }

        if (image.FileId is { } fileId)
        {
            return "file:" + fileId;
        }

        return Convert.ToHexStringLower(await SHA256.HashDataAsync(image.OpenRead(), cancellationToken).ConfigureAwait(false));
    }

    private async Task<ImageResponse> ImageUploadAsync(ProviderContext context, string kind, ImageEditRequest request, CancellationToken cancellationToken)
    {
        var seed = await ImageUploadSeedAsync(kind, request, cancellationToken).ConfigureAwait(false);
        var response = new ImageResponse { Created = time.GetUtcNow().ToUnixTimeSeconds(), Model = context.Model };
        var n = Math.Max(1, request.N ?? 1);
        for (var i = 0; i < n; i++)
        {
            var base64 = Convert.ToBase64String(Png(seed, i));
            response.Data.Add(request.ResponseFormat == "url"
                ? new ImageData { Url = "data:image/png;base64," + base64, RevisedPrompt = request.Prompt }
                : new ImageData { B64Json = base64, RevisedPrompt = request.Prompt });
        }

        return response;
    }

    /// <summary>An 8×8 RGB PNG of the colour the prompt and index hash to (stored deflate blocks: no compressor, stable bytes).</summary>
    internal static byte[] Png(string prompt, int index)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{index}\n{prompt}"), hash);

        // Raw scanlines: filter byte 0, then RGB per pixel.
        var raw = new byte[ImageSide * (1 + (ImageSide * 3))];
        for (var y = 0; y < ImageSide; y++)
        {
            var row = y * (1 + (ImageSide * 3));
            for (var x = 0; x < ImageSide; x++)
            {
                hash[..3].CopyTo(raw.AsSpan(row + 1 + (x * 3)));
            }
        }

        // zlib: header, one final stored block, Adler-32.
        var zlib = new byte[2 + 5 + raw.Length + 4];
        zlib[0] = 0x78;
        zlib[1] = 0x01;
        zlib[2] = 0x01;
        BinaryPrimitives.WriteUInt16LittleEndian(zlib.AsSpan(3), (ushort)raw.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(zlib.AsSpan(5), (ushort)~raw.Length);
        raw.CopyTo(zlib, 7);
        BinaryPrimitives.WriteUInt32BigEndian(zlib.AsSpan(7 + raw.Length), Adler32(raw));

        var header = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(header, ImageSide);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), ImageSide);
        header[8] = 8; // bit depth
        header[9] = 2; // truecolour

        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        Chunk(png, "IHDR"u8, header);
        Chunk(png, "IDAT"u8, zlib);
        Chunk(png, "IEND"u8, []);
        return png.ToArray();
    }

    private static void Chunk(MemoryStream png, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(word, (uint)data.Length);
        png.Write(word);
        var crc = Crc32(0xFFFFFFFFu, type);
        crc = Crc32(crc, data) ^ 0xFFFFFFFFu;
        png.Write(type);
        png.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        png.Write(word);
    }

    private static uint Crc32(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
            }
        }

        return crc;
    }

    private static uint Adler32(ReadOnlySpan<byte> data)
    {
        uint a = 1, b = 0;
        foreach (var d in data)
        {
            a = (a + d) % 65521;
            b = (b + a) % 65521;
        }

        return (b << 16) | a;
    }
}
