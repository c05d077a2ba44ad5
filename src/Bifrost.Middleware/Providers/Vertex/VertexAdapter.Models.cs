namespace Bifrost.Middleware.Providers.Vertex;

/// <summary>
/// Model listing from Model Garden. With configured <c>Models</c>, those are the list (no call). Otherwise every page of
/// <c>GET {root}/v1beta1/publishers/{publisher}/models?pageSize=…&amp;pageToken=…</c>
/// (https://cloud.google.com/vertex-ai/docs/reference/rest/v1beta1/publishers.models/list: <c>publisherModels[]</c>,
/// <c>nextPageToken</c>) for the publishers the adapter serves, <c>google</c> (Gemini, embeddings, Imagen) and
/// <c>anthropic</c> (Claude); the id is the last segment of the model's <c>name</c> (<c>publishers/google/models/gemini-2.5-flash</c>
/// → <c>gemini-2.5-flash</c>), with <c>publisher</c>, and <c>version_id</c> / <c>launch_stage</c> when Google sends them. The
/// root is the location's endpoint (<c>https://{location}-aiplatform.googleapis.com</c>), or the configured <c>BaseUrl</c> without its
/// version segment (<c>/v1</c>). A publisher whose listing fails is logged and left out; when both fail, the provider's
/// listing fails (the gateway logs it and lists the other providers). Express mode (no project) lists only the configured
/// models: Model Garden's listing is not part of the express-mode API.
/// </summary>
internal sealed partial class VertexAdapter
{
    /// <summary>The Model Garden publishers listed, in order.</summary>
    internal static readonly string[] ListedPublishers = ["google", "anthropic"];

    /// <summary>The most pages read per publisher.</summary>
    internal const int MaxModelPages = 50;

    /// <summary>The page size asked for.</summary>
    internal const int ModelPageSize = 100;

    public async Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Options.Models.Count > 0 || IsExpress(context.Options))
        {
            return [.. context.Options.Models.Select(m => new ModelInfo { Id = m, OwnedBy = context.ProviderName })];
        }

        var models = new List<ModelInfo>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        BifrostException? firstFailure = null;
        var failures = 0;
        foreach (var publisher in ListedPublishers)
        {
            var listed = new List<ModelInfo>();
            try
            {
                await ListPublisherAsync(context, publisher, listed, cancellationToken).ConfigureAwait(false);
            }
            catch (BifrostException ex)
            {
                failures++;
                firstFailure ??= ex;
                Log.PublisherNotListed(logger, context.ProviderName, publisher, ex.StatusCode, ex.Error.Error.Code);
                continue;
            }

            models.AddRange(listed.Where(m => seen.Add(m.Id)));
        }

        if (failures == ListedPublishers.Length)
        {
            throw firstFailure!;
        }

        return models;
    }

    private async Task ListPublisherAsync(ProviderContext context, string publisher, List<ModelInfo> models, CancellationToken cancellationToken)
    {
        string? token = null;
        for (var page = 0; page < MaxModelPages; page++)
        {
            var query = "pageSize=" + ModelPageSize.ToString(System.Globalization.CultureInfo.InvariantCulture) + (token is null ? string.Empty : "&pageToken=" + Uri.EscapeDataString(token));
            var message = _google.CreateRequest(context, HttpMethod.Get, ModelGardenEndpoint(context, publisher, query), stream: false);
            var list = await _google.SendForJsonAsync(context, message, VertexJsonContext.Wire.VertexPublisherModelList, cancellationToken).ConfigureAwait(false);
            foreach (var model in list.PublisherModels ?? [])
            {
                var name = model?.Name;
                var id = name is null ? null : name[(name.LastIndexOf('/') + 1)..];
                if (string.IsNullOrEmpty(id))
                {
                    continue;
                }

                var extra = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
                {
                    ["publisher"] = JsonSerializer.SerializeToElement(publisher, VertexJsonContext.Wire.String),
                };
                if (!string.IsNullOrEmpty(model!.VersionId))
                {
                    extra["version_id"] = JsonSerializer.SerializeToElement(model.VersionId, VertexJsonContext.Wire.String);
                }

                if (!string.IsNullOrEmpty(model.LaunchStage))
                {
                    extra["launch_stage"] = JsonSerializer.SerializeToElement(model.LaunchStage, VertexJsonContext.Wire.String);
                }

                models.Add(new ModelInfo { Id = id, OwnedBy = context.ProviderName, AdditionalProperties = extra });
            }

            if (string.IsNullOrEmpty(list.NextPageToken))
            {
                return;
            }

            token = list.NextPageToken;
        }
    }

    /// <summary>
    /// <c>{root}/v1beta1/publishers/{publisher}/models?{query}</c>: the root is the configured <c>BaseUrl</c> without a trailing
    /// version segment (<c>/v1</c>, <c>/v1beta1</c>), else the location's endpoint.
    /// </summary>
    internal static Uri ModelGardenEndpoint(ProviderContext context, string publisher, string query)
    {
        var root = string.IsNullOrWhiteSpace(context.Options.BaseUrl) ? DefaultBaseUrl(Location(context.Options)) : context.Options.BaseUrl.Trim().TrimEnd('/');
        foreach (var version in (ReadOnlySpan<string>)["/v1", "/v1beta1"])
        {
            if (root.EndsWith(version, StringComparison.Ordinal))
            {
                root = root[..^version.Length];
                break;
            }
        }

        return new Uri($"{root}/v1beta1/publishers/{Uri.EscapeDataString(publisher)}/models?{query}", UriKind.Absolute);
    }

    private static partial class Log
    {
        [LoggerMessage(1501, LogLevel.Warning, "Provider '{Provider}' could not list Model Garden publisher '{Publisher}' (Vertex AI answered {Status} {Code}): its models are not listed.")]
        public static partial void PublisherNotListed(ILogger logger, string provider, string publisher, int status, string? code);
    }
}
