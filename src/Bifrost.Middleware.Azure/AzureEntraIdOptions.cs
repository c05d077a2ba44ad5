namespace Bifrost.Middleware.Azure;

/// <summary>How <c>UseAzureEntraId</c> asks Entra ID for tokens.</summary>
public sealed class AzureEntraIdOptions
{
    /// <summary>The scope tokens are requested for. Default <c>https://cognitiveservices.azure.com/.default</c> (Azure OpenAI, AI Foundry).</summary>
    public string Scope { get; set; } = EntraIdAuthenticator.DefaultScope;

    /// <summary>
    /// How long before a token expires it is replaced (requests wait for one shared refresh then). Default 5 minutes; the
    /// credential's own <c>RefreshOn</c>, when earlier, is used instead.
    /// </summary>
    public TimeSpan RefreshBeforeExpiry { get; set; } = TimeSpan.FromMinutes(5);
}
