namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>
/// Model listing on Bedrock's control plane. With configured <c>Models</c>, those are the list (no call). Otherwise
/// <c>GET /foundation-models</c> (ListFoundationModels, https://docs.aws.amazon.com/bedrock/latest/APIReference/API_ListFoundationModels.html:
/// every model of the region, one page) and every page of <c>GET /inference-profiles?type=SYSTEM_DEFINED</c>
/// (ListInferenceProfiles, https://docs.aws.amazon.com/bedrock/latest/APIReference/API_ListInferenceProfiles.html: the
/// cross-region profiles such as <c>us.anthropic.claude-...</c>, which newer models are only callable through). Models that
/// can only run on provisioned throughput (<c>inferenceTypesSupported</c> is <c>PROVISIONED</c> alone) are left out: their id
/// cannot be invoked as it is. Each model carries <c>provider_name</c>, <c>input_modalities</c>, <c>output_modalities</c> and
/// <c>lifecycle_status</c>; each profile <c>inference_profile: true</c> and <c>name</c>. A failed profile listing (e.g. an
/// identity without <c>bedrock:ListInferenceProfiles</c>) is logged and the foundation models are still answered; a failed
/// foundation model listing fails the provider's listing (the gateway logs it and lists the other providers).
/// </summary>
/// <remarks>
/// The control plane is <c>https://bedrock.{Region}.amazonaws.com</c>, or <c>BedrockBatch:ControlPlaneUrl</c> when set. With
/// a <c>BaseUrl</c> on a <c>bedrock-runtime.*</c> host, the same host with <c>bedrock.</c> instead; any other <c>BaseUrl</c>
/// (a proxy, a test server) is taken to serve the control plane's paths too. Requests are signed for service <c>bedrock</c>
/// like the runtime's, or carry the Bedrock API key (which Bedrock accepts for control plane actions,
/// https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-reference.html).
/// </remarks>
internal sealed partial class BedrockAdapter
{
    /// <summary>The most pages of inference profiles read for one listing.</summary>
    internal const int MaxProfilePages = 50;

    public async Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Options.Models.Count > 0)
        {
            return [.. context.Options.Models.Select(m => new ModelInfo { Id = m, OwnedBy = context.ProviderName })];
        }

        var models = new List<ModelInfo>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        BedrockFoundationModelList foundation;
        using (var message = _http.CreateRequest(context, HttpMethod.Get, ControlPlaneEndpoint(context, "foundation-models"), stream: false))
        using (var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false))
        {
            foundation = await ReadJsonAsync(context, response, BedrockJsonContext.Wire.BedrockFoundationModelList, cancellationToken).ConfigureAwait(false);
        }

        foreach (var summary in foundation.ModelSummaries ?? [])
        {
            if (summary is not { ModelId.Length: > 0 } || ProvisionedOnly(summary) || !seen.Add(summary.ModelId))
            {
                continue;
            }

            var extra = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            AddString(extra, "provider_name", summary.ProviderName);
            AddString(extra, "name", summary.ModelName);
            AddList(extra, "input_modalities", summary.InputModalities);
            AddList(extra, "output_modalities", summary.OutputModalities);
            AddString(extra, "lifecycle_status", summary.ModelLifecycle?.Status);
            models.Add(new ModelInfo { Id = summary.ModelId, OwnedBy = context.ProviderName, AdditionalProperties = extra.Count > 0 ? extra : null });
        }

        try
        {
            await AddInferenceProfilesAsync(context, models, seen, cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex)
        {
            Log.InferenceProfilesNotListed(logger, context.ProviderName, ex.StatusCode, ex.Error.Error.Code);
        }

        return models;
    }

    private async Task AddInferenceProfilesAsync(ProviderContext context, List<ModelInfo> models, HashSet<string> seen, CancellationToken cancellationToken)
    {
        string? token = null;
        for (var page = 0; page < MaxProfilePages; page++)
        {
            var query = "inference-profiles?maxResults=1000&type=SYSTEM_DEFINED" + (token is null ? string.Empty : "&nextToken=" + Uri.EscapeDataString(token));
            BedrockInferenceProfileList list;
            using (var message = _http.CreateRequest(context, HttpMethod.Get, ControlPlaneEndpoint(context, query), stream: false))
            using (var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false))
            {
                list = await ReadJsonAsync(context, response, BedrockJsonContext.Wire.BedrockInferenceProfileList, cancellationToken).ConfigureAwait(false);
            }

            foreach (var profile in list.InferenceProfileSummaries ?? [])
            {
                if (profile is not { InferenceProfileId.Length: > 0 }
                    || (profile.Status is { Length: > 0 } status && !string.Equals(status, "ACTIVE", StringComparison.Ordinal))
                    || !seen.Add(profile.InferenceProfileId))
                {
                    continue;
                }

                var extra = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
                {
                    ["inference_profile"] = JsonSerializer.SerializeToElement(true, BedrockJsonContext.Wire.Boolean),
                };
                AddString(extra, "name", profile.InferenceProfileName);
                models.Add(new ModelInfo { Id = profile.InferenceProfileId, OwnedBy = context.ProviderName, AdditionalProperties = extra });
            }

            if (string.IsNullOrEmpty(list.NextToken))
            {
                return;
            }

            token = list.NextToken;
        }
    }

    /// <summary>Whether a model runs on provisioned throughput only (its id alone cannot be invoked).</summary>
    private static bool ProvisionedOnly(BedrockFoundationModelSummary summary) =>
        summary.InferenceTypesSupported is { Count: > 0 } types && types.All(static t => string.Equals(t, "PROVISIONED", StringComparison.Ordinal));

    private static void AddString(Dictionary<string, JsonElement> extra, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            extra[name] = JsonSerializer.SerializeToElement(value, BedrockJsonContext.Wire.String);
        }
    }

    private static void AddList(Dictionary<string, JsonElement> extra, string name, IList<string>? values)
    {
        if (values is { Count: > 0 })
        {
            extra[name] = JsonSerializer.SerializeToElement(values, BedrockJsonContext.Wire.IListString);
        }
    }

    /// <summary>
    /// <c>{control plane}/{pathAndQuery}</c>: <c>BedrockBatch:ControlPlaneUrl</c>; else the <c>BaseUrl</c>'s
    /// <c>bedrock-runtime.*</c> host as <c>bedrock.*</c>, or any other <c>BaseUrl</c> as it is; else
    /// <c>https://bedrock.{Region}.amazonaws.com</c>.
    /// </summary>
    internal static Uri ControlPlaneEndpoint(ProviderContext context, string pathAndQuery)
    {
        var baseUrl = context.Options.BedrockBatch?.ControlPlaneUrl is { Length: > 0 } control && !string.IsNullOrWhiteSpace(control)
            ? control.Trim().TrimEnd('/')
            : SiblingService(context, "bedrock");
        return new Uri(baseUrl + "/" + pathAndQuery, UriKind.Absolute);
    }

    /// <summary>
    /// The base URL of another Bedrock service (<c>bedrock</c>, <c>bedrock-agent-runtime</c>) in the provider's region:
    /// <c>https://{service}.{Region}.amazonaws.com</c> without a <c>BaseUrl</c>; with one on a <c>bedrock-runtime.*</c> host,
    /// that host with the service's name; any other <c>BaseUrl</c> (a proxy, a test server) as it is.
    /// </summary>
    internal static string SiblingService(ProviderContext context, string service)
    {
        if (string.IsNullOrWhiteSpace(context.Options.BaseUrl))
        {
            return $"https://{service}.{context.Options.Region?.Trim()}.amazonaws.com";
        }

        const string runtime = "bedrock-runtime.";
        var baseUrl = context.Options.BaseUrl.Trim().TrimEnd('/');
        var uri = new Uri(baseUrl, UriKind.Absolute);
        if (!uri.Host.StartsWith(runtime, StringComparison.OrdinalIgnoreCase))
        {
            return baseUrl;
        }

        var builder = new UriBuilder(uri) { Host = service + "." + uri.Host[runtime.Length..] };
        return builder.Uri.GetLeftPart(UriPartial.Path).TrimEnd('/');
    }

    private static partial class Log
    {
        [LoggerMessage(1500, LogLevel.Warning, "Provider '{Provider}' could not list its inference profiles (Bedrock answered {Status} {Code}): only foundation models are listed.")]
        public static partial void InferenceProfilesNotListed(ILogger logger, string provider, int status, string? code);
    }
}
