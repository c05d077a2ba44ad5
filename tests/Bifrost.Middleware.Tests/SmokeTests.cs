using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests;

public sealed class SmokeTests
{
    [Fact]
    public async Task Local_echo_answers_with_the_last_user_message_and_extra_fields()
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"Hi it's me"}]}""", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        Assert.Equal("Hi it's me", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("local", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("echo", json.GetProperty("extra_fields").GetProperty("model_requested").GetString());
        Assert.Equal(3, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }
}
