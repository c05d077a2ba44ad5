using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Inference;
using Bifrost.Middleware.Tests.Infrastructure;
using OpenAI;
using OpenAI.Moderations;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Moderations;

/// <summary><c>POST moderations</c>: the local provider's deterministic classification, input checks, the OpenAI-compatible passthrough, async, batch lines and the OpenAI SDK's ModerationClient.</summary>
public sealed class ModerationsTests
{
    private const string Path = "/openai/v1/moderations";

    private static readonly string[] Categories =
    [
        "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
        "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic",
    ];

    [Fact]
    public async Task A_string_is_one_unflagged_result_with_every_category_low_scores_and_extra_fields()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "local/omni-moderation-latest", ["input"] = "A friendly sentence." });

        Assert.StartsWith("modr-", json.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("omni-moderation-latest", json.GetProperty("model").GetString());
        var result = Assert.Single(json.GetProperty("results").EnumerateArray());
        Assert.False(result.GetProperty("flagged").GetBoolean());
        Assert.Equal(Categories, result.GetProperty("categories").EnumerateObject().Select(p => p.Name));
        Assert.All(result.GetProperty("categories").EnumerateObject(), p => Assert.Equal(JsonValueKind.False, p.Value.ValueKind));
        Assert.Equal(Categories, result.GetProperty("category_scores").EnumerateObject().Select(p => p.Name));
        Assert.All(result.GetProperty("category_scores").EnumerateObject(), p => Assert.InRange(p.Value.GetDouble(), 0, 0.001));
        Assert.All(result.GetProperty("category_applied_input_types").EnumerateObject(), p => Assert.Equal(["text"], p.Value.EnumerateArray().Select(v => v.GetString())));

        var extra = json.GetProperty("extra_fields");
        Assert.Equal("moderation", extra.GetProperty("request_type").GetString());
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.Equal("omni-moderation-latest", extra.GetProperty("model_requested").GetString());
    }

    [Fact]
    public async Task The_keyword_flags_harassment_or_the_named_category_and_scores_are_stable()
    {
        await using var host = await StartLocalAsync();
        var body = new JsonObject { ["model"] = "local/mod", ["input"] = new JsonArray("calm text", "please bifrost-flag this", "bifrost-flag:violence/graphic here") };
        var json = await host.PostOkAsync(Path, body);
        var again = await host.PostOkAsync(Path, body.DeepClone());

        var results = json.GetProperty("results");
        Assert.Equal(3, results.GetArrayLength());
        Assert.False(results[0].GetProperty("flagged").GetBoolean());
        Assert.True(results[1].GetProperty("flagged").GetBoolean());
        Assert.Equal(["harassment"], Flagged(results[1]));
        Assert.Equal(0.99, results[1].GetProperty("category_scores").GetProperty("harassment").GetDouble());
        Assert.True(results[2].GetProperty("flagged").GetBoolean());
        Assert.Equal(["violence/graphic"], Flagged(results[2]));
        Assert.Equal(0.99, results[2].GetProperty("category_scores").GetProperty("violence/graphic").GetDouble());

        // Same text, same scores (ids differ).
        AssertSameJson(JsonNode.Parse(results.GetRawText())!, JsonNode.Parse(again.GetProperty("results").GetRawText())!);
        Assert.NotEqual(
            results[0].GetProperty("category_scores").GetProperty("hate").GetDouble(),
            results[1].GetProperty("category_scores").GetProperty("hate").GetDouble());
    }

    [Fact]
    public async Task A_multimodal_input_is_one_result_whose_image_categories_apply_to_images()
    {
        await using var host = await StartLocalAsync();
        var json = await host.PostOkAsync(Path, new JsonObject
        {
            ["model"] = "local/mod",
            ["input"] = new JsonArray(
                new JsonObject { ["type"] = "text", ["text"] = "look bifrost-flag:sexual" },
                new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = "data:image/png;base64,AAAA" } }),
        });

        var result = Assert.Single(json.GetProperty("results").EnumerateArray());
        Assert.Equal(["sexual"], Flagged(result));
        var applied = result.GetProperty("category_applied_input_types");
        Assert.Equal(["text", "image"], applied.GetProperty("violence").EnumerateArray().Select(v => v.GetString()));
        Assert.Equal(["text"], applied.GetProperty("hate").EnumerateArray().Select(v => v.GetString()));
    }

    public static TheoryData<string, int, string, string> BadInputs => new()
    {
        { """{"model":"local/mod"}""", 400, "missing_required_parameter", "input" },
        { """{"model":"local/mod","input":null}""", 400, "missing_required_parameter", "input" },
        { """{"model":"local/mod","input":42}""", 400, "invalid_type", "input" },
        { """{"model":"local/mod","input":[]}""", 400, "invalid_value", "input" },
        { """{"model":"local/mod","input":["a",7]}""", 400, "invalid_type", "input[1]" },
        { """{"model":"local/mod","input":[{"type":"audio","audio":"x"}]}""", 400, "invalid_value", "input[0].type" },
        { """{"model":"local/mod","input":[{"type":"text"}]}""", 400, "invalid_type", "input[0].text" },
        { """{"model":"local/mod","input":[{"type":"image_url","image_url":{}}]}""", 400, "invalid_type", "input[0].image_url.url" },
        { """{"model":"local/mod","input":[null]}""", 400, "invalid_type", "input[0]" },
        { "{\"model\":\"local/mod\",\"input\":[" + string.Join(',', Enumerable.Repeat("\"x\"", 2049)) + "]}", 400, "invalid_value", "input" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Malformed_or_oversized_input_is_a_400_naming_the_parameter(string body, int status, string code, string param)
    {
        await using var host = await StartLocalAsync();
        using var response = await host.SendAsync(HttpMethod.Post, Path, body);
        var json = await ReadAsync(response);
        Assert.True((int)response.StatusCode == status, $"{(int)response.StatusCode}: {json}");
        AssertError(json, status, code, param);
    }

    [Fact]
    public async Task The_openai_compatible_adapter_sends_the_request_upstream_and_passes_the_answer_through()
    {
        await using var upstream = await ChatOnlyUpstream.StartAsync();
        const string answer = """{"id":"modr-up1","model":"omni-moderation-2024-09-26","results":[{"flagged":true,"categories":{"hate":true,"violence":false},"category_scores":{"hate":0.875,"violence":1.5e-05},"category_applied_input_types":{"hate":["text"],"violence":["text","image"]},"vendor_note":"kept"}],"usage_hint":{"a":1}}""";
        upstream.ModerationsReply = _ => answer;
        await using var host = await StartLocalAsync(options => options.Providers["compat"] = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = upstream.BaseUrl,
            MaxRetries = 0,
            Keys = [new ProviderKeyOptions { Value = "sk-upstream" }],
        });
        var input = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "hi" }, new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = "https://example.com/a.png" } });
        var json = await host.PostOkAsync(Path, new JsonObject { ["model"] = "compat/omni-moderation-latest", ["input"] = input.DeepClone(), ["fallbacks"] = new JsonArray("local/mod") });

        var sent = Assert.Single(upstream.To("/v1/moderations"));
        Assert.Equal("Bearer sk-upstream", sent.Authorization);
        AssertSameJson(new JsonObject { ["model"] = "omni-moderation-latest", ["input"] = input }, sent.Body!);

        var expected = JsonNode.Parse(answer)!.AsObject();
        var actual = JsonNode.Parse(json.GetRawText())!.AsObject();
        var extra = actual["extra_fields"]!.AsObject();
        Assert.Equal("compat", extra["provider"]!.GetValue<string>());
        Assert.Equal("moderation", extra["request_type"]!.GetValue<string>());
        actual.Remove("extra_fields");
        AssertSameJson(expected, actual);
    }

    [Fact]
    public async Task An_upstream_error_reaches_the_caller_with_its_status_and_a_provider_without_moderations_is_unsupported()
    {
        await using var upstream = await ChatOnlyUpstream.StartAsync(); // no moderations handler: 404
        await using var host = await StartLocalAsync(options =>
        {
            options.Providers["compat"] = new ProviderOptions { Type = "openai", BaseUrl = upstream.BaseUrl, MaxRetries = 0 };
            options.Providers["claude"] = new ProviderOptions { Type = "anthropic", BaseUrl = upstream.BaseUrl, MaxRetries = 0, Keys = [new ProviderKeyOptions { Value = "k" }] };
        });

        using var missing = await host.PostAsync(Path, new JsonObject { ["model"] = "compat/m", ["input"] = "x" });
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("compat", (await ReadAsync(missing)).GetProperty("extra_fields").GetProperty("provider").GetString());

        await host.PostErrorAsync(Path, new JsonObject { ["model"] = "claude/claude-x", ["input"] = "x" }, 400, "unsupported_operation");
        Assert.DoesNotContain(upstream.Requests, r => r.Path != "/v1/moderations");
    }

    [Fact]
    public async Task X_bf_async_and_the_async_envelope_give_the_sync_answer()
    {
        await using var host = await StartLocalAsync();
        var body = new JsonObject { ["model"] = "local/mod", ["input"] = new JsonArray("async bifrost-flag:hate", "fine") };
        var sync = await host.PostOkAsync(Path, body.DeepClone());

        var submitted = await host.PostOkAsync(Path, body.DeepClone(), ("x-bf-async", "true"));
        var id = submitted.GetProperty("id").GetString()!;
        var completed = await EventuallyAsync($"moderation job {id}", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Get, Path, null, ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            Assert.True(poll.StatusCode == HttpStatusCode.OK, $"poll answered {(int)poll.StatusCode}: {json}");
            return json.GetProperty("results").GetArrayLength() == 0 ? (JsonElement?)null : json;
        });
        AssertSameJson(WithoutVolatileFields(sync), WithoutVolatileFields(completed!.Value));

        using var submit = await host.PostAsync("/openai/v1/async/moderations", body.DeepClone());
        Assert.Equal(HttpStatusCode.Accepted, submit.StatusCode);
        var envelopeId = (await ReadAsync(submit)).GetProperty("id").GetString()!;
        var envelope = await EventuallyAsync($"moderation envelope {envelopeId}", async () =>
        {
            using var response = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/moderations/{envelopeId}", null);
            var json = await ReadAsync(response);
            return json.GetProperty("status").GetString() == "completed" ? (JsonElement?)json : null;
        });
        AssertSameJson(WithoutVolatileFields(sync), WithoutVolatileFields(envelope!.Value.GetProperty("result")));
    }

    [Fact]
    public async Task A_batch_of_moderations_lines_completes_with_one_result_per_line()
    {
        await using var host = await FileBatchHost.StartAsync();
        var lines = Enumerable.Range(1, 3).Select(i => new JsonObject
        {
            ["custom_id"] = $"m{i}",
            ["method"] = "POST",
            ["url"] = "/v1/moderations",
            ["body"] = new JsonObject { ["model"] = "local/mod", ["input"] = i == 2 ? "line bifrost-flag" : $"line {i}" },
        }.ToJsonString());
        var file = await host.UploadOkAsync(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        using var created = await host.CreateBatchRawAsync(new JsonObject
        {
            ["input_file_id"] = file.GetProperty("id").GetString(),
            ["endpoint"] = "/v1/moderations",
            ["completion_window"] = "24h",
        }.ToJsonString());
        var batch = await FileBatchHost.ExpectAsync(created, HttpStatusCode.OK);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(done);
        Assert.Empty(errors);
        var byId = output.ToDictionary(l => l.GetProperty("custom_id").GetString()!, l => l.GetProperty("response"));
        Assert.Equal(["m1", "m2", "m3"], byId.Keys.Order());
        Assert.All(byId.Values, r => Assert.Equal(200, r.GetProperty("status_code").GetInt32()));
        Assert.Equal([false, true, false], new[] { "m1", "m2", "m3" }.Select(id => byId[id].GetProperty("body").GetProperty("results")[0].GetProperty("flagged").GetBoolean()));
        var body1 = byId["m1"].GetProperty("body");
        Assert.StartsWith("modr-", body1.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal(body1.GetProperty("id").GetString(), byId["m1"].GetProperty("request_id").GetString());
    }

    [Fact]
    public async Task The_openai_sdk_moderation_client_reads_the_local_answer()
    {
        await using var host = await StartLocalAsync();
        var client = new OpenAIClient(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(new HttpClient(host.Server.CreateHandler())),
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetModerationClient("local/omni-moderation-latest");

        global::OpenAI.Moderations.ModerationResult one = await client.ClassifyTextAsync("sdk bifrost-flag:violence", Ct);
        Assert.True(one.Flagged);
        Assert.True(one.Violence.Flagged);
        Assert.Equal(0.99f, one.Violence.Score);
        Assert.False(one.Harassment.Flagged);
        Assert.InRange(one.Harassment.Score, 0f, 0.001f);

        ModerationResultCollection many = await client.ClassifyTextAsync(["calm", "bifrost-flag"], Ct);
        Assert.Equal(2, many.Count);
        Assert.StartsWith("modr-", many.Id, StringComparison.Ordinal);
        Assert.Equal("omni-moderation-latest", many.Model);
        Assert.False(many[0].Flagged);
        Assert.True(many[1].Harassment.Flagged);
    }

    private static IEnumerable<string> Flagged(JsonElement result) =>
        result.GetProperty("categories").EnumerateObject().Where(p => p.Value.GetBoolean()).Select(p => p.Name);
}
