using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Providers.Cohere;

/// <summary>
/// Reads an Avro object container file (https://avro.apache.org/docs/1.11.1/specification/#object-container-files) as
/// JSON records: the header (magic <c>Obj\x01</c>, the metadata map with <c>avro.schema</c> and <c>avro.codec</c>, the
/// 16-byte sync marker), then blocks of records (count, byte size, data, sync marker), decoded with the writer's schema
/// (binary encoding: zig-zag varints, little-endian floats, length-prefixed strings, blocked arrays and maps, unions by
/// branch index). Codecs <c>null</c> and <c>deflate</c> (raw RFC 1951); others are refused. Cohere's dataset parts are such
/// files (its SDK reads them with fastavro, cohere-python <c>src/cohere/utils.py</c> <c>dataset_generator</c>). Every size
/// read from the file is bounded, so a malformed file is an <see cref="InvalidDataException"/>, never a huge allocation.
/// </summary>
internal static class AvroContainerReader
{
    /// <summary>The largest block (compressed or not) read into memory.</summary>
    internal const int MaxBlockBytes = 256 * 1024 * 1024;

    private static readonly byte[] Magic = "Obj\u0001"u8.ToArray();

    /// <summary>The records of <paramref name="stream"/>, in file order.</summary>
    public static async IAsyncEnumerable<JsonNode?> ReadAsync(Stream stream, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var input = new BufferedStream(stream, 65536);
        var magic = new byte[4];
        await ReadExactlyAsync(input, magic, cancellationToken).ConfigureAwait(false);
        if (!magic.AsSpan().SequenceEqual(Magic))
        {
            throw new InvalidDataException("Not an Avro object container file (no 'Obj\\x01' magic).");
        }

        var metadata = ReadMetadata(input);
        if (!metadata.TryGetValue("avro.schema", out var schemaBytes))
        {
            throw new InvalidDataException("The Avro file has no avro.schema.");
        }

        var codec = metadata.TryGetValue("avro.codec", out var codecBytes) ? Encoding.UTF8.GetString(codecBytes) : "null";
        if (codec is not ("null" or "deflate"))
        {
            throw new InvalidDataException($"The Avro codec '{codec}' is not supported (null and deflate are).");
        }

        AvroSchema schema;
        try
        {
            using var document = JsonDocument.Parse(schemaBytes);
            schema = AvroSchema.Parse(document.RootElement, new Dictionary<string, AvroSchema>(StringComparer.Ordinal), null);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException("The Avro schema is not JSON: " + ex.Message, ex);
        }

        var sync = new byte[16];
        await ReadExactlyAsync(input, sync, cancellationToken).ConfigureAwait(false);
        var marker = new byte[16];
        while (TryReadLong(input, out var count))
        {
            var size = ReadLong(input);
            if (count < 0 || size < 0 || size > MaxBlockBytes)
            {
                throw new InvalidDataException($"An Avro block of {count} records in {size} bytes is out of bounds.");
            }

            var block = new byte[size];
            await ReadExactlyAsync(input, block, cancellationToken).ConfigureAwait(false);
            await ReadExactlyAsync(input, marker, cancellationToken).ConfigureAwait(false);
            if (!marker.AsSpan().SequenceEqual(sync))
            {
                throw new InvalidDataException("An Avro block does not end with the file's sync marker.");
            }

            var data = codec == "deflate" ? Inflate(block) : block;
            var position = 0;
            for (long i = 0; i < count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return Decode(schema, data, ref position);
            }
        }
    }

    private static async Task ReadExactlyAsync(Stream input, byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            await input.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException ex)
        {
            throw new InvalidDataException("The Avro file ends in the middle of a block.", ex);
        }
    }

    private static byte[] Inflate(byte[] block)
    {
        using var deflate = new DeflateStream(new MemoryStream(block), CompressionMode.Decompress);
        using var output = new MemoryStream();
        var buffer = new byte[81920];
        int read;
        while ((read = deflate.Read(buffer, 0, buffer.Length)) > 0)
        {
            if (output.Length + read > MaxBlockBytes)
            {
                throw new InvalidDataException("An Avro block inflates beyond the bound.");
            }

            output.Write(buffer, 0, read);
        }

        return output.ToArray();
    }

    private static Dictionary<string, byte[]> ReadMetadata(Stream input)
    {
        var metadata = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        while (true)
        {
            var count = ReadLong(input);
            if (count == 0)
            {
                return metadata;
            }

            if (count < 0)
            {
                count = -count;
                _ = ReadLong(input); // the block's byte size
            }

            if (count > 4096)
            {
                throw new InvalidDataException("The Avro file metadata is out of bounds.");
            }

            for (var i = 0; i < count; i++)
            {
                var key = Encoding.UTF8.GetString(ReadBytes(input));
                metadata[key] = ReadBytes(input);
            }
        }
    }

    private static byte[] ReadBytes(Stream input)
    {
        var length = ReadLong(input);
        if (length is < 0 or > 16 * 1024 * 1024)
        {
            throw new InvalidDataException("An Avro metadata value is out of bounds.");
        }

        var bytes = new byte[length];
        try
        {
            input.ReadExactly(bytes);
        }
        catch (EndOfStreamException ex)
        {
            throw new InvalidDataException("The Avro file ends in its header.", ex);
        }

        return bytes;
    }

    private static long ReadLong(Stream input) =>
        TryReadLong(input, out var value) ? value : throw new InvalidDataException("The Avro file ends in the middle of a value.");

    private static bool TryReadLong(Stream input, out long value)
    {
        ulong raw = 0;
        var shift = 0;
        while (true)
        {
            var b = input.ReadByte();
            if (b < 0)
            {
                value = 0;
                return shift == 0 ? false : throw new InvalidDataException("The Avro file ends in the middle of a value.");
            }

            raw |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                break;
            }

            shift += 7;
            if (shift > 63)
            {
                throw new InvalidDataException("An Avro varint is too long.");
            }
        }

        value = (long)(raw >> 1) ^ -(long)(raw & 1);
        return true;
    }

    private static long ReadLong(ReadOnlySpan<byte> data, ref int position)
    {
        ulong raw = 0;
        var shift = 0;
        while (true)
        {
            if (position >= data.Length)
            {
                throw new InvalidDataException("An Avro record ends in the middle of a value.");
            }

            var b = data[position++];
            raw |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return (long)(raw >> 1) ^ -(long)(raw & 1);
            }

            shift += 7;
            if (shift > 63)
            {
                throw new InvalidDataException("An Avro varint is too long.");
            }
        }
    }

    private static ReadOnlySpan<byte> Take(ReadOnlySpan<byte> data, ref int position, long length)
    {
        if (length < 0 || length > data.Length - position)
        {
            throw new InvalidDataException("An Avro value's length is out of bounds.");
        }

        var slice = data.Slice(position, (int)length);
        position += (int)length;
        return slice;
    }

    private static JsonNode? Decode(AvroSchema schema, ReadOnlySpan<byte> data, ref int position)
    {
        switch (schema.Kind)
        {
            case "null":
                return null;
            case "boolean":
                return JsonValue.Create(Take(data, ref position, 1)[0] != 0);
            case "int":
            case "long":
                return JsonValue.Create(ReadLong(data, ref position));
            case "float":
                return JsonValue.Create((double)BinaryPrimitives.ReadSingleLittleEndian(Take(data, ref position, 4))); // as double: one numeric type for readers
            case "double":
                return JsonValue.Create(BinaryPrimitives.ReadDoubleLittleEndian(Take(data, ref position, 8)));
            case "string":
                return JsonValue.Create(Encoding.UTF8.GetString(Take(data, ref position, ReadLong(data, ref position))));
            case "bytes":
                return JsonValue.Create(Convert.ToBase64String(Take(data, ref position, ReadLong(data, ref position))));
            case "fixed":
                return JsonValue.Create(Convert.ToBase64String(Take(data, ref position, schema.Size)));
            case "enum":
                var symbol = ReadLong(data, ref position);
                return symbol >= 0 && symbol < schema.Symbols.Count ? JsonValue.Create(schema.Symbols[(int)symbol]) : throw new InvalidDataException("An Avro enum index is out of range.");
            case "union":
                var branch = ReadLong(data, ref position);
                return branch >= 0 && branch < schema.Branches.Count ? Decode(schema.Branches[(int)branch], data, ref position) : throw new InvalidDataException("An Avro union index is out of range.");
            case "record":
                var record = new JsonObject();
                foreach (var (name, type) in schema.Fields)
                {
                    record[name] = Decode(type, data, ref position);
                }

                return record;
            case "array":
                var array = new JsonArray();
                while (true)
                {
                    var count = BlockCount(data, ref position);
                    if (count == 0)
                    {
                        return array;
                    }

                    for (long i = 0; i < count; i++)
                    {
                        array.Add(Decode(schema.Items!, data, ref position));
                    }
                }

            case "map":
                var map = new JsonObject();
                while (true)
                {
                    var entries = BlockCount(data, ref position);
                    if (entries == 0)
                    {
                        return map;
                    }

                    for (long i = 0; i < entries; i++)
                    {
                        var key = Encoding.UTF8.GetString(Take(data, ref position, ReadLong(data, ref position)));
                        map[key] = Decode(schema.Items!, data, ref position);
                    }
                }

            default:
                throw new InvalidDataException($"The Avro type '{schema.Kind}' is not supported.");
        }
    }

    // Arrays and maps: blocks of items until a zero count (a negative count is followed by the block's byte size).
    private static long BlockCount(ReadOnlySpan<byte> data, ref int position)
    {
        var count = ReadLong(data, ref position);
        if (count < 0)
        {
            count = -count;
            _ = ReadLong(data, ref position);
        }

        // Each item takes at least one byte, except nulls: bound by the block's bytes, with room for empty records.
        return count > data.Length - position + 1_000_000 ? throw new InvalidDataException("An Avro block count is out of bounds.") : count;
    }

    /// <summary>A parsed writer schema: its kind (a primitive name, record, enum, array, map, union or fixed) and parts.</summary>
    private sealed class AvroSchema
    {
        public string Kind { get; private set; } = "null";

        public List<(string Name, AvroSchema Type)> Fields { get; } = [];

        public AvroSchema? Items { get; private set; }

        public List<AvroSchema> Branches { get; } = [];

        public List<string> Symbols { get; } = [];

        public long Size { get; private set; }

        public static AvroSchema Parse(JsonElement element, Dictionary<string, AvroSchema> named, string? space)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.String:
                    var name = element.GetString()!;
                    if (name is "null" or "boolean" or "int" or "long" or "float" or "double" or "bytes" or "string")
                    {
                        return new AvroSchema { Kind = name };
                    }

                    return named.TryGetValue(name, out var known) || (space is not null && named.TryGetValue(space + "." + name, out known))
                        ? known!
                        : throw new InvalidDataException($"The Avro schema names an unknown type '{name}'.");
                case JsonValueKind.Array:
                    var union = new AvroSchema { Kind = "union" };
                    foreach (var branch in element.EnumerateArray())
                    {
                        union.Branches.Add(Parse(branch, named, space));
                    }

                    return union;
                case JsonValueKind.Object:
                    var type = element.GetProperty("type");
                    if (type.ValueKind != JsonValueKind.String)
                    {
                        return Parse(type, named, space);
                    }

                    var kind = type.GetString()!;
                    var schema = new AvroSchema { Kind = kind };
                    switch (kind)
                    {
                        case "record" or "error" or "enum" or "fixed":
                            schema.Kind = kind == "error" ? "record" : kind;
                            var simple = element.GetProperty("name").GetString()!;
                            var ns = element.TryGetProperty("namespace", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : space;
                            var full = simple.Contains('.', StringComparison.Ordinal) || string.IsNullOrEmpty(ns) ? simple : ns + "." + simple;
                            named[full] = schema;
                            named.TryAdd(simple, schema);
                            if (schema.Kind == "record")
                            {
                                foreach (var field in element.GetProperty("fields").EnumerateArray())
                                {
                                    schema.Fields.Add((field.GetProperty("name").GetString()!, Parse(field.GetProperty("type"), named, ns)));
                                }
                            }
                            else if (kind == "enum")
                            {
                                schema.Symbols.AddRange(element.GetProperty("symbols").EnumerateArray().Select(static s => s.GetString()!));
                            }
                            else
                            {
                                schema.Size = element.GetProperty("size").GetInt64();
                            }

                            return schema;
                        case "array":
                            schema.Items = Parse(element.GetProperty("items"), named, space);
                            return schema;
                        case "map":
                            schema.Items = Parse(element.GetProperty("values"), named, space);
                            return schema;
                        default:
                            return Parse(type, named, space); // {"type": "string", "logicalType": ...}
                    }

                default:
                    throw new InvalidDataException("The Avro schema is not a type.");
            }
        }
    }
}
