using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Local;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Images;

/// <summary>
/// Streamed image generation (<c>stream: true</c>, <c>partial_images</c>): OpenAI's <c>image_generation.partial_image</c>
/// and <c>image_generation.completed</c> events from the local provider and relayed from an OpenAI-compatible upstream,
/// in process through <see cref="IBifrostClient"/>, and <c>/v1/images/generations</c> batch lines.
/// </summary>
public sealed class ImageStreamTests : IAsyncLifetime
{
    private const string Path = "/openai/v1/images/generations";

    private FakeOpenAIUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await FakeOpenAIUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    /// <summary>The events of an SSE body: (event type, data JSON), checking the framing (an <c>event:</c> line, one <c>data:</c> line, a blank line).</summary>
    internal static List<(string Type, JsonElement Data)> Events(string body)
    {
        Assert.EndsWith("\n\n", body, StringComparison.Ordinal);
        var events = new List<(string, JsonElement)>();
        foreach (var block in body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            Assert.Equal(2, lines.Length);
            Assert.StartsWith("event: ", lines[0], StringComparison.Ordinal);
            Assert.StartsWith("data: ", lines[1], StringComparison.Ordinal);
            events.Add((lines[0]["event: ".Length..], Sse.Json(lines[1]["data: ".Length..])));
        }

        return events;
    }

    [Fact]
    public async Task The_local_provider_streams_partial_images_then_the_final_image_of_the_unstreamed_call()
    {
        await using var host = await StartLocalAsync();
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "local/gpt-image-1", ["prompt"] = "a streamed fox", ["stream"] = true, ["partial_images"] = 2, ["n"] = 2, ["size"] = "1024x1536" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = Events(await response.Content.ReadAsStringAsync(Ct));

        Assert.Equal(
            ["image_generation.partial_image", "image_generation.partial_image", "image_generation.completed", "image_generation.partial_image", "image_generation.partial_image", "image_generation.completed"],
            events.Select(static e => e.Type));
        Assert.All(events, static e => Assert.Equal(e.Type, e.Data.GetProperty("type").GetString()));
        Assert.All(events, static e => Assert.Equal("1024x1536", e.Data.GetProperty("size").GetString()));
        Assert.All(events, static e => Assert.Equal("local", e.Data.GetProperty("extra_fields").GetProperty("provider").GetString()));
        Assert.Equal([0, 1, 0, 1], events.Where(static e => e.Type.EndsWith("partial_image", StringComparison.Ordinal)).Select(static e => e.Data.GetProperty("partial_image_index").GetInt32()));
        Assert.Equal(LocalProviderAdapter.Png("partial:1\na streamed fox", 0), Convert.FromBase64String(events[1].Data.GetProperty("b64_json").GetString()!));

        var unstreamed = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/gpt-image-1", ["prompt"] = "a streamed fox", ["n"] = 2 });
        Assert.Equal(unstreamed.GetProperty("data")[0].GetProperty("b64_json").GetString(), events[2].Data.GetProperty("b64_json").GetString());
        Assert.Equal(unstreamed.GetProperty("data")[1].GetProperty("b64_json").GetString(), events[5].Data.GetProperty("b64_json").GetString());
        Assert.Equal(64, events[5].Data.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.False(events[0].Data.TryGetProperty("usage", out _));
    }

    [Theory]
    [InlineData("""{"model":"local/img","prompt":"x","stream":true,"partial_images":4}""", "partial_images")]
    [InlineData("""{"model":"local/img","prompt":"x","stream":true,"partial_images":-1}""", "partial_images")]
    public async Task Partial_images_is_bounded(string body, string param)
    {
        await using var host = await StartLocalAsync();
        using var response = await host.SendAsync(HttpMethod.Post, Path, body);
        var json = await ReadAsync(response);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertError(json, 400, "invalid_value", param);
    }

    [Fact]
    public async Task An_upstream_stream_is_relayed_event_by_event_with_the_request_sent_as_is()
    {
        const string Partial = """{"type":"image_generation.partial_image","b64_json":"cGFydGlhbA==","created_at":1,"size":"1024x1024","quality":"high","background":"opaque","output_format":"png","partial_image_index":0,"vendor":"x"}""";
        const string Completed = """{"type":"image_generation.completed","b64_json":"ZmluYWw=","created_at":2,"size":"1024x1024","quality":"high","background":"opaque","output_format":"png","usage":{"input_tokens":10,"output_tokens":100,"total_tokens":110,"input_tokens_details":{"text_tokens":10}}}""";
        _upstream.Enqueue(async (context, _, ct) =>
        {
            // OpenAI's image stream: an event line and a data line per event, no [DONE].
            context.Response.ContentType = "text/event-stream";
            foreach (var (type, data) in new[] { ("image_generation.partial_image", Partial), ("image_generation.completed", Completed) })
            {
                await context.Response.WriteAsync($"event: {type}\ndata: {data}\n\n", ct);
                await context.Response.Body.FlushAsync(ct);
            }
        });
        await using var host = await StartLocalAsync(options => options.Providers["compat"] = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = _upstream.BaseUrl,
            MaxRetries = 0,
            Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
        });
        using var response = await host.PostAsync(Path, new JsonObject { ["model"] = "compat/gpt-image-1", ["prompt"] = "relay", ["stream"] = true, ["partial_images"] = 1, ["moderation"] = "low" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = Events(await response.Content.ReadAsStringAsync(Ct));

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/images/generations", sent.Path);
        AssertSameJson(JsonNode.Parse("""{"model":"gpt-image-1","prompt":"relay","stream":true,"partial_images":1,"moderation":"low"}""")!, JsonNode.Parse(sent.RawBody)!);
        Assert.Equal(["image_generation.partial_image", "image_generation.completed"], events.Select(static e => e.Type));
        for (var i = 0; i < 2; i++)
        {
            var actual = JsonNode.Parse(events[i].Data.GetRawText())!.AsObject();
            Assert.Equal("compat", actual["extra_fields"]!["provider"]!.GetValue<string>());
            actual.Remove("extra_fields");
            AssertSameJson(JsonNode.Parse(i == 0 ? Partial : Completed)!, actual);
        }
    }

    [Fact]
    public async Task The_in_process_client_streams_the_same_events()
    {
        var services = new ServiceCollection();
        services.AddBifrost(options => options.Providers["local"] = new ProviderOptions { Type = "local", MaxRetries = 0 });
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IBifrostClient>();

        var events = new List<ImageStreamEvent>();
        await foreach (var e in client.ImageGenerationStreamAsync(new ImageRequest { Model = "local/gpt-image-1", Prompt = "in process", Stream = true, PartialImages = 1 }, Ct))
        {
            events.Add(e);
        }

        Assert.Equal(["image_generation.partial_image", "image_generation.completed"], events.Select(static e => e.Type));
        Assert.Equal(LocalProviderAdapter.Png("in process", 0), Convert.FromBase64String(events[1].B64Json!));
        Assert.All(events, static e => Assert.Equal("image_generation_stream", e.ExtraFields!.RequestType));
    }

    [Fact]
    public async Task A_batch_of_image_generation_lines_completes_with_the_images()
    {
        await using var host = await FileBatchHost.StartAsync();
        var lines = Enumerable.Range(1, 2).Select(i => new JsonObject
        {
            ["custom_id"] = $"img{i}",
            ["method"] = "POST",
            ["url"] = "/v1/images/generations",
            ["body"] = new JsonObject { ["model"] = "local/gpt-image-1", ["prompt"] = $"batch image {i}", ["stream"] = i == 2 },
        }.ToJsonString());
        var file = await host.UploadOkAsync(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        using var created = await host.CreateBatchRawAsync(new JsonObject
        {
            ["input_file_id"] = file.GetProperty("id").GetString(),
            ["endpoint"] = "/v1/images/generations",
            ["completion_window"] = "24h",
        }.ToJsonString());
        var batch = await FileBatchHost.ExpectAsync(created, HttpStatusCode.OK);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(done);
        Assert.Empty(errors);
        var byId = output.ToDictionary(l => l.GetProperty("custom_id").GetString()!, l => l.GetProperty("response"));
        Assert.Equal(["img1", "img2"], byId.Keys.Order());
        foreach (var i in new[] { 1, 2 })
        {
            var response = byId[$"img{i}"];
            Assert.Equal(200, response.GetProperty("status_code").GetInt32());
            var image = Assert.Single(response.GetProperty("body").GetProperty("data").EnumerateArray());
            Assert.Equal(LocalProviderAdapter.Png($"batch image {i}", 0), Convert.FromBase64String(image.GetProperty("b64_json").GetString()!));
        }
    }
}
