using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Providers.Vertex;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary><c>GET /v1/models</c> with a <c>vertex</c> provider: Model Garden's publisher model listing for google and anthropic.</summary>
public sealed class VertexModelsTests : VertexTestBase
{
    private static async Task<Dictionary<string, JsonElement>> ListAsync(GatewayHost host)
    {
        using var response = await host.Client.GetAsync("/openai/v1/models", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        return json.GetProperty("data").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!, m => m);
    }

    [Fact]
    public async Task Every_page_of_both_publishers_is_listed_with_the_access_token()
    {
        await using var host = await StartHostAsync();

        var models = await ListAsync(host);

        Assert.Equal(
            ["local/echo", "vertex/claude-haiku-4-5", "vertex/claude-sonnet-4-5", "vertex/gemini-2.0-flash-001", "vertex/gemini-2.5-flash", "vertex/gemini-2.5-pro", "vertex/imagen-4.0-generate-001", "vertex/text-embedding-005"],
            models.Keys.Order(StringComparer.Ordinal));
        var flash = models["vertex/gemini-2.5-flash"];
        Assert.Equal("vertex", flash.GetProperty("owned_by").GetString());
        Assert.Equal("google", flash.GetProperty("publisher").GetString());
        Assert.Equal("001", flash.GetProperty("version_id").GetString());
        Assert.Equal("GA", flash.GetProperty("launch_stage").GetString());
        Assert.Equal("anthropic", models["vertex/claude-sonnet-4-5"].GetProperty("publisher").GetString());

        var sent = Upstream.Requests.ToList();
        Assert.Equal(
            [
                "/v1beta1/publishers/google/models?pageSize=100",
                "/v1beta1/publishers/google/models?pageSize=100&pageToken=2",
                "/v1beta1/publishers/google/models?pageSize=100&pageToken=4",
                "/v1beta1/publishers/anthropic/models?pageSize=100",
            ],
            sent.Select(r => r.Path + r.Query));
        Assert.All(sent, r => Assert.Equal("Bearer " + FakeVertexUpstream.Token, r.Headers["authorization"]));
    }

    [Fact]
    public async Task A_publisher_that_fails_is_left_out_and_the_other_is_listed()
    {
        Upstream.PublisherFailures["anthropic"] = new FakeVertexUpstream.Failure(403, "Permission denied on resource project my-project.", "PERMISSION_DENIED");
        await using var host = await StartHostAsync();

        var models = await ListAsync(host);

        Assert.Contains("vertex/gemini-2.5-pro", models.Keys);
        Assert.DoesNotContain(models.Keys, id => id.StartsWith("vertex/claude", StringComparison.Ordinal));
    }

    [Fact]
    public async Task When_both_publishers_fail_vertex_is_left_out_and_the_other_providers_are_still_listed()
    {
        Upstream.ValidTokens.Clear();
        await using var host = await StartHostAsync();

        var models = await ListAsync(host);

        Assert.Equal(["local/echo"], models.Keys);
        Assert.Equal(2, Upstream.Requests.Count);
        await Assert.ThrowsAsync<BifrostException>(() => Adapter.ListModelsAsync(Context(string.Empty), Ct));
    }

    [Fact]
    public async Task Configured_models_and_express_mode_list_without_calling()
    {
        await using var configured = await StartHostAsync(p => p.Models = ["gemini-2.5-flash"]);
        await using var express = await StartHostAsync(p => (p.ProjectId, p.Region, p.AuthHeader) = (null, null, VertexAdapter.ApiKeyHeader));

        Assert.Equal(["local/echo", "vertex/gemini-2.5-flash"], (await ListAsync(configured)).Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["local/echo"], (await ListAsync(express)).Keys);
        Assert.Empty(Upstream.Requests);
    }

    [Theory]
    [InlineData(null, "us-east5", "https://us-east5-aiplatform.googleapis.com/v1beta1/publishers/google/models?pageSize=100")]
    [InlineData(null, "global", "https://aiplatform.googleapis.com/v1beta1/publishers/google/models?pageSize=100")]
    [InlineData("https://europe-west4-aiplatform.googleapis.com/v1/", "europe-west4", "https://europe-west4-aiplatform.googleapis.com/v1beta1/publishers/google/models?pageSize=100")]
    [InlineData("https://proxy.example.com/vertex", "us-east5", "https://proxy.example.com/vertex/v1beta1/publishers/google/models?pageSize=100")]
    public void The_model_garden_url_is_the_locations_endpoint_or_the_base_url_at_v1beta1(string? baseUrl, string region, string expected)
    {
        var context = new ProviderContext("vertex", new ProviderOptions { Type = "vertex", BaseUrl = baseUrl, ProjectId = Project, Region = region }, string.Empty, null);

        Assert.Equal(expected, VertexAdapter.ModelGardenEndpoint(context, "google", "pageSize=100").AbsoluteUri);
    }
}
