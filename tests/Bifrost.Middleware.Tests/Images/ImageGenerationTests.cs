using System.Buffers.Binary;
using System.ClientModel;
using System.ClientModel.Primitives;
using System.IO.Compression;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Inference;
using OpenAI;
using OpenAI.Images;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Images;

/// <summary><c>POST images/generations</c>: the local provider's deterministic PNGs, bounds, the OpenAI-compatible passthrough, async and the OpenAI SDK's ImageClient.</summary>
public sealed class ImageGenerationTests
{
    private const string Path = "/openai/v1/images/generations";

    /// <summary>Checks the PNG's signature and chunk CRCs, inflates its pixels and returns (width, height, first pixel's RGB).</summary>
    private static (int Width, int Height, byte[] Rgb) ReadPng(byte[] png)
    {
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        var at = 8;
        int width = 0, height = 0;
        using var idat = new MemoryStream();
        var types = new List<string>();
        while (at < png.Length)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at));
            var type = System.Text.Encoding.ASCII.GetString(png, at + 4, 4);
            var data = png.AsSpan(at + 8, length);
            Assert.Equal(Crc32(png.AsSpan(at + 4, length + 4)), BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + length)));
            types.Add(type);
            if (type == "IHDR")
            {
                width = (int)BinaryPrimitives.ReadUInt32BigEndian(data);
                height = (int)BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
                Assert.Equal(8, data[8]);
                Assert.Equal(2, data[9]);
            }
            else if (type == "IDAT")
            {
                idat.Write(data);
            }

            at += 12 + length;
        }

        Assert.Equal(["IHDR", "IDAT", "IEND"], types);
        idat.Position = 0;
        using var inflater = new ZLibStream(idat, CompressionMode.Decompress);
        using var pixels = new MemoryStream();
        inflater.CopyTo(pixels);
        var raw = pixels.ToArray();
        Assert.Equal(height * (1 + (width * 3)), raw.Length);
        return (width, height, raw[1..4]);
    }

    /// <summary>PNG's CRC-32 (ISO 3309), bit by bit.</summary>
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
            }
        }

        return ~crc;
    }

    [Fact]
    public async Task The_local_provider_answers_valid_stable_pngs_as_b64_json_one_per_n()
    {
        await using var host = await StartLocalAsync();
        var body = new JsonObject { ["model"] = "local/gpt-image-1", ["prompt"] = "a red fox", ["n"] = 2, ["size"] = "1024x1024" };
        var json = await host.PostOkAsync(Path, body);
        var again = await host.PostOkAsync(Path, body.DeepClone());

        Assert.True(json.GetProperty("created").GetInt64() > 0);
        Assert.Equal("gpt-image-1", json.GetProperty("model").GetString());
        var data = json.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        var first = Convert.FromBase64String(data[0].GetProperty("b64_json").GetString()!);
        var second = Convert.FromBase64String(data[1].GetProperty("b64_json").GetString()!);
        var (width, height, rgb) = ReadPng(first);
        Assert.Equal((8, 8), (width, height));
        Assert.NotEqual(rgb, ReadPng(second).Rgb);
        Assert.Equal("a red fox", data[0].GetProperty("revised_prompt").GetString());
        Assert.False(data[0].TryGetProperty("url", out _));
        Assert.Equal(data[0].GetProperty("b64_json").GetString(), again.GetProperty("data")[0].GetProperty("b64_json").GetString());

        var extra = json.GetProperty("extra_fields");
        Assert.Equal("image_generation", extra.GetProperty("request_type").GetString());
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.Equal("gpt-image-1", extra.GetProperty("model_requested").GetString());
    }

    [Fact]
    public async Task Response_format_url_is_a_data_url_of_the_same_png()
    {
        await using var host = await StartLocalAsync();
        var b64 = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/dall-e-3", ["prompt"] = "sky", ["response_format"] = "b64_json" });
        var url = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/dall-e-3", ["prompt"] = "sky", ["response_format"] = "url" });

        var item = Assert.Single(url.GetProperty("data").EnumerateArray());
        Assert.Equal("data:image/png;base64," + b64.GetProperty("data")[0].GetProperty("b64_json").GetString(), item.GetProperty("url").GetString());
        Assert.False(item.TryGetProperty("b64_json", out _));
    }

    public static TheoryData<string, string, string> BadRequests => new()
    {
        { """{"model":"local/img"}""", "missing_required_parameter", "prompt" },
        { """{"model":"local/img","prompt":""}""", "missing_required_parameter", "prompt" },
        { """{"model":"local/img","prompt":"x","n":0}""", "invalid_value", "n" },
        { """{"model":"local/img","prompt":"x","n":11}""", "invalid_value", "n" },
        { """{"model":"local/img","prompt":"x","response_format":"png"}""", "invalid_value", "response_format" },
        { """{"model":"local/img","prompt":"x","stream":true,"partial_images":4}""", "invalid_value", "partial_images" },
        { "{\"model\":\"local/img\",\"prompt\":\"" + new string('p', 32_001) + "\"}", "invalid_value", "prompt" },
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
    public async Task The_openai_compatible_adapter_sends_the_request_upstream_and_passes_the_answer_through()
    {
        await using var upstream = await ChatOnlyUpstream.StartAsync();
        const string answer = """{"created":1713833628,"data":[{"b64_json":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==","vendor":"x"}],"background":"opaque","output_format":"png","quality":"high","size":"1024x1024","usage":{"input_tokens":50,"output_tokens":4160,"total_tokens":4210,"input_tokens_details":{"image_tokens":0,"text_tokens":50}}}""";
        upstream.ImagesReply = _ => answer;
        await using var host = await StartLocalAsync(options => options.Providers["compat"] = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = upstream.BaseUrl,
            MaxRetries = 0,
            Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
        });
        var json = await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = "compat/gpt-image-1",
            ["prompt"] = "an otter",
            ["n"] = 1,
            ["size"] = "1024x1024",
            ["quality"] = "high",
            ["background"] = "opaque",
            ["output_format"] = "png",
            ["moderation"] = "low",
            ["output_compression"] = 90,
            ["fallbacks"] = new JsonArray("local/img"),
        });

        var sent = Assert.Single(upstream.To("/v1/images/generations"));
        Assert.Equal("Bearer sk-upstream", sent.Authorization);
        AssertSameJson(
            JsonNode.Parse("""{"model":"gpt-image-1","prompt":"an otter","n":1,"size":"1024x1024","quality":"high","background":"opaque","output_format":"png","moderation":"low","output_compression":90}""")!,
            sent.Body!);

        var actual = JsonNode.Parse(json.GetRawText())!.AsObject();
        Assert.Equal("compat", actual["extra_fields"]!["provider"]!.GetValue<string>());
        actual.Remove("extra_fields");
        var expected = JsonNode.Parse(answer)!.AsObject();
        expected["model"] = "gpt-image-1"; // filled by the gateway: OpenAI's answer names no model
        AssertSameJson(expected, actual);
    }

    [Fact]
    public async Task X_bf_async_and_the_async_envelope_give_the_sync_answer()
    {
        await using var host = await StartLocalAsync();
        var body = new JsonObject { ["model"] = "local/img", ["prompt"] = "async otter", ["n"] = 2 };
        var sync = await host.PostOkAsync(Path, body.DeepClone());

        var submitted = await host.PostOkAsync(Path, body.DeepClone(), ("x-bf-async", "true"));
        var id = submitted.GetProperty("id").GetString()!;
        Assert.Equal(0, submitted.GetProperty("data").GetArrayLength());
        var completed = await EventuallyAsync($"image job {id}", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Get, Path, null, ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            Assert.True(poll.StatusCode == HttpStatusCode.OK, $"poll answered {(int)poll.StatusCode}: {json}");
            return json.GetProperty("data").GetArrayLength() == 0 ? (JsonElement?)null : json;
        });
        AssertSameJson(WithoutVolatileFields(sync), WithoutVolatileFields(completed!.Value));

        using var submit = await host.PostAsync("/openai/v1/async/images/generations", body.DeepClone());
        Assert.Equal(HttpStatusCode.Accepted, submit.StatusCode);
        var envelopeId = (await ReadAsync(submit)).GetProperty("id").GetString()!;
        var envelope = await EventuallyAsync($"image envelope {envelopeId}", async () =>
        {
            using var response = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/images/generations/{envelopeId}", null);
            var json = await ReadAsync(response);
            return json.GetProperty("status").GetString() == "completed" ? (JsonElement?)json : null;
        });
        AssertSameJson(WithoutVolatileFields(sync), WithoutVolatileFields(envelope!.Value.GetProperty("result")));
    }

    [Fact]
    public async Task The_openai_sdk_image_client_generates_bytes_the_gateway_made()
    {
        await using var host = await StartLocalAsync();
        var client = new OpenAIClient(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(new HttpClient(host.Server.CreateHandler())),
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetImageClient("local/dall-e-3");

        GeneratedImage image = await client.GenerateImageAsync("an sdk otter", new ImageGenerationOptions { ResponseFormat = GeneratedImageFormat.Bytes, Size = GeneratedImageSize.W1024xH1024 }, Ct);
        var raw = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/dall-e-3", ["prompt"] = "an sdk otter" });
        Assert.Equal(Convert.FromBase64String(raw.GetProperty("data")[0].GetProperty("b64_json").GetString()!), image.ImageBytes.ToArray());
        Assert.Equal("an sdk otter", image.RevisedPrompt);
        Assert.Equal((8, 8), (ReadPng(image.ImageBytes.ToArray()).Width, ReadPng(image.ImageBytes.ToArray()).Height));

        GeneratedImageCollection images = await client.GenerateImagesAsync("three", 3, new ImageGenerationOptions { ResponseFormat = GeneratedImageFormat.Bytes }, Ct);
        Assert.Equal(3, images.Count);
        Assert.Equal(3, images.Select(i => Convert.ToBase64String(i.ImageBytes.ToArray())).Distinct().Count());
    }
}
