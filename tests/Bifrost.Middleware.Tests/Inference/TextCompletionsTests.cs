using System.Text.Json;
using System.Text.Json.Nodes;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>Legacy <c>POST completions</c> through TestHost on the local provider (which answers with the prompt): sync, SSE, echo.</summary>
public sealed class TextCompletionsTests
{
    private const string Path = "/openai/v1/completions";

    [Fact]
    public async Task A_sync_completion_is_a_text_completion_object_with_usage_and_extra_fields()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["prompt"] = "Say this is a test", ["max_tokens"] = 16 });

        Assert.Equal("text_completion", json.GetProperty("object").GetString());
        Assert.StartsWith("cmpl-", json.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.True(json.GetProperty("created").GetInt64() > 1_600_000_000);
        Assert.Equal("echo", json.GetProperty("model").GetString());
        var choice = Assert.Single(json.GetProperty("choices").EnumerateArray());
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal("Say this is a test", choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind);

        var usage = json.GetProperty("usage");
        Assert.Equal(5, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(5, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(10, usage.GetProperty("total_tokens").GetInt32());

        var extra = json.GetProperty("extra_fields");
        Assert.Equal("text_completion", extra.GetProperty("request_type").GetString());
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.Equal("echo", extra.GetProperty("model_requested").GetString());
    }

    [Fact]
    public async Task An_array_of_prompts_gives_a_choice_per_prompt()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["prompt"] = new JsonArray("first", "second prompt") });
        var choices = json.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal(["first", "second prompt"], choices.Select(c => c.GetProperty("text").GetString()));
        Assert.Equal([0, 1], choices.Select(c => c.GetProperty("index").GetInt32()));
    }

    [Fact]
    public async Task Echo_puts_the_prompt_before_the_completion()
    {
        await using var host = await StartLocalAsync();
        var plain = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["prompt"] = "Once upon a time", ["metadata"] = new JsonObject { ["local_reply"] = " there was a fox." } });
        var echoed = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["prompt"] = "Once upon a time", ["echo"] = true, ["metadata"] = new JsonObject { ["local_reply"] = " there was a fox." } });

        Assert.Equal(" there was a fox.", plain.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal("Once upon a time there was a fox.", echoed.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Streaming_sends_text_completion_chunks_a_finish_reason_a_usage_chunk_and_done()
    {
        await using var host = await StartLocalAsync();
        var sync = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/echo", ["prompt"] = "stream these four words" });
        using var response = await host.PostAsync(Path, new JsonObject
        {
            ["model"] = "local/echo",
            ["prompt"] = "stream these four words",
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        });
        var (chunks, done) = await ReadDataStreamAsync(response);

        Assert.True(done, "the stream ends with data: [DONE]");
        Assert.True(chunks.Count >= 3, $"{chunks.Count} chunks");
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());

        // The text chunks: finish_reason null until the last choice chunk, which says "stop".
        var withChoices = chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).ToList();
        var finishes = withChoices.Select(c => c.GetProperty("choices")[0].GetProperty("finish_reason")).ToList();
        Assert.All(finishes[..^1], f => Assert.Equal(JsonValueKind.Null, f.ValueKind));
        Assert.Equal("stop", finishes[^1].GetString());
        var text = string.Concat(withChoices.Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal(sync.GetProperty("choices")[0].GetProperty("text").GetString(), text);

        // The usage chunk comes last, with no choices, and counts what the sync call counts.
        var last = chunks[^1];
        Assert.Equal(0, last.GetProperty("choices").GetArrayLength());
        Assert.Equal(sync.GetProperty("usage").GetRawText(), last.GetProperty("usage").GetRawText());
        Assert.All(chunks[..^1], c => Assert.False(c.TryGetProperty("usage", out var u) && u.ValueKind != JsonValueKind.Null, "usage only on the last chunk"));

        // extra_fields on every chunk, with increasing chunk_index.
        Assert.Equal(Enumerable.Range(0, chunks.Count), chunks.Select(c => c.GetProperty("extra_fields").GetProperty("chunk_index").GetInt32()));
        Assert.All(chunks, c => Assert.Equal("text_completion_stream", c.GetProperty("extra_fields").GetProperty("request_type").GetString()));
    }

    [Fact]
    public async Task Streaming_without_include_usage_sends_no_usage_chunk()
    {
        await using var host = await StartLocalAsync();
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "local/echo", ["prompt"] = "no usage please", ["stream"] = true });
        var (chunks, done) = await ReadDataStreamAsync(response);
        Assert.True(done);
        Assert.All(chunks, c => Assert.Equal(1, c.GetProperty("choices").GetArrayLength()));
        Assert.All(chunks, c => Assert.False(c.TryGetProperty("usage", out var u) && u.ValueKind != JsonValueKind.Null));
        Assert.Equal("stop", chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Streaming_with_echo_streams_the_same_text_as_the_sync_call()
    {
        await using var host = await StartLocalAsync();
        var body = new JsonObject { ["model"] = "local/echo", ["prompt"] = "Echo me", ["echo"] = true, ["metadata"] = new JsonObject { ["local_reply"] = ", please." } };
        var sync = await host.PostOkAsync(Path, body.DeepClone());
        Assert.Equal("Echo me, please.", sync.GetProperty("choices")[0].GetProperty("text").GetString());

        body["stream"] = true;
        using var response = await host.PostAsync(Path, body);
        var (chunks, done) = await ReadDataStreamAsync(response);
        Assert.True(done);
        Assert.Equal("Echo me, please.", string.Concat(chunks.Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
    }

    [Theory]
    [InlineData("""{"model":"local/echo","prompt":["first prompt","second"]}""")]
    [InlineData("""{"model":"local/echo","prompt":"twice please","n":2}""")]
    [InlineData("""{"model":"local/echo","prompt":["a b","c"],"n":2,"echo":true}""")]
    public async Task Streaming_gives_the_same_choices_as_the_sync_call(string body)
    {
        await using var host = await StartLocalAsync();
        var sync = await host.PostOkAsync(Path, JsonNode.Parse(body)!);
        var expected = sync.GetProperty("choices").EnumerateArray().Select(c => (c.GetProperty("index").GetInt32(), c.GetProperty("text").GetString()!)).ToList();

        var streaming = JsonNode.Parse(body)!;
        streaming["stream"] = true;
        streaming["stream_options"] = new JsonObject { ["include_usage"] = true };
        using var response = await host.PostAsync(Path, streaming);
        var (chunks, done) = await ReadDataStreamAsync(response);
        Assert.True(done);

        var choices = chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).ToList();
        var streamed = choices.GroupBy(c => c.GetProperty("index").GetInt32()).OrderBy(g => g.Key)
            .Select(g => (g.Key, string.Concat(g.Select(c => c.GetProperty("text").GetString())))).ToList();
        Assert.Equal(expected, streamed);

        // Each choice finishes exactly once, on its own last chunk.
        foreach (var group in choices.GroupBy(c => c.GetProperty("index").GetInt32()))
        {
            var finishes = group.Select(c => c.GetProperty("finish_reason")).ToList();
            Assert.Equal("stop", finishes[^1].GetString());
            Assert.All(finishes[..^1], f => Assert.Equal(JsonValueKind.Null, f.ValueKind));
        }

        Assert.Equal(sync.GetProperty("usage").GetRawText(), chunks[^1].GetProperty("usage").GetRawText());
    }

    [Fact]
    public async Task A_missing_prompt_is_a_400_and_stream_with_x_bf_async_is_a_400()
    {
        await using var host = await StartLocalAsync();
        await host.PostErrorAsync(Path, new JsonObject { ["model"] = "local/echo" }, 400, "missing_required_parameter", "prompt");

        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "local/echo", ["prompt"] = "x", ["stream"] = true }, ("x-bf-async", "true"));
        AssertError(await ReadAsync(response), 400, "async_stream_not_supported");
    }

    [Fact]
    public async Task A_provider_failure_before_the_stream_starts_is_a_json_error_with_its_status()
    {
        await using var host = await StartLocalAsync(o => o.Providers["local"].MaxRetries = 0);
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "local/echo", ["prompt"] = "x", ["stream"] = true, ["metadata"] = new JsonObject { ["local_status"] = "429" } });
        Assert.Equal(429, (int)response.StatusCode);
        var json = await ReadAsync(response);
        Assert.False(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal("text_completion_stream", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }
}
