using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Inference;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Fuzz;

/// <summary>
/// The examples of issue 11 as fixed regression cases, checked with the fuzz suite's properties (no 5xx, the Bifrost
/// error shape, the same answer sync, x-bf-async and v1/async — and SSE where the route streams) plus what each
/// finding asks for (a 400 naming the parameter, a clamped status, 202 while pending, ...).
/// </summary>
public sealed class IssueRegressionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Finding 1 (and 3): numeric parameters outside OpenAI's documented ranges, or not finite, are a 400 naming the
    /// parameter. (No <c>n: 2147483647</c> on completions here: unfixed code would loop until the test process runs out
    /// of memory; the memory test sends the huge values to a child process under a watchdog.)
    /// </summary>
    [Theory]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"n":2147483647}""", "n")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"n":0}""", "n")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"n":-5}""", "n")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"n":129}""", "n")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"max_tokens":-1}""", "max_tokens")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"max_completion_tokens":0}""", "max_completion_tokens")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"top_logprobs":2147483647}""", "top_logprobs")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"temperature":1e309}""", "temperature")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"temperature":-1e309}""", "temperature")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"temperature":2.5}""", "temperature")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"top_p":1.5}""", "top_p")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"presence_penalty":2.5}""", "presence_penalty")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"frequency_penalty":-1e309}""", "frequency_penalty")]
    [InlineData("completions", """{"model":"local/echo","prompt":"x","n":0}""", "n")]
    [InlineData("completions", """{"model":"local/echo","prompt":"x","n":129}""", "n")]
    [InlineData("completions", """{"model":"local/echo","prompt":"x","max_tokens":-1}""", "max_tokens")]
    [InlineData("completions", """{"model":"local/echo","prompt":"x","temperature":1e309}""", "temperature")]
    [InlineData("embeddings", """{"model":"local/echo","input":"x","dimensions":0}""", "dimensions")]
    [InlineData("embeddings", """{"model":"local/echo","input":"x","dimensions":-1}""", "dimensions")]
    [InlineData("embeddings", """{"model":"local/echo","input":"x","dimensions":2147483647}""", "dimensions")]
    [InlineData("responses", """{"model":"local/echo","input":"x","temperature":1e309}""", "temperature")]
    [InlineData("responses", """{"model":"local/echo","input":"x","max_output_tokens":-1}""", "max_output_tokens")]
    [InlineData("responses", """{"model":"local/echo","input":"x","top_p":-0.5}""", "top_p")]
    public async Task Out_of_range_numbers_are_a_400_naming_the_parameter_on_every_path(string route, string body, string param)
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        var sync = await AssertPropertiesAsync(host, route, body);
        Assert.True(sync.Status == 400, $"POST {route} {body} answered {sync.Status} {sync.Excerpt}; expected a 400 naming '{param}'");
        using var json = JsonDocument.Parse(sync.Text);
        var actual = json.RootElement.GetProperty("error").TryGetProperty("param", out var p) ? p.GetString() : null;
        Assert.True(actual == param, $"POST {route} {body}: the 400 names param '{actual}', expected '{param}': {sync.Excerpt}");
    }

    /// <summary>Finding 1: "input counts per request" — OpenAI takes at most 2048 embedding inputs per request.</summary>
    [Fact]
    public async Task More_embedding_inputs_than_OpenAI_allows_are_a_400_naming_input()
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        var body = $$"""{"model":"local/echo","input":[{{string.Join(',', Enumerable.Repeat("\"a\"", 2049))}}]}""";
        var sync = await AssertPropertiesAsync(host, "embeddings", body);
        Assert.True(sync.Status == 400, $"2049 embedding inputs answered {sync.Status} {sync.Excerpt}; expected 400 naming 'input'");
        using var json = JsonDocument.Parse(sync.Text);
        Assert.Equal("input", json.RootElement.GetProperty("error").GetProperty("param").GetString());
    }

    /// <summary>Finding 2: invalid UTF-16 escapes in any kept-raw position get the same answer sync and async (a 400 in the Bifrost shape, or success), never a 500.</summary>
    [Theory]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"x_ext":"\uD800"}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"x_ext\uDC00":1}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x","x_extra":"\uDC00\uD800"}]}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":[{"type":"text","text":"x","x_part":"\uD800"}]}]}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"q\uD800":{"type":"string"}}}}}]}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{"name":"f\uDC00"}}}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"\uD800"}}}}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true,"x":"\uD800"}}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"logit_bias":{"\uD800":1}}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"echo \uD800 back"}]}""")]
    [InlineData("completions", """{"model":"local/echo","prompt":"x","x_ext":{"\uDC00":"\uD800"}}""")]
    [InlineData("embeddings", """{"model":"local/echo","input":"x","x_ext":["\uD800"]}""")]
    [InlineData("responses", """{"model":"local/echo","input":"x","tool_choice":{"type":"function","name":"f\uD800"}}""")]
    [InlineData("responses", """{"model":"local/echo","input":"x","text":{"format":{"type":"json_schema","name":"s","schema":{"type":"\uDC00"}}}}""")]
    [InlineData("responses", """{"model":"local/echo","input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"\uD800":{}}}}]}""")]
    [InlineData("responses", """{"model":"local/echo","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"\uD800"}]}""")]
    [InlineData("responses", """{"model":"local/echo","input":"x","truncation":"\uDC00\uD800"}""")]
    public async Task Invalid_UTF16_gets_the_same_answer_sync_async_and_streamed(string route, string body)
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        await AssertPropertiesAsync(host, route, body);
        if (route != "embeddings" && !body.Contains("stream_options", StringComparison.Ordinal))
        {
            await AssertStreamPropertiesAsync(host, route, body);
        }
    }

    /// <summary>Finding 2 and 3 on <c>responses/input_tokens</c> (no async): never a 500.</summary>
    [Theory]
    [InlineData("""{"model":"local/echo","input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"q\uD800":{"type":"string"}}}}]}""")]
    [InlineData("""{"model":"local/echo","input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"q":{"type":"\uDC00"}}}}]}""")]
    [InlineData("""{"model":"local/echo","input":[{"type":"function_call_output","call_id":"c","output":"\uDC00"}]}""")]
    [InlineData("""{"model":"local/echo","input":[null]}""")]
    [InlineData("""{"model":"local/echo","input":"x","tools":[null]}""")]
    [InlineData("""{"model":"local/echo","input":[{"role":"user","content":[null]}]}""")]
    public async Task Input_tokens_never_answers_a_5xx(string body)
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        var violations = await new FuzzOracle(host).CheckAsync(new FuzzTarget("responses/input_tokens", FuzzPath.SyncOnly, body), body);
        Assert.True(violations.Count == 0, Describe("responses/input_tokens", body, violations));
    }

    /// <summary>Finding 3: nulls in arrays are a 400, not a NullReferenceException.</summary>
    [Theory]
    [InlineData("responses", """{"model":"local/echo","input":[null]}""")]
    [InlineData("responses", """{"model":"local/echo","input":"x","tools":[null]}""")]
    [InlineData("responses", """{"model":"local/echo","input":[{"role":"user","content":[null]}]}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":[null]}]}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"tools":[null]}""")]
    [InlineData("chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"x"}],"stop":[null]}""")]
    [InlineData("completions", """{"model":"local/echo","prompt":[null]}""")]
    [InlineData("embeddings", """{"model":"local/echo","input":[null]}""")]
    [InlineData("embeddings", """{"model":"local/echo","input":"x","fallbacks":[null]}""")]
    public async Task Nulls_in_arrays_are_a_400(string route, string body)
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        var sync = await AssertPropertiesAsync(host, route, body);
        Assert.True(sync.Status == 400, $"POST {route} {body} answered {sync.Status} {sync.Excerpt}; expected 400");
    }

    /// <summary>
    /// Finding 3: a scripted Retry-After of NaN or 1e308 seconds does not overflow TimeSpan into a 500: the scripted 429
    /// (with a sane Retry-After) or a 400 naming <c>metadata.local_retry_after</c>, the same sync and async.
    /// </summary>
    [Theory]
    [InlineData("NaN")]
    [InlineData("1e308")]
    [InlineData("-1")]
    [InlineData("Infinity")]
    public async Task A_nonsense_local_retry_after_is_not_a_500(string retryAfter)
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        var body = $$$"""{"model":"local/echo","messages":[{"role":"user","content":"x"}],"metadata":{"local_status":"429","local_retry_after":"{{{retryAfter}}}"}}""";
        var sync = await AssertPropertiesAsync(host, "chat/completions", body);
        Assert.True(sync.Status is 429 or 400, $"scripted 429 with local_retry_after {retryAfter} answered {sync.Status} {sync.Excerpt}");
        if (sync.Status == 400)
        {
            using var json = JsonDocument.Parse(sync.Text);
            Assert.Equal("metadata.local_retry_after", json.RootElement.GetProperty("error").GetProperty("param").GetString());
        }
    }

    /// <summary>Finding 9: nonsense provider statuses become 502 (a valid 5xx), sync and async alike; a valid error status passes through.</summary>
    [Theory]
    [InlineData("0", 502)]
    [InlineData("-1", 502)]
    [InlineData("999", 502)]
    [InlineData("200", 502)]
    [InlineData("302", 502)]
    [InlineData("418", 418)]
    public async Task Provider_error_statuses_are_clamped(string status, int expected)
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        foreach (var route in new[] { "chat/completions", "completions" })
        {
            var body = route == "completions"
                ? $$$"""{"model":"local/echo","prompt":"x","metadata":{"local_status":"{{{status}}}"}}"""
                : $$$"""{"model":"local/echo","messages":[{"role":"user","content":"x"}],"metadata":{"local_status":"{{{status}}}"}}""";
            var violations = await new FuzzOracle(host).CheckAsync(new FuzzTarget(route, FuzzPath.SyncAndAsync, body), body);

            // A 502 is the expected answer here, so only the shape and the sync/async agreement are checked.
            violations.RemoveAll(v => v.Kind.StartsWith("502", StringComparison.Ordinal));
            Assert.True(violations.Count == 0, Describe(route, body, violations));
            using var response = await host.PostJsonAsync("/openai/v1/" + route, body, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True((int)response.StatusCode == expected, $"local_status {status} on {route} answered HTTP {(int)response.StatusCode} (expected {expected}): {text}");
            Assert.True(FuzzOracle.ErrorShapeProblem(expected, text, out _) is null, $"not the Bifrost shape: {text}");
        }
    }

    /// <summary>Finding 4: 404 and 405 answers carry extra_fields like every other error.</summary>
    [Theory]
    [InlineData("GET", "/openai/v1/chat/completions", 405)]
    [InlineData("DELETE", "/openai/v1/embeddings", 405)]
    [InlineData("GET", "/openai/v1/no-such-route", 404)]
    [InlineData("POST", "/openai/v1/async/chat/completions/x/y", 404)]
    public async Task Not_found_and_method_not_allowed_carry_extra_fields(string method, string path, int status)
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        using var response = await host.SendAsync(new HttpMethod(method), path, null);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True((int)response.StatusCode == status, $"{method} {path} answered {(int)response.StatusCode}: {text}");
        Assert.True(FuzzOracle.ErrorShapeProblem(status, text, out _) is null, $"{method} {path}: not the Bifrost shape: {text}");
        using var json = JsonDocument.Parse(text);
        Assert.True(json.RootElement.TryGetProperty("extra_fields", out var extra) && extra.ValueKind == JsonValueKind.Object,
            $"{method} {path} ({status}) has no extra_fields: {text}");
    }

    /// <summary>Finding 10: the job envelope answers 202 while the job is pending or processing, then 200.</summary>
    [Fact]
    public async Task The_job_envelope_answers_202_until_the_job_is_finished()
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        var body = """{"model":"local/echo","messages":[{"role":"user","content":"slow"}],"metadata":{"local_delay_ms":"3000"}}""";
        using var submit = await host.SendAsync(HttpMethod.Post, "/openai/v1/async/chat/completions", body);
        var accepted = await InferenceKit.ReadAsync(submit);
        Assert.Equal(HttpStatusCode.Accepted, submit.StatusCode);
        var id = accepted.GetProperty("id").GetString();
        using (var pending = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/chat/completions/{id}", null))
        {
            var json = await InferenceKit.ReadAsync(pending);
            Assert.True(json.GetProperty("status").GetString() is "pending" or "processing", json.ToString());
            Assert.True(pending.StatusCode == HttpStatusCode.Accepted, $"a {json.GetProperty("status").GetString()} job's envelope answered {(int)pending.StatusCode}, expected 202: {json}");
        }

        await InferenceKit.EventuallyAsync("the job to complete", async () =>
        {
            using var response = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/chat/completions/{id}", null);
            var json = await InferenceKit.ReadAsync(response);
            if (json.GetProperty("status").GetString() != "completed")
            {
                return (bool?)null;
            }

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return true;
        });
    }

    /// <summary>Finding 11: fields with no value are omitted: no <c>model_requested: ""</c>.</summary>
    [Theory]
    [InlineData("chat/completions", """{"model":"","messages":[{"role":"user","content":"x"}]}""")]
    [InlineData("embeddings", """{"model":"","input":"x"}""")]
    [InlineData("responses", """{"model":"","input":"x"}""")]
    public async Task An_empty_model_is_not_reported_as_model_requested(string route, string body)
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        var sync = await AssertPropertiesAsync(host, route, body);
        using var json = JsonDocument.Parse(sync.Text);
        var hasEmpty = json.RootElement.TryGetProperty("extra_fields", out var extra)
            && extra.TryGetProperty("model_requested", out var model) && model.GetString() is { Length: 0 };
        Assert.False(hasEmpty, $"extra_fields.model_requested is \"\": {sync.Text}");
    }

    /// <summary>Finding 12: Bifrost's own request shapes and routes.</summary>
    [Fact]
    public async Task Bifrost_count_tokens_with_chat_messages_is_answered()
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        const string chat = """{"model":"local/echo","messages":[{"role":"user","content":"how many tokens is this?"}]}""";
        foreach (var path in new[] { "/openai/v1/count_tokens", "/openai/v1/responses/input_tokens" })
        {
            using var response = await host.PostJsonAsync(path, chat, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"POST {path} with a chat body answered {(int)response.StatusCode}: {text}");
            using var json = JsonDocument.Parse(text);
            Assert.True(json.RootElement.TryGetProperty("input_tokens", out var tokens) && tokens.GetInt32() > 0, text);
        }
    }

    [Theory]
    [InlineData("POST", "/openai/v1/containers")]
    [InlineData("GET", "/openai/v1/containers")]
    [InlineData("POST", "/openai/v1/vector_stores")]
    [InlineData("POST", "/openai/v1/fine_tuning/jobs")]
    public async Task OpenAI_routes_we_do_not_serve_are_unsupported_operation(string method, string path)
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        using var response = await host.SendAsync(new HttpMethod(method), path, method == "POST" ? "{}" : null);
        var text = await response.Content.ReadAsStringAsync(Ct);
        var status = (int)response.StatusCode;
        Assert.True(status is >= 400 and < 500, $"{method} {path} answered {status}: {text}");
        Assert.True(FuzzOracle.ErrorShapeProblem(status, text, out var code) is null, text);
        Assert.True(code == "unsupported_operation", $"{method} {path} answered code '{code}', expected unsupported_operation: {text}");
    }

    [Fact]
    public async Task Get_batches_with_an_empty_id_is_not_the_list()
    {
        await using var host = await InferenceFuzzTests.StartAsync();
        using var response = await host.SendAsync(HttpMethod.Get, "/openai/v1/batches/", null);
        var text = await response.Content.ReadAsStringAsync(Ct);
        var status = (int)response.StatusCode;
        Assert.True(status is >= 400 and < 500, $"GET batches/ (empty id) answered {status}: {text}");
        Assert.True(FuzzOracle.ErrorShapeProblem(status, text, out _) is null, text);
    }

    /// <summary>Runs <paramref name="body"/> through the fuzz properties (sync, x-bf-async, v1/async) and returns the sync answer.</summary>
    internal static async Task<FuzzAnswer> AssertPropertiesAsync(GatewayHost host, string route, string body)
    {
        var violations = await new FuzzOracle(host).CheckAsync(new FuzzTarget(route, FuzzPath.SyncAndAsync, body), body);
        Assert.True(violations.Count == 0, Describe(route, body, violations));
        using var response = await host.PostJsonAsync("/openai/v1/" + route, body, Ct);
        return new FuzzAnswer((int)response.StatusCode, null, await response.Content.ReadAsStringAsync(Ct));
    }

    private static async Task AssertStreamPropertiesAsync(GatewayHost host, string route, string body)
    {
        var streamed = "{\"stream\":true," + body[1..];
        var violations = await new FuzzOracle(host).CheckAsync(new FuzzTarget(route, FuzzPath.Stream, streamed), streamed);
        Assert.True(violations.Count == 0, Describe(route + " (stream)", streamed, violations));
    }

    internal static string Describe(string route, string body, IEnumerable<FuzzViolation> violations) =>
        $"POST {route} {body}\n  " + string.Join("\n  ", violations.Select(v => $"{v.Key}: {v.Detail.Replace("\n", "\n    ", StringComparison.Ordinal)}"));
}
