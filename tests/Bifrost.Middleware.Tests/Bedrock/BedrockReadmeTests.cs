using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>README "Amazon Bedrock": its appsettings example starts a host whose bedrock provider answers (BaseUrl pointed at the fake).</summary>
public sealed class BedrockReadmeTests : BedrockTestBase
{
    [Fact]
    public async Task The_READMEs_bedrock_configuration_starts_and_answers()
    {
        Environment.SetEnvironmentVariable("AWS_BEARER_TOKEN_BEDROCK", Key);
        await using var host = await ReadmeConfigurationHost.StartAsync("bedrock-appsettings", "bedrock", Upstream.BaseUrl, Ct);
        var client = host.Client;

        using var response = await client.PostAsync(
            "/openai/v1/chat/completions",
            new StringContent("""{"model":"bedrock/us.amazon.nova-pro-v1:0","messages":[{"role":"user","content":"from the README"}]}""", Encoding.UTF8, "application/json"),
            Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        using var models = await client.GetAsync("/openai/v1/models", Ct);
        var list = await models.Content.ReadAsStringAsync(Ct);

        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        Assert.Equal("echo: from the README", JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("Bearer " + Key, sent.Headers["authorization"]);
        Assert.Equal("/model/us.amazon.nova-pro-v1%3A0/converse", sent.RawTarget);
        Assert.Contains("\"bedrock/amazon.titan-embed-text-v2:0\"", list, StringComparison.Ordinal);
    }
}
