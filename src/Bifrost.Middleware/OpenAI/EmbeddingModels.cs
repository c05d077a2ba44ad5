using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI embeddings request (<c>POST embeddings</c>), plus Bifrost's <c>fallbacks</c>.</summary>
public sealed class EmbeddingRequest : InferenceRequest
{
    /// <summary>Creates an empty request (set <see cref="InferenceRequest.Model"/> and <see cref="Input"/>).</summary>
    public EmbeddingRequest()
    {
    }

    /// <summary>Creates a request embedding <paramref name="input"/> with <paramref name="model"/>.</summary>
    /// <param name="model">The model, as <c>provider/model</c> (e.g. <c>local/embed</c>) or a bare model of the default provider.</param>
    /// <param name="input">A string or strings (both convert implicitly), or token ids.</param>
    public EmbeddingRequest(string model, TextInput input)
        : base(model) => Input = input ?? throw new ArgumentNullException(nameof(input));

    /// <summary>A string, an array of strings, an array of token ids, or an array of token-id arrays.</summary>
    public TextInput? Input { get; set; }

    /// <summary>Output dimensions, for models that support shortening.</summary>
    public int? Dimensions { get; set; }

    /// <summary><c>float</c> (default) or <c>base64</c> (little-endian float32).</summary>
    public string? EncodingFormat { get; set; }

    /// <summary>A stable identifier of the end user.</summary>
    public string? User { get; set; }

    /// <summary>A shallow copy for one provider attempt: the provider's bare model, no fallbacks.</summary>
    internal EmbeddingRequest ForProvider(string model) => CopyForProvider<EmbeddingRequest>(model);
}

/// <summary>An OpenAI embeddings response.</summary>
public sealed class EmbeddingResponse : ExtensibleObject, Operations.IHasExtraFields
{
    /// <summary>Always <c>list</c>.</summary>
    public string Object { get; set; } = "list";

    /// <summary>One embedding per input.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<EmbeddingData> Data { get; set; } = [];

    /// <summary>The model that answered.</summary>
    public string? Model { get; set; }

    /// <summary>Token usage.</summary>
    public EmbeddingUsage? Usage { get; set; }

    /// <summary>Gateway metadata.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }
}

/// <summary>One embedding.</summary>
public sealed class EmbeddingData
{
    /// <summary>Always <c>embedding</c>.</summary>
    public string Object { get; set; } = "embedding";

    /// <summary>The input's position.</summary>
    public int Index { get; set; }

    /// <summary>The vector, as floats or as base64 little-endian float32.</summary>
    public EmbeddingVector Embedding { get; set; } = new(Array.Empty<float>());
}

/// <summary>Token usage of an embeddings request.</summary>
public sealed class EmbeddingUsage
{
    /// <summary>Tokens in the input.</summary>
    public int PromptTokens { get; set; }

    /// <summary>Same as <see cref="PromptTokens"/>.</summary>
    public int TotalTokens { get; set; }
}

/// <summary>An embedding vector: floats, or the base64 of their little-endian float32 bytes, converted on demand.</summary>
[JsonConverter(typeof(EmbeddingVectorConverter))]
public sealed class EmbeddingVector
{
    private readonly float[]? _floats;
    private readonly string? _base64;

    /// <summary>Creates a vector from floats.</summary>
    /// <param name="values">The values.</param>
    public EmbeddingVector(float[] values) => _floats = values ?? throw new ArgumentNullException(nameof(values));

    /// <summary>Creates a vector from base64 little-endian float32 bytes.</summary>
    /// <param name="base64">The base64 text.</param>
    public EmbeddingVector(string base64) => _base64 = base64 ?? throw new ArgumentNullException(nameof(base64));

    /// <summary>Whether the vector is currently held as base64.</summary>
    public bool IsBase64 => _floats is null;

    /// <summary>The values as floats (decoded from base64 when needed).</summary>
    public float[] ToFloats()
    {
        if (_floats is not null)
        {
            return _floats;
        }

        var bytes = Convert.FromBase64String(_base64!);
        var values = new float[bytes.Length / 4];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
        }

        return values;
    }

    /// <summary>The values as base64 of little-endian float32 bytes (what OpenAI sends for <c>encoding_format: base64</c>).</summary>
    public string ToBase64()
    {
        if (_base64 is not null)
        {
            return _base64;
        }

        if (BitConverter.IsLittleEndian)
        {
            return Convert.ToBase64String(MemoryMarshal.AsBytes(_floats.AsSpan()));
        }

        var bytes = new byte[_floats!.Length * 4];
        for (var i = 0; i < _floats.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), _floats[i]);
        }

        return Convert.ToBase64String(bytes);
    }

    /// <summary>This vector in the requested wire format.</summary>
    /// <param name="base64">Whether base64 is wanted.</param>
    public EmbeddingVector As(bool base64) => base64 == IsBase64 ? this : base64 ? new EmbeddingVector(ToBase64()) : new EmbeddingVector(ToFloats());
}

/// <summary>
/// Input that OpenAI accepts as a string, an array of strings, an array of token ids or an array of token-id arrays
/// (embeddings <c>input</c>, completions <c>prompt</c>). Written back in the form it was read.
/// </summary>
[JsonConverter(typeof(TextInputConverter))]
public sealed class TextInput
{
    /// <summary>Creates text input.</summary>
    /// <param name="texts">The texts.</param>
    /// <param name="single">Whether it was (and is written as) a single string.</param>
    public TextInput(IList<string> texts, bool single = false)
    {
        Texts = texts ?? throw new ArgumentNullException(nameof(texts));
        IsSingle = single;
    }

    /// <summary>Creates token input.</summary>
    /// <param name="tokens">The token-id arrays.</param>
    /// <param name="single">Whether it was (and is written as) a single token array.</param>
    public TextInput(IList<int[]> tokens, bool single = false)
    {
        Tokens = tokens ?? throw new ArgumentNullException(nameof(tokens));
        IsSingle = single;
    }

    /// <summary>One string (written as a string).</summary>
    /// <param name="text">The text.</param>
    public static implicit operator TextInput(string text) => FromString(text);

    /// <summary>Several strings (written as an array).</summary>
    /// <param name="texts">The texts.</param>
    public static implicit operator TextInput(string[] texts) => FromStrings(texts);

    /// <summary>Creates input of one string, written as a string (the named form of the implicit conversion).</summary>
    /// <param name="text">The text.</param>
    public static TextInput FromString(string text) => new([text ?? throw new ArgumentNullException(nameof(text))], single: true);

    /// <summary>Creates input of several strings, written as an array (the named form of the implicit conversion).</summary>
    /// <param name="texts">The texts.</param>
    public static TextInput FromStrings(params IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return new([.. texts]);
    }

    /// <summary>The texts, when the input is text.</summary>
    public IList<string>? Texts { get; }

    /// <summary>The token-id arrays, when the input is tokens.</summary>
    public IList<int[]>? Tokens { get; }

    /// <summary>Whether the input was one item (a string or one token array) rather than an array of them.</summary>
    public bool IsSingle { get; }

    /// <summary>How many inputs there are.</summary>
    public int Count => Texts?.Count ?? Tokens!.Count;
}
