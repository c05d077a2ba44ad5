using System.Net.Http.Json;
using System.Text.Json;
using Bifrost.Middleware.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Xunit;

namespace MyApp.Tests;

public class ChatTests
{
    [Fact]
    public async Task Chat_is_answered_by_the_scripted_openai_provider()
    {
        // The app's "openai" provider is replaced by a script: no key, no network.
        var scripts = new BifrostScripts();
        scripts["openai"].Reply("Paris.");

        await using var factory = new WebApplicationFactory<Program>();
        using var client = factory.WithWebHostBuilder(web => web.UseBifrostScripts(scripts)).CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", "dev-key-change-me"); // a key from "CallerKeys"

        using var response = await client.PostAsJsonAsync("/openai/v1/chat/completions", new
        {
            model = "openai/gpt-4o-mini",
            messages = new[] { new { role = "user", content = "What is the capital of France?" } },
        });

        response.EnsureSuccessStatusCode();
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var answer = body.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        Assert.Equal("Paris.", answer);

        var request = Assert.Single(scripts["openai"].Requests);
        Assert.Equal("gpt-4o-mini", request.Model);
        Assert.Equal("What is the capital of France?", request.LastUserMessage);
    }
}
