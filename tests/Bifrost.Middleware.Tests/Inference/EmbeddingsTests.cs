using System.Text.Json;
using System.Text.Json.Nodes;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary><c>POST embeddings</c> through TestHost on the local provider: input forms, dimensions, float and base64, usage, errors.</summary>
public sealed class EmbeddingsTests
{
    private const string Path = "/openai/v1/embeddings";

    [Fact]
    public async Task A_string_input_gives_one_unit_vector_of_the_default_256_dimensions_with_usage_and_extra_fields()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "The quick brown fox" });

        Assert.Equal("list", json.GetProperty("object").GetString());
        Assert.Equal("echo", json.GetProperty("model").GetString());
        var data = json.GetProperty("data");
        Assert.Equal(1, data.GetArrayLength());
        Assert.Equal("embedding", data[0].GetProperty("object").GetString());
        Assert.Equal(0, data[0].GetProperty("index").GetInt32());
        var vector = Floats(data[0].GetProperty("embedding"));
        Assert.Equal(256, vector.Length);
        Assert.Equal(1.0, Math.Sqrt(vector.Sum(v => (double)v * v)), 4);

        // The local provider counts one token per word piece.
        Assert.Equal(4, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(4, json.GetProperty("usage").GetProperty("total_tokens").GetInt32());

        var extra = json.GetProperty("extra_fields");
        Assert.Equal("embedding", extra.GetProperty("request_type").GetString());
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.Equal("echo", extra.GetProperty("model_requested").GetString());
        Assert.True(extra.GetProperty("latency").GetInt64() >= 0);
        Assert.False(extra.TryGetProperty("chunk_index", out _));
        Assert.False(extra.TryGetProperty("count_method", out _));
    }

    [Fact]
    public async Task The_same_text_always_gives_the_same_vector_and_different_texts_different_ones()
    {
        await using var host = await StartLocalAsync();
        var first = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "stable text" });
        await using var other = await StartLocalAsync();
        var again = await other.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray("different text", "stable text") });

        var a = Floats(first.GetProperty("data")[0].GetProperty("embedding"));
        Assert.Equal(a, Floats(again.GetProperty("data")[1].GetProperty("embedding")));
        Assert.NotEqual(a, Floats(again.GetProperty("data")[0].GetProperty("embedding")));
    }

    [Fact]
    public async Task A_string_array_gives_one_embedding_per_input_in_order_and_sums_usage()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray("one", "two words", "three little words") });

        var data = json.GetProperty("data");
        Assert.Equal(3, data.GetArrayLength());
        Assert.Equal([0, 1, 2], data.EnumerateArray().Select(d => d.GetProperty("index").GetInt32()));
        foreach (var (text, i) in new[] { "one", "two words", "three little words" }.Select((t, i) => (t, i)))
        {
            var single = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = text });
            Assert.Equal(Floats(single.GetProperty("data")[0].GetProperty("embedding")), Floats(data[i].GetProperty("embedding")));
        }

        Assert.Equal(1 + 2 + 3, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Token_array_and_array_of_token_arrays_are_accepted_and_usage_counts_the_tokens()
    {
        await using var host = await StartLocalAsync();
        var single = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray(9906, 1917, 0) });
        Assert.Equal(1, single.GetProperty("data").GetArrayLength());
        Assert.Equal(3, single.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        var many = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray(new JsonArray(9906, 1917, 0), new JsonArray(42), new JsonArray(1, 2, 3, 4, 5)) });
        var data = many.GetProperty("data");
        Assert.Equal(3, data.GetArrayLength());
        Assert.Equal(3 + 1 + 5, many.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.All(data.EnumerateArray(), d => Assert.Equal(256, d.GetProperty("embedding").GetArrayLength()));

        // The same token array gives the same vector in both forms; another one a different vector.
        Assert.Equal(Floats(single.GetProperty("data")[0].GetProperty("embedding")), Floats(data[0].GetProperty("embedding")));
        Assert.NotEqual(Floats(data[0].GetProperty("embedding")), Floats(data[1].GetProperty("embedding")));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(1536)]
    public async Task Dimensions_are_honoured_in_both_encodings(int dimensions)
    {
        await using var host = await StartLocalAsync();
        var floats = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "size me", ["dimensions"] = dimensions });
        var vector = Floats(floats.GetProperty("data")[0].GetProperty("embedding"));
        Assert.Equal(dimensions, vector.Length);
        Assert.Equal(1.0, Math.Sqrt(vector.Sum(v => (double)v * v)), 4);

        var base64 = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "size me", ["dimensions"] = dimensions, ["encoding_format"] = "base64" });
        Assert.Equal(dimensions, DecodeBase64(base64.GetProperty("data")[0].GetProperty("embedding").GetString()!).Length);
    }

    [Fact]
    public async Task Dimensions_beyond_what_any_openai_model_offers_are_refused_not_allocated()
    {
        await using var host = await StartLocalAsync();
        var largest = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "big", ["dimensions"] = 3072 });
        Assert.Equal(3072, largest.GetProperty("data")[0].GetProperty("embedding").GetArrayLength());

        // Unbounded, a huge value (say a billion) allocated gigabytes and crashed the process; a million is enough to show the cap.
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "big", ["dimensions"] = 1_000_000 });
        var json = await ReadAsync(response);
        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("dimensions", json.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal("invalid_value", json.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Base64_is_the_little_endian_float32_bytes_of_the_float_answer()
    {
        await using var host = await StartLocalAsync();
        JsonNode Body(string? format)
        {
            var body = new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray("alpha", "beta gamma") };
            if (format is not null)
            {
                body["encoding_format"] = format;
            }

            return body;
        }

        var implicitFloat = await host.PostOkAsync(Path, Body(null));
        var explicitFloat = await host.PostOkAsync(Path, Body("float"));
        var base64 = await host.PostOkAsync(Path, Body("base64"));

        for (var i = 0; i < 2; i++)
        {
            var expected = Floats(implicitFloat.GetProperty("data")[i].GetProperty("embedding"));
            Assert.Equal(JsonValueKind.Array, explicitFloat.GetProperty("data")[i].GetProperty("embedding").ValueKind);
            Assert.Equal(expected, Floats(explicitFloat.GetProperty("data")[i].GetProperty("embedding")));

            var encoded = base64.GetProperty("data")[i].GetProperty("embedding");
            Assert.Equal(JsonValueKind.String, encoded.ValueKind);
            Assert.Equal(expected, DecodeBase64(encoded.GetString()!));
        }

        Assert.Equal(implicitFloat.GetProperty("usage").GetRawText(), base64.GetProperty("usage").GetRawText());
    }

    [Fact]
    public async Task The_unversioned_route_answers_the_same()
    {
        await using var host = await StartLocalAsync();
        var v1 = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["input"] = "route" });
        var bare = await host.PostOkAsync("/openai/embeddings", new JsonObject { ["model"] = "local/echo", ["input"] = "route" });
        AssertSameJson(WithoutVolatileFields(v1), WithoutVolatileFields(bare));
    }

    public static TheoryData<string, string, string> BadRequests => new()
    {
        { """{"model":"local/echo"}""", "missing_required_parameter", "input" },
        { """{"model":"local/echo","input":[]}""", "missing_required_parameter", "input" },
        { """{"model":"local/echo","input":"x","encoding_format":"binary"}""", "invalid_value", "encoding_format" },
        { """{"model":"local/echo","input":"x","encoding_format":"FLOAT"}""", "invalid_value", "encoding_format" },
        { """{"model":"local/echo","input":"x","dimensions":0}""", "invalid_value", "dimensions" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Invalid_requests_are_400s_in_the_bifrost_error_shape(string body, string code, string param)
    {
        await using var host = await StartLocalAsync();
        var error = await host.PostErrorAsync(Path, JsonNode.Parse(body)!, 400, code, param);
        Assert.Equal("invalid_request_error", error.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("embedding", error.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task An_unknown_provider_is_a_400_not_a_crash()
    {
        await using var host = await StartLocalAsync(o => o.DefaultProvider = null);
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "nope/thing", ["input"] = "x" });
        var json = await ReadAsync(response);
        Assert.Equal(400, (int)response.StatusCode);
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal("provider_not_found", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("model", json.GetProperty("error").GetProperty("param").GetString());
    }
}
