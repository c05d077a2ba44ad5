using System.Globalization;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>
/// Model Garden's <c>GET /v1beta1/publishers/{publisher}/models?pageSize&amp;pageToken</c>
/// (https://cloud.google.com/vertex-ai/docs/reference/rest/v1beta1/publishers.models/list): <c>{"publisherModels": [{"name":
/// "publishers/{publisher}/models/{id}", "versionId", "launchStage", ...}], "nextPageToken"}</c>, pages of
/// <see cref="ModelGardenPageSize"/> (the smaller of it and the asked <c>pageSize</c>), the token being the next offset. It
/// checks <c>Authorization: Bearer</c> like the model methods, and answers a publisher's scripted failure in Google's envelope.
/// </summary>
public sealed partial class FakeVertexUpstream
{
    /// <summary>The models of each publisher, by id.</summary>
    public Dictionary<string, List<string>> PublisherModels { get; } = new(StringComparer.Ordinal)
    {
        ["google"] = ["gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-005", "imagen-4.0-generate-001", "gemini-2.0-flash-001"],
        ["anthropic"] = ["claude-sonnet-4-5", "claude-haiku-4-5"],
    };

    /// <summary>The most models of one page.</summary>
    public int ModelGardenPageSize { get; set; } = 2;

    /// <summary>A publisher whose listing fails, with the failure.</summary>
    public Dictionary<string, Failure> PublisherFailures { get; } = new(StringComparer.Ordinal);

    private void MapModelGarden(WebApplication app) =>
        app.MapGet("/v1beta1/publishers/{publisher}/models", async (HttpContext context, string publisher) =>
        {
            var request = await UpstreamRequest.ReadAsync(context);
            Requests.Enqueue(request);
            var authorization = context.Request.Headers.Authorization.ToString();
            if (!authorization.StartsWith("Bearer ", StringComparison.Ordinal) || !ValidTokens.ContainsKey(authorization["Bearer ".Length..]))
            {
                await WriteGoogleErrorAsync(context, new Failure(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."));
                return;
            }

            if (PublisherFailures.TryGetValue(publisher, out var failure))
            {
                await WriteGoogleErrorAsync(context, failure);
                return;
            }

            var models = PublisherModels.GetValueOrDefault(publisher) ?? [];
            var asked = int.TryParse(context.Request.Query["pageSize"], CultureInfo.InvariantCulture, out var pageSize) && pageSize > 0 ? pageSize : 100;
            var size = Math.Min(asked, ModelGardenPageSize);
            var offset = int.TryParse(context.Request.Query["pageToken"], CultureInfo.InvariantCulture, out var token) ? token : 0;
            var page = new JsonObject
            {
                ["publisherModels"] = new JsonArray([.. models.Skip(offset).Take(size).Select(id => (JsonNode)new JsonObject
                {
                    ["name"] = $"publishers/{publisher}/models/{id}",
                    ["versionId"] = "001",
                    ["openSourceCategory"] = "PROPRIETARY",
                    ["launchStage"] = "GA",
                })]),
            };
            if (offset + size < models.Count)
            {
                page["nextPageToken"] = (offset + size).ToString(CultureInfo.InvariantCulture);
            }

            await context.Response.WriteAsJsonAsync(page);
        });
}
