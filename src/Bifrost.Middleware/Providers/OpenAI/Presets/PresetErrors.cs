using System.Text;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.OpenAI.Presets;

/// <summary>
/// The error answers of the presets' servers that are not OpenAI's <c>{"error":{...}}</c>, as the gateway's error shape with
/// the provider's message kept:
/// <list type="bullet">
/// <item>FastAPI/Pydantic validation errors — <c>{"detail":[{"type":"extra_forbidden","loc":["body","foo"],"msg":"Extra inputs
/// are not permitted"}]}</c> (Mistral's 422, vLLM's request validation; https://fastapi.tiangolo.com/tutorial/handling-errors/),
/// also nested as Mistral's <c>{"object":"error","message":{"detail":[...]},"type":"invalid_request_error"}</c>: the message
/// lists each <c>loc: msg</c>, <c>code</c> is the first entry's type and <c>param</c> the field it names; and
/// <c>{"detail":"..."}</c>;</item>
/// <item>the flat error object of vLLM and Mistral, <c>{"object":"error","message":"...","type":"BadRequestError","param":null,
/// "code":400}</c> (https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html): a type that is an exception class
/// name (not OpenAI's snake_case) becomes the status's type and is kept as <c>code</c>; a numeric code is the status.</item>
/// </list>
/// A validation failure (422) is a 400 <c>invalid_request_error</c>: the gateway's callers see OpenAI's status for a request the
/// provider refused. Anything else is read as OpenAI's error object (<see cref="UpstreamHttp.FromErrorObject"/>).
/// </summary>
internal static class PresetErrors
{
    public static BifrostException Parse(UpstreamError answer)
    {
        var status = answer.Status == 422 ? 400 : answer.Status;
        try
        {
            using var document = JsonDocument.Parse(answer.Text);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object && !root.TryGetProperty("error", out _))
            {
                if (root.TryGetProperty("detail", out var detail) && Detail(detail, status, answer.RetryAfter) is { } fromDetail)
                {
                    return fromDetail;
                }

                if (root.TryGetProperty("message", out var message))
                {
                    if (message.ValueKind == JsonValueKind.Object && message.TryGetProperty("detail", out var nested) && Detail(nested, status, answer.RetryAfter) is { } fromNested)
                    {
                        return fromNested;
                    }

                    if (message.ValueKind == JsonValueKind.String)
                    {
                        var type = Text(root, "type");
                        var code = Text(root, "code");
                        if (type is not null && !IsSnakeCase(type))
                        {
                            code = type; // an exception class name (vLLM's BadRequestError): kept as the code
                            type = null;
                        }

                        return BifrostErrors.ProviderError(status, type, code, message.GetString()!, Text(root, "param"), answer.RetryAfter);
                    }
                }
            }
        }
        catch (JsonException)
        {
            // not JSON: read below as OpenAI's parser reads any body
        }

        return UpstreamHttp.FromErrorObject(answer with { Status = status });
    }

    private static BifrostException? Detail(JsonElement detail, int status, TimeSpan? retryAfter)
    {
        if (detail.ValueKind == JsonValueKind.String)
        {
            return BifrostErrors.ProviderError(status, null, null, detail.GetString()!, null, retryAfter);
        }

        if (detail.ValueKind != JsonValueKind.Array || detail.GetArrayLength() == 0)
        {
            return null;
        }

        var message = new StringBuilder();
        string? code = null, param = null;
        foreach (var entry in detail.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.Object)
            {
                continue;
            }

            var location = entry.TryGetProperty("loc", out var loc) && loc.ValueKind == JsonValueKind.Array
                ? string.Join('.', loc.EnumerateArray().Select(p => p.ValueKind == JsonValueKind.String ? p.GetString() : p.GetRawText()))
                : null;
            if (message.Length > 0)
            {
                message.Append("; ");
            }

            message.Append(location is { Length: > 0 } ? location + ": " : string.Empty).Append(Text(entry, "msg") ?? "invalid");
            if (code is null)
            {
                code = Text(entry, "type");
                param = loc.ValueKind == JsonValueKind.Array ? Param(loc) : null;
            }
        }

        return message.Length == 0 ? null : BifrostErrors.ProviderError(status, null, code, message.ToString(), param, retryAfter);
    }

    /// <summary>The field a FastAPI location names: the path after <c>body</c> (<c>["body","messages",0,"role"]</c> → <c>messages.0.role</c>).</summary>
    private static string? Param(JsonElement loc)
    {
        var parts = loc.EnumerateArray().Select(p => p.ValueKind == JsonValueKind.String ? p.GetString()! : p.GetRawText()).ToList();
        if (parts.Count > 0 && parts[0] is "body" or "query")
        {
            parts.RemoveAt(0);
        }

        return parts.Count == 0 ? null : string.Join('.', parts);
    }

    private static bool IsSnakeCase(string type) => type.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_');

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value)
            ? value.ValueKind switch
            {
                JsonValueKind.String => value.GetString(),
                JsonValueKind.Number => value.GetRawText(),
                _ => null,
            }
            : null;
}
