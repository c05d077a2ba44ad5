using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>Embeddings and legacy completions on an OpenAI-compatible upstream: what it receives, and the caller's encoding whatever the upstream sends.</summary>
public sealed class UpstreamEmbeddingsAndCompletionsTests : IAsyncLifetime
{
    private static readonly float[] Vector0 = [0.5f, -0.25f, 1e-7f, float.Epsilon, -3.4028235e38f, 0.1f];
    private static readonly float[] Vector1 = [1f, 0f, -1f, 0.333333f, 123.456f, -0.0f];
    private ChatOnlyUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await ChatOnlyUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    private Task<GatewayHost> StartAsync() => StartLocalAsync(options => options.Providers["compat"] = new ProviderOptions
    {
        Type = "openai",
        BaseUrl = _upstream.BaseUrl,
        MaxRetries = 0,
        Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
    });

    /// <summary>An upstream embeddings answer in the given encoding, whatever was asked.</summary>
    private static JsonObject Embeddings(JsonObject request, bool base64) => new()
    {
        ["object"] = "list",
        ["model"] = request["model"]!.GetValue<string>() + "-v2",
        ["data"] = new JsonArray(
            new JsonObject { ["object"] = "embedding", ["index"] = 0, ["embedding"] = Encode(Vector0, base64) },
            new JsonObject { ["object"] = "embedding", ["index"] = 1, ["embedding"] = Encode(Vector1, base64) }),
        ["usage"] = new JsonObject { ["prompt_tokens"] = 5, ["total_tokens"] = 5 },
    };

    private static JsonNode Encode(float[] values, bool base64)
    {
        if (!base64)
        {
            return new JsonArray([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);
        }

        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        }

        return JsonValue.Create(Convert.ToBase64String(bytes));
    }

    [Theory]
    [InlineData("float", true)]
    [InlineData("base64", false)]
    [InlineData("float", false)]
    [InlineData("base64", true)]
    public async Task The_caller_gets_the_encoding_it_asked_for_whatever_the_upstream_sends(string asked, bool upstreamSendsBase64)
    {
        _upstream.EmbeddingsReply = request => Embeddings(request, upstreamSendsBase64);
        await using var host = await StartAsync();
        var json = await host.PostOkAsync("/openai/v1/embeddings", new JsonObject
        {
            ["model"] = "compat/text-embedding-3-small",
            ["input"] = new JsonArray(new JsonArray(1, 2, 3), new JsonArray(4, 5)),
            ["dimensions"] = 6,
            ["encoding_format"] = asked,
            ["user"] = "u-1",
            ["fallbacks"] = new JsonArray("local/echo"),
        });

        var data = json.GetProperty("data");
        for (var i = 0; i < 2; i++)
        {
            var embedding = data[i].GetProperty("embedding");
            var values = asked == "base64" ? DecodeBase64(embedding.GetString()!) : Floats(embedding);
            Assert.Equal(asked == "base64" ? JsonValueKind.String : JsonValueKind.Array, embedding.ValueKind);
            Assert.Equal(i == 0 ? Vector0 : Vector1, values);
        }

        Assert.Equal("text-embedding-3-small-v2", json.GetProperty("model").GetString());
        Assert.Equal(5, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal("compat", json.GetProperty("extra_fields").GetProperty("provider").GetString());

        // Upstream: the bare model and the request as the caller wrote it (token arrays stay token arrays).
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/embeddings", sent.Path);
        Assert.Equal("Bearer sk-upstream", sent.Authorization);
        Assert.Equal("text-embedding-3-small", sent.Body!["model"]!.GetValue<string>());
        AssertSameJson(JsonNode.Parse("[[1,2,3],[4,5]]")!, sent.Body["input"]!);
        Assert.Equal(6, sent.Body["dimensions"]!.GetValue<int>());
        Assert.Equal(asked, sent.Body["encoding_format"]!.GetValue<string>());
        Assert.Equal("u-1", sent.Body["user"]!.GetValue<string>());
        Assert.Null(sent.Body["fallbacks"]);
    }

    [Fact]
    public async Task Completions_are_forwarded_and_relayed_sync_and_streamed()
    {
        _upstream.CompletionsReply = request => JsonNode.Parse($$"""
            {"id":"cmpl-up","object":"text_completion","created":1700000000,"model":"{{request["model"]}}",
             "choices":[{"text":" and more","index":0,"logprobs":null,"finish_reason":"length"}],
             "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5},"system_fingerprint":"fp_1"}
            """)!.AsObject();
        _upstream.CompletionsStream = request =>
        [
            JsonNode.Parse("""{"id":"cmpl-up","object":"text_completion","created":1700000000,"model":"m","choices":[{"text":" and","index":0,"logprobs":null,"finish_reason":null}]}""")!.AsObject(),
            JsonNode.Parse("""{"id":"cmpl-up","object":"text_completion","created":1700000000,"model":"m","choices":[{"text":" more","index":0,"logprobs":null,"finish_reason":"length"}]}""")!.AsObject(),
            JsonNode.Parse("""{"id":"cmpl-up","object":"text_completion","created":1700000000,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}""")!.AsObject(),
        ];
        await using var host = await StartAsync();
        var body = new JsonObject
        {
            ["model"] = "compat/gpt-3.5-turbo-instruct",
            ["prompt"] = "This and",
            ["suffix"] = "!",
            ["max_tokens"] = 2,
            ["stop"] = new JsonArray("\n", "."),
            ["echo"] = false,
            ["best_of"] = 1,
        };
        var json = await host.PostOkAsync("/openai/v1/completions", body.DeepClone());
        Assert.Equal("cmpl-up", json.GetProperty("id").GetString());
        Assert.Equal(" and more", json.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal("length", json.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("fp_1", json.GetProperty("system_fingerprint").GetString());
        Assert.Equal("text_completion", json.GetProperty("extra_fields").GetProperty("request_type").GetString());

        var sent = Assert.Single(_upstream.Requests).Body!;
        var expected = body.DeepClone().AsObject();
        expected["model"] = "gpt-3.5-turbo-instruct";
        AssertSameJson(expected, sent);

        body["stream"] = true;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };
        using var response = await host.PostAsync("/openai/v1/completions", body);
        var (chunks, done) = await ReadDataStreamAsync(response);
        Assert.True(done);
        Assert.Equal(3, chunks.Count);
        Assert.Equal(" and more", string.Concat(chunks.Take(2).Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.Equal(5, chunks[2].GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal([0, 1, 2], chunks.Select(c => c.GetProperty("extra_fields").GetProperty("chunk_index").GetInt32()));
        var streamed = _upstream.Requests.Last().Body!;
        Assert.True(streamed["stream"]!.GetValue<bool>());
        Assert.True(streamed["stream_options"]!["include_usage"]!.GetValue<bool>());
    }
}
