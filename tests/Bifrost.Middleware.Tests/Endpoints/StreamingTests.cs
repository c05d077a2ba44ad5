using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Endpoints;

/// <summary>The SSE format of the local provider's streams, exactly as the spec (and OpenAI) define it.</summary>
public sealed class StreamingTests
{
    private const string Text = "The quick brown fox jumps";

    private static string StreamBody(bool? includeUsage, string? metadata = null) =>
        "{\"model\":\"local/echo\",\"stream\":true,"
        + (includeUsage is { } usage ? $"\"stream_options\":{{\"include_usage\":{(usage ? "true" : "false")}}}," : string.Empty)
        + (metadata is null ? string.Empty : $"\"metadata\":{metadata},")
        + $"\"messages\":[{{\"role\":\"system\",\"content\":\"be brief\"}},{{\"role\":\"user\",\"content\":\"{Text}\"}}]}}";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    [InlineData(null)]
    public async Task A_local_stream_follows_the_chunk_format(bool? includeUsage)
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", StreamBody(includeUsage), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = Sse.ParseData(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));

        Assert.Equal(Sse.Done, events[^1]);
        Assert.Equal(1, events.Count(e => e == Sse.Done));
        var chunks = events.SkipLast(1).Select(Sse.Json).ToList();
        var usageChunks = includeUsage == true ? 1 : 0;
        var choiceChunks = chunks.Take(chunks.Count - usageChunks).ToList();

        var id = chunks[0].GetProperty("id").GetString();
        Assert.False(string.IsNullOrEmpty(id));
        var content = new StringBuilder();
        for (var i = 0; i < chunks.Count; i++)
        {
            var chunk = chunks[i];
            Assert.Equal("chat.completion.chunk", chunk.GetProperty("object").GetString());
            Assert.Equal(id, chunk.GetProperty("id").GetString());
            Assert.Equal("echo", chunk.GetProperty("model").GetString());
            var extra = chunk.GetProperty("extra_fields");
            Assert.Equal(i, extra.GetProperty("chunk_index").GetInt32());
            Assert.Equal("local", extra.GetProperty("provider").GetString());
            Assert.Equal("chat_completion_stream", extra.GetProperty("request_type").GetString());
            Assert.Equal(JsonValueKind.Number, extra.GetProperty("latency").ValueKind);
            AssertNoEmptyFields(extra);
        }

        // The first chunk carries the role; finish_reason is present and null until the last choice chunk.
        Assert.Equal("assistant", choiceChunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        for (var i = 0; i < choiceChunks.Count; i++)
        {
            var choice = Assert.Single(choiceChunks[i].GetProperty("choices").EnumerateArray());
            Assert.Equal(0, choice.GetProperty("index").GetInt32());
            var finish = choice.GetProperty("finish_reason");
            if (i < choiceChunks.Count - 1)
            {
                Assert.Equal(JsonValueKind.Null, finish.ValueKind);
            }
            else
            {
                Assert.Equal("stop", finish.GetString());
            }

            if (i > 0)
            {
                Assert.False(choice.GetProperty("delta").TryGetProperty("role", out _));
            }

            if (choice.GetProperty("delta").TryGetProperty("content", out var piece))
            {
                content.Append(piece.GetString());
            }

            Assert.False(choiceChunks[i].TryGetProperty("usage", out _));
        }

        Assert.Equal(Text, content.ToString());
        Assert.True(choiceChunks.Count >= 3, "role chunk, content chunks and a finish chunk");

        if (includeUsage == true)
        {
            var usageChunk = chunks[^1];
            Assert.Empty(usageChunk.GetProperty("choices").EnumerateArray());
            var usage = usageChunk.GetProperty("usage");
            Assert.Equal(5, usage.GetProperty("completion_tokens").GetInt32());
            Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 0);
            Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + 5, usage.GetProperty("total_tokens").GetInt32());
        }
        else
        {
            Assert.All(chunks, c => Assert.NotEmpty(c.GetProperty("choices").EnumerateArray()));
        }
    }

    /// <summary>Spec: fields with no value are omitted, not sent as null or empty strings.</summary>
    internal static void AssertNoEmptyFields(JsonElement extraFields)
    {
        foreach (var property in extraFields.EnumerateObject())
        {
            Assert.False(property.Value.ValueKind == JsonValueKind.Null, $"extra_fields.{property.Name} is null");
            Assert.False(property.Value.ValueKind == JsonValueKind.String && property.Value.GetString()!.Length == 0, $"extra_fields.{property.Name} is empty");
        }
    }

    [Fact]
    public async Task A_scripted_reply_is_streamed_piece_by_piece()
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync("/openai/chat/completions", StreamBody(false, """{"local_reply":"  Hello,   world !"}"""), TestContext.Current.CancellationToken);

        var events = Sse.ParseData(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        var pieces = events.SkipLast(1).Select(Sse.Json)
            .Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
            .Where(d => d.TryGetProperty("content", out var p) && p.GetString()!.Length > 0)
            .Select(d => d.GetProperty("content").GetString()!)
            .ToArray();
        Assert.Equal(["  Hello,", "   world", " !"], pieces);
    }

    [Fact]
    public async Task A_failure_mid_stream_ends_with_an_error_event_and_no_DONE()
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync(
            "/openai/v1/chat/completions",
            StreamBody(true, """{"local_fail_after_chunks":"2","local_status":"502"}"""),
            TestContext.Current.CancellationToken);

        // The stream had started: the status is 200 and the error arrives as an event.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = Sse.ParseData(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));

        Assert.DoesNotContain(Sse.Done, events);
        var good = events.SkipLast(1).Select(Sse.Json).ToList();
        Assert.Equal(3, good.Count); // the role chunk and two content chunks
        Assert.Equal("The quick", string.Concat(good.Select(c => c.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString())));
        Assert.All(good, c => Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));

        var last = Sse.Json(events[^1]);
        ErrorAssert.Shape(last, 502, isBifrostError: false);
        Assert.Equal("local_scripted_stream_failure", last.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("local", last.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("chat_completion_stream", last.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task A_failure_before_the_stream_is_a_plain_JSON_error_with_its_status()
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", StreamBody(true, """{"local_status":"400"}"""), TestContext.Current.CancellationToken);

        var json = await ErrorAssert.BifrostErrorAsync(response, 400, isBifrostError: false);
        Assert.Equal("local_scripted_failure", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("local", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("chat_completion_stream", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task A_rate_limited_stream_answers_429_with_Retry_After()
    {
        await using var host = await GatewayHost.StartAsync(options => options.Providers["local"].MaxRetries = 0);
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", StreamBody(true, """{"local_status":"429","local_retry_after":"7"}"""), TestContext.Current.CancellationToken);

        var json = await ErrorAssert.BifrostErrorAsync(response, 429, isBifrostError: false);
        Assert.Equal("rate_limit_error", json.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
    }
}
