using OpenAI.Models;

namespace Bifrost.Middleware.Compatibility.Tests;

public sealed class ModelCompatibilityTests
{
    [Fact]
    public async Task GetModelsAsync_lists_provider_slash_model_ids()
    {
        await using var host = await SdkHost.StartAsync();

        OpenAIModelCollection models = await host.Client.GetOpenAIModelClient().GetModelsAsync(TestContext.Current.CancellationToken);

        var echo = Assert.Single(models, m => m.Id == "local/echo");
        Assert.Equal("local", echo.OwnedBy);
    }
}
