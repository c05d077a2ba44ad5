namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// What the Azure OpenAI-compatible routes add to the OpenAI-shaped ones: the model from the deployment in the path
/// (<see cref="AzureInboundOptions.Deployments"/>, else the deployment name itself) and the <c>api-version</c> rule.
/// </summary>
internal sealed class AzureDeployments(AzureInboundOptions options)
{
    /// <summary>The query parameter Azure's clients send on every call.</summary>
    public const string ApiVersionQuery = "api-version";

    /// <summary>
    /// The paths Azure serves under <c>deployments/{deployment}/</c>, relative like <see cref="Operations.OperationRoute.Path"/>.
    /// A path gets routes when a registered operation serves it through the inference endpoint (a JSON body or a multipart upload).
    /// </summary>
    public static readonly string[] Paths =
    [
        "chat/completions", "completions", "embeddings",
        "audio/speech", "audio/transcriptions", "audio/translations",
        "images/generations", "images/edits", "images/variations",
    ];

    /// <summary>The OpenAPI description of <c>api-version</c> (read from <see cref="ApiVersionDescription"/>'s parameter).</summary>
    private const string ApiVersionText =
        "The Azure OpenAI API version. Azure documents it as required on every data-plane call and its SDKs always send it "
        + "(e.g. 2024-10-21, 2025-04-01-preview). The gateway accepts any value and answers in the current shapes; it is "
        + "required here only when Bifrost:AzureInbound:RequireApiVersion is set (else a call without it is served too).";

    /// <summary>Carries the OpenAPI description of <c>api-version</c> (the ApiExplorer reads a parameter's <see cref="System.ComponentModel.DescriptionAttribute"/>).</summary>
    internal static void ApiVersionDescription([System.ComponentModel.Description(ApiVersionText)] string apiVersion)
    {
    }

    /// <summary>The OpenAPI metadata of the <c>api-version</c> query of every deployment route (required when <see cref="AzureInboundOptions.RequireApiVersion"/>).</summary>
    public BifrostQueryParameterMetadata ApiVersionParameter() =>
        new(ApiVersionQuery, options.RequireApiVersion, typeof(AzureDeployments).GetMethod(nameof(ApiVersionDescription), System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!);

    /// <summary>The model of the call: the configured model of the deployment (<c>provider/deployment</c> when the path names the provider), else that name.</summary>
    public string ModelOf(HttpContext context)
    {
        var values = context.Request.RouteValues;
        var deployment = values["deployment"] as string;
        var provider = values.TryGetValue("provider", out var p) ? p as string : null;
        var name = provider is null ? deployment : provider + "/" + deployment;
        if (string.IsNullOrWhiteSpace(deployment) || (provider is not null && string.IsNullOrWhiteSpace(provider)) || name!.Length > AzureInboundOptions.MaxNameLength)
        {
            throw BifrostErrors.InvalidRequest("invalid_deployment", $"The deployment in the path must be 1 to {AzureInboundOptions.MaxNameLength} characters.", "deployment");
        }

        return options.Deployments.TryGetValue(name, out var model) ? model : name;
    }

    /// <summary>Refuses a call without <c>api-version</c> when <see cref="AzureInboundOptions.RequireApiVersion"/> is set (400, before the body is read).</summary>
    public RequestDelegate CheckApiVersion(RequestDelegate handler) => !options.RequireApiVersion ? handler : context =>
    {
        if (string.IsNullOrWhiteSpace(context.Request.Query[ApiVersionQuery].ToString()))
        {
            throw BifrostErrors.InvalidRequest("missing_api_version", "The api-version query parameter is required (e.g. ?api-version=2024-10-21).", ApiVersionQuery);
        }

        return handler(context);
    };
}
