using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>Async inference (x-bf-async headers and the v1/async envelope) for embeddings, completions and responses: the completed result equals the sync answer.</summary>
public sealed class InferenceAsyncTests
{
    public static TheoryData<string> Routes => ["embeddings", "completions", "responses"];

    private static JsonObject Body(string route, string text) => route switch
    {
        "embeddings" => new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray(text, text + " again"), ["dimensions"] = 8, ["encoding_format"] = "base64" },
        "completions" => new JsonObject { ["model"] = "local/echo", ["prompt"] = text, ["echo"] = true, ["metadata"] = new JsonObject { ["local_delay_ms"] = "200" } },
        "responses" => new JsonObject { ["model"] = "local/echo", ["input"] = text, ["instructions"] = "Echo it.", ["metadata"] = new JsonObject { ["local_delay_ms"] = "200" } },
        _ => throw new ArgumentOutOfRangeException(nameof(route)),
    };

    /// <summary>Whether a body is the route's pending shape (job id, empty result); asserts that shape when it is.</summary>
    private static bool IsPending(string route, JsonElement json, string id)
    {
        switch (route)
        {
            case "embeddings":
                Assert.Equal("list", json.GetProperty("object").GetString());
                if (json.GetProperty("data").GetArrayLength() > 0)
                {
                    return false;
                }

                Assert.Equal(id, json.GetProperty("id").GetString());
                Assert.False(json.TryGetProperty("usage", out _));
                return true;
            case "completions":
                Assert.Equal("text_completion", json.GetProperty("object").GetString());
                if (json.GetProperty("choices").GetArrayLength() > 0)
                {
                    return false;
                }

                Assert.Equal(id, json.GetProperty("id").GetString());
                Assert.False(json.TryGetProperty("usage", out _));
                return true;
            default:
                Assert.Equal("response", json.GetProperty("object").GetString());
                var status = json.GetProperty("status").GetString();
                if (status is not ("queued" or "in_progress"))
                {
                    return false;
                }

                Assert.Equal(id, json.GetProperty("id").GetString());
                Assert.Equal(0, json.GetProperty("output").GetArrayLength());
                return true;
        }
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task X_bf_async_submits_a_job_whose_polled_result_equals_the_sync_answer(string route)
    {
        await using var host = await StartLocalAsync();
        var path = "/openai/v1/" + route;
        var sync = await host.PostOkAsync(path, Body(route, "async hello"));

        var submitted = await host.PostOkAsync(path, Body(route, "async hello"), ("x-bf-async", "true"));
        var id = submitted.GetProperty("id").GetString()!;
        Assert.False(string.IsNullOrEmpty(id));
        Assert.True(IsPending(route, submitted, id), $"the submit answer is the pending shape: {submitted}");

        var completed = await EventuallyAsync($"{route} job {id}", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Post, path, "{}", ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            Assert.True(poll.StatusCode == HttpStatusCode.OK, $"poll answered {(int)poll.StatusCode}: {json}");
            return IsPending(route, json, id) ? (JsonElement?)null : json;
        });

        AssertSameJson(WithoutVolatileFields(sync), WithoutVolatileFields(completed!.Value));

        // GET with the header polls too (the body is optional).
        using var get = await host.SendAsync(HttpMethod.Get, path, null, ("x-bf-async-id", id));
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        AssertSameJson(WithoutVolatileFields(completed!.Value), WithoutVolatileFields(await ReadAsync(get)));
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task The_job_envelope_answers_202_until_completed_then_200_with_the_sync_answer_as_result(string route)
    {
        await using var host = await StartLocalAsync();
        var sync = await host.PostOkAsync("/openai/v1/" + route, Body(route, "envelope hello"));

        using var submit = await host.PostAsync("/openai/v1/async/" + route, Body(route, "envelope hello"));
        var accepted = await ReadAsync(submit);
        Assert.True(submit.StatusCode == HttpStatusCode.Accepted, $"submit answered {(int)submit.StatusCode}: {accepted}");
        Assert.Equal("pending", accepted.GetProperty("status").GetString());
        var id = accepted.GetProperty("id").GetString()!;
        Assert.True(DateTimeOffset.TryParse(accepted.GetProperty("created_at").GetString(), System.Globalization.CultureInfo.InvariantCulture, out _));

        var envelope = await EventuallyAsync($"{route} envelope {id}", async () =>
        {
            using var response = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/{route}/{id}", null);
            var json = await ReadAsync(response);
            Bifrost.Middleware.Tests.Jobs.AsyncTestKit.AssertEnvelopeStatusCode(response, json);
            Assert.Equal(id, json.GetProperty("id").GetString());
            var status = json.GetProperty("status").GetString();
            Assert.Contains(status, new[] { "pending", "processing", "completed" });
            return status == "completed" ? (JsonElement?)json : null;
        });

        var value = envelope!.Value;
        Assert.Equal(200, value.GetProperty("status_code").GetInt32());
        Assert.Equal(JsonValueKind.Null, value.GetProperty("error").ValueKind);
        Assert.Equal(JsonValueKind.String, value.GetProperty("completed_at").ValueKind);
        Assert.Equal(JsonValueKind.String, value.GetProperty("expires_at").ValueKind);
        AssertSameJson(WithoutVolatileFields(sync), WithoutVolatileFields(value.GetProperty("result")));

        // The same job is reachable through the route's own x-bf-async-id poll, and not through another route's envelope.
        using var poll = await host.SendAsync(HttpMethod.Post, "/openai/v1/" + route, "{}", ("x-bf-async-id", id));
        AssertSameJson(WithoutVolatileFields(value.GetProperty("result")), WithoutVolatileFields(await ReadAsync(poll)));
        var other = route == "embeddings" ? "completions" : "embeddings";
        using var wrong = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/{other}/{id}", null);
        Assert.Equal(HttpStatusCode.NotFound, wrong.StatusCode);
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task A_job_that_fails_validation_is_refused_at_submit(string route)
    {
        await using var host = await StartLocalAsync();
        var body = Body(route, "x");
        body.Remove(route switch { "embeddings" => "input", "completions" => "prompt", _ => "input" });
        using var response = await host.PostAsync("/openai/v1/async/" + route, body);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertError(await ReadAsync(response), 400, "missing_required_parameter");
    }

    [Theory]
    [InlineData("completions")]
    [InlineData("responses")]
    public async Task A_failed_job_answers_the_poll_with_the_error_the_sync_call_gives(string route)
    {
        await using var host = await StartLocalAsync(o => o.Providers["local"].MaxRetries = 0);
        var body = Body(route, "fail");
        body["metadata"] = new JsonObject { ["local_status"] = "403" };
        var path = "/openai/v1/" + route;
        using var sync = await host.PostAsync(path, body.DeepClone());
        Assert.Equal(HttpStatusCode.Forbidden, sync.StatusCode);
        var syncError = await ReadAsync(sync);

        var id = (await host.PostOkAsync(path, body, ("x-bf-async", "true"))).GetProperty("id").GetString()!;
        var failed = await EventuallyAsync($"{route} job {id} to fail", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Post, path, "{}", ("x-bf-async-id", id));
            return poll.StatusCode == HttpStatusCode.OK ? null : new Tuple<HttpStatusCode, JsonElement>(poll.StatusCode, await ReadAsync(poll));
        });
        Assert.Equal(HttpStatusCode.Forbidden, failed.Item1);
        Assert.Equal(syncError.GetProperty("error").GetRawText(), failed.Item2.GetProperty("error").GetRawText());
        Assert.False(failed.Item2.GetProperty("is_bifrost_error").GetBoolean());
    }

    [Fact]
    public async Task An_unknown_job_id_is_a_404_on_every_route()
    {
        await using var host = await StartLocalAsync();
        foreach (var route in new[] { "embeddings", "completions", "responses" })
        {
            using var poll = await host.SendAsync(HttpMethod.Post, "/openai/v1/" + route, "{}", ("x-bf-async-id", "job-does-not-exist"));
            Assert.Equal(HttpStatusCode.NotFound, poll.StatusCode);
            using var envelope = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/{route}/job-does-not-exist", null);
            Assert.Equal(HttpStatusCode.NotFound, envelope.StatusCode);
        }
    }

    [Fact]
    public async Task Streaming_responses_with_x_bf_async_is_a_400()
    {
        await using var host = await StartLocalAsync();
        using var response = await host.PostAsync("/openai/v1/responses", new JsonObject { ["model"] = "local/echo", ["input"] = "x", ["stream"] = true }, ("x-bf-async", "true"));
        AssertError(await ReadAsync(response), 400, "async_stream_not_supported");
        using var envelope = await host.PostAsync("/openai/v1/async/responses", new JsonObject { ["model"] = "local/echo", ["input"] = "x", ["stream"] = true });
        Assert.Equal(HttpStatusCode.BadRequest, envelope.StatusCode);
    }
}
