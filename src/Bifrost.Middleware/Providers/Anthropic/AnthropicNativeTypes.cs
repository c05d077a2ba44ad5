using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Providers.Anthropic;

// Anthropic native passthrough (the /anthropic inbound routes): the caller's Messages body and Anthropic's answers kept
// as JSON, so every field (cache_control, thinking, mcp_servers, container, fields added later) reaches the provider and
// comes back unchanged when the route resolves to an Anthropic provider.

/// <summary>
/// A Messages (or <c>count_tokens</c>) request as the caller sent it: the raw body, the parsed form (for validation and
/// for the conversion to chat when another provider serves it), and the model and fallbacks the gateway routes by.
/// Serialized (async jobs, the request log) as the body with <see cref="Model"/> written back, and the caller's forwarded
/// Anthropic request headers (<see cref="AnthropicVersion"/>, <see cref="AnthropicBetas"/>) under the gateway's own field
/// <c>x-bf-anthropic-headers</c>, so they survive a job store (the pipeline has no HttpContext).
/// </summary>
[JsonConverter(typeof(AnthropicMessagesRequestConverter))]
internal sealed class AnthropicMessagesRequest
{
    /// <summary>The gateway's field that carries the forwarded request headers through serialization (a job store).</summary>
    internal const string HeadersField = "x-bf-anthropic-headers";

    /// <summary>The request fields that are the gateway's own: never sent to the provider.</summary>
    private static readonly string[] GatewayFields = ["model", "fallbacks", HeadersField];

    private AnthropicRequest? _parsed;

    /// <summary>
    /// Reads a request from its JSON object (throws <see cref="JsonException"/> for a body that is not an object or whose
    /// <c>model</c> or <c>fallbacks</c> are not strings). The rest is read only when a conversion needs it: the native
    /// passthrough takes blocks and fields the typed form does not know.
    /// </summary>
    public AnthropicMessagesRequest(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException("The request body must be a JSON object.");
        }

        Body = body;
        if (body.TryGetProperty("model"u8, out var model) && model.ValueKind != JsonValueKind.Null)
        {
            _model = model.ValueKind == JsonValueKind.String ? model.GetString() : throw new JsonException("'model' must be a string.");
        }

        if (body.TryGetProperty("fallbacks"u8, out var fallbacks) && fallbacks.ValueKind != JsonValueKind.Null)
        {
            Fallbacks = fallbacks.ValueKind == JsonValueKind.Array
                ? [.. fallbacks.EnumerateArray().Select(static f => f.ValueKind == JsonValueKind.String ? f.GetString()! : throw new JsonException("'fallbacks' must be an array of strings."))]
                : throw new JsonException("'fallbacks' must be an array of strings.");
        }

        if (body.TryGetProperty(HeadersField, out var headers) && headers.ValueKind != JsonValueKind.Null)
        {
            if (headers.ValueKind != JsonValueKind.Object)
            {
                throw new JsonException($"'{HeadersField}' must be an object.");
            }

            var version = headers.TryGetProperty(AnthropicHeaders.Version, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            var betas = headers.TryGetProperty(AnthropicHeaders.Beta, out var b) && b.ValueKind == JsonValueKind.String ? b.GetString() : null;
            try
            {
                SetHeaders(version, betas is null ? [] : [betas]);
            }
            catch (BifrostException ex)
            {
                throw new JsonException(ex.Message);
            }
        }
    }

    /// <summary>The caller's <c>anthropic-version</c> header, forwarded on the native path (null: the adapter's default).</summary>
    public string? AnthropicVersion { get; private set; }

    /// <summary>The caller's <c>anthropic-beta</c> flags (comma-separated header values, split, trimmed, de-duplicated, in order).</summary>
    public IReadOnlyList<string> AnthropicBetas { get; private set; } = [];

    /// <summary>
    /// Sets (replaces) the forwarded headers from the caller's <c>anthropic-version</c> value and <c>anthropic-beta</c> values
    /// (each a comma-separated list); a value that is not a plain token is a 400 naming the header.
    /// </summary>
    public void SetHeaders(string? version, IEnumerable<string?> betaValues)
    {
        ArgumentNullException.ThrowIfNull(betaValues);
        version = string.IsNullOrWhiteSpace(version) ? null : version.Trim();
        if (version is not null && !AnthropicHeaders.IsToken(version))
        {
            throw BifrostErrors.InvalidValue($"The '{AnthropicHeaders.Version}' header is not a valid version.", AnthropicHeaders.Version);
        }

        var betas = AnthropicHeaders.SplitBetas(betaValues);
        if (betas.Count > AnthropicHeaders.MaxBetas)
        {
            throw BifrostErrors.InvalidValue($"The '{AnthropicHeaders.Beta}' header may name at most {AnthropicHeaders.MaxBetas} betas; it names {betas.Count}.", AnthropicHeaders.Beta);
        }

        foreach (var beta in betas)
        {
            if (!AnthropicHeaders.IsToken(beta))
            {
                throw BifrostErrors.InvalidValue($"The '{AnthropicHeaders.Beta}' header holds a value that is not a beta name.", AnthropicHeaders.Beta);
            }
        }

        AnthropicVersion = version;
        AnthropicBetas = betas;
    }

    private string? _model;

    /// <summary>The caller's body (a JSON object).</summary>
    public JsonElement Body { get; }

    /// <summary>
    /// The body read as Anthropic's request (unknown fields in its extension data), for the conversion to chat: a body it
    /// cannot read (blocks only Anthropic takes) is a 400.
    /// </summary>
    public AnthropicRequest Parsed
    {
        get
        {
            if (_parsed is null)
            {
                try
                {
                    _parsed = Body.Deserialize(AnthropicJsonContext.Wire.AnthropicRequest)!;
                }
                catch (JsonException ex)
                {
                    throw BifrostErrors.InvalidRequest("invalid_request", $"The request cannot be converted for a provider other than Anthropic: {ex.Message}");
                }

                _parsed.Model = _model;
            }

            return _parsed;
        }
    }

    /// <summary>The model the gateway routes by (<c>provider/model</c>), the body's unless replaced (a batch default).</summary>
    public string? Model
    {
        get => _model;
        set
        {
            _model = value;
            if (_parsed is not null)
            {
                _parsed.Model = value;
            }
        }
    }

    /// <summary>The body's <c>fallbacks</c> (a Bifrost extension): tried in order when the primary fails.</summary>
    public IList<string>? Fallbacks { get; }

    /// <summary>Whether the body asks for a stream.</summary>
    public bool Stream => Body.TryGetProperty("stream"u8, out var stream) && stream.ValueKind == JsonValueKind.True;

    /// <summary>
    /// The body for the provider: every field the caller sent, in its order, but <c>model</c> (the provider's
    /// <paramref name="model"/>), the gateway's own fields, and <c>stream</c> (set to <paramref name="stream"/> when not null).
    /// </summary>
    public byte[] ForProvider(string model, bool? stream) => ForProvider(new NativeBody(model, stream));

    /// <summary>
    /// The body for a provider that hosts Claude behind its own URL (Vertex, Bedrock): every field the caller sent, in its
    /// order, but the gateway's own fields, <c>model</c> unless <see cref="NativeBody.Model"/> names one, <c>stream</c> as
    /// <see cref="NativeBody.Stream"/> says (or none with <see cref="NativeBody.OmitStream"/>), and
    /// <c>anthropic_version</c> / <c>anthropic_beta</c> replaced by the given ones (written last) when given.
    /// </summary>
    public byte[] ForProvider(NativeBody shape)
    {
        using var buffer = new PooledBufferWriter();
        using (var writer = new Utf8JsonWriter(buffer, BifrostJson.WriterOptions))
        {
            writer.WriteStartObject();
            if (shape.Model is { } model)
            {
                writer.WriteString("model"u8, model);
            }

            foreach (var property in Body.EnumerateObject())
            {
                if (GatewayFields.Contains(property.Name, StringComparer.Ordinal)
                    || ((shape.Stream is not null || shape.OmitStream) && property.NameEquals("stream"u8))
                    || (shape.AnthropicVersion is not null && property.NameEquals("anthropic_version"u8))
                    || (shape.Betas is not null && property.NameEquals("anthropic_beta"u8)))
                {
                    continue;
                }

                property.WriteTo(writer);
            }

            if (shape.Stream is { } value && !shape.OmitStream)
            {
                writer.WriteBoolean("stream"u8, value);
            }

            if (shape.MaxTokensWhenMissing is { } maxTokens && !Body.TryGetProperty("max_tokens"u8, out _))
            {
                writer.WriteNumber("max_tokens"u8, maxTokens);
            }

            if (shape.AnthropicVersion is { } version)
            {
                writer.WriteString("anthropic_version"u8, version);
            }

            if (shape.Betas is { Count: > 0 } betas)
            {
                writer.WriteStartArray("anthropic_beta"u8);
                foreach (var beta in betas)
                {
                    writer.WriteStringValue(beta);
                }

                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenMemory.ToArray();
    }

    /// <summary>Writes the request as the caller sent it, with <see cref="Model"/> as its <c>model</c>.</summary>
    internal void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        if (Model is not null)
        {
            writer.WriteString("model"u8, Model);
        }

        foreach (var property in Body.EnumerateObject())
        {
            if (!property.NameEquals("model"u8) && !property.NameEquals(HeadersField))
            {
                property.WriteTo(writer);
            }
        }

        if (AnthropicVersion is not null || AnthropicBetas.Count > 0)
        {
            writer.WriteStartObject(HeadersField);
            if (AnthropicVersion is { } version)
            {
                writer.WriteString(AnthropicHeaders.Version, version);
            }

            if (AnthropicBetas.Count > 0)
            {
                writer.WriteString(AnthropicHeaders.Beta, string.Join(',', AnthropicBetas));
            }

            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }
}

/// <summary>
/// How <see cref="AnthropicMessagesRequest.ForProvider(NativeBody)"/> shapes the body: the <c>model</c> to write (null:
/// none, the URL names it), <c>stream</c> (null: as the caller wrote it), whether to drop <c>stream</c> altogether, the
/// <c>anthropic_version</c> and <c>anthropic_beta</c> body fields of Vertex and Bedrock, and a <c>max_tokens</c> for a body
/// without one (Bedrock's token counting takes a whole InvokeModel body).
/// </summary>
internal readonly record struct NativeBody(string? Model, bool? Stream, bool OmitStream = false, string? AnthropicVersion = null, IReadOnlyList<string>? Betas = null, int? MaxTokensWhenMissing = null);

/// <summary>
/// The Anthropic request headers the <c>/anthropic</c> routes forward on the native path
/// (https://docs.anthropic.com/en/api/versioning, https://docs.anthropic.com/en/api/beta-headers): <c>anthropic-version</c>
/// and <c>anthropic-beta</c>, the only request options Anthropic's API takes as headers. <c>x-api-key</c> and
/// <c>Authorization</c> never are (the gateway's key is used); <c>anthropic-dangerous-direct-browser-access</c> is a
/// browser CORS opt-in, meaningless between the gateway and the provider.
/// </summary>
internal static class AnthropicHeaders
{
    public const string Version = "anthropic-version";

    public const string Beta = "anthropic-beta";

    /// <summary>The most beta flags one request may name.</summary>
    public const int MaxBetas = 64;

    private const int MaxTokenLength = 128;

    /// <summary>Whether a value is a plain token (letters, digits, <c>.</c>, <c>_</c>, <c>-</c>, at most 128 characters): nothing else reaches an upstream header.</summary>
    public static bool IsToken(string value) =>
        value.Length is > 0 and <= MaxTokenLength && value.AsSpan().IndexOfAnyExcept(TokenChars) < 0;

    private static readonly System.Buffers.SearchValues<char> TokenChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

    /// <summary>Comma-separated values → the distinct names, trimmed, in order.</summary>
    public static List<string> SplitBetas(IEnumerable<string?> values)
    {
        var betas = new List<string>();
        foreach (var value in values)
        {
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }

            foreach (var beta in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!betas.Contains(beta, StringComparer.Ordinal))
                {
                    betas.Add(beta);
                }
            }
        }

        return betas;
    }

    /// <summary>The provider's configured <c>anthropic-beta</c> (its <c>Headers</c>) then the caller's, de-duplicated.</summary>
    public static List<string> Merge(ProviderOptions options, IReadOnlyList<string> requested)
    {
        var configured = options.Headers.TryGetValue(Beta, out var header) ? header : null;
        return SplitBetas([configured, .. requested]);
    }
}

/// <summary>Reads and writes <see cref="AnthropicMessagesRequest"/> as its JSON object.</summary>
internal sealed class AnthropicMessagesRequestConverter : JsonConverter<AnthropicMessagesRequest>
{
    public override AnthropicMessagesRequest? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        new(JsonElement.ParseValue(ref reader));

    public override void Write(Utf8JsonWriter writer, AnthropicMessagesRequest value, JsonSerializerOptions options) => value.WriteTo(writer);
}

/// <summary>
/// A Messages answer: Anthropic's message as JSON (the provider's own object on the native path, the converted answer
/// otherwise), with the gateway's <c>extra_fields</c> kept beside it (not written: Anthropic's shape has none) and its usage.
/// </summary>
[JsonConverter(typeof(AnthropicMessagesResponseConverter))]
internal sealed class AnthropicMessagesResponse(JsonElement message) : IOperationAnswer
{
    /// <summary>The message object.</summary>
    public JsonElement Message { get; } = message;

    /// <summary>The gateway's metadata of the call (provider, latency, cost), for telemetry, governance and the request log.</summary>
    [JsonIgnore]
    public BifrostExtraFields? ExtraFields { get; set; }

    /// <summary>The message's <c>id</c>.</summary>
    public string? Id => Message.ValueKind == JsonValueKind.Object && Message.TryGetProperty("id"u8, out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;

    /// <summary>The message's <c>usage</c> as token counts (input with cache reads and writes, as the gateway counts).</summary>
    public TokenCounts? Tokens => Message.ValueKind == JsonValueKind.Object && Message.TryGetProperty("usage"u8, out var usage) ? AnthropicUsageCounts.Of(usage, default) : null;

    public static AnthropicMessagesResponse From(AnthropicResponse response) =>
        new(JsonSerializer.SerializeToElement(response, AnthropicJsonContext.Wire.AnthropicResponse));
}

/// <summary>Reads and writes <see cref="AnthropicMessagesResponse"/> as its message object.</summary>
internal sealed class AnthropicMessagesResponseConverter : JsonConverter<AnthropicMessagesResponse>
{
    public override AnthropicMessagesResponse? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        new(JsonElement.ParseValue(ref reader));

    public override void Write(Utf8JsonWriter writer, AnthropicMessagesResponse value, JsonSerializerOptions options) => value.Message.WriteTo(writer);
}

/// <summary>
/// One event of a Messages stream: its <c>event:</c> name and <c>data:</c> object (the provider's own bytes on the native
/// path), the gateway's <c>extra_fields</c> beside it, and on <c>message_delta</c> the usage of the whole answer.
/// </summary>
internal sealed class AnthropicMessagesEvent(string type, JsonElement data)
{
    public string Type { get; } = type;

    public JsonElement Data { get; } = data;

    [JsonIgnore]
    public BifrostExtraFields? ExtraFields { get; set; }

    /// <summary>The answer's usage, on the event that closes it (<c>message_delta</c>): input from <c>message_start</c>, output from it.</summary>
    [JsonIgnore]
    public TokenCounts? Tokens { get; init; }

    public static AnthropicMessagesEvent From(AnthropicStreamEvent item, TokenCounts? tokens = null) =>
        new(item.Type!, JsonSerializer.SerializeToElement(item, AnthropicJsonContext.Wire.AnthropicStreamEvent)) { Tokens = tokens };
}

/// <summary>A <c>count_tokens</c> answer: <c>{"input_tokens": n}</c>, with the gateway's <c>extra_fields</c> beside it.</summary>
internal sealed class AnthropicCountTokensAnswer : IOperationAnswer
{
    public int InputTokens { get; set; }

    [JsonIgnore]
    public BifrostExtraFields? ExtraFields { get; set; }

    string? IOperationAnswer.Id => null;

    TokenCounts? IOperationAnswer.Tokens => null;
}

/// <summary>Anthropic's usage (input without the cache, cache reads and writes apart) → the gateway's token counts.</summary>
internal static class AnthropicUsageCounts
{
    /// <summary>
    /// The counts of <paramref name="usage"/>; a value it lacks is taken from <paramref name="start"/> (the
    /// <c>message_start</c> usage of a stream, whose <c>message_delta</c> may carry the output tokens alone).
    /// </summary>
    public static TokenCounts? Of(JsonElement usage, JsonElement start)
    {
        if (usage.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var input = Number(usage, start, "input_tokens"u8);
        var written = Number(usage, start, "cache_creation_input_tokens"u8);
        var read = Number(usage, start, "cache_read_input_tokens"u8);
        return new TokenCounts(input + written + read, Number(usage, default, "output_tokens"u8), read, written);
    }

    private static long Number(JsonElement usage, JsonElement start, ReadOnlySpan<byte> name) =>
        usage.TryGetProperty(name, out var value) && value.TryGetInt64(out var number) ? number
        : start.ValueKind == JsonValueKind.Object && start.TryGetProperty(name, out var first) && first.TryGetInt64(out var early) ? early
        : 0;
}
