using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Operations;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>
/// One rule, as Bifrost's: <c>model</c> and <c>extra_fields.model_requested</c> report the model as the provider is
/// asked for it — bare (<c>echo</c> for <c>local/echo</c>) — on every answer of every inference operation: the
/// synchronous answer, each stream chunk or event, the async pending shape and the polled result, batch output lines,
/// and the refusals of routing (a model missing from the provider's list, an unknown provider) wherever they are answered.
/// </summary>
public sealed class ModelRequestedRuleTests
{
    /// <summary>
    /// Every inference operation's descriptor with a JSON body, by name: a new operation without a body here fails the
    /// theory. (The multipart image edits and variations check the rule in Images/ImageEditTests.)
    /// </summary>
    public static TheoryData<string> Operations => [.. InferenceOperations.All.Where(static operation => !operation.Routes.Any(static r => r.Body == RouteBody.Upload)).Select(static operation => operation.Name)];

    private static JsonObject Body(string operation, string model) => operation switch
    {
        "chat_completion" => new JsonObject { ["model"] = model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "rule" }) },
        "text_completion" => new JsonObject { ["model"] = model, ["prompt"] = "rule" },
        "embedding" => new JsonObject { ["model"] = model, ["input"] = "rule" },
        "responses" => new JsonObject { ["model"] = model, ["input"] = "rule" },
        "moderation" => new JsonObject { ["model"] = model, ["input"] = "rule" },
        "image_generation" => new JsonObject { ["model"] = model, ["prompt"] = "rule" },
        "rerank" => new JsonObject { ["model"] = model, ["query"] = "rule", ["documents"] = new JsonArray("rule one", "other") },
        _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, "give the operation a request body in ModelRequestedRuleTests.Body"),
    };

    [Theory]
    [MemberData(nameof(Operations))]
    public async Task Model_and_model_requested_are_the_bare_model_on_every_answer(string name)
    {
        var operation = InferenceOperations.All.Single(o => o.Name == name);
        var route = operation.Routes.First(static r => r.Method == "POST" && r.Body == RouteBody.Json);
        var path = "/openai/v1/" + route.Path;
        await using var files = await FileBatchHost.StartAsync(options => options.Providers["local"].Models = ["echo"]);
        var host = files.Host;

        // synchronous
        AssertBare(await host.PostOkAsync(path, Body(name, "local/echo")), "the synchronous answer");

        // streamed: every chunk or event that carries extra_fields
        if (route.ContentTypes.Contains("text/event-stream"))
        {
            var body = Body(name, "local/echo");
            body["stream"] = true;
            using var response = await host.PostAsync(path, body);
            var items = name is "responses" or "image_generation"
                ? [.. (await ReadEventStreamAsync(response)).Select(static e => e.Data)]
                : (await ReadDataStreamAsync(response)).Chunks;
            var carrying = items.Where(static item => item.TryGetProperty("extra_fields", out _)).ToList();
            Assert.NotEmpty(carrying);
            Assert.All(carrying, item => Assert.Equal("echo", item.GetProperty("extra_fields").GetProperty("model_requested").GetString()));
        }

        // async: the pending shape, then the polled result
        var pending = await host.PostOkAsync(path, Body(name, "local/echo"), ("x-bf-async", "true"));
        AssertBare(pending, "the async pending shape");
        var id = pending.GetProperty("id").GetString()!;
        var result = await EventuallyAsync($"{name} job {id}", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Get, path, null, ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            Assert.Equal(HttpStatusCode.OK, poll.StatusCode);
            return IsPendingShape(json) ? (JsonElement?)null : json;
        });
        AssertBare(result!.Value, "the async result");

        // routing refusals, synchronous and async alike
        foreach (var headers in new[] { Array.Empty<(string, string)>(), [("x-bf-async", "true")] })
        {
            using var notListed = await host.PostAsync(path, Body(name, "local/nope"), headers);
            Assert.Equal(HttpStatusCode.BadRequest, notListed.StatusCode);
            Assert.Equal("nope", (await ReadAsync(notListed)).GetProperty("extra_fields").GetProperty("model_requested").GetString());

            using var unknownProvider = await host.PostAsync(path, Body(name, "elsewhere/echo"), headers);
            Assert.Equal(HttpStatusCode.BadRequest, unknownProvider.StatusCode);
            Assert.Equal("echo", (await ReadAsync(unknownProvider)).GetProperty("extra_fields").GetProperty("model_requested").GetString());
        }

        // batch output and error lines (of the operations OpenAI's batch API takes)
        if (name is "rerank")
        {
            Assert.Null(operation.BatchUrl);
            return;
        }

        Assert.NotNull(operation.BatchUrl);
        var lines = new[] { ("served", "local/echo"), ("not-listed", "local/nope"), ("unknown-provider", "elsewhere/echo") }
            .Select(line => new JsonObject { ["custom_id"] = line.Item1, ["method"] = "POST", ["url"] = operation.BatchUrl, ["body"] = Body(name, line.Item2) }.ToJsonString());
        var input = await files.UploadOkAsync(BatchLines.Jsonl(lines));
        using var created = await files.CreateBatchRawAsync(new JsonObject { ["input_file_id"] = input.GetProperty("id").GetString(), ["endpoint"] = operation.BatchUrl, ["completion_window"] = "24h" }.ToJsonString());
        var batch = await FileBatchHost.ExpectAsync(created, HttpStatusCode.OK);
        var (output, errors) = await files.ResultsAsync(await files.WaitForEndAsync(batch.GetProperty("id").GetString()!));
        var bodies = output.Concat(errors).ToDictionary(BatchLines.CustomId, static line => line.GetProperty("response").GetProperty("body"));
        AssertBare(bodies["served"], "a batch output line");
        Assert.Equal("nope", bodies["not-listed"].GetProperty("extra_fields").GetProperty("model_requested").GetString());
        Assert.Equal("echo", bodies["unknown-provider"].GetProperty("extra_fields").GetProperty("model_requested").GetString());
    }

    private static void AssertBare(JsonElement json, string what)
    {
        Assert.True(json.GetProperty("extra_fields").GetProperty("model_requested").GetString() == "echo", $"{what}: extra_fields.model_requested is not \"echo\": {json}");
        Assert.True(json.GetProperty("model").GetString() == "echo", $"{what}: model is not \"echo\": {json}");
    }

    /// <summary>The empty result of a job still pending or running, in any operation's shape.</summary>
    private static bool IsPendingShape(JsonElement json) =>
        (json.TryGetProperty("choices", out var choices) && choices.GetArrayLength() == 0)
        || (json.TryGetProperty("data", out var data) && data.GetArrayLength() == 0)
        || (json.TryGetProperty("results", out var results) && results.GetArrayLength() == 0)
        || (json.TryGetProperty("status", out var status) && status.GetString() is "queued" or "in_progress");
}
