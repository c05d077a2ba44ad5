using System.Net;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary><c>POST /v1/rerank</c> on Bedrock: Agents for Amazon Bedrock Runtime's <c>Rerank</c>, with a (test) request signer.</summary>
public sealed class BedrockRerankTests : BedrockTestBase
{
    private const string Signature = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/test";

    private static readonly string[] Documents =
    [
        "Paris is the capital of France.",
        "The Eiffel Tower is in Paris, the capital of France.",
        "Berlin is the capital of Germany.",
        "Bananas are yellow.",
        "France borders Spain.",
    ];

    /// <summary>A gateway whose <c>bedrock</c> provider has no keys and signs with <see cref="TestSigner"/> (as UseBedrockSigV4 would).</summary>
    private Task<GatewayHost> StartSignedHostAsync() => GatewayHost.StartAsync(
        o => o.Providers["bedrock"] = new ProviderOptions { Type = "bedrock", BaseUrl = Upstream.BaseUrl, Region = "eu-west-3", MaxRetries = 0, RetryBaseDelay = TimeSpan.Zero },
        b => b.AddUpstreamAuthenticator("bedrock", _ => new TestSigner()));

    private static JsonObject Rerank(string model, int? topN = null, bool returnDocuments = false)
    {
        var body = new JsonObject { ["model"] = "bedrock/" + model, ["query"] = "capital of France", ["documents"] = new JsonArray([.. Documents.Select(d => (JsonNode)d)]) };
        if (topN is not null)
        {
            body["top_n"] = topN;
        }

        if (returnDocuments)
        {
            body["return_documents"] = true;
        }

        return body;
    }

    [Fact]
    public async Task The_query_and_documents_go_to_the_agent_runtime_with_the_models_arn_and_come_back_ranked()
    {
        await using var host = await StartSignedHostAsync();

        var json = await PostAsync(host, "/openai/v1/rerank", Rerank("cohere.rerank-v3-5:0", topN: 2, returnDocuments: true));

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("POST /rerank", sent.Method + " " + sent.RawTarget);
        Assert.Equal(Signature, sent.Headers["authorization"]);
        var expected = new JsonObject
        {
            ["queries"] = new JsonArray(new JsonObject { ["type"] = "TEXT", ["textQuery"] = new JsonObject { ["text"] = "capital of France" } }),
            ["sources"] = new JsonArray([.. Documents.Select(d => (JsonNode)new JsonObject { ["type"] = "INLINE", ["inlineDocumentSource"] = new JsonObject { ["type"] = "TEXT", ["textDocument"] = new JsonObject { ["text"] = d } } })]),
            ["rerankingConfiguration"] = new JsonObject
            {
                ["type"] = "BEDROCK_RERANKING_MODEL",
                ["bedrockRerankingConfiguration"] = new JsonObject
                {
                    ["numberOfResults"] = 2,
                    ["modelConfiguration"] = new JsonObject { ["modelArn"] = "arn:aws:bedrock:eu-west-3::foundation-model/cohere.rerank-v3-5:0" },
                },
            },
        };
        AssertJson(expected.ToJsonString(), sent.Body);

        var results = json.GetProperty("results");
        Assert.Equal(2, results.GetArrayLength());
        Assert.Equal(1, results[0].GetProperty("index").GetInt32()); // all three words, the later of the two full matches
        Assert.Equal(0, results[1].GetProperty("index").GetInt32());
        Assert.Equal(FakeBedrockUpstream.RerankScore("capital of France", Documents[1], 1), results[0].GetProperty("relevance_score").GetDouble());
        Assert.Equal(Documents[1], results[0].GetProperty("document").GetProperty("text").GetString());
        Assert.Equal("cohere.rerank-v3-5:0", json.GetProperty("model").GetString());
        Assert.Equal("req-1", json.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Every_page_is_read_and_all_documents_are_ranked_most_relevant_first()
    {
        Upstream.RerankPageSize = 2;
        await using var host = await StartSignedHostAsync();

        var json = await PostAsync(host, "/openai/v1/rerank", Rerank("amazon.rerank-v1:0"));

        var sent = Upstream.Requests.ToList();
        Assert.Equal(3, sent.Count);
        Assert.Null(sent[0].Body!["nextToken"]);
        Assert.Equal("2", sent[1].Body!["nextToken"]!.GetValue<string>());
        Assert.Equal("4", sent[2].Body!["nextToken"]!.GetValue<string>());
        Assert.All(sent, r => Assert.Equal(5, r.Body!["rerankingConfiguration"]!["bedrockRerankingConfiguration"]!["numberOfResults"]!.GetValue<int>()));
        Assert.Equal("arn:aws:bedrock:eu-west-3::foundation-model/amazon.rerank-v1:0", sent[0].Body!["rerankingConfiguration"]!["bedrockRerankingConfiguration"]!["modelConfiguration"]!["modelArn"]!.GetValue<string>());
        var results = json.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal([1, 0, 2, 4, 3], results.Select(r => r.GetProperty("index").GetInt32()));
        Assert.All(results, r => Assert.False(r.TryGetProperty("document", out _)));
    }

    [Fact]
    public async Task A_provider_with_a_bedrock_api_key_answers_unsupported_operation_without_calling()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/rerank", Rerank("amazon.rerank-v1:0"), HttpStatusCode.BadRequest);

        Assert.Equal("unsupported_operation", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("SigV4", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Key, json.ToString(), StringComparison.Ordinal);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Other_models_are_an_unsupported_operation()
    {
        await using var host = await StartSignedHostAsync();

        var json = await PostAsync(host, "/openai/v1/rerank", Rerank("amazon.nova-pro-v1:0"), HttpStatusCode.BadRequest);

        Assert.Equal("unsupported_operation", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Bedrocks_errors_pass_through_with_their_status_and_type()
    {
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(429, "Too many requests", TimeSpan.FromSeconds(3)));
        Upstream.Failures.Enqueue(new FakeBedrockUpstream.Failure(400, "The model arn provided is not supported for reranking"));
        await using var host = await StartSignedHostAsync();

        using var throttled = await host.PostJsonAsync("/openai/v1/rerank", Rerank("amazon.rerank-v1:0").ToJsonString(), Ct);
        var invalid = await PostAsync(host, "/openai/v1/rerank", Rerank("amazon.rerank-v1:0"), HttpStatusCode.BadRequest);

        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.Equal("ThrottlingException", (await GatewayHost.ReadJsonAsync(throttled)).GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("ValidationException", invalid.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("The model arn provided is not supported for reranking", invalid.GetProperty("error").GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("amazon.rerank-v1:0", "us-west-2", "arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0")]
    [InlineData("cohere.rerank-v3-5:0", "us-gov-west-1", "arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/cohere.rerank-v3-5:0")]
    [InlineData("arn:aws:bedrock:ca-central-1::foundation-model/amazon.rerank-v1:0", "us-west-2", "arn:aws:bedrock:ca-central-1::foundation-model/amazon.rerank-v1:0")]
    public void The_model_arn_is_built_in_the_regions_partition(string model, string region, string expected) =>
        Assert.Equal(expected, Providers.Bedrock.BedrockAdapter.RerankModelArn(new ProviderContext("bedrock", new ProviderOptions { Type = "bedrock", Region = region }, model, null)));

    /// <summary>Stands in for SigV4 (tested in Bifrost.Middleware.Bedrock.Tests): sets a fixed Authorization.</summary>
    private sealed class TestSigner : IUpstreamAuthenticator
    {
        public ValueTask AuthenticateAsync(HttpRequestMessage request, UpstreamAuthContext context, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation("Authorization", Signature);
            return ValueTask.CompletedTask;
        }
    }
}
