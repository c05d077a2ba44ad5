using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>Embeddings through InvokeModel (Titan, Cohere), models, and the provider's start-up validation.</summary>
public sealed class BedrockOperationsTests : BedrockTestBase
{
    [Fact]
    public async Task Titan_embeds_one_text_per_call_and_sums_the_token_counts()
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "bedrock/amazon.titan-embed-text-v2:0", ["input"] = new JsonArray("one two", "three", "four five six"), ["dimensions"] = 4 };

        var json = await PostAsync(host, "/openai/v1/embeddings", body);

        var sent = Upstream.Requests.OrderBy(r => r.Body!["inputText"]!.GetValue<string>(), StringComparer.Ordinal).ToList();
        Assert.Equal(3, sent.Count);
        Assert.All(sent, r => Assert.Equal("/model/amazon.titan-embed-text-v2%3A0/invoke", r.RawTarget));
        AssertJson("""{"inputText":"four five six","dimensions":4}""", sent[0].Body);
        AssertJson("""{"inputText":"one two","dimensions":4}""", sent[1].Body);
        var data = json.GetProperty("data");
        Assert.Equal(3, data.GetArrayLength());
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(i, data[i].GetProperty("index").GetInt32());
            Assert.Equal(4, data[i].GetProperty("embedding").GetArrayLength());
        }

        Assert.Equal(7, data[0].GetProperty("embedding")[0].GetDouble()); // "one two".Length
        Assert.Equal(5, data[1].GetProperty("embedding")[0].GetDouble());
        Assert.Equal(13, data[2].GetProperty("embedding")[0].GetDouble());
        Assert.Equal(6, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Cohere_embeds_every_text_in_one_call_with_input_type_and_the_token_count_header()
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "bedrock/cohere.embed-english-v3", ["input"] = new JsonArray("alpha", "beta gamma"), ["input_type"] = "search_query", ["truncate"] = "END" };

        var json = await PostAsync(host, "/openai/v1/embeddings", body);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/model/cohere.embed-english-v3/invoke", sent.RawTarget);
        AssertJson("""{"texts":["alpha","beta gamma"],"input_type":"search_query","truncate":"END","embedding_types":["float"]}""", sent.Body);
        var data = json.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        Assert.Equal(10, data[1].GetProperty("embedding")[1].GetDouble());
        Assert.Equal(8, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Other_embedding_models_are_unsupported_operations()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/embeddings", new JsonObject { ["model"] = "bedrock/amazon.nova-lite-v1:0", ["input"] = "x" }, HttpStatusCode.BadRequest);

        Assert.Equal("unsupported_operation", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task A_failed_titan_call_fails_the_request_with_its_error()
    {
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(400, "Malformed input request"));
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/embeddings", new JsonObject { ["model"] = "bedrock/amazon.titan-embed-text-v2:0", ["input"] = "x" }, HttpStatusCode.BadRequest);

        Assert.Equal("ValidationException", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("Malformed input request", json.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Input_tokens_are_counted_with_count_tokens_over_the_converse_messages_and_system()
    {
        await using var host = await StartHostAsync();
        var request = new ResponsesRequest { Model = Model, Instructions = "Be brief.", Input = new ResponsesInput("How many tokens here?") };

        var count = await Adapter(host).CountInputTokensAsync(Context(), request, Ct);

        Assert.Equal(6, count); // "Be brief." (2) + "How many tokens here?" (4)
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/count-tokens", sent.RawTarget);
        AssertJson("""{"input":{"converse":{"messages":[{"role":"user","content":[{"text":"How many tokens here?"}]}],"system":[{"text":"Be brief."}]}}}""", sent.Body);
    }

    [Fact]
    public async Task A_model_that_cannot_count_answers_null_so_the_gateway_estimates()
    {
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(400, "The provided model doesn't support counting tokens."));
        await using var host = await StartHostAsync();

        var count = await Adapter(host).CountInputTokensAsync(Context("us.amazon.nova-pro-v1:0"), new ResponsesRequest { Model = "us.amazon.nova-pro-v1:0", Input = new ResponsesInput("hi") }, Ct);

        Assert.Null(count);
        Assert.Single(Upstream.Requests);
    }

    [Fact]
    public async Task Models_are_the_configured_ones_without_an_upstream_call()
    {
        await using var host = await StartHostAsync(p => p.Models = [Model, "amazon.titan-embed-text-v2:0"]);

        var models = await ((IProviderAdapter)Adapter(host)).ListModelsAsync(Context(configure: o => o.Models = [Model, "amazon.titan-embed-text-v2:0"]), Ct);

        Assert.Equal([Model, "amazon.titan-embed-text-v2:0"], models.Select(m => m.Id));
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public void The_default_endpoint_is_the_regional_bedrock_runtime_host()
    {
        var context = new ProviderContext("bedrock", new ProviderOptions { Type = "bedrock", Region = "eu-central-1" }, "amazon.nova-pro-v1:0", null);

        Assert.Equal("https://bedrock-runtime.eu-central-1.amazonaws.com/model/amazon.nova-pro-v1%3A0/converse", Bifrost.Middleware.Providers.Bedrock.BedrockAdapter.Endpoint(context, "converse").AbsoluteUri);
    }

    [Theory]
    [InlineData(null, null, true, "Region is required")]
    [InlineData("US East 1", null, true, "is not an AWS region name")]
    [InlineData("us-east-1", null, false, "has no credentials")]
    [InlineData(null, "http://127.0.0.1:1", false, "has no credentials")]
    public void Start_up_validation_names_what_a_bedrock_provider_lacks(string? region, string? baseUrl, bool withKey, string expected)
    {
        var services = new ServiceCollection();
        services.AddBifrost(o => o.Providers["aws"] = new ProviderOptions
        {
            Type = "bedrock",
            Region = region,
            BaseUrl = baseUrl,
            Keys = withKey ? [new ProviderKeyOptions { Value = "k" }] : [],
        });
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<BifrostOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains("Bifrost:Providers:aws", StringComparison.Ordinal) && f.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void An_authenticator_stands_in_for_keys()
    {
        var services = new ServiceCollection();
        services.AddBifrost(o => o.Providers["aws"] = new ProviderOptions { Type = "bedrock", Region = "us-west-2" })
            .AddUpstreamAuthenticator("AWS", _ => new NoAuthenticator());
        using var provider = services.BuildServiceProvider();

        Assert.Equal("us-west-2", provider.GetRequiredService<IOptions<BifrostOptions>>().Value.Providers["aws"].Region);
    }

    private sealed class NoAuthenticator : IUpstreamAuthenticator
    {
        public ValueTask AuthenticateAsync(HttpRequestMessage request, UpstreamAuthContext context, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}
