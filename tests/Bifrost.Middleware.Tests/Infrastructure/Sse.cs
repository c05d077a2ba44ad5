using System.Text.Json;

namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>Reads a complete server-sent-events body into its <c>data:</c> payloads, checking the framing as it goes.</summary>
public static class Sse
{
    public const string Done = "[DONE]";

    public static IReadOnlyList<string> ParseData(string body)
    {
        Assert.EndsWith("\n\n", body, StringComparison.Ordinal);
        var events = new List<string>();
        foreach (var block in body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.StartsWith("data: ", block, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', block);
            events.Add(block["data: ".Length..]);
        }

        return events;
    }

    public static JsonElement Json(string data)
    {
        using var document = JsonDocument.Parse(data);
        return document.RootElement.Clone();
    }
}
