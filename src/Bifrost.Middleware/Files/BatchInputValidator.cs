using System.Text;
using System.Text.Json;

namespace Bifrost.Middleware.Files;

/// <summary>
/// Checks a batch input file line by line, streaming (one line in memory at a time): valid JSON object,
/// unique string <c>custom_id</c>, <c>method</c> POST, a supported <c>url</c>, an object <c>body</c>.
/// Lines may name different models (per-line routing, a Bifrost extension of OpenAI's one-model rule).
/// </summary>
internal static class BatchInputValidator
{
    internal static readonly string[] SupportedUrls = ["/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses"];
    private const int MaxReported = 10;

    public sealed record Result(int Lines, IReadOnlyList<(int Line, string Message)> Errors, IReadOnlySet<string> Urls)
    {
        /// <summary>The distinct <c>body.model</c> values (an empty string for lines without one), up to 256 of them.</summary>
        public IReadOnlySet<string> Models { get; init; } = new HashSet<string>();
    }

    public static async Task<Result> ValidateAsync(Stream content, int maxLines, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(content, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536, leaveOpen: true);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var urls = new HashSet<string>(StringComparer.Ordinal);
        var models = new HashSet<string>(StringComparer.Ordinal);
        var errors = new List<(int, string)>();
        var lineNumber = 0;
        var requests = 0;
        string? line;
        while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            requests++;
            if (requests > maxLines)
            {
                errors.Add((lineNumber, $"the file has more than {maxLines} requests"));
                break;
            }

            var error = ValidateLine(line, ids, urls, models);
            if (error is not null && errors.Count < MaxReported)
            {
                errors.Add((lineNumber, error));
            }
        }

        if (requests == 0 && errors.Count == 0)
        {
            errors.Add((0, "the file has no requests"));
        }

        return new Result(requests, errors, urls) { Models = models };
    }

    private static string? ValidateLine(string line, HashSet<string> ids, HashSet<string> urls, HashSet<string> models)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return "not a JSON object";
            }

            if (!root.TryGetProperty("custom_id", out var id) || id.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(id.GetString()))
            {
                return "'custom_id' must be a non-empty string";
            }

            if (!ids.Add(id.GetString()!))
            {
                return $"duplicate custom_id '{id.GetString()}'";
            }

            if (!root.TryGetProperty("method", out var method) || method.ValueKind != JsonValueKind.String || !string.Equals(method.GetString(), "POST", StringComparison.OrdinalIgnoreCase))
            {
                return "'method' must be \"POST\"";
            }

            if (!root.TryGetProperty("url", out var url) || url.ValueKind != JsonValueKind.String || Array.IndexOf(SupportedUrls, url.GetString()) < 0)
            {
                return $"'url' must be one of: {string.Join(", ", SupportedUrls)}";
            }

            urls.Add(url.GetString()!);
            if (!root.TryGetProperty("body", out var body) || body.ValueKind != JsonValueKind.Object)
            {
                return "'body' must be a JSON object";
            }

            if (models.Count < 256)
            {
                models.Add(body.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String ? model.GetString()! : string.Empty);
            }

            return null;
        }
        catch (JsonException ex)
        {
            return $"invalid JSON ({ex.Message})";
        }
    }
}
