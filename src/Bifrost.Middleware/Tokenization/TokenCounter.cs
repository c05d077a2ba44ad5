using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Bifrost.Middleware.Tokenization;

/// <summary>
/// Counts input tokens locally with the tiktoken vocabularies embedded in <c>Microsoft.ML.Tokenizers.Data.*</c>
/// (no download). Message framing follows OpenAI's cookbook "How to count tokens with tiktoken"
/// (<c>num_tokens_from_messages</c>, <c>num_tokens_for_tools</c>); images follow OpenAI's vision pricing for gpt-4o
/// (85 base tokens, 170 per 512px tile). Thread-safe; use <see cref="Shared"/>.
/// </summary>
internal sealed partial class TokenCounter
{
    // num_tokens_from_messages: <|start|>{role/name}\n{content}<|end|>\n, and <|start|>assistant<|message|> to prime the reply.
    private const int TokensPerMessage = 3;
    private const int TokensPerName = 1;
    private const int ReplyPriming = 3;

    // num_tokens_for_tools; func_init is 7 for o200k (gpt-4o) models and 10 for cl100k (gpt-4, gpt-3.5-turbo) models.
    private const int FuncInitO200k = 7;
    private const int FuncInitCl100k = 10;
    private const int PropInit = 3;
    private const int PropKey = 3;
    private const int EnumInit = -3;
    private const int EnumItem = 3;
    private const int FuncEnd = 12;

    // Vision (gpt-4o): low detail is a flat 85; high/auto is 85 + 170 per 512px tile after scaling.
    private const int ImageBaseTokens = 85;
    private const int ImageTileTokens = 170;
    private const int ImageMaxSide = 2048;
    private const int ImageShortSide = 768;
    private const int ImageTileSide = 512;
    private const int AssumedImageSide = 1024;

    private static readonly string[] O200kPrefixes = ["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss"];
    private static readonly string[] Cl100kPrefixes = ["gpt-4-", "gpt-3.5", "gpt-35-", "text-embedding-3-"];
    private static readonly string[] Cl100kNames = ["gpt-4", "text-embedding-ada-002"];

    // Models for which OpenAI documents the 85/170 image formula; others (gpt-4o-mini, gpt-4.1-mini/nano, o-series,
    // gpt-5 ...) price images differently, so their image counts are estimates.
    private static readonly string[] TileImagePrefixes = ["gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-4-turbo", "gpt-4-vision"];
    private static readonly string[] OtherImagePricingPrefixes = ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-nano"];

    private readonly Lazy<Vocabulary> _o200k = new(() => new Vocabulary(TiktokenTokenizer.CreateForEncoding("o200k_base"), O200kPattern()), LazyThreadSafetyMode.ExecutionAndPublication);
    private readonly Lazy<Vocabulary> _cl100k = new(() => new Vocabulary(TiktokenTokenizer.CreateForEncoding("cl100k_base"), Cl100kPattern()), LazyThreadSafetyMode.ExecutionAndPublication);

    private TokenCounter()
    {
    }

    /// <summary>The process-wide instance; the tokenizers are created on first use.</summary>
    public static TokenCounter Shared { get; } = new();

    /// <summary>The tiktoken name of an encoding (<c>o200k_base</c>, <c>cl100k_base</c>).</summary>
    /// <param name="encoding">The encoding.</param>
    public static string EncodingName(TokenEncoding encoding) => encoding == TokenEncoding.Cl100kBase ? "cl100k_base" : "o200k_base";

    /// <summary>The encoding of a model: o200k_base for gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1/o3/o4, chatgpt-4o and gpt-oss;
    /// cl100k_base for gpt-4, gpt-3.5, text-embedding-ada-002 and text-embedding-3-*; o200k_base for anything else
    /// (see <see cref="IsKnownModel"/>). A <c>provider/</c> prefix and a fine-tune <c>ft:</c> prefix are ignored.</summary>
    /// <param name="model">The model, e.g. <c>gpt-4o-mini</c> or <c>openai/gpt-4</c>.</param>
    [SuppressMessage("Performance", "CA1822:Mark members as static", Justification = "Part of the singleton's instance API, beside the counting methods.")]
    public TokenEncoding EncodingFor(string model)
    {
        Resolve(model, out var encoding);
        return encoding;
    }

    /// <summary>Whether the model belongs to a family whose encoding is known (otherwise counts are estimates).</summary>
    /// <param name="model">The model, with or without a <c>provider/</c> prefix.</param>
    [SuppressMessage("Performance", "CA1822:Mark members as static", Justification = "Part of the singleton's instance API, beside the counting methods.")]
    public bool IsKnownModel(string model) => Resolve(model, out _);

    /// <summary>The number of tokens of a text in an encoding (no framing).</summary>
    /// <param name="text">The text.</param>
    /// <param name="encoding">The encoding.</param>
    public int CountText(string text, TokenEncoding encoding)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Tokenizer(encoding).Count(text);
    }

    /// <summary>The number of tokens of a text split by the encoding's pre-tokenizer pattern and encoded piece by piece,
    /// so that special-token text such as <c>&lt;|endoftext|&gt;</c> is plain text (tiktoken's <c>encode_ordinary</c>).
    /// <see cref="CountText"/> takes this path too; exposed for tests.</summary>
    /// <param name="text">The text.</param>
    /// <param name="encoding">The encoding.</param>
    internal int CountOrdinary(string text, TokenEncoding encoding)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Tokenizer(encoding).CountOrdinary(text);
    }

    /// <summary>Counts the input tokens of a chat request: messages with their framing, the reply priming, and tools.</summary>
    /// <param name="model">The model, with or without a <c>provider/</c> prefix.</param>
    /// <param name="messages">The messages.</param>
    /// <param name="tools">The tools, if any.</param>
    public TokenCount CountChat(string model, IList<ChatCompletionMessage> messages, IList<ChatCompletionTool>? tools)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(messages);

        var exact = Resolve(model, out var encoding);
        var tokenizer = Tokenizer(encoding);
        var imagesPricedByTiles = ImagesPricedByTiles(model);
        var total = 0;
        foreach (var message in messages)
        {
            if (message is null)
            {
                continue;
            }

            total += TokensPerMessage;
            total += tokenizer.Count(message.Role);
            if (message.Content is { } content)
            {
                total += CountContent(tokenizer, content, imagesPricedByTiles, ref exact);
            }

            if (message.Name is not null)
            {
                total += TokensPerName + tokenizer.Count(message.Name);
            }

            total += tokenizer.Count(message.Refusal);
            if (message.ToolCalls is { Count: > 0 } calls)
            {
                // The rendering of tool calls is not published: count the name and the arguments.
                exact = false;
                foreach (var call in calls)
                {
                    total += tokenizer.Count(call?.Function?.Name) + tokenizer.Count(call?.Function?.Arguments);
                }
            }

            if (message.ToolCallId is not null || string.Equals(message.Role, "tool", StringComparison.Ordinal))
            {
                exact = false; // tool results: framing not published
            }
        }

        total += ReplyPriming;
        if (tools is { Count: > 0 })
        {
            total += CountTools(tokenizer, encoding, tools, ref exact);
        }

        return new TokenCount(total, EncodingName(encoding), exact);
    }

    /// <summary>The tokens of one image as OpenAI documents for gpt-4o: <c>low</c> detail is 85; <c>high</c> and <c>auto</c>
    /// scale the image to fit in 2048x2048, then (if larger) so that its shortest side is 768px, and cost 85 + 170 per
    /// 512px tile.</summary>
    /// <param name="width">The width in pixels.</param>
    /// <param name="height">The height in pixels.</param>
    /// <param name="detail"><c>low</c>, <c>high</c>, <c>auto</c> or <see langword="null"/> (auto).</param>
    public static int ImageTokens(int width, int height, string? detail)
    {
        if (string.Equals(detail, "low", StringComparison.OrdinalIgnoreCase))
        {
            return ImageBaseTokens;
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        long w = width;
        long h = height;
        if (w > ImageMaxSide || h > ImageMaxSide)
        {
            var longest = Math.Max(w, h);
            w = Math.Max(1, w * ImageMaxSide / longest);
            h = Math.Max(1, h * ImageMaxSide / longest);
        }

        var shortest = Math.Min(w, h);
        if (shortest > ImageShortSide)
        {
            w = Math.Max(1, w * ImageShortSide / shortest);
            h = Math.Max(1, h * ImageShortSide / shortest);
        }

        var tiles = ((w + ImageTileSide - 1) / ImageTileSide) * ((h + ImageTileSide - 1) / ImageTileSide);
        return (int)(ImageBaseTokens + (ImageTileTokens * tiles));
    }

    private static int CountContent(Vocabulary tokenizer, ChatCompletionContent content, bool imagesPricedByTiles, ref bool exact)
    {
        if (content.Text is not null)
        {
            return tokenizer.Count(content.Text);
        }

        var total = 0;
        foreach (var part in content.Parts!)
        {
            if (part is null)
            {
                continue;
            }

            if (string.Equals(part.Type, "image_url", StringComparison.Ordinal))
            {
                total += CountImage(part.ImageUrl, imagesPricedByTiles, ref exact);
            }
            else if (part.Text is not null)
            {
                total += tokenizer.Count(part.Text);
            }
            else if (string.Equals(part.Type, "refusal", StringComparison.Ordinal)
                && part.AdditionalProperties?.TryGetValue("refusal", out var refusal) == true
                && refusal.ValueKind == JsonValueKind.String)
            {
                total += tokenizer.Count(refusal.GetString());
            }
            else
            {
                exact = false; // input_audio, file, ...: not counted
            }
        }

        return total;
    }

    private static int CountImage(ChatImageUrl? image, bool imagesPricedByTiles, ref bool exact)
    {
        if (!imagesPricedByTiles)
        {
            exact = false;
        }

        var detail = image?.Detail;
        if (string.Equals(detail, "low", StringComparison.OrdinalIgnoreCase))
        {
            return ImageBaseTokens;
        }

        if (!ImageDimensions.TryReadDataUrl(image?.Url, out var width, out var height))
        {
            // Remote URL (or unreadable data): the size is unknown without fetching it.
            width = AssumedImageSide;
            height = AssumedImageSide;
            exact = false;
        }

        return ImageTokens(width, height, detail);
    }

    private static int CountTools(Vocabulary tokenizer, TokenEncoding encoding, IList<ChatCompletionTool> tools, ref bool exact)
    {
        var funcInit = encoding == TokenEncoding.Cl100kBase ? FuncInitCl100k : FuncInitO200k;
        var total = 0;
        var any = false;
        foreach (var tool in tools)
        {
            if (tool is null)
            {
                continue;
            }

            any = true;
            if (tool.Function is not { } function || (tool.Type is not null && !string.Equals(tool.Type, "function", StringComparison.Ordinal)))
            {
                // Custom and built-in tools: no published rule; count their JSON text.
                exact = false;
                total += tokenizer.Count(tool.Type);
                if (tool.AdditionalProperties is not null)
                {
                    foreach (var (key, value) in tool.AdditionalProperties)
                    {
                        total += tokenizer.Count(key) + tokenizer.Count(value.GetRawText());
                    }
                }

                continue;
            }

            total += funcInit;
            total += tokenizer.Count((function.Name ?? string.Empty) + ":" + TrimPeriod(function.Description));
            if (function.Parameters is { ValueKind: JsonValueKind.Object } parameters
                && parameters.TryGetProperty("properties", out var properties)
                && properties.ValueKind == JsonValueKind.Object
                && properties.EnumerateObject().Any())
            {
                total += PropInit;
                foreach (var property in properties.EnumerateObject())
                {
                    total += PropKey;
                    total += CountProperty(tokenizer, property, ref exact);
                }
            }
        }

        return any ? total + FuncEnd : total;
    }

    private static int CountProperty(Vocabulary tokenizer, JsonProperty property, ref bool exact)
    {
        var schema = property.Value;
        var total = 0;
        var type = string.Empty;
        var description = string.Empty;
        if (schema.ValueKind != JsonValueKind.Object)
        {
            exact = false;
            return tokenizer.Count(property.Name + "::");
        }

        if (schema.TryGetProperty("type", out var typeElement))
        {
            if (typeElement.ValueKind == JsonValueKind.String)
            {
                type = typeElement.GetString()!;
            }
            else
            {
                exact = false; // e.g. ["string", "null"]
                type = typeElement.ValueKind == JsonValueKind.Array
                    ? string.Join(" | ", typeElement.EnumerateArray().Select(static t => t.ValueKind == JsonValueKind.String ? t.GetString() : t.GetRawText()))
                    : typeElement.GetRawText();
            }
        }
        else
        {
            exact = false; // anyOf, $ref, ...
        }

        if (schema.TryGetProperty("description", out var descriptionElement) && descriptionElement.ValueKind == JsonValueKind.String)
        {
            description = descriptionElement.GetString()!;
        }

        if (schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array)
        {
            total += EnumInit;
            foreach (var value in values.EnumerateArray())
            {
                total += EnumItem;
                total += tokenizer.Count(value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText());
            }
        }

        // The published algorithm models flat string/number/boolean/enum properties only.
        if (type is "object" or "array"
            || schema.TryGetProperty("properties", out _)
            || schema.TryGetProperty("items", out _)
            || schema.TryGetProperty("anyOf", out _)
            || schema.TryGetProperty("oneOf", out _)
            || schema.TryGetProperty("allOf", out _)
            || schema.TryGetProperty("$ref", out _))
        {
            exact = false;
        }

        total += tokenizer.Count(property.Name + ":" + type + ":" + TrimPeriod(description));
        return total;
    }

    private static string TrimPeriod(string? text) =>
        text is null ? string.Empty : text.EndsWith('.') ? text[..^1] : text;

    private Vocabulary Tokenizer(TokenEncoding encoding) =>
        encoding == TokenEncoding.Cl100kBase ? _cl100k.Value : _o200k.Value;

    private static bool Resolve(string model, out TokenEncoding encoding)
    {
        ArgumentNullException.ThrowIfNull(model);
        var name = BareModel(model);
        if (StartsWithAny(name, O200kPrefixes))
        {
            encoding = TokenEncoding.O200kBase;
            return true;
        }

        if (StartsWithAny(name, Cl100kPrefixes) || EqualsAny(name, Cl100kNames))
        {
            encoding = TokenEncoding.Cl100kBase;
            return true;
        }

        encoding = TokenEncoding.O200kBase;
        return false;
    }

    private static bool ImagesPricedByTiles(string model)
    {
        var name = BareModel(model);
        return StartsWithAny(name, TileImagePrefixes) && !StartsWithAny(name, OtherImagePricingPrefixes);
    }

    private static ReadOnlySpan<char> BareModel(string model)
    {
        var name = model.AsSpan().Trim();
        var slash = name.LastIndexOf('/');
        if (slash >= 0)
        {
            name = name[(slash + 1)..];
        }

        if (name.StartsWith("ft:", StringComparison.OrdinalIgnoreCase))
        {
            name = name[3..];
        }

        return name;
    }

    private static bool StartsWithAny(ReadOnlySpan<char> name, string[] prefixes)
    {
        foreach (var prefix in prefixes)
        {
            if (name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static bool EqualsAny(ReadOnlySpan<char> name, string[] names)
    {
        foreach (var candidate in names)
        {
            if (name.Equals(candidate, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    // tiktoken's pre-tokenizer patterns (openai_public.py), used for the encode_ordinary path.
    [GeneratedRegex(@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Cl100kPattern();

    [GeneratedRegex(@"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant)]
    private static partial Regex O200kPattern();

    /// <summary>One encoding: the tokenizer and its pre-tokenizer pattern. Thread-safe.</summary>
    private sealed class Vocabulary
    {
        private readonly TiktokenTokenizer _tokenizer;
        private readonly Regex _pattern;

        public Vocabulary(TiktokenTokenizer tokenizer, Regex pattern)
        {
            _tokenizer = tokenizer;
            _pattern = pattern;
        }

        public int Count(string? text)
        {
            if (string.IsNullOrEmpty(text))
            {
                return 0;
            }

            // Split here by the encoding's pattern (allocation-free) and each piece encoded, rather than by the
            // tokenizer's own pre-tokenizer (an enumerator and its state per call): the same pieces, so the same count,
            // and special-token text such as <|endoftext|> stays plain text, as in a request.
            return CountOrdinary(text);
        }

        public int CountOrdinary(string text)
        {
            // Pieces are mostly common words: their counts are kept per thread (looked up by span, no allocation, no
            // lock), bounded; the tokenizer encodes only the pieces not seen lately on this thread.
            var seen = PieceCounts();
            var total = 0;
            foreach (var piece in _pattern.EnumerateMatches(text))
            {
                var span = text.AsSpan(piece.Index, piece.Length);
                if (!seen.TryGetValue(span, out var count))
                {
                    count = _tokenizer.CountTokens(span, considerPreTokenization: false, considerNormalization: false);
                    if (span.Length <= MaxCachedPiece)
                    {
                        if (seen.Dictionary.Count >= MaxCachedPieces)
                        {
                            seen.Dictionary.Clear();
                        }

                        seen.Dictionary[span.ToString()] = count;
                    }
                }

                total += count;
            }

            return total;
        }

        private const int MaxCachedPieces = 4096;
        private const int MaxCachedPiece = 32;

        [ThreadStatic]
        private static Dictionary<Vocabulary, Dictionary<string, int>>? t_pieces;

        private Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> PieceCounts()
        {
            var all = t_pieces ??= [];
            if (!all.TryGetValue(this, out var counts))
            {
                all[this] = counts = new Dictionary<string, int>(StringComparer.Ordinal);
            }

            return counts.GetAlternateLookup<ReadOnlySpan<char>>();
        }
    }
}
