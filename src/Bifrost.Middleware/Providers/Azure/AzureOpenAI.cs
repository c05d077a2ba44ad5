using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Azure;

/// <summary>
/// What type <c>azure</c> does differently from OpenAI: its URLs (the v1 API, or the deployment URLs of a dated
/// <c>api-version</c>), the deployment name for a model, the <c>api-key</c> header, and its <c>content_filter</c> error.
/// Sources: https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle (v1 API vs dated versions) and
/// https://learn.microsoft.com/azure/ai-foundry/openai/reference (deployment URLs, <c>api-key</c>).
/// </summary>
internal static partial class AzureOpenAI
{
    /// <summary>The key goes in <c>api-key</c> (an Entra ID token, from an <see cref="IUpstreamAuthenticator"/>, in <c>Authorization</c>).</summary>
    public static readonly UpstreamAuth Auth = new("api-key", []);

    /// <summary>Whether the provider uses the v1 API (ApiVersion empty or <c>v1</c>).</summary>
    public static bool IsV1(ProviderOptions options) =>
        string.IsNullOrWhiteSpace(options.ApiVersion) || options.ApiVersion.Trim().Equals("v1", StringComparison.OrdinalIgnoreCase);

    /// <summary>The deployment serving the attempt's model: <see cref="ProviderOptions.Deployments"/>, else the model name.</summary>
    public static string Deployment(ProviderContext context) =>
        context.Options.Deployments.TryGetValue(context.Model, out var deployment) && !string.IsNullOrWhiteSpace(deployment) ? deployment : context.Model;

    /// <summary>
    /// The upstream URI of an OpenAI path (<c>chat/completions</c>, <c>files</c>, ...): <c>{resource}/openai/v1/{path}</c>,
    /// or with a dated version <c>{resource}/openai/deployments/{deployment}/{path}?api-version=</c> for the per-model
    /// operations and <c>{resource}/openai/{path}?api-version=</c> for the others (models, files, batches).
    /// </summary>
    public static Uri For(ProviderContext context, string path)
    {
        var resource = Resource(context);
        if (IsV1(context.Options))
        {
            return new Uri(resource + "/openai/v1/" + path, UriKind.Absolute);
        }

        var version = "?api-version=" + Uri.EscapeDataString(context.Options.ApiVersion!.Trim());
        return InDeploymentUrl(path)
            ? new Uri(resource + "/openai/deployments/" + Uri.EscapeDataString(Deployment(context)) + "/" + path + version, UriKind.Absolute)
            : new Uri(resource + "/openai/" + path + version, UriKind.Absolute);
    }

    /// <summary>
    /// The JSON body: where the URL does not name the deployment — the v1 API, and on a dated version the operations under
    /// <c>{resource}/openai/</c> such as <c>responses</c> (<c>/openai/responses?api-version=2025-03-01-preview</c> with the
    /// deployment as <c>model</c>, https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses) — the deployment name
    /// goes in <c>model</c>, so a mapped model is replaced there; otherwise (the deployment URLs ignore it) the body is the
    /// request as is.
    /// </summary>
    public static ByteArrayContent Body<T>(ProviderContext context, string path, T request, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        var deployment = Deployment(context);
        if ((!IsV1(context.Options) && InDeploymentUrl(path)) || string.Equals(deployment, context.Model, StringComparison.Ordinal))
        {
            return UpstreamClient.Json(request, type);
        }

        var body = JsonSerializer.SerializeToNode(request, type)?.AsObject() ?? throw new InvalidOperationException("The request serialized to null.");
        body["model"] = deployment;
        return UpstreamClient.Json(JsonSerializer.SerializeToUtf8Bytes(body, BifrostJson.Context.JsonNode));
    }

    /// <summary>
    /// OpenAI's error object, and Azure's prompt filter: <c>{"error":{"code":"content_filter","innererror":{"code":
    /// "ResponsibleAIPolicyViolation","content_filter_result":{...}}}}</c> is a 400 <c>content_filter</c> (not retried)
    /// whose <c>innererror</c> is kept (https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter).
    /// </summary>
    public static BifrostException ParseError(UpstreamError answer)
    {
        if (answer.Status == 429 && answer.RetryAfter is null && RetryHint(answer.Text) is { } hint)
        {
            answer = answer with { RetryAfter = hint };
        }

        var exception = UpstreamHttp.FromErrorObject(answer);
        var detail = exception.Error.Error;
        if (!string.Equals(detail.Code, "content_filter", StringComparison.Ordinal))
        {
            return exception;
        }

        var filtered = BifrostException.Provider(400, detail.Type ?? "invalid_request_error", "content_filter", detail.Message, detail.Param);
        try
        {
            using var document = JsonDocument.Parse(answer.Text);
            if (document.RootElement.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object
                && error.TryGetProperty("innererror", out var inner) && inner.ValueKind == JsonValueKind.Object)
            {
                filtered.Error.Error.InnerError = inner.Clone();
            }
        }
        catch (JsonException)
        {
            // FromErrorObject found the code in it, so it is JSON; nothing more to keep otherwise
        }

        return filtered;
    }

    /// <summary>
    /// The wait Azure's 429 message asks for when neither <c>retry-after-ms</c> nor <c>Retry-After</c> came: "... Please
    /// retry after 37 seconds." (https://learn.microsoft.com/answers/questions/2140040/) or "Rate limit is exceeded. Try again
    /// in 5 seconds." (https://learn.microsoft.com/azure/ai-foundry/openai/quotas-limits); at most an hour, else null.
    /// </summary>
    internal static TimeSpan? RetryHint(string text)
    {
        System.Text.RegularExpressions.Match match;
        try
        {
            match = RetryHintPattern().Match(text);
        }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            return null;
        }

        return match.Success && int.TryParse(match.Groups[1].ValueSpan, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds <= 3600
            ? TimeSpan.FromSeconds(seconds)
            : null;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"(?:retry after|try again in)\s+(\d{1,6})\s+seconds?\b", System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 100)]
    private static partial System.Text.RegularExpressions.Regex RetryHintPattern();

    /// <summary>Whether a dated version names the deployment in the URL of this operation (<c>/openai/deployments/{deployment}/...</c>).</summary>
    private static bool InDeploymentUrl(string path) => path is "chat/completions" or "completions" or "embeddings";

    private static string Resource(ProviderContext context)
    {
        var resource = (context.Options.BaseUrl ?? throw new InvalidOperationException($"Provider '{context.ProviderName}' has no BaseUrl.")).TrimEnd('/');
        foreach (var suffix in (ReadOnlySpan<string>)["/openai/v1", "/openai"])
        {
            if (resource.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                return resource[..^suffix.Length];
            }
        }

        return resource;
    }
}
