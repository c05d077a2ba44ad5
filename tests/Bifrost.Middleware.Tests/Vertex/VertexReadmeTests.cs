using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>README "Vertex AI (Google Cloud)": its access-token appsettings example starts a host whose vertex provider answers for Gemini and Claude (BaseUrl pointed at the fake).</summary>
public sealed class VertexReadmeTests : VertexTestBase
{
    [Fact]
    public async Task The_READMEs_vertex_configuration_starts_and_answers_for_both_publishers()
    {
        Environment.SetEnvironmentVariable("VERTEX_ACCESS_TOKEN", FakeVertexUpstream.Token);
        await using var host = await ReadmeConfigurationHost.StartAsync("vertex-appsettings", "vertex", Upstream.BaseUrl, Ct);
        var client = host.Client;

        foreach (var model in new[] { "gemini-2.5-flash", "claude-sonnet-4-5@20250929" })
        {
            using var response = await client.PostAsync(
                "/openai/v1/chat/completions",
                new StringContent($$"""{"model":"vertex/{{model}}","messages":[{"role":"user","content":"from the README"}]}""", Encoding.UTF8, "application/json"),
                Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);

            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            Assert.Equal("echo: from the README", JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }

        Assert.Equal(
            ["/v1/projects/my-project/locations/global/publishers/google/models/gemini-2.5-flash:generateContent", "/v1/projects/my-project/locations/global/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"],
            Upstream.Requests.Select(static r => r.Path));
        Assert.All(Upstream.Requests, static r => Assert.Equal("Bearer " + FakeVertexUpstream.Token, r.Headers["authorization"]));
    }
}
