using System.Buffers;
using System.IO.Pipelines;

namespace Bifrost.Middleware.Files;

/// <summary>
/// Checks a batch input file line by line, streaming (one line in memory at a time): valid JSON object,
/// unique string <c>custom_id</c>, <c>method</c> POST, a supported <c>url</c>, an object <c>body</c>.
/// Lines may name different models (per-line routing, a Bifrost extension of OpenAI's one-model rule).
/// </summary>
internal static class BatchInputValidator
{
    private const int MaxReported = 10;

    public sealed record Result(int Lines, IReadOnlyList<(int Line, string Message)> Errors, IReadOnlySet<string> Urls)
    {
        /// <summary>The distinct <c>body.model</c> values (an empty string for lines without one), up to 256 of them.</summary>
        public IReadOnlySet<string> Models { get; init; } = new HashSet<string>();
    }

    public static async Task<Result> ValidateAsync(Stream content, int maxLines, IReadOnlyList<string> supportedUrls, CancellationToken cancellationToken)
    {
        // Lines are split on the raw bytes (\n, \r\n or \r, as StreamReader.ReadLine splits them when the batch runs), so
        // each line is checked against the gateway's JSON text rule (valid UTF-8, valid UTF-16 escapes) before it is parsed.
        var reader = PipeReader.Create(content, new StreamPipeReaderOptions(bufferSize: 65536, leaveOpen: true));
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var urls = new HashSet<string>(StringComparer.Ordinal);
        var models = new HashSet<string>(StringComparer.Ordinal);
        var errors = new List<(int, string)>();
        var lineNumber = 0;
        var requests = 0;
        var stop = false;

        bool Line(ReadOnlySequence<byte> sequence)
        {
            lineNumber++;
            byte[]? rented = null;
            var line = sequence.IsSingleSegment ? sequence.FirstSpan : (rented = ArrayPool<byte>.Shared.Rent((int)sequence.Length)).AsSpan(0, (int)sequence.Length);
            try
            {
                if (rented is not null)
                {
                    sequence.CopyTo(rented);
                }

                if (lineNumber == 1 && line.StartsWith(Utf8Bom))
                {
                    line = line[Utf8Bom.Length..];
                }

                if (line.Trim(" \t\f\v"u8).IsEmpty)
                {
                    return true;
                }

                requests++;
                if (requests > maxLines)
                {
                    errors.Add((lineNumber, $"the file has more than {maxLines} requests"));
                    return false;
                }

                var error = ValidateLine(line, ids, urls, models, supportedUrls);
                if (error is not null && errors.Count < MaxReported)
                {
                    errors.Add((lineNumber, error));
                }

                return true;
            }
            finally
            {
                if (rented is not null)
                {
                    ArrayPool<byte>.Shared.Return(rented);
                }
            }
        }

        try
        {
            while (!stop)
            {
                var read = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var buffer = read.Buffer;
                while (!stop && TryReadLine(ref buffer, read.IsCompleted, out var line))
                {
                    stop = !Line(line);
                }

                if (read.IsCompleted)
                {
                    if (!stop && !buffer.IsEmpty)
                    {
                        Line(buffer);
                    }

                    break;
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }

        if (requests == 0 && errors.Count == 0)
        {
            errors.Add((0, "the file has no requests"));
        }

        return new Result(requests, errors, urls) { Models = models };
    }

    private static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    /// <summary>The next line (without its terminator) when the buffer holds a whole one.</summary>
    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, bool completed, out ReadOnlySequence<byte> line)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadToAny(out line, "\r\n"u8, advancePastDelimiter: false))
        {
            return false;
        }

        reader.TryRead(out var terminator);
        if (terminator == (byte)'\r')
        {
            if (reader.End && !completed)
            {
                return false; // a \r\n may be split across reads
            }

            reader.IsNext((byte)'\n', advancePast: true);
        }

        buffer = buffer.Slice(reader.Position);
        return true;
    }

    private static string? ValidateLine(ReadOnlySpan<byte> line, HashSet<string> ids, HashSet<string> urls, HashSet<string> models, IReadOnlyList<string> supportedUrls)
    {
        if (JsonUnicode.Check(line) is { } problem)
        {
            return problem.Message;
        }

        try
        {
            var reader = new Utf8JsonReader(line);
            using var document = JsonDocument.ParseValue(ref reader);
            if (reader.Read())
            {
                return "more than one JSON value";
            }

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

            if (!root.TryGetProperty("url", out var url) || url.ValueKind != JsonValueKind.String || !supportedUrls.Contains(url.GetString()))
            {
                return $"'url' must be one of: {string.Join(", ", supportedUrls)}";
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
