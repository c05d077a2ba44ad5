using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Bedrock;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary><c>GET /v1/models</c> with a <c>bedrock</c> provider: ListFoundationModels and ListInferenceProfiles on the control plane.</summary>
public sealed class BedrockModelsTests : BedrockTestBase
{
    private static JsonObject Summary(string id, string provider, string[] input, string[] output, string[] inference, string status = "ACTIVE") => new()
    {
        ["modelArn"] = "arn:aws:bedrock:us-east-1::foundation-model/" + id,
        ["modelId"] = id,
        ["modelName"] = id.Split('.')[1],
        ["providerName"] = provider,
        ["inputModalities"] = new JsonArray([.. input.Select(m => (JsonNode)m)]),
        ["outputModalities"] = new JsonArray([.. output.Select(m => (JsonNode)m)]),
        ["responseStreamingSupported"] = true,
        ["customizationsSupported"] = new JsonArray(),
        ["inferenceTypesSupported"] = new JsonArray([.. inference.Select(m => (JsonNode)m)]),
        ["modelLifecycle"] = new JsonObject { ["status"] = status },
    };

    private static JsonObject Profile(string id, string status = "ACTIVE") => new()
    {
        ["inferenceProfileName"] = "US " + id,
        ["inferenceProfileArn"] = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/" + id,
        ["inferenceProfileId"] = id,
        ["models"] = new JsonArray(new JsonObject { ["modelArn"] = "arn:aws:bedrock:us-east-1::foundation-model/" + id[3..] }),
        ["status"] = status,
        ["type"] = "SYSTEM_DEFINED",
    };

    private void ScriptCatalog()
    {
        Upstream.FoundationModels =
        [
            Summary("amazon.nova-pro-v1:0", "Amazon", ["TEXT", "IMAGE", "VIDEO"], ["TEXT"], ["ON_DEMAND", "INFERENCE_PROFILE"]),
            Summary("amazon.titan-embed-text-v2:0", "Amazon", ["TEXT"], ["EMBEDDING"], ["ON_DEMAND"], status: "LEGACY"),
            Summary("anthropic.claude-3-5-sonnet-20240620-v1:0:18k", "Anthropic", ["TEXT", "IMAGE"], ["TEXT"], ["PROVISIONED"]),
            Summary("amazon.nova-canvas-v1:0", "Amazon", ["TEXT", "IMAGE"], ["IMAGE"], ["ON_DEMAND"]),
        ];
        Upstream.InferenceProfilePages.Add([Profile("us.anthropic.claude-sonnet-4-5-20250929-v1:0"), Profile("us.meta.llama3-3-70b-instruct-v1:0", status: "INACTIVE")]);
        Upstream.InferenceProfilePages.Add([Profile("us.amazon.nova-pro-v1:0")]);
    }

    private static async Task<JsonElement> ListAsync(Infrastructure.GatewayHost host)
    {
        using var response = await host.Client.GetAsync("/openai/v1/models", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Infrastructure.GatewayHost.ReadJsonAsync(response);
    }

    private static Dictionary<string, JsonElement> ById(JsonElement list) =>
        list.GetProperty("data").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!, m => m);

    [Fact]
    public async Task Without_configured_models_the_list_has_the_foundation_models_and_every_page_of_system_inference_profiles()
    {
        ScriptCatalog();
        await using var host = await StartHostAsync();

        var models = ById(await ListAsync(host));

        Assert.Equal(
            ["bedrock/amazon.nova-canvas-v1:0", "bedrock/amazon.nova-pro-v1:0", "bedrock/amazon.titan-embed-text-v2:0", "bedrock/us.amazon.nova-pro-v1:0", "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", "local/echo"],
            models.Keys.Order(StringComparer.Ordinal));
        var nova = models["bedrock/amazon.nova-pro-v1:0"];
        Assert.Equal("bedrock", nova.GetProperty("owned_by").GetString());
        Assert.Equal("Amazon", nova.GetProperty("provider_name").GetString());
        Assert.Equal(["TEXT", "IMAGE", "VIDEO"], nova.GetProperty("input_modalities").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(["TEXT"], nova.GetProperty("output_modalities").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal("ACTIVE", nova.GetProperty("lifecycle_status").GetString());
        Assert.Equal("LEGACY", models["bedrock/amazon.titan-embed-text-v2:0"].GetProperty("lifecycle_status").GetString());
        Assert.Equal(["IMAGE"], models["bedrock/amazon.nova-canvas-v1:0"].GetProperty("output_modalities").EnumerateArray().Select(m => m.GetString()));
        var profile = models["bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"];
        Assert.True(profile.GetProperty("inference_profile").GetBoolean());
        Assert.Equal("US us.anthropic.claude-sonnet-4-5-20250929-v1:0", profile.GetProperty("name").GetString());

        var sent = Upstream.Requests.ToList();
        Assert.Equal(
            ["GET /foundation-models", "GET /inference-profiles?maxResults=1000&type=SYSTEM_DEFINED", "GET /inference-profiles?maxResults=1000&type=SYSTEM_DEFINED&nextToken=page-1"],
            sent.Select(r => r.Method + " " + r.RawTarget));
        Assert.All(sent, r => Assert.Equal("Bearer " + Key, r.Headers["authorization"]));
    }

    [Fact]
    public async Task Configured_models_are_the_list_without_any_call()
    {
        ScriptCatalog();
        await using var host = await StartHostAsync(p => p.Models = ["amazon.nova-lite-v1:0"]);

        var models = ById(await ListAsync(host));

        Assert.Equal(["bedrock/amazon.nova-lite-v1:0", "local/echo"], models.Keys.Order(StringComparer.Ordinal));
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task A_refused_profile_listing_still_lists_the_foundation_models()
    {
        ScriptCatalog();
        Upstream.Refuse = r => r.Operation == "inference-profiles" ? new FakeBedrockUpstream.Failure(403, "User is not authorized to perform: bedrock:ListInferenceProfiles") : null;
        await using var host = await StartHostAsync();

        var models = ById(await ListAsync(host));

        Assert.Equal(
            ["bedrock/amazon.nova-canvas-v1:0", "bedrock/amazon.nova-pro-v1:0", "bedrock/amazon.titan-embed-text-v2:0", "local/echo"],
            models.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_failed_foundation_model_listing_leaves_bedrock_out_and_the_other_providers_are_still_listed()
    {
        ScriptCatalog();
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(500, "Internal failure"));
        await using var host = await StartHostAsync();

        var models = ById(await ListAsync(host));

        Assert.Equal(["local/echo"], models.Keys);
        Assert.Equal("foundation-models", Assert.Single(Upstream.Requests).Operation);
    }

    [Fact]
    public async Task The_adapter_throws_the_control_planes_error_with_its_type()
    {
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(403, "User is not authorized to perform: bedrock:ListFoundationModels"));
        await using var host = await StartHostAsync();

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter(host).ListModelsAsync(Context(string.Empty), Ct));

        Assert.Equal(403, error.StatusCode);
        Assert.Equal("AccessDeniedException", error.Error.Error.Code);
    }

    [Theory]
    [InlineData(null, null, "https://bedrock.eu-west-3.amazonaws.com/foundation-models", "https://bedrock-agent-runtime.eu-west-3.amazonaws.com")]
    [InlineData("https://bedrock-runtime.eu-west-3.amazonaws.com", null, "https://bedrock.eu-west-3.amazonaws.com/foundation-models", "https://bedrock-agent-runtime.eu-west-3.amazonaws.com")]
    [InlineData("http://127.0.0.1:5000/bedrock/", null, "http://127.0.0.1:5000/bedrock/foundation-models", "http://127.0.0.1:5000/bedrock")]
    [InlineData("https://bedrock-runtime.eu-west-3.amazonaws.com", "https://vpce-1.bedrock.eu-west-3.vpce.amazonaws.com/", "https://vpce-1.bedrock.eu-west-3.vpce.amazonaws.com/foundation-models", "https://bedrock-agent-runtime.eu-west-3.amazonaws.com")]
    public void The_control_plane_and_agent_runtime_hosts_follow_the_region_and_the_base_url(string? baseUrl, string? controlPlane, string expectedList, string expectedAgentRuntime)
    {
        var options = new ProviderOptions { Type = "bedrock", BaseUrl = baseUrl, Region = "eu-west-3" };
        if (controlPlane is not null)
        {
            options.BedrockBatch = new BedrockBatchOptions { S3Uri = "s3://bucket", RoleArn = "arn:aws:iam::123456789012:role/batch", ControlPlaneUrl = controlPlane };
        }

        var context = new ProviderContext("bedrock", options, string.Empty, null);

        Assert.Equal(expectedList, BedrockAdapter.ControlPlaneEndpoint(context, "foundation-models").AbsoluteUri);
        Assert.Equal(expectedAgentRuntime, BedrockAdapter.SiblingService(context, "bedrock-agent-runtime"));
    }
}
