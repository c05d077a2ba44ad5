using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Local;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Images.ImageEditTests;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Images;

/// <summary>
/// Streamed image edits (<c>stream=true</c>, <c>partial_images</c> as multipart fields): OpenAI's
/// <c>image_edit.partial_image</c> and <c>image_edit.completed</c> events
/// (https://developers.openai.com/api/reference/resources/images/edit-streaming-events) from the local provider and relayed
/// from an OpenAI-compatible upstream as they arrive, and in process through <see cref="IBifrostClient"/>. The OpenAI .NET
/// SDK (2.15.0) has no public streamed-edit method, so these tests speak HTTP.
/// </summary>
public sealed class ImageEditStreamTests : IAsyncLifetime
{
    private const string EditsPath = "/openai/v1/images/edits";

    private FakeOpenAIUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await FakeOpenAIUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    private Task<GatewayHost> StartAsync() => StartLocalAsync(options => options.Providers["compat"] = new ProviderOptions
    {
        Type = "openai",
        BaseUrl = _upstream.BaseUrl,
        MaxRetries = 0,
        Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
    });

    private static async Task<HttpResponseMessage> SendFormAsync(GatewayHost host, HttpContent form)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, EditsPath) { Content = form };
        return await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
    }

    [Fact]
    public async Task The_local_provider_streams_partial_edits_then_the_final_image_of_the_unstreamed_edit()
    {
        await using var host = await StartAsync();
        using var response = await SendFormAsync(host, Form(
            [Image(), Image(MaskBytes, "mask", "mask.png")],
            ("model", "local/gpt-image-1"), ("prompt", "a streamed hat"), ("stream", "true"), ("partial_images", "2"), ("n", "2"), ("size", "1024x1536")));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = ImageStreamTests.Events(await response.Content.ReadAsStringAsync(Ct));

        Assert.Equal(
            ["image_edit.partial_image", "image_edit.partial_image", "image_edit.completed", "image_edit.partial_image", "image_edit.partial_image", "image_edit.completed"],
            events.Select(static e => e.Type));
        Assert.All(events, static e => Assert.Equal(e.Type, e.Data.GetProperty("type").GetString()));
        Assert.All(events, static e => Assert.Equal("1024x1536", e.Data.GetProperty("size").GetString()));
        Assert.All(events, static e => Assert.Equal("local", e.Data.GetProperty("extra_fields").GetProperty("provider").GetString()));
        Assert.All(events, static e => Assert.Equal("image_edit_stream", e.Data.GetProperty("extra_fields").GetProperty("request_type").GetString()));
        Assert.Equal([0, 1, 0, 1], events.Where(static e => e.Type.EndsWith("partial_image", StringComparison.Ordinal)).Select(static e => e.Data.GetProperty("partial_image_index").GetInt32()));
        var seed = $"edit:{Sha(ImageBytes)}|{Sha(MaskBytes)}|a streamed hat";
        Assert.Equal(LocalProviderAdapter.Png($"partial:1\n{seed}", 0), Convert.FromBase64String(events[1].Data.GetProperty("b64_json").GetString()!));
        Assert.Equal(LocalProviderAdapter.Png($"partial:0\n{seed}", 1), Convert.FromBase64String(events[3].Data.GetProperty("b64_json").GetString()!));

        var unstreamed = await PostFormOkAsync(host, EditsPath, Form([Image(), Image(MaskBytes, "mask", "mask.png")], ("model", "local/gpt-image-1"), ("prompt", "a streamed hat"), ("n", "2")));
        Assert.Equal(B64(unstreamed, 0), events[2].Data.GetProperty("b64_json").GetString());
        Assert.Equal(B64(unstreamed, 1), events[5].Data.GetProperty("b64_json").GetString());
        Assert.Equal(64, events[5].Data.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.False(events[0].Data.TryGetProperty("usage", out _));

        // partial_images 0 (and stream=false) are valid: only the final image, or the ordinary JSON answer.
        using var none = await SendFormAsync(host, Form([Image()], ("model", "local/gpt-image-1"), ("prompt", "p"), ("stream", "true"), ("partial_images", "0")));
        Assert.Equal(["image_edit.completed"], ImageStreamTests.Events(await none.Content.ReadAsStringAsync(Ct)).Select(static e => e.Type));
        var off = await PostFormOkAsync(host, EditsPath, Form([Image()], ("model", "local/gpt-image-1"), ("prompt", "p"), ("stream", "false")));
        Assert.Equal("image_edit", off.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task An_upstream_edit_stream_is_relayed_event_by_event_as_it_arrives_with_the_form_sent_as_is()
    {
        const string Partial = """{"type":"image_edit.partial_image","b64_json":"cGFydGlhbA==","created_at":1,"size":"1024x1024","quality":"high","background":"opaque","output_format":"png","partial_image_index":0,"vendor":"x"}""";
        const string Completed = """{"type":"image_edit.completed","b64_json":"ZmluYWw=","created_at":2,"size":"1024x1024","quality":"high","background":"opaque","output_format":"png","usage":{"input_tokens":10,"output_tokens":100,"total_tokens":110,"input_tokens_details":{"text_tokens":10}}}""";
        var firstSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Enqueue(async (context, _, ct) =>
        {
            // OpenAI's image stream: an event line and a data line per event, no [DONE]. The completed event is written only
            // after the client has read the partial one through the gateway: the gateway relays, it does not buffer.
            context.Response.ContentType = "text/event-stream";
            await context.Response.WriteAsync($"event: image_edit.partial_image\ndata: {Partial}\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
            await firstSeen.Task.WaitAsync(ct);
            await context.Response.WriteAsync($"event: image_edit.completed\ndata: {Completed}\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
        });
        await using var host = await StartAsync();
        using var response = await SendFormAsync(host, Form(
            [Image(name: "image[]"), Image(OtherImageBytes, "image[]", "b.png")],
            ("model", "compat/gpt-image-1"), ("prompt", "relay"), ("stream", "true"), ("partial_images", "1"), ("input_fidelity", "high")));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var body = await response.Content.ReadAsStreamAsync(Ct);
        using var reader = new StreamReader(body, Encoding.UTF8);
        var first = new StringBuilder();
        while (await reader.ReadLineAsync(Ct) is { } line && line.Length > 0)
        {
            first.Append(line).Append('\n');
        }

        var firstEvent = Assert.Single(ImageStreamTests.Events(first.Append('\n').ToString()));
        Assert.Equal("image_edit.partial_image", firstEvent.Type);
        firstSeen.SetResult();
        var rest = ImageStreamTests.Events(await reader.ReadToEndAsync(Ct));
        var events = new[] { firstEvent }.Concat(rest).ToList();

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/images/edits", sent.Path);
        Assert.Equal("Bearer sk-upstream", sent.Header("Authorization"));
        var parts = await PartsAsync(sent);
        var files = parts.Where(static p => p.Filename is not null).ToList();
        Assert.Equal(["image[]", "image[]"], files.Select(static f => f.Name));
        Assert.Equal(ImageBytes, files[0].Bytes);
        Assert.Equal(OtherImageBytes, files[1].Bytes);
        Assert.Equal(
            new Dictionary<string, string> { ["prompt"] = "relay", ["model"] = "gpt-image-1", ["stream"] = "true", ["partial_images"] = "1", ["input_fidelity"] = "high" },
            Fields(parts));

        Assert.Equal(["image_edit.partial_image", "image_edit.completed"], events.Select(static e => e.Type));
        for (var i = 0; i < 2; i++)
        {
            var actual = JsonNode.Parse(events[i].Data.GetRawText())!.AsObject();
            Assert.Equal("compat", actual["extra_fields"]!["provider"]!.GetValue<string>());
            actual.Remove("extra_fields");
            AssertSameJson(JsonNode.Parse(i == 0 ? Partial : Completed)!, actual);
        }
    }

    [Fact]
    public async Task An_upstream_error_before_the_stream_is_the_providers_error_and_async_with_stream_is_a_400()
    {
        _upstream.Enqueue(FakeResponses.Error(400, "Streaming is not supported for this model."));
        await using var host = await StartAsync();
        using (var refused = await SendFormAsync(host, Form([Image()], ("model", "compat/dall-e-2"), ("prompt", "p"), ("stream", "true"))))
        {
            var json = await ReadAsync(refused);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("Streaming is not supported", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        var (status, error) = await PostFormAsync(host, EditsPath, Form([Image()], ("model", "local/img"), ("prompt", "p"), ("stream", "true")), ("x-bf-async", "true"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        AssertError(error, 400, "async_stream_not_supported", "stream");
    }

    [Fact]
    public async Task The_in_process_client_streams_the_same_events()
    {
        var services = new ServiceCollection();
        services.AddBifrost(options => options.Providers["local"] = new ProviderOptions { Type = "local", MaxRetries = 0 });
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IBifrostClient>();

        using var image = new MemoryStream(ImageBytes);
        var events = new List<ImageStreamEvent>();
        var request = new ImageEditRequest { Model = "local/gpt-image-1", Prompt = "in process", Stream = true, PartialImages = 1, Images = [new ImageFile(image, "otter.png", "image/png")] };
        await foreach (var e in client.ImageEditStreamAsync(request, Ct))
        {
            events.Add(e);
        }

        Assert.Equal(["image_edit.partial_image", "image_edit.completed"], events.Select(static e => e.Type));
        Assert.Equal(LocalProviderAdapter.Png($"edit:{Sha(ImageBytes)}||in process", 0), Convert.FromBase64String(events[1].B64Json!));
        Assert.All(events, static e => Assert.Equal("image_edit_stream", e.ExtraFields!.RequestType));
    }
}
