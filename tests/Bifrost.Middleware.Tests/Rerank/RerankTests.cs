using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Inference;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Rerank;

/// <summary><c>POST rerank</c>: the local provider's word-overlap ranking, input bounds and the OpenAI-compatible (vLLM-style) passthrough.</summary>
public sealed class RerankTests
{
    private const string Path = "/openai/v1/rerank";

    [Fact]
    public async Task The_local_provider_ranks_by_word_overlap_cuts_to_top_n_and_returns_documents_when_asked()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = "local/rerank-1",
            ["query"] = "Red fox",
            ["documents"] = new JsonArray("a red fox jumps", new JsonObject { ["text"] = "blue whale" }, "the fox."),
            ["top_n"] = 2,
            ["return_documents"] = true,
        });

        Assert.Equal("rerank-1", json.GetProperty("model").GetString());
        var results = json.GetProperty("results");
        Assert.Equal(2, results.GetArrayLength());
        Assert.Equal([0, 2], results.EnumerateArray().Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal([0.5, 0.333333], results.EnumerateArray().Select(r => r.GetProperty("relevance_score").GetDouble()));
        Assert.Equal(["a red fox jumps", "the fox."], results.EnumerateArray().Select(r => r.GetProperty("document").GetProperty("text").GetString()));
        var usage = json.GetProperty("usage");
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 0);
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal("rerank", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
        Assert.Equal("local", json.GetProperty("extra_fields").GetProperty("provider").GetString());

        var plain = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/rerank-1", ["query"] = "Red fox", ["documents"] = new JsonArray("blue whale", "red") });
        Assert.Equal([1, 0], plain.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(0, plain.GetProperty("results")[1].GetProperty("relevance_score").GetDouble());
        Assert.False(plain.GetProperty("results")[0].TryGetProperty("document", out _));
    }

    public static TheoryData<string, string, string> BadRequests => new()
    {
        { """{"model":"local/r","documents":["a"]}""", "missing_required_parameter", "query" },
        { """{"model":"local/r","query":"q"}""", "missing_required_parameter", "documents" },
        { """{"model":"local/r","query":"q","documents":"a"}""", "invalid_type", "documents" },
        { """{"model":"local/r","query":"q","documents":[]}""", "invalid_value", "documents" },
        { """{"model":"local/r","query":"q","documents":["a",{"txt":"b"}]}""", "invalid_type", "documents[1]" },
        { """{"model":"local/r","query":"q","documents":["a"],"top_n":0}""", "invalid_value", "top_n" },
        { "{\"model\":\"local/r\",\"query\":\"q\",\"documents\":[" + string.Join(',', Enumerable.Repeat("\"d\"", 1001)) + "]}", "invalid_value", "documents" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_or_unbounded_requests_are_a_400_naming_the_parameter(string body, string code, string param)
    {
        await using var host = await StartLocalAsync();
        using var response = await host.SendAsync(HttpMethod.Post, Path, body);
        var json = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {json}");
        AssertError(json, 400, code, param);
    }

    [Fact]
    public async Task The_openai_compatible_adapter_posts_to_rerank_and_sorts_the_answer()
    {
        await using var upstream = await ChatOnlyUpstream.StartAsync();
        upstream.RerankReply = _ => """{"id":"rerank-up","model":"BAAI/bge-reranker-base","results":[{"index":1,"document":{"text":"B"},"relevance_score":0.2},{"index":0,"document":{"text":"A"},"relevance_score":0.9}],"usage":{"total_tokens":9}}""";
        await using var host = await StartLocalAsync(options => options.Providers["vllm"] = new ProviderOptions { Type = "openai", BaseUrl = upstream.BaseUrl, MaxRetries = 0 });

        var json = await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = "vllm/BAAI/bge-reranker-base",
            ["query"] = "q",
            ["documents"] = new JsonArray("A", "B"),
            ["top_n"] = 2,
            ["return_documents"] = true,
            ["fallbacks"] = new JsonArray("local/r"),
        });

        var sent = Assert.Single(upstream.To("/v1/rerank"));
        AssertSameJson(JsonNode.Parse("""{"model":"BAAI/bge-reranker-base","query":"q","documents":["A","B"],"top_n":2,"return_documents":true}""")!, sent.Body!);
        Assert.Equal("rerank-up", json.GetProperty("id").GetString());
        Assert.Equal("BAAI/bge-reranker-base", json.GetProperty("model").GetString());
        Assert.Equal([0, 1], json.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(["A", "B"], json.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("document").GetProperty("text").GetString()));
        Assert.Equal(9, json.GetProperty("usage").GetProperty("total_tokens").GetInt32());

        upstream.RerankReply = _ => """{"results":[{"index":7,"relevance_score":0.2}]}""";
        using var bad = await host.PostAsync(Path, new JsonObject { ["model"] = "vllm/m", ["query"] = "q", ["documents"] = new JsonArray("A") });
        Assert.True((int)bad.StatusCode >= 500, $"{(int)bad.StatusCode}");
        Assert.Equal(JsonValueKind.Object, (await ReadAsync(bad)).GetProperty("error").ValueKind);
    }
}
