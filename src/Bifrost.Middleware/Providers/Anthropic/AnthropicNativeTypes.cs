using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Providers.Anthropic;

// Anthropic native passthrough (the /anthropic inbound routes): the caller's Messages body and Anthropic's answers kept
// as JSON, so every field (cache_control, thinking, mcp_servers, container, fields added later) reaches the provider and
// comes back unchanged when the route resolves to an Anthropic provider.

/// <summary>
/// A Messages (or <c>count_tokens</c>) request as the caller sent it: the raw body, the parsed form (for validation and
/// for the conversion to chat when another provider serves it), and the model and fallbacks the gateway routes by.
/// Serialized (async jobs, the request log) as the body with <see cref="Model"/> written back.
/// </summary>
[JsonConverter(typeof(AnthropicMessagesRequestConverter))]
internal sealed class AnthropicMessagesRequest
{
    /// <summary>The request fields that are the gateway's own: never sent to the provider.</summary>
    private static readonly string[] GatewayFields = ["model", "fallbacks"];

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
    public byte[] ForProvider(string model, bool? stream)
    {
        using var buffer = new PooledBufferWriter();
        using (var writer = new Utf8JsonWriter(buffer, BifrostJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("model"u8, model);
            foreach (var property in Body.EnumerateObject())
            {
                if (GatewayFields.Contains(property.Name, StringComparer.Ordinal) || (stream is not null && property.NameEquals("stream"u8)))
                {
                    continue;
                }

                property.WriteTo(writer);
            }

            if (stream is { } value)
            {
                writer.WriteBoolean("stream"u8, value);
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
            if (!property.NameEquals("model"u8))
            {
                property.WriteTo(writer);
            }
        }

        writer.WriteEndObject();
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
