using System.Net;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary><c>images/generations</c> on Bedrock: InvokeModel with the Nova Canvas / Titan Image Generator text-to-image body.</summary>
public sealed class BedrockImageTests : BedrockTestBase
{
    private const string Canvas = "amazon.nova-canvas-v1:0";
    private const string Titan = "amazon.titan-image-generator-v2:0";

    private static JsonObject Generate(string model, string prompt = "a lighthouse at dusk") => new() { ["model"] = "bedrock/" + model, ["prompt"] = prompt };

    [Fact]
    public async Task Nova_canvas_gets_n_size_quality_seed_and_negative_prompt_and_its_images_come_back_as_b64_json()
    {
        await using var host = await StartHostAsync();
        var body = Generate(Canvas);
        body["n"] = 2;
        body["size"] = "512x768";
        body["quality"] = "hd";
        body["seed"] = 42;
        body["cfg_scale"] = 6.5;
        body["negative_prompt"] = "people";

        var json = await PostAsync(host, "/openai/v1/images/generations", body);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/model/amazon.nova-canvas-v1%3A0/invoke", sent.RawTarget);
        Assert.Equal("Bearer " + Key, sent.Headers["authorization"]);
        AssertJson(
            """{"taskType":"TEXT_IMAGE","textToImageParams":{"text":"a lighthouse at dusk","negativeText":"people"},"imageGenerationConfig":{"numberOfImages":2,"width":512,"height":768,"quality":"premium","cfgScale":6.5,"seed":42}}""",
            sent.Body);
        var data = json.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        Assert.Equal(FakeBedrockUpstream.ImageBase64("a lighthouse at dusk", 0, 42), data[0].GetProperty("b64_json").GetString());
        Assert.Equal(FakeBedrockUpstream.ImageBase64("a lighthouse at dusk", 1, 42), data[1].GetProperty("b64_json").GetString());
        Assert.False(data[0].TryGetProperty("url", out _));
        Assert.Equal(Canvas, json.GetProperty("model").GetString());
        Assert.True(json.GetProperty("created").GetInt64() > 0);
    }

    [Fact]
    public async Task Titan_image_generator_gets_the_minimal_body_by_default()
    {
        await using var host = await StartHostAsync();
        var body = Generate(Titan);
        body["size"] = "auto";
        body["quality"] = "standard";
        body["response_format"] = "b64_json";

        var json = await PostAsync(host, "/openai/v1/images/generations", body);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/model/amazon.titan-image-generator-v2%3A0/invoke", sent.RawTarget);
        AssertJson("""{"taskType":"TEXT_IMAGE","textToImageParams":{"text":"a lighthouse at dusk"},"imageGenerationConfig":{"numberOfImages":1,"quality":"standard"}}""", sent.Body);
        Assert.Equal(FakeBedrockUpstream.ImageBase64("a lighthouse at dusk", 0, null), json.GetProperty("data")[0].GetProperty("b64_json").GetString());
    }

    [Theory]
    [InlineData("response_format", "\"url\"", "unsupported_parameter")]
    [InlineData("n", "6", "invalid_value")]
    [InlineData("size", "\"large\"", "invalid_value")]
    [InlineData("quality", "\"ultra\"", "invalid_value")]
    [InlineData("style", "\"vivid\"", "unsupported_parameter")]
    [InlineData("output_format", "\"jpeg\"", "unsupported_parameter")]
    [InlineData("seed", "-1", "invalid_value")]
    public async Task Parameters_bedrock_cannot_honour_are_a_400_before_any_call(string name, string value, string code)
    {
        await using var host = await StartHostAsync();
        var body = Generate(Canvas);
        body[name] = JsonNode.Parse(value);

        var json = await PostAsync(host, "/openai/v1/images/generations", body, HttpStatusCode.BadRequest);

        Assert.Equal(code, json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(name, json.GetProperty("error").GetProperty("param").GetString());
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task A_prompt_blocked_by_the_input_filter_is_a_content_policy_violation()
    {
        const string message = "This request has been blocked by our content filters. Please adjust your text prompt to submit a new request.";
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(400, message));
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/images/generations", Generate(Canvas), HttpStatusCode.BadRequest);

        Assert.Equal("content_policy_violation", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", json.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(message, json.GetProperty("error").GetProperty("message").GetString());
        Assert.False(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Single(Upstream.Requests);
    }

    [Fact]
    public async Task All_images_blocked_by_the_output_filter_is_a_content_policy_violation()
    {
        Upstream.ImageFilter = ("All of the generated images have been blocked by our content filters.", 1);
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/images/generations", Generate(Canvas), HttpStatusCode.BadRequest);

        Assert.Equal("content_policy_violation", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("All of the generated images have been blocked by our content filters.", json.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task When_some_images_are_blocked_the_others_are_answered()
    {
        Upstream.ImageFilter = ("Some of the generated images have been blocked by our content filters.", 1);
        await using var host = await StartHostAsync();
        var body = Generate(Canvas);
        body["n"] = 3;

        var json = await PostAsync(host, "/openai/v1/images/generations", body);

        Assert.Equal(2, json.GetProperty("data").GetArrayLength());
    }

    [Fact]
    public async Task Other_validation_errors_and_throttling_pass_through_with_bedrocks_type()
    {
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(400, "1 validation error detected: Value at 'width' failed to satisfy constraint"));
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(429, "Too many requests, please wait before trying again.", TimeSpan.FromSeconds(7)));
        await using var host = await StartHostAsync();

        var invalid = await PostAsync(host, "/openai/v1/images/generations", Generate(Canvas), HttpStatusCode.BadRequest);
        using var throttled = await host.PostJsonAsync("/openai/v1/images/generations", Generate(Canvas).ToJsonString(), Ct);

        Assert.Equal("ValidationException", invalid.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.Equal("ThrottlingException", (await Infrastructure.GatewayHost.ReadJsonAsync(throttled)).GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Other_models_are_an_unsupported_operation()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/images/generations", Generate("stability.sd3-5-large-v1:0"), HttpStatusCode.BadRequest);

        Assert.Equal("unsupported_operation", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(Upstream.Requests);
    }
}
