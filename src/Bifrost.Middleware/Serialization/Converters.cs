namespace Bifrost.Middleware.Serialization;

/// <summary>Reads <c>"x"</c> or <c>["x", "y"]</c> as a list; writes a single item back as a string so the provider sees what the caller sent.</summary>
internal sealed class StringOrArrayConverter : JsonConverter<IList<string>>
{
    public override IList<string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return new SingleStringList(reader.GetString()!);
            case JsonTokenType.StartArray:
                var list = new List<string>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        throw new JsonException("Expected a string or an array of strings.");
                    }

                    list.Add(reader.GetString()!);
                }

                return list;
            default:
                throw new JsonException("Expected a string or an array of strings.");
        }
    }

    public override void Write(Utf8JsonWriter writer, IList<string> value, JsonSerializerOptions options)
    {
        if (value is SingleStringList single)
        {
            writer.WriteStringValue(single[0]);
            return;
        }

        writer.WriteStartArray();
        foreach (var item in value)
        {
            writer.WriteStringValue(item);
        }

        writer.WriteEndArray();
    }

    private sealed class SingleStringList(string value) : List<string>([value]);
}

/// <summary>
/// Reads a request's <c>metadata</c>: an object of strings, where a number or a boolean is taken as its JSON text
/// (<c>{"local_status": 503}</c> reads as <c>"503"</c>, as <c>{"local_status": "503"}</c>), so scripting by hand-written
/// JSON needs no quotes; it is written back as strings, the form OpenAI-compatible providers accept. Objects and arrays
/// as values are refused (a 400 naming the field).
/// </summary>
internal sealed class StringMetadataConverter : JsonConverter<IDictionary<string, string>>
{
    public override IDictionary<string, string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("Expected an object of strings.");
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var key = reader.GetString()!;
            reader.Read();
            metadata[key] = reader.TokenType switch
            {
                JsonTokenType.String => reader.GetString()!,
                JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.HasValueSequence ? System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence) : reader.ValueSpan),
                JsonTokenType.True => "true",
                JsonTokenType.False => "false",
                JsonTokenType.Null => null!,
                _ => throw new JsonException($"Metadata value '{key}' must be a string (or a number or boolean, read as its text)."),
            };
        }

        return metadata;
    }

    public override void Write(Utf8JsonWriter writer, IDictionary<string, string> value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        foreach (var (key, item) in value)
        {
            if (item is null)
            {
                writer.WriteNull(key);
            }
            else
            {
                writer.WriteString(key, item);
            }
        }

        writer.WriteEndObject();
    }
}

/// <summary>Reads message content as a string or an array of parts and writes it back in the same form.</summary>
internal sealed class ChatCompletionContentConverter : JsonConverter<ChatCompletionContent>
{
    public override ChatCompletionContent? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return new ChatCompletionContent(reader.GetString()!);
            case JsonTokenType.StartArray:
                var parts = new List<ChatContentPart>();
                var typeInfo = BifrostJsonContext.Default.ChatContentPart;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType == JsonTokenType.Null)
                    {
                        parts.Add(null!); // refused by the request validation, which names the part (messages[i].content[j])
                        continue;
                    }

                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        throw new JsonException("Each content part must be an object.");
                    }

                    parts.Add(JsonSerializer.Deserialize(ref reader, typeInfo)!);
                }

                return new ChatCompletionContent(parts);
            default:
                throw new JsonException("Message content must be a string or an array of content parts.");
        }
    }

    public override void Write(Utf8JsonWriter writer, ChatCompletionContent value, JsonSerializerOptions options)
    {
        if (value.Text is not null)
        {
            writer.WriteStringValue(value.Text);
            return;
        }

        writer.WriteStartArray();
        var typeInfo = BifrostJsonContext.Default.ChatContentPart;
        foreach (var part in value.Parts!)
        {
            JsonSerializer.Serialize(writer, part, typeInfo);
        }

        writer.WriteEndArray();
    }
}

/// <summary>Reads an embedding as an array of numbers or a base64 string and writes it in the form it holds.</summary>
internal sealed class EmbeddingVectorConverter : JsonConverter<EmbeddingVector>
{
    public override EmbeddingVector? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return new EmbeddingVector(reader.GetString()!);
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("An embedding must be an array of numbers or a base64 string.");
        }

        var values = new List<float>(1536);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetSingle(out var value))
            {
                throw new JsonException("An embedding must be an array of numbers or a base64 string.");
            }

            values.Add(value);
        }

        return new EmbeddingVector([.. values]);
    }

    public override void Write(Utf8JsonWriter writer, EmbeddingVector value, JsonSerializerOptions options)
    {
        if (value.IsBase64)
        {
            writer.WriteStringValue(value.ToBase64());
            return;
        }

        writer.WriteStartArray();
        foreach (var item in value.ToFloats())
        {
            writer.WriteNumberValue(item);
        }

        writer.WriteEndArray();
    }
}

/// <summary>Reads a string, string array, token array or array of token arrays; writes the same form back.</summary>
internal sealed class TextInputConverter : JsonConverter<TextInput>
{
    public override TextInput? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return new TextInput([reader.GetString()!], single: true);
            case JsonTokenType.StartArray:
                break;
            default:
                throw new JsonException("Expected a string, an array of strings, an array of token ids or an array of token-id arrays.");
        }

        if (!reader.Read())
        {
            throw new JsonException("Unterminated array.");
        }

        if (reader.TokenType == JsonTokenType.EndArray)
        {
            return new TextInput(new List<string>());
        }

        if (reader.TokenType == JsonTokenType.String)
        {
            var texts = new List<string>();
            do
            {
                if (reader.TokenType != JsonTokenType.String)
                {
                    throw new JsonException("An array of strings must hold only strings.");
                }

                texts.Add(reader.GetString()!);
            }
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray);
            return new TextInput(texts);
        }

        if (reader.TokenType == JsonTokenType.Number)
        {
            var tokens = new List<int>();
            do
            {
                tokens.Add(TokenId(ref reader));
            }
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray);
            return new TextInput(new List<int[]> { tokens.ToArray() }, single: true);
        }

        var arrays = new List<int[]>();
        do
        {
            if (reader.TokenType != JsonTokenType.StartArray)
            {
                throw new JsonException("Expected an array of token-id arrays.");
            }

            var tokens = new List<int>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                tokens.Add(TokenId(ref reader));
            }

            arrays.Add([.. tokens]);
        }
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray);
        return new TextInput(arrays);
    }

    /// <summary>A token id: an integer that fits an int (a string, a nested array, 1.5 or 1e20 is not one).</summary>
    private static int TokenId(ref Utf8JsonReader reader) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var token)
            ? token
            : throw new JsonException("A token array must hold only integer token ids.");

    public override void Write(Utf8JsonWriter writer, TextInput value, JsonSerializerOptions options)
    {
        if (value.Texts is { } texts)
        {
            if (value.IsSingle && texts.Count == 1)
            {
                writer.WriteStringValue(texts[0]);
                return;
            }

            writer.WriteStartArray();
            foreach (var text in texts)
            {
                writer.WriteStringValue(text);
            }

            writer.WriteEndArray();
            return;
        }

        var arrays = value.Tokens!;
        if (!value.IsSingle || arrays.Count != 1)
        {
            writer.WriteStartArray();
        }

        foreach (var tokens in arrays)
        {
            writer.WriteStartArray();
            foreach (var token in tokens)
            {
                writer.WriteNumberValue(token);
            }

            writer.WriteEndArray();
        }

        if (!value.IsSingle || arrays.Count != 1)
        {
            writer.WriteEndArray();
        }
    }
}

/// <summary>Reads Responses input as a string or an item list; writes the same form back.</summary>
internal sealed class ResponsesInputConverter : JsonConverter<ResponsesInput>
{
    public override ResponsesInput? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Null => null,
        JsonTokenType.String => new ResponsesInput(reader.GetString()!),
        JsonTokenType.StartArray => new ResponsesInput(JsonSerializer.Deserialize(ref reader, BifrostJsonContext.Default.IListResponsesItem) ?? []),
        _ => throw new JsonException("'input' must be a string or an array of items."),
    };

    public override void Write(Utf8JsonWriter writer, ResponsesInput value, JsonSerializerOptions options)
    {
        if (value.Text is not null)
        {
            writer.WriteStringValue(value.Text);
            return;
        }

        JsonSerializer.Serialize(writer, value.Items!, BifrostJsonContext.Default.IListResponsesItem);
    }
}

/// <summary>Reads message content as a string or a part list; writes the same form back.</summary>
internal sealed class ResponsesContentConverter : JsonConverter<ResponsesContent>
{
    public override ResponsesContent? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Null => null,
        JsonTokenType.String => new ResponsesContent(reader.GetString()!),
        JsonTokenType.StartArray => new ResponsesContent(JsonSerializer.Deserialize(ref reader, BifrostJsonContext.Default.IListResponsesContentPart) ?? []),
        _ => throw new JsonException("'content' must be a string or an array of content parts."),
    };

    public override void Write(Utf8JsonWriter writer, ResponsesContent value, JsonSerializerOptions options)
    {
        if (value.Text is not null)
        {
            writer.WriteStringValue(value.Text);
            return;
        }

        JsonSerializer.Serialize(writer, value.Parts!, BifrostJsonContext.Default.IListResponsesContentPart);
    }
}
