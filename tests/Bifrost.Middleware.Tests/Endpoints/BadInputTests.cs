using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Endpoints;

/// <summary>Bad input is a 400 in the Bifrost error shape with a meaningful code and param, never a 500.</summary>
public sealed class BadInputTests
{
    private static Task<GatewayHost> StartRestrictedAsync() =>
        GatewayHost.StartAsync(options => options.Providers["local"].Models = ["echo"]);

    [Theory]
    [InlineData("""{"model":"local/echo","messages":[""", "invalid_json", null)]
    [InlineData("not json at all", "invalid_json", null)]
    [InlineData("", "invalid_json", null)]
    [InlineData("null", "invalid_json", null)]
    [InlineData("""[{"model":"local/echo","messages":[{"role":"user","content":"x"}]}]""", "invalid_json", null)]
    [InlineData("""{"model":"local/echo","messages":5}""", "invalid_json", "messages")]
    [InlineData("""{"model":"local/echo","messages":[{"role":"user","content":"x"}],"n":"x"}""", "invalid_json", "n")]
    [InlineData("""{"model":5,"messages":[{"role":"user","content":"x"}]}""", "invalid_json", "model")]
    [InlineData("""{"model":"local/echo","messages":[{"role":"user","content":"x"}],"stream":"yes"}""", "invalid_json", "stream")]
    [InlineData("""{"model":"local/echo","messages":[{"role":"user","content":42}]}""", "invalid_json", null)]
    [InlineData("""{"messages":[{"role":"user","content":"x"}]}""", "missing_required_parameter", "model")]
    [InlineData("""{"model":"","messages":[{"role":"user","content":"x"}]}""", "missing_required_parameter", "model")]
    [InlineData("""{"model":"local/echo"}""", "missing_required_parameter", "messages")]
    [InlineData("""{"model":"local/echo","messages":[]}""", "missing_required_parameter", "messages")]
    [InlineData("""{"model":"local/echo","messages":[{"content":"x"}]}""", "invalid_value", "messages[0].role")]
    [InlineData("""{"model":"local/echo","messages":[{"role":"user","content":"x"},{"role":"","content":"y"}]}""", "invalid_value", "messages[1].role")]
    [InlineData("""{"model":"local/echo","messages":[null]}""", "invalid_value", "messages[0]")]
    [InlineData("""{"model":"nope/x","messages":[{"role":"user","content":"x"}]}""", "provider_not_found", "model")]
    [InlineData("""{"model":"local/other","messages":[{"role":"user","content":"x"}]}""", "model_not_found", "model")]
    [InlineData("""{"model":"local/","messages":[{"role":"user","content":"x"}]}""", "model_not_found", "model")]
    [InlineData("""{"model":"local/echo","messages":[{"role":"user","content":"x"}],"fallbacks":["nope/y"]}""", "provider_not_found", "fallbacks[0]")]
    public async Task Bad_chat_input_is_a_400_Bifrost_error(string body, string code, string? param)
    {
        await using var host = await StartRestrictedAsync();
        // The same checks apply to streamed requests (when the body parses, so "stream" can be added).
        var streams = code == "invalid_json" ? new[] { false } : [false, true];
        foreach (var stream in streams)
        {
            var payload = stream ? "{\"stream\":true," + body[1..] : body;
            using var response = await host.PostJsonAsync("/openai/v1/chat/completions", payload, TestContext.Current.CancellationToken);
            var json = await ErrorAssert.BifrostErrorAsync(response, 400);
            var error = json.GetProperty("error");
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.Equal(code, error.GetProperty("code").GetString());
            if (param is not null)
            {
                Assert.Equal(param, error.GetProperty("param").GetString());
            }

            var requestType = json.GetProperty("extra_fields").GetProperty("request_type").GetString();
            Assert.Equal(stream ? "chat_completion_stream" : "chat_completion", requestType);
        }
    }

    [Fact]
    public async Task An_unknown_provider_message_names_the_provider_and_the_configured_ones()
    {
        await using var host = await StartRestrictedAsync();
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"nope/x","messages":[{"role":"user","content":"x"}]}""", TestContext.Current.CancellationToken);

        var json = await ErrorAssert.BifrostErrorAsync(response, 400);
        var message = json.GetProperty("error").GetProperty("message").GetString();
        Assert.Contains("'nope'", message, StringComparison.Ordinal);
        Assert.Contains("local", message, StringComparison.Ordinal);
        Assert.Equal("x", json.GetProperty("extra_fields").GetProperty("model_requested").GetString()); // bare, as on every answer
    }

    [Fact]
    public async Task A_model_missing_from_the_providers_list_names_the_available_ones()
    {
        await using var host = await StartRestrictedAsync();
        using var response = await host.PostJsonAsync("/openai/chat/completions", """{"model":"local/gpt-5","messages":[{"role":"user","content":"x"}]}""", TestContext.Current.CancellationToken);

        var json = await ErrorAssert.BifrostErrorAsync(response, 400);
        var message = json.GetProperty("error").GetProperty("message").GetString();
        Assert.Contains("gpt-5", message, StringComparison.Ordinal);
        Assert.Contains("echo", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_restricted_default_a_slash_model_of_an_unknown_provider_goes_to_the_default_provider()
    {
        // "meta-llama/Llama-3.1-8B" style ids are models of the default provider when it accepts any model.
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"meta-llama/Llama-3","messages":[{"role":"user","content":"x"}]}""", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("local", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("meta-llama/Llama-3", json.GetProperty("extra_fields").GetProperty("model_requested").GetString());
    }

    [Fact]
    public async Task A_bare_model_without_any_default_provider_is_a_400()
    {
        await using var host = await GatewayHost.StartAsync(options => options.DefaultProvider = null);
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"echo","messages":[{"role":"user","content":"x"}]}""", TestContext.Current.CancellationToken);

        var json = await ErrorAssert.BifrostErrorAsync(response, 400);
        Assert.Equal("provider_not_found", json.GetProperty("error").GetProperty("code").GetString());
    }
}
