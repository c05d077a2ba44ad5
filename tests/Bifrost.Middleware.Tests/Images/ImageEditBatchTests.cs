using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Local;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Images.ImageEditTests;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Images;

/// <summary>
/// <c>/v1/images/edits</c> batch lines (OpenAI's batch endpoint list names it: https://platform.openai.com/docs/api-reference/batch/create):
/// each line's body is OpenAI's JSON edit body, its images references (<c>images: [{"image_url"} | {"file_id"}]</c>,
/// <c>mask</c> alike). The local provider hashes a data URL's bytes (the same PNG as the multipart upload of those bytes)
/// and other references by their text; an OpenAI-compatible upstream gets the JSON body with the references as sent.
/// Urls no operation serves (<c>/v1/rerank</c>: Bifrost's batch endpoints do not list it; <c>/v1/images/variations</c>:
/// OpenAI's do not) stay a 400 at batch creation.
/// </summary>
public sealed class ImageEditBatchTests : IAsyncLifetime
{
    private FakeOpenAIUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await FakeOpenAIUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    private Task<FileBatchHost> StartAsync() => FileBatchHost.StartAsync(options => options.Providers["compat"] = new ProviderOptions
    {
        Type = "openai",
        BaseUrl = _upstream.BaseUrl,
        MaxRetries = 0,
        Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
    });

    private static string Line(string customId, JsonObject body) => new JsonObject
    {
        ["custom_id"] = customId,
        ["method"] = "POST",
        ["url"] = "/v1/images/edits",
        ["body"] = body,
    }.ToJsonString();

    private static JsonArray Refs(params JsonObject[] refs) => new(refs);

    [Fact]
    public async Task A_batch_of_image_edit_lines_with_url_data_url_and_file_references_completes_line_by_line()
    {
        const string Answer = """{"created":7,"data":[{"b64_json":"dXBzdHJlYW0="}],"usage":{"input_tokens":5,"output_tokens":9,"total_tokens":14}}""";
        _upstream.Enqueue(FakeResponses.Json(200, Answer));
        await using var host = await StartAsync();
        var dataUrl = "data:image/png;base64," + Convert.ToBase64String(ImageBytes);
        string[] lines =
        [
            Line("data-url", new JsonObject { ["model"] = "local/gpt-image-1", ["prompt"] = "batch hat", ["images"] = Refs(new JsonObject { ["image_url"] = dataUrl }), ["n"] = 2 }),
            Line("url-and-file", new JsonObject
            {
                ["model"] = "local/gpt-image-1",
                ["prompt"] = "merge",
                ["images"] = Refs(new JsonObject { ["image_url"] = "https://images.example/a.png" }, new JsonObject { ["file_id"] = "file-abc" }),
                ["mask"] = new JsonObject { ["file_id"] = "file-mask" },
                ["stream"] = true, // batch lines never stream
            }),
            Line("upstream", new JsonObject
            {
                ["model"] = "compat/gpt-image-1",
                ["prompt"] = "relay",
                ["images"] = Refs(new JsonObject { ["file_id"] = "file-up" }, new JsonObject { ["image_url"] = "https://images.example/b.png" }),
                ["mask"] = new JsonObject { ["image_url"] = dataUrl },
                ["size"] = "1024x1024",
                ["input_fidelity"] = "high",
                ["output_compression"] = 50,
            }),
            Line("both-sources", new JsonObject { ["model"] = "local/gpt-image-1", ["prompt"] = "p", ["images"] = Refs(new JsonObject { ["image_url"] = "https://images.example/a.png", ["file_id"] = "file-abc" }) }),
            Line("ftp", new JsonObject { ["model"] = "local/gpt-image-1", ["prompt"] = "p", ["images"] = Refs(new JsonObject { ["image_url"] = "ftp://images.example/a.png" }) }),
            Line("no-images", new JsonObject { ["model"] = "local/gpt-image-1", ["prompt"] = "p" }),
        ];
        var file = await host.UploadOkAsync(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        using var created = await host.CreateBatchRawAsync(new JsonObject
        {
            ["input_file_id"] = file.GetProperty("id").GetString(),
            ["endpoint"] = "/v1/images/edits",
            ["completion_window"] = "24h",
        }.ToJsonString());
        var batch = await FileBatchHost.ExpectAsync(created, HttpStatusCode.OK);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal(6, done.GetProperty("request_counts").GetProperty("total").GetInt32());
        Assert.Equal(3, done.GetProperty("request_counts").GetProperty("completed").GetInt32());
        Assert.Equal(3, done.GetProperty("request_counts").GetProperty("failed").GetInt32());

        var (output, errors) = await host.ResultsAsync(done);
        var all = output.Concat(errors).ToDictionary(static l => l.GetProperty("custom_id").GetString()!, static l => l.GetProperty("response"));
        Assert.Equal(["both-sources", "data-url", "ftp", "no-images", "upstream", "url-and-file"], all.Keys.Order());

        // A data URL's bytes give the same PNGs as the multipart upload of those bytes.
        var dataLine = all["data-url"];
        Assert.Equal(200, dataLine.GetProperty("status_code").GetInt32());
        var body = dataLine.GetProperty("body");
        Assert.Equal(2, body.GetProperty("data").GetArrayLength());
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(LocalProviderAdapter.Png($"edit:{Sha(ImageBytes)}||batch hat", i), Convert.FromBase64String(B64(body, i)));
        }

        Assert.Equal("image_edit", body.GetProperty("extra_fields").GetProperty("request_type").GetString());

        var referenced = all["url-and-file"];
        Assert.Equal(200, referenced.GetProperty("status_code").GetInt32());
        Assert.Equal(LocalProviderAdapter.Png("edit:url:https://images.example/a.png,file:file-abc|file:file-mask|merge", 0), Convert.FromBase64String(B64(referenced.GetProperty("body"), 0)));

        var relayed = all["upstream"];
        Assert.Equal(200, relayed.GetProperty("status_code").GetInt32());
        Assert.Equal("dXBzdHJlYW0=", B64(relayed.GetProperty("body"), 0));
        Assert.Equal("compat", relayed.GetProperty("body").GetProperty("extra_fields").GetProperty("provider").GetString());
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/images/edits", sent.Path);
        Assert.Equal("application/json", sent.Header("Content-Type")?.Split(';')[0]);
        AssertSameJson(
            new JsonObject
            {
                ["model"] = "gpt-image-1",
                ["prompt"] = "relay",
                ["images"] = Refs(new JsonObject { ["file_id"] = "file-up" }, new JsonObject { ["image_url"] = "https://images.example/b.png" }),
                ["mask"] = new JsonObject { ["image_url"] = dataUrl },
                ["size"] = "1024x1024",
                ["input_fidelity"] = "high",
                ["output_compression"] = 50,
            },
            JsonNode.Parse(sent.RawBody)!);

        foreach (var (id, param) in new[] { ("both-sources", "images"), ("ftp", "images"), ("no-images", "image") })
        {
            var failed = all[id];
            Assert.Equal(400, failed.GetProperty("status_code").GetInt32());
            var error = failed.GetProperty("body").GetProperty("error");
            Assert.Equal(param, error.GetProperty("param").GetString());
        }
    }

    [Theory]
    [InlineData("/v1/rerank")]
    [InlineData("/v1/images/variations")]
    [InlineData("/v1/audio/speech")]
    public async Task Batches_for_urls_no_operation_serves_are_a_400_at_creation_naming_the_supported_ones(string endpoint)
    {
        await using var host = await StartAsync();
        var file = await host.UploadOkAsync(Encoding.UTF8.GetBytes(new JsonObject
        {
            ["custom_id"] = "x",
            ["method"] = "POST",
            ["url"] = "/v1/chat/completions",
            ["body"] = new JsonObject { ["model"] = "local/m", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) },
        }.ToJsonString() + "\n"));
        using var created = await host.CreateBatchRawAsync(new JsonObject
        {
            ["input_file_id"] = file.GetProperty("id").GetString(),
            ["endpoint"] = endpoint,
            ["completion_window"] = "24h",
        }.ToJsonString());
        var error = await FileBatchHost.ExpectErrorAsync(created, HttpStatusCode.BadRequest);
        Assert.Equal("endpoint", error.GetProperty("param").GetString());
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains("/v1/images/edits", message, StringComparison.Ordinal);
        Assert.Contains("/v1/images/generations", message, StringComparison.Ordinal);
        Assert.Contains("/v1/moderations", message, StringComparison.Ordinal);
    }
}
