using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>README "Gemini (Google AI Studio)": its appsettings example starts a host whose gemini provider answers (BaseUrl pointed at the fake).</summary>
public sealed class GeminiReadmeTests : GeminiTestBase
{
    [Fact]
    public async Task The_READMEs_gemini_configuration_starts_and_answers()
    {
        Environment.SetEnvironmentVariable("GEMINI_API_KEY", FakeGeminiUpstream.Key);
        await using var host = await ReadmeConfigurationHost.StartAsync("gemini-appsettings", "gemini", Upstream.BaseUrl, Ct);
        var client = host.Client;

        using var response = await client.PostAsync(
            "/openai/v1/chat/completions",
            new StringContent("""{"model":"gemini/gemini-2.5-flash","messages":[{"role":"user","content":"from the README"}]}""", Encoding.UTF8, "application/json"),
            Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        using var models = await client.GetAsync("/openai/v1/models", Ct);
        var list = await models.Content.ReadAsStringAsync(Ct);

        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        Assert.Equal("echo: from the README", JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(FakeGeminiUpstream.Key, Assert.Single(Upstream.Requests).Headers["x-goog-api-key"]);
        Assert.Contains("\"gemini/gemini-embedding-001\"", list, StringComparison.Ordinal);
    }
}
