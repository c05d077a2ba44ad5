using System.Net;
using System.Text.Json.Nodes;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>Embeddings (<c>/v2/embed</c>), rerank (<c>/v2/rerank</c>, also through the route), models (<c>/v1/models</c>) and the operations Cohere lacks.</summary>
public sealed class CohereOperationsTests : CohereTestBase
{
    [Fact]
    public async Task Embeddings_send_texts_with_search_document_and_float_and_return_openai_embeddings()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/embeddings", new JsonObject { ["model"] = "cohere/embed-v4.0", ["input"] = new JsonArray("alpha", "be"), ["dimensions"] = 256 });

        var sent = Assert.Single(Upstream.Requests, r => r.Path == "/v2/embed");
        Assert.Equal("Bearer " + Key, sent.Headers["authorization"]);
        Assert.Equal("""{"model":"embed-v4.0","texts":["alpha","be"],"input_type":"search_document","embedding_types":["float"],"output_dimension":256}""", sent.Body!.ToJsonString());
        Assert.Equal("list", json.GetProperty("object").GetString());
        var data = json.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        Assert.Equal(1, data[1].GetProperty("index").GetInt32());
        Assert.Equal("[1,2,0.5]", data[1].GetProperty("embedding").GetRawText());
        Assert.Equal(10, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(10, json.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Embeddings_in_base64_are_encoded_by_the_gateway_from_coheres_floats()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/embeddings", new JsonObject { ["model"] = "cohere/embed-v4.0", ["input"] = "abc", ["encoding_format"] = "base64", ["input_type"] = "search_query", ["truncate"] = "END" });

        var sent = Assert.Single(Upstream.Requests, r => r.Path == "/v2/embed").Body!;
        Assert.Equal("search_query", sent["input_type"]!.GetValue<string>());
        Assert.Equal("END", sent["truncate"]!.GetValue<string>());
        Assert.Equal("""["float"]""", sent["embedding_types"]!.ToJsonString());
        var bytes = Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        Assert.Equal(12, bytes.Length);
        Assert.Equal(0f, BitConverter.ToSingle(bytes, 0));
        Assert.Equal(3f, BitConverter.ToSingle(bytes, 4));
        Assert.Equal(0.5f, BitConverter.ToSingle(bytes, 8));
    }

    [Theory]
    [InlineData("""{"input":[[1,2,3]]}""", "input")]
    [InlineData("""{"input":"x","input_type":"image"}""", "input_type")]
    public async Task Embedding_input_cohere_cannot_take_is_a_400(string overrides, string param)
    {
        await using var host = await StartHostAsync();
        var body = new JsonObject { ["model"] = "cohere/embed-v4.0" };
        foreach (var (name, value) in JsonNode.Parse(overrides)!.AsObject())
        {
            body[name] = value?.DeepClone();
        }

        var json = await PostAsync(host, "/openai/v1/embeddings", body, HttpStatusCode.BadRequest);

        Assert.Equal(param, json.GetProperty("error").GetProperty("param").GetString());
        Assert.DoesNotContain(Upstream.Requests, r => r.Path == "/v2/embed");
    }

    [Fact]
    public async Task Embeddings_with_fewer_vectors_than_inputs_are_an_invalid_provider_response()
    {
        Upstream.RespondEmbed = _ => JsonNode.Parse("""{"id":"e","embeddings":{"float":[[0.1]]},"meta":{"billed_units":{"input_tokens":1}}}""")!.AsObject();
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/embeddings", new JsonObject { ["model"] = "cohere/embed-v4.0", ["input"] = new JsonArray("a", "b") }, HttpStatusCode.BadGateway);

        Assert.Equal("invalid_provider_response", json.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Embedding_errors_pass_through()
    {
        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(400, "invalid request: valid input_type must be provided with the provided model"));
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/embeddings", new JsonObject { ["model"] = "cohere/embed-v4.0", ["input"] = "a" }, HttpStatusCode.BadRequest);

        Assert.Equal("invalid request: valid input_type must be provided with the provided model", json.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Rerank_sends_query_documents_and_top_n_and_returns_results_most_relevant_first()
    {
        Upstream.RespondRerank = _ => JsonNode.Parse("""
            {"id":"rr_9","results":[{"index":2,"relevance_score":0.5},{"index":0,"relevance_score":0.93},{"index":1,"relevance_score":0.5}],
             "meta":{"api_version":{"version":"2"},"billed_units":{"search_units":1}}}
            """)!.AsObject();
        await using var host = await StartHostAsync();

        var outcome = await Adapter(host).RerankAsync(Context("rerank-v3.5"), "what is bifrost?", ["A gateway.", "A bridge.", "A rainbow."], 3, Ct);

        var sent = Assert.Single(Upstream.Requests, r => r.Path == "/v2/rerank");
        Assert.Equal("Bearer " + Key, sent.Headers["authorization"]);
        Assert.Equal("""{"model":"rerank-v3.5","query":"what is bifrost?","documents":["A gateway.","A bridge.","A rainbow."],"top_n":3}""", sent.Body!.ToJsonString());
        Assert.Equal("rr_9", outcome.Id);
        Assert.Equal([0, 1, 2], outcome.Results.Select(r => r.Index));
        Assert.Equal([0.93, 0.5, 0.5], outcome.Results.Select(r => r.RelevanceScore));
        Assert.Equal(1, outcome.SearchUnits);
    }

    [Fact]
    public async Task The_rerank_route_reaches_cohere_and_returns_documents_when_asked()
    {
        Upstream.RespondRerank = _ => JsonNode.Parse("""{"id":"rr_7","results":[{"index":1,"relevance_score":0.25},{"index":0,"relevance_score":0.75}],"meta":{"billed_units":{"search_units":1}}}""")!.AsObject();
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/rerank", new JsonObject
        {
            ["model"] = "cohere/rerank-v3.5",
            ["query"] = "what is bifrost?",
            ["documents"] = new JsonArray("A gateway.", new JsonObject { ["text"] = "A bridge." }),
            ["top_n"] = 2,
            ["return_documents"] = true,
        });

        var sent = Assert.Single(Upstream.Requests, r => r.Path == "/v2/rerank");
        Assert.Equal("""{"model":"rerank-v3.5","query":"what is bifrost?","documents":["A gateway.","A bridge."],"top_n":2}""", sent.Body!.ToJsonString());
        Assert.Equal("rr_7", json.GetProperty("id").GetString());
        Assert.Equal("rerank-v3.5", json.GetProperty("model").GetString());
        var results = json.GetProperty("results");
        Assert.Equal([0, 1], results.EnumerateArray().Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal([0.75, 0.25], results.EnumerateArray().Select(r => r.GetProperty("relevance_score").GetDouble()));
        Assert.Equal(["A gateway.", "A bridge."], results.EnumerateArray().Select(r => r.GetProperty("document").GetProperty("text").GetString()));
        Assert.Equal("rerank", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
        Assert.Equal("cohere", json.GetProperty("extra_fields").GetProperty("provider").GetString());
    }

    [Fact]
    public async Task Rerank_refuses_bad_input_and_answers_with_indexes_it_cannot_place_as_invalid()
    {
        await using var host = await StartHostAsync();
        var adapter = Adapter(host);

        Assert.Equal("query", (await Assert.ThrowsAsync<BifrostException>(() => adapter.RerankAsync(Context("rerank-v3.5"), " ", ["a"], null, Ct))).Error.Error.Param);
        Assert.Equal("documents", (await Assert.ThrowsAsync<BifrostException>(() => adapter.RerankAsync(Context("rerank-v3.5"), "q", [], null, Ct))).Error.Error.Param);
        Assert.Equal("top_n", (await Assert.ThrowsAsync<BifrostException>(() => adapter.RerankAsync(Context("rerank-v3.5"), "q", ["a"], 0, Ct))).Error.Error.Param);
        Assert.DoesNotContain(Upstream.Requests, r => r.Path == "/v2/rerank");

        Upstream.RespondRerank = _ => JsonNode.Parse("""{"results":[{"index":5,"relevance_score":0.1}]}""")!.AsObject();
        var invalid = await Assert.ThrowsAsync<BifrostException>(() => adapter.RerankAsync(Context("rerank-v3.5"), "q", ["a"], null, Ct));
        Assert.Equal(502, invalid.StatusCode);

        Upstream.Failures.Enqueue(new FakeCohereUpstream.Failure(429, "You are using a Trial key, which is limited to 40 API calls / minute.", TimeSpan.FromSeconds(5)));
        var limited = await Assert.ThrowsAsync<BifrostException>(() => adapter.RerankAsync(Context("rerank-v3.5"), "q", ["a"], null, Ct));
        Assert.Equal(429, limited.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(5), limited.RetryAfter);
    }

    [Fact]
    public async Task Models_are_listed_from_every_page_without_deprecated_ones()
    {
        await using var host = await StartHostAsync();

        var models = await ((IProviderAdapter)Adapter(host)).ListModelsAsync(Context(string.Empty), Ct);

        Assert.Equal(["command-a-03-2025", "embed-v4.0", "rerank-v3.5"], models.Select(m => m.Id));
        Assert.All(models, m => Assert.Equal("cohere", m.OwnedBy));
        Assert.Equal("""["embed"]""", models[1].AdditionalProperties!["endpoints"].GetRawText());
        var pages = Upstream.Requests.Where(r => r.Path == "/v1/models").ToList();
        Assert.Equal(["?page_size=1000", "?page_size=1000&page_token=2"], pages.Select(p => p.Query));
        Assert.All(pages, p => Assert.Equal("Bearer " + Key, p.Headers["authorization"]));
    }

    [Fact]
    public async Task Configured_models_are_listed_without_calling_cohere()
    {
        await using var host = await StartHostAsync();

        var models = await ((IProviderAdapter)Adapter(host)).ListModelsAsync(Context(string.Empty, o => o.Models = ["command-a-03-2025"]), Ct);

        Assert.Equal(["command-a-03-2025"], models.Select(m => m.Id));
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Text_completions_are_unsupported_operation()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/completions", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["prompt"] = "Say" }, HttpStatusCode.BadRequest);

        Assert.Equal("unsupported_operation", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Responses_requests_run_through_cohere_chat()
    {
        await using var host = await StartHostAsync();

        var json = await PostAsync(host, "/openai/v1/responses", new JsonObject { ["model"] = "cohere/command-a-03-2025", ["input"] = "ping" });

        Assert.Equal("echo: ping", json.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Single(Upstream.ChatRequests);
    }
}
