using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Providers.Azure;

/// <summary>
/// What Azure's batch API needs beyond OpenAI's (https://learn.microsoft.com/azure/ai-foundry/openai/how-to/batch): each
/// input line's <c>body.model</c> is the name of a Global Batch <b>deployment</b> (mapped through
/// <see cref="ProviderOptions.Deployments"/>); on a dated <c>api-version</c> the batch's <c>endpoint</c> and each line's
/// <c>url</c> are spelled without <c>/v1</c> (<c>/chat/completions</c>, as the how-to's REST samples), while the v1 API
/// takes OpenAI's <c>/v1/chat/completions</c> (https://learn.microsoft.com/azure/foundry/reference/rest/batches-create-batch).
/// Azure's answers on older dated versions carry ISO 8601 times (<c>"created_at": "2024-07-19T17:13:57.2491382+00:00"</c>),
/// capitalized statuses (<c>"Validating"</c>) and null counts; they are read as OpenAI's unix seconds, lower case and 0.
/// </summary>
internal static class AzureBatches
{
    /// <summary>The batch's endpoint as the provider's API version spells it.</summary>
    public static string Endpoint(ProviderOptions options, string endpoint) =>
        AzureOpenAI.IsV1(options) ? endpoint : WithoutV1(endpoint);

    /// <summary>
    /// A temporary copy of the input in which each line's model is its deployment (and, on a dated version, its url has
    /// no <c>/v1</c>). A line that is not a JSON object is copied as it is (Azure reports it in the error file).
    /// </summary>
    public static async Task<Stream> RewriteInputAsync(ProviderOptions options, Stream input, CancellationToken cancellationToken)
    {
        var v1 = AzureOpenAI.IsV1(options);
        var temp = TempFiles.Create();
        try
        {
            using var reader = new StreamReader(input, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536, leaveOpen: true);
            var newline = "\n"u8.ToArray();
            string? line;
            while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                await temp.WriteAsync(Rewrite(options, v1, line), cancellationToken).ConfigureAwait(false);
                await temp.WriteAsync(newline, cancellationToken).ConfigureAwait(false);
            }

            temp.Position = 0;
            return temp;
        }
        catch
        {
            await temp.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Azure's batch object as OpenAI's: times as unix seconds, the status in lower case, null counts as 0.</summary>
    public static BatchObject Read(JsonNode? node)
    {
        if (node is not JsonObject batch)
        {
            throw new JsonException("The batch is not a JSON object.");
        }

        foreach (var (name, value) in batch.ToList())
        {
            if (name.EndsWith("_at", StringComparison.Ordinal) && value is JsonValue text && text.TryGetValue<string>(out var time))
            {
                batch[name] = DateTimeOffset.TryParse(time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                    ? parsed.ToUnixTimeSeconds()
                    : null;
            }
        }

        if (batch["status"] is JsonValue status && status.TryGetValue<string>(out var s))
        {
            batch["status"] = s.ToLowerInvariant();
        }

        if (batch["request_counts"] is JsonObject counts)
        {
            foreach (var (name, value) in counts.ToList())
            {
                if (value is null)
                {
                    counts.Remove(name);
                }
            }
        }
        else
        {
            batch.Remove("request_counts");
        }

        if (batch["created_at"] is null)
        {
            batch.Remove("created_at");
        }

        return batch.Deserialize(BifrostJson.Context.BatchObject) ?? throw new JsonException("The batch is null.");
    }

    private static byte[] Rewrite(ProviderOptions options, bool v1, string line)
    {
        JsonObject? node;
        try
        {
            node = JsonNode.Parse(line) as JsonObject;
        }
        catch (JsonException)
        {
            node = null;
        }

        if (node is null)
        {
            return Encoding.UTF8.GetBytes(line);
        }

        if (node["body"] is JsonObject body && body["model"] is JsonValue model && model.TryGetValue<string>(out var name)
            && options.Deployments.TryGetValue(name, out var deployment) && !string.IsNullOrWhiteSpace(deployment))
        {
            body["model"] = deployment;
        }

        if (!v1 && node["url"] is JsonValue url && url.TryGetValue<string>(out var path))
        {
            node["url"] = WithoutV1(path);
        }

        return JsonSerializer.SerializeToUtf8Bytes(node, BifrostJson.Context.JsonNode);
    }

    private static string WithoutV1(string endpoint) =>
        endpoint.StartsWith("/v1/", StringComparison.Ordinal) ? endpoint[3..] : endpoint;
}
