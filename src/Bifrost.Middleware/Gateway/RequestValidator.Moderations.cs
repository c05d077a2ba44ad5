using System.Text;

namespace Bifrost.Middleware.Gateway;

/// <summary>Moderations requests (issue 17, J).</summary>
internal static partial class RequestValidator
{
    /// <summary>A moderations request: <c>input</c> is a string, a non-empty array of strings, or a non-empty array of text/image parts.</summary>
    public static void Validate(ModerationRequest request)
    {
        ModerationInput.Read(request.Input);
        Fallbacks(request.Fallbacks);
    }
}

/// <summary>One classified unit of a moderations input: its text and whether it holds images.</summary>
internal readonly record struct ModerationItem(string Text, int Images);

/// <summary>Reads (and checks) a moderations <c>input</c>.</summary>
internal static class ModerationInput
{
    /// <summary>The units of the input: one per string, or one for a multimodal array. Throws the 400 of a malformed input.</summary>
    public static IReadOnlyList<ModerationItem> Read(JsonElement? input)
    {
        if (input is not { } element || element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            throw BifrostErrors.MissingParameter("'input' is required.", "input");
        }

        if (element.ValueKind == JsonValueKind.String)
        {
            return [new ModerationItem(element.GetString()!, 0)];
        }

        if (element.ValueKind != JsonValueKind.Array)
        {
            throw BifrostErrors.InvalidType("'input' must be a string, an array of strings or an array of text and image_url parts.", "input");
        }

        var count = element.GetArrayLength();
        if (count == 0)
        {
            throw BifrostErrors.InvalidValue("'input' must not be an empty array.", "input");
        }

        if (count > RequestValidator.MaxInputItems)
        {
            throw BifrostErrors.InvalidValue($"'input' may hold at most {RequestValidator.MaxInputItems} items; it holds {count}.", "input");
        }

        var first = element[0].ValueKind;
        if (first == JsonValueKind.String)
        {
            var items = new List<ModerationItem>(count);
            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String)
                {
                    throw BifrostErrors.InvalidType($"'input[{i}]' must be a string like the other items.", $"input[{i}]");
                }

                items.Add(new ModerationItem(item.GetString()!, 0));
                i++;
            }

            return items;
        }

        var text = new StringBuilder();
        var images = 0;
        var index = 0;
        foreach (var part in element.EnumerateArray())
        {
            var param = $"input[{index++}]";
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String)
            {
                throw BifrostErrors.InvalidType($"'{param}' must be a part object with a 'type' (\"text\" or \"image_url\").", param);
            }

            if (type.ValueEquals("text"u8))
            {
                if (!part.TryGetProperty("text"u8, out var value) || value.ValueKind != JsonValueKind.String)
                {
                    throw BifrostErrors.InvalidType($"'{param}.text' must be a string.", param + ".text");
                }

                text.Append(text.Length == 0 ? string.Empty : " ").Append(value.GetString());
            }
            else if (type.ValueEquals("image_url"u8))
            {
                if (!part.TryGetProperty("image_url"u8, out var image) || image.ValueKind != JsonValueKind.Object
                    || !image.TryGetProperty("url"u8, out var url) || url.ValueKind != JsonValueKind.String)
                {
                    throw BifrostErrors.InvalidType($"'{param}.image_url.url' must be a string.", param + ".image_url.url");
                }

                images++;
            }
            else
            {
                throw BifrostErrors.InvalidValue($"'{param}.type' must be \"text\" or \"image_url\".", param + ".type");
            }
        }

        return [new ModerationItem(text.ToString(), images)];
    }
}
