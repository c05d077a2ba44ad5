using System.Text.Json;
using System.Text.Json.Serialization;
using Bifrost.Middleware.Serialization;

namespace Bifrost.Middleware;

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

/// <summary>Reads message content as a string or an array of parts and writes it back in the same form.</summary>
internal sealed class ChatMessageContentConverter : JsonConverter<ChatMessageContent>
{
    public override ChatMessageContent? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return new ChatMessageContent(reader.GetString()!);
            case JsonTokenType.StartArray:
                var parts = new List<ChatContentPart>();
                var typeInfo = BifrostJsonContext.Default.ChatContentPart;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        throw new JsonException("Each content part must be an object.");
                    }

                    parts.Add(JsonSerializer.Deserialize(ref reader, typeInfo)!);
                }

                return new ChatMessageContent(parts);
            default:
                throw new JsonException("Message content must be a string or an array of content parts.");
        }
    }

    public override void Write(Utf8JsonWriter writer, ChatMessageContent value, JsonSerializerOptions options)
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
