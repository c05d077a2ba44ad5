using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Local;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using OpenAI;
using OpenAI.Images;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;
using HeaderUtilities = Microsoft.Net.Http.Headers.HeaderUtilities;
using NetContentDisposition = Microsoft.Net.Http.Headers.ContentDispositionHeaderValue;
using NetMediaType = Microsoft.Net.Http.Headers.MediaTypeHeaderValue;

namespace Bifrost.Middleware.Tests.Images;

/// <summary>
/// <c>POST images/edits</c> and <c>images/variations</c> (multipart): the local provider's deterministic PNGs, bounds, the
/// OpenAI-compatible passthrough as multipart (byte-exact images), retries that send the spooled upload again, async, and
/// the OpenAI SDK's ImageClient.
/// </summary>
public sealed class ImageEditTests : IAsyncLifetime
{
    private const string EditsPath = "/openai/v1/images/edits";
    private const string VariationsPath = "/openai/v1/images/variations";

    /// <summary>Every byte value (not valid UTF-8): the upstream must receive exactly these.</summary>
    internal static readonly byte[] ImageBytes = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, .. Enumerable.Range(0, 256).Select(static i => (byte)i), .. Enumerable.Range(0, 256).Select(static i => (byte)(255 - i))];

    internal static readonly byte[] OtherImageBytes = [.. ImageBytes.Reverse()];

    internal static readonly byte[] MaskBytes = [0x89, (byte)'P', (byte)'N', (byte)'G', 0xFF, 0x00, 0xFE, 0x01];

    private FakeOpenAIUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await FakeOpenAIUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    private Task<GatewayHost> StartAsync(int retries = 0, Action<BifrostOptions>? configure = null) => StartLocalAsync(options =>
    {
        options.Providers["compat"] = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = _upstream.BaseUrl,
            MaxRetries = retries,
            RetryBaseDelay = TimeSpan.FromMilliseconds(1),
            Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
        };
        configure?.Invoke(options);
    });

    /// <summary>A multipart form: the files (part name, bytes, file name, content type) and the fields, in that order.</summary>
    internal static MultipartFormDataContent Form((string Name, byte[] Bytes, string Filename, string? Type)[] files, params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        foreach (var (name, bytes, filename, type) in files)
        {
            var content = new ByteArrayContent(bytes);
            if (type is not null)
            {
                content.Headers.ContentType = new MediaTypeHeaderValue(type);
            }

            form.Add(content, name, filename);
        }

        foreach (var (name, value) in fields)
        {
            form.Add(new StringContent(value), name);
        }

        return form;
    }

    internal static (string, byte[], string, string?) Image(byte[]? bytes = null, string name = "image", string filename = "otter.png", string? type = "image/png") =>
        (name, bytes ?? ImageBytes, filename, type);

    internal static async Task<(HttpStatusCode Status, JsonElement Json)> PostFormAsync(GatewayHost host, string path, HttpContent form, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = form };
        foreach (var (name, value) in headers)
        {
            request.Headers.Add(name, value);
        }

        using var response = await host.Client.SendAsync(request, Ct);
        return (response.StatusCode, await ReadAsync(response));
    }

    internal static async Task<JsonElement> PostFormOkAsync(GatewayHost host, string path, HttpContent form, params (string Name, string Value)[] headers)
    {
        var (status, json) = await PostFormAsync(host, path, form, headers);
        Assert.True(status == HttpStatusCode.OK, $"{path} answered {(int)status}: {json}");
        return json;
    }

    internal static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    internal static string B64(JsonElement json, int index) => json.GetProperty("data")[index].GetProperty("b64_json").GetString()!;

    /// <summary>The parts the upstream received: (name, filename, content type, bytes), in order.</summary>
    internal static async Task<List<(string Name, string? Filename, string? Type, byte[] Bytes)>> PartsAsync(RecordedRequest request)
    {
        var boundary = HeaderUtilities.RemoveQuotes(NetMediaType.Parse(request.Header("Content-Type")).Boundary).Value!;
        var reader = new MultipartReader(boundary, new MemoryStream(request.RawBytes));
        var parts = new List<(string, string?, string?, byte[])>();
        while (await reader.ReadNextSectionAsync(Ct) is { } section)
        {
            var disposition = NetContentDisposition.Parse(section.ContentDisposition);
            using var buffer = new MemoryStream();
            await section.Body.CopyToAsync(buffer, Ct);
            parts.Add((HeaderUtilities.RemoveQuotes(disposition.Name).Value!, HeaderUtilities.RemoveQuotes(disposition.FileName).Value, section.ContentType, buffer.ToArray()));
        }

        return parts;
    }

    internal static Dictionary<string, string> Fields(List<(string Name, string? Filename, string? Type, byte[] Bytes)> parts) =>
        parts.Where(static p => p.Filename is null).ToDictionary(static p => p.Name, static p => Encoding.UTF8.GetString(p.Bytes), StringComparer.Ordinal);

    [Fact]
    public async Task The_local_provider_edits_into_stable_pngs_hashed_from_the_images_mask_and_prompt()
    {
        await using var host = await StartAsync();
        var json = await PostFormOkAsync(host, EditsPath, Form([Image(), Image(MaskBytes, "mask", "mask.png")], ("model", "local/gpt-image-1"), ("prompt", "add a hat"), ("n", "2"), ("size", "1024x1024")));
        var again = await PostFormOkAsync(host, EditsPath, Form([Image(), Image(MaskBytes, "mask", "mask.png")], ("model", "local/gpt-image-1"), ("prompt", "add a hat"), ("n", "2")));
        var other = await PostFormOkAsync(host, EditsPath, Form([Image(OtherImageBytes)], ("model", "local/gpt-image-1"), ("prompt", "add a hat")));

        var seed = $"edit:{Sha(ImageBytes)}|{Sha(MaskBytes)}|add a hat";
        Assert.Equal(2, json.GetProperty("data").GetArrayLength());
        Assert.Equal(LocalProviderAdapter.Png(seed, 0), Convert.FromBase64String(B64(json, 0)));
        Assert.Equal(LocalProviderAdapter.Png(seed, 1), Convert.FromBase64String(B64(json, 1)));
        Assert.NotEqual(B64(json, 0), B64(json, 1));
        Assert.Equal(B64(json, 0), B64(again, 0));
        Assert.Equal(LocalProviderAdapter.Png($"edit:{Sha(OtherImageBytes)}||add a hat", 0), Convert.FromBase64String(B64(other, 0)));
        Assert.Equal("add a hat", json.GetProperty("data")[0].GetProperty("revised_prompt").GetString());
        Assert.Equal("gpt-image-1", json.GetProperty("model").GetString());
        var extra = json.GetProperty("extra_fields");
        Assert.Equal("image_edit", extra.GetProperty("request_type").GetString());
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.Equal("gpt-image-1", extra.GetProperty("model_requested").GetString());
    }

    [Fact]
    public async Task Several_images_are_edited_together_and_a_variation_hashes_its_one_image()
    {
        await using var host = await StartAsync();
        var both = await PostFormOkAsync(host, EditsPath, Form([Image(name: "image[]"), Image(OtherImageBytes, "image[]", "b.png")], ("model", "local/img"), ("prompt", "merge")));
        Assert.Equal(LocalProviderAdapter.Png($"edit:{Sha(ImageBytes)},{Sha(OtherImageBytes)}||merge", 0), Convert.FromBase64String(B64(both, 0)));

        var variation = await PostFormOkAsync(host, VariationsPath, Form([Image()], ("model", "local/dall-e-2"), ("n", "3"), ("response_format", "url")));
        Assert.Equal(3, variation.GetProperty("data").GetArrayLength());
        for (var i = 0; i < 3; i++)
        {
            var item = variation.GetProperty("data")[i];
            Assert.Equal("data:image/png;base64," + Convert.ToBase64String(LocalProviderAdapter.Png($"variation:{Sha(ImageBytes)}||", i)), item.GetProperty("url").GetString());
            Assert.False(item.TryGetProperty("revised_prompt", out _));
        }

        Assert.Equal("image_variation", variation.GetProperty("extra_fields").GetProperty("request_type").GetString());
        Assert.Equal("dall-e-2", variation.GetProperty("extra_fields").GetProperty("model_requested").GetString());
        Assert.Equal("dall-e-2", variation.GetProperty("model").GetString());
    }

    public static TheoryData<string, int, string, string> BadForms => new()
    {
        { "no image", 400, "missing_required_parameter", "image" },
        { "no prompt", 400, "missing_required_parameter", "prompt" },
        { "n 11", 400, "invalid_value", "n" },
        { "n text", 400, "invalid_type", "n" },
        { "response_format png", 400, "invalid_value", "response_format" },
        { "text part", 400, "invalid_value", "image" },
        { "17 images", 400, "invalid_value", "image" },
        { "two masks", 400, "invalid_value", "mask" },
        { "stream not a boolean", 400, "invalid_type", "stream" },
        { "partial_images 4", 400, "invalid_value", "partial_images" },
        { "partial_images -1", 400, "invalid_value", "partial_images" },
        { "variation stream", 400, "unsupported_parameter", "stream" },
        { "variation prompt", 400, "unsupported_parameter", "prompt" },
        { "variation mask", 400, "unsupported_parameter", "mask" },
        { "variation two images", 400, "invalid_value", "image" },
    };

    [Theory]
    [MemberData(nameof(BadForms))]
    public async Task Bad_or_unbounded_uploads_are_a_4xx_naming_the_parameter(string form, int status, string code, string param)
    {
        await using var host = await StartAsync();
        (string, string)[] model = [("model", "local/img")];
        (string, string)[] prompt = [("model", "local/img"), ("prompt", "p")];
        var (path, content) = form switch
        {
            "no image" => (EditsPath, Form([], prompt)),
            "no prompt" => (EditsPath, Form([Image()], model)),
            "n 11" => (EditsPath, Form([Image()], [.. prompt, ("n", "11")])),
            "n text" => (EditsPath, Form([Image()], [.. prompt, ("n", "two")])),
            "response_format png" => (EditsPath, Form([Image()], [.. prompt, ("response_format", "png")])),
            "text part" => (EditsPath, Form([Image(type: "text/plain")], prompt)),
            "17 images" => (EditsPath, Form([.. Enumerable.Repeat(Image(name: "image[]"), 17)], prompt)),
            "two masks" => (EditsPath, Form([Image(), Image(MaskBytes, "mask"), Image(MaskBytes, "mask")], prompt)),
            "stream not a boolean" => (EditsPath, Form([Image()], [.. prompt, ("stream", "yes")])),
            "partial_images 4" => (EditsPath, Form([Image()], [.. prompt, ("stream", "true"), ("partial_images", "4")])),
            "partial_images -1" => (EditsPath, Form([Image()], [.. prompt, ("stream", "true"), ("partial_images", "-1")])),
            "variation stream" => (VariationsPath, Form([Image()], [.. model, ("stream", "true")])),
            "variation prompt" => (VariationsPath, Form([Image()], prompt)),
            "variation mask" => (VariationsPath, Form([Image(), Image(MaskBytes, "mask")], model)),
            "variation two images" => (VariationsPath, Form([Image(), Image()], model)),
            _ => throw new ArgumentOutOfRangeException(nameof(form)),
        };
        var (actual, json) = await PostFormAsync(host, path, content);
        Assert.True((int)actual == status, $"{form}: {(int)actual} {json}");
        AssertError(json, status, code, param);
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task A_body_that_is_not_multipart_is_a_415_and_uploads_over_the_limit_a_413()
    {
        await using var host = await StartAsync(configure: options => options.Files.MaxUploadBytes = 1000);
        using (var json = new StringContent("""{"model":"local/img","prompt":"p"}""", Encoding.UTF8, "application/json"))
        {
            var (status, body) = await PostFormAsync(host, EditsPath, json);
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
            AssertError(body, 415, "unsupported_media_type");
        }

        // Two images of 600 bytes each: each is under the limit, together they are over it.
        var (tooLarge, error) = await PostFormAsync(host, EditsPath, Form([Image(new byte[600], "image[]"), Image(new byte[600], "image[]")], ("model", "local/img"), ("prompt", "p")));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge);
        AssertError(error, 413, "file_too_large", "image");
        Assert.Contains("1000 bytes", error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);

        var (variationTooLarge, _) = await PostFormAsync(host, VariationsPath, Form([Image(new byte[1001])], ("model", "local/img")));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, variationTooLarge);
    }

    [Fact]
    public async Task An_edit_reaches_the_openai_compatible_upstream_as_its_multipart_form_with_the_exact_bytes_and_its_answer_passes_through()
    {
        const string Answer = """{"created":1713833628,"data":[{"b64_json":"aGVsbG8=","vendor":"x"}],"background":"opaque","output_format":"png","quality":"high","size":"1024x1024","usage":{"input_tokens":50,"output_tokens":4160,"total_tokens":4210,"input_tokens_details":{"image_tokens":40,"text_tokens":10}}}""";
        _upstream.Enqueue(FakeResponses.Json(200, Answer));
        await using var host = await StartAsync();
        var json = await PostFormOkAsync(host, EditsPath, Form(
            [Image(name: "image[]"), Image(OtherImageBytes, "image[]", "second.webp", "image/webp"), Image(MaskBytes, "mask", "mask.png")],
            ("model", "compat/gpt-image-1"),
            ("prompt", "put them together"),
            ("n", "1"),
            ("size", "1024x1024"),
            ("quality", "high"),
            ("background", "opaque"),
            ("output_format", "png"),
            ("input_fidelity", "high"),
            ("fallbacks", "local/img")));

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/images/edits", sent.Path);
        Assert.Equal("Bearer sk-upstream", sent.Header("Authorization"));
        var parts = await PartsAsync(sent);
        var files = parts.Where(static p => p.Filename is not null).ToList();
        Assert.Equal(3, files.Count);
        Assert.Equal(("image[]", "otter.png", "image/png"), (files[0].Name, files[0].Filename, files[0].Type));
        Assert.Equal(ImageBytes, files[0].Bytes);
        Assert.Equal(("image[]", "second.webp", "image/webp"), (files[1].Name, files[1].Filename, files[1].Type));
        Assert.Equal(OtherImageBytes, files[1].Bytes);
        Assert.Equal(("mask", "mask.png"), (files[2].Name, files[2].Filename));
        Assert.Equal(MaskBytes, files[2].Bytes);
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["prompt"] = "put them together",
                ["model"] = "gpt-image-1",
                ["n"] = "1",
                ["size"] = "1024x1024",
                ["quality"] = "high",
                ["background"] = "opaque",
                ["output_format"] = "png",
                ["input_fidelity"] = "high",
            },
            Fields(parts));

        var actual = JsonNode.Parse(json.GetRawText())!.AsObject();
        Assert.Equal("compat", actual["extra_fields"]!["provider"]!.GetValue<string>());
        Assert.Equal("image_edit", actual["extra_fields"]!["request_type"]!.GetValue<string>());
        actual.Remove("extra_fields");
        var expected = JsonNode.Parse(Answer)!.AsObject();
        expected["model"] = "gpt-image-1";
        AssertSameJson(expected, actual);
    }

    [Fact]
    public async Task A_retry_sends_the_spooled_image_again_and_a_variation_sends_one_image_part()
    {
        _upstream.Enqueue(
            FakeResponses.Error(500, "try again"),
            FakeResponses.Json(200, """{"created":1,"data":[{"url":"https://images.example/v.png"}]}"""));
        await using var host = await StartAsync(retries: 1);
        var json = await PostFormOkAsync(host, VariationsPath, Form([Image(filename: "v.png")], ("model", "compat/dall-e-2"), ("n", "1"), ("size", "256x256"), ("response_format", "url"), ("user", "u-1")));

        Assert.Equal("https://images.example/v.png", json.GetProperty("data")[0].GetProperty("url").GetString());
        Assert.Equal(2, _upstream.Requests.Count);
        foreach (var sent in _upstream.Requests)
        {
            Assert.Equal("/v1/images/variations", sent.Path);
            var parts = await PartsAsync(sent);
            var file = Assert.Single(parts, static p => p.Filename is not null);
            Assert.Equal(("image", "v.png"), (file.Name, file.Filename));
            Assert.Equal(ImageBytes, file.Bytes);
            Assert.Equal(
                new Dictionary<string, string> { ["model"] = "dall-e-2", ["n"] = "1", ["size"] = "256x256", ["response_format"] = "url", ["user"] = "u-1" },
                Fields(parts));
        }
    }

    [Fact]
    public async Task X_bf_async_keeps_the_upload_with_the_job_and_the_poll_gives_the_sync_answer()
    {
        await using var host = await StartAsync();
        var sync = await PostFormOkAsync(host, EditsPath, Form([Image()], ("model", "local/img"), ("prompt", "async hat"), ("n", "2")));

        var submitted = await PostFormOkAsync(host, EditsPath, Form([Image()], ("model", "local/img"), ("prompt", "async hat"), ("n", "2")), ("x-bf-async", "true"));
        var id = submitted.GetProperty("id").GetString()!;
        Assert.Equal(0, submitted.GetProperty("data").GetArrayLength());
        Assert.Equal("image_edit", submitted.GetProperty("extra_fields").GetProperty("request_type").GetString());
        var completed = await EventuallyAsync($"image edit job {id}", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Get, EditsPath, null, ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            Assert.True(poll.StatusCode == HttpStatusCode.OK, $"poll answered {(int)poll.StatusCode}: {json}");
            return json.GetProperty("data").GetArrayLength() == 0 ? (JsonElement?)null : json;
        });
        AssertSameJson(WithoutVolatileFields(sync), WithoutVolatileFields(completed!.Value));

        using var submit = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/async/images/variations") { Content = Form([Image()], ("model", "local/img")) };
        using var accepted = await host.Client.SendAsync(submit, Ct);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var envelopeId = (await ReadAsync(accepted)).GetProperty("id").GetString()!;
        var envelope = await EventuallyAsync($"image variation envelope {envelopeId}", async () =>
        {
            using var response = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/images/variations/{envelopeId}", null);
            var json = await ReadAsync(response);
            return json.GetProperty("status").GetString() == "completed" ? (JsonElement?)json : null;
        });
        Assert.Equal(LocalProviderAdapter.Png($"variation:{Sha(ImageBytes)}||", 0), Convert.FromBase64String(B64(envelope!.Value.GetProperty("result"), 0)));
    }

    [Fact]
    public async Task The_openai_sdk_image_client_edits_and_varies_through_the_gateway()
    {
        _upstream.Enqueue(FakeResponses.Json(200, """{"created":1,"data":[{"b64_json":"dXBzdHJlYW0="}]}"""));
        await using var host = await StartAsync();
        var openai = new OpenAIClient(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(new HttpClient(host.Server.CreateHandler())),
            RetryPolicy = new ClientRetryPolicy(0),
        });

        using (var image = new MemoryStream(ImageBytes))
        {
            GeneratedImage edited = await openai.GetImageClient("local/gpt-image-1").GenerateImageEditAsync(image, "otter.png", "an sdk hat", new ImageEditOptions { ResponseFormat = GeneratedImageFormat.Bytes }, Ct);
            Assert.Equal(LocalProviderAdapter.Png($"edit:{Sha(ImageBytes)}||an sdk hat", 0), edited.ImageBytes.ToArray());
        }

        using (var image = new MemoryStream(ImageBytes))
        {
            GeneratedImageCollection variations = await openai.GetImageClient("local/dall-e-2").GenerateImageVariationsAsync(image, "otter.png", 2, new ImageVariationOptions { ResponseFormat = GeneratedImageFormat.Bytes }, Ct);
            Assert.Equal(2, variations.Count);
            Assert.Equal(LocalProviderAdapter.Png($"variation:{Sha(ImageBytes)}||", 1), variations[1].ImageBytes.ToArray());
        }

        using (var image = new MemoryStream(ImageBytes))
        {
            GeneratedImage upstream = await openai.GetImageClient("compat/gpt-image-1").GenerateImageEditAsync(image, "otter.png", "upstream hat", cancellationToken: Ct);
            Assert.Equal("upstream"u8.ToArray(), upstream.ImageBytes.ToArray());
        }

        var sent = Assert.Single(_upstream.Requests);
        var parts = await PartsAsync(sent);
        var file = Assert.Single(parts, static p => p.Filename is not null);
        Assert.Equal(("image", "otter.png"), (file.Name, file.Filename));
        Assert.Equal(ImageBytes, file.Bytes);
        Assert.Equal("upstream hat", Fields(parts)["prompt"]);
        Assert.Equal("gpt-image-1", Fields(parts)["model"]);
    }
}
