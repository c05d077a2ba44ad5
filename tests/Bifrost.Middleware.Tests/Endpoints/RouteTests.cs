using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Endpoints;

public sealed class RouteTests
{
    private const string ChatBody = """{"model":"local/echo","messages":[{"role":"user","content":"route check"}]}""";

    [Theory]
    [InlineData("/openai/v1/chat/completions")]
    [InlineData("/openai/chat/completions")]
    public async Task Chat_completions_answers_with_and_without_v1(string path)
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync(path, ChatBody, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("route check", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Theory]
    [InlineData("/openai/v1/models")]
    [InlineData("/openai/models")]
    public async Task Models_answers_with_and_without_v1(string path)
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.Client.GetAsync(path, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal("list", json.GetProperty("object").GetString());
        Assert.Contains("local/echo", json.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
    }

    [Fact]
    public async Task A_custom_prefix_serves_every_route_and_the_default_prefix_is_not_mapped()
    {
        await using var host = await GatewayHost.StartAsync(prefix: "/llm/gateway");
        var ct = TestContext.Current.CancellationToken;

        using (var chat = await host.PostJsonAsync("/llm/gateway/v1/chat/completions", ChatBody, ct))
        {
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }

        using (var chat = await host.PostJsonAsync("/llm/gateway/chat/completions", ChatBody, ct))
        {
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }

        using (var models = await host.Client.GetAsync("/llm/gateway/v1/models", ct))
        {
            Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        }

        using (var models = await host.Client.GetAsync("/llm/gateway/models", ct))
        {
            Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        }

        using var old = await host.PostJsonAsync("/openai/v1/chat/completions", ChatBody, ct);
        Assert.Equal(HttpStatusCode.NotFound, old.StatusCode);
    }

    [Theory]
    [InlineData("/openai/")]
    [InlineData("openai")]
    [InlineData("/openai/v2/")]
    public async Task A_prefix_with_a_trailing_slash_or_without_a_leading_one_maps_the_same_routes(string prefix)
    {
        await using var host = await GatewayHost.StartAsync(prefix: prefix);
        var root = "/" + prefix.Trim('/');
        var ct = TestContext.Current.CancellationToken;

        using var chat = await host.PostJsonAsync(root + "/v1/chat/completions", ChatBody, ct);
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        using var models = await host.Client.GetAsync(root + "/models", ct);
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        using var unknown = await host.Client.GetAsync(root + "/v1/nope", ct);
        await ErrorAssert.BifrostErrorAsync(unknown, 404);
    }

    [Theory]
    [InlineData("/OpenAI/V1/Chat/Completions")]
    [InlineData("/openai/CHAT/completions")]
    public async Task Routes_match_case_insensitively_like_the_rest_of_ASP_NET_Core_routing(string path)
    {
        await using var host = await GatewayHost.StartAsync();
        using var post = await host.PostJsonAsync(path, ChatBody, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, post.StatusCode);

        using var get = await host.Client.GetAsync(path, TestContext.Current.CancellationToken);
        await ErrorAssert.BifrostErrorAsync(get, 405);
    }

    [Theory]
    [InlineData("GET", "/openai/v1/nope")]
    [InlineData("POST", "/openai/v1/embeddings/unknown/thing")]
    [InlineData("GET", "/openai/nope")]
    [InlineData("POST", "/openai/v1/chat/completion")]
    [InlineData("GET", "/openai/v1")]
    public async Task An_unknown_route_under_the_prefix_is_a_404_in_the_Bifrost_shape(string method, string path)
    {
        await using var host = await GatewayHost.StartAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "POST" ? new StringContent("{}") : null };
        using var response = await host.Client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = await ErrorAssert.BifrostErrorAsync(response, 404);
        Assert.Equal("unknown_url", error.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains(path, error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", "/openai/v1/chat/completions")]
    [InlineData("GET", "/openai/chat/completions")]
    [InlineData("DELETE", "/openai/v1/chat/completions")]
    [InlineData("POST", "/openai/v1/models")]
    [InlineData("PUT", "/openai/models")]
    public async Task A_wrong_method_on_a_known_route_is_a_405_in_the_Bifrost_shape(string method, string path)
    {
        await using var host = await GatewayHost.StartAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = method is "POST" or "PUT" ? new StringContent("{}") : null };
        using var response = await host.Client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        var error = await ErrorAssert.BifrostErrorAsync(response, 405);
        Assert.Equal("method_not_allowed", error.GetProperty("error").GetProperty("code").GetString());

        // RFC 9110: a 405 names the allowed methods.
        Assert.Equal(path.EndsWith("models", StringComparison.Ordinal) ? ["GET"] : ["POST"], response.Content.Headers.Allow);
    }
}

/// <summary>Checks the Bifrost error shape every non-2xx answer must have.</summary>
public static class ErrorAssert
{
    public static async Task<JsonElement> BifrostErrorAsync(HttpResponseMessage response, int status, bool isBifrostError = true)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var json = await GatewayHost.ReadJsonAsync(response);
        Shape(json, status, isBifrostError);
        return json;
    }

    public static void Shape(JsonElement json, int status, bool isBifrostError = true)
    {
        Assert.Equal(isBifrostError, json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(status, json.GetProperty("status_code").GetInt32());
        var error = json.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("type").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("code").GetString()));
    }
}
