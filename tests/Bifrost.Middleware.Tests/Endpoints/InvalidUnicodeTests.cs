using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Serialization;
using Bifrost.Middleware.Tests.Inference;
using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Jobs;
using Bifrost.Middleware.Tests.Upstream;

namespace Bifrost.Middleware.Tests.Endpoints;

/// <summary>A gateway whose <c>openai</c> provider is a real local fake upstream: what the gateway refuses never reaches it.</summary>
public sealed class UnicodeHostFixture : IAsyncLifetime
{
    public FakeOpenAIUpstream Upstream { get; private set; } = null!;

    public GatewayHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Upstream = await FakeOpenAIUpstream.StartAsync();
        Host = await UpstreamGateway.StartAsync(Upstream, more: options => options.Jobs.PollInterval = TimeSpan.FromMilliseconds(20));
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Upstream.DisposeAsync();
    }
}

/// <summary>
/// Invalid UTF-16 (lone or reversed surrogate escapes) in every kind of position of every inference route: one 400
/// <c>invalid_json</c> in the Bifrost shape naming the value, the same on every path (sync, SSE, <c>x-bf-async</c>, the
/// job envelope), with nothing stored and nothing sent upstream.
/// </summary>
public sealed class InvalidUnicodeTests(UnicodeHostFixture fixture) : IClassFixture<UnicodeHostFixture>
{
    private const string Model = "openai/gpt-4o-mini";
    private const string Chat = $$$"""{"model":"{{{Model}}}","messages":[{"role":"user","content":"hi"}]""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The bad escapes: lone high, lone low, reversed pair, high followed by a non-surrogate escape, high at the end of a string.</summary>
    public static readonly string[] BadEscapes = [@"\ud800", @"\uDC00", @"\udc00\ud800", @"\uD800\u0041", @"x\uDBFF"];

    /// <summary>Route, body template (<c>@@</c> is where the escape goes, inside a string or a property name), the param the error names.</summary>
    public static readonly (string Route, string Template, string Param)[] Positions =
    [
        ("chat/completions", Chat + ""","x_extra":"@@"}""", "x_extra"),
        ("chat/completions", Chat + ""","x@@":1}""", "x@@"),
        ("chat/completions", $$$"""{"model":"{{{Model}}}","messages":[{"role":"user","content":"a@@b"}]}""", "messages[0].content"),
        ("chat/completions", $$$"""{"model":"{{{Model}}}","messages":[{"role":"user","content":"hi","x_note":"@@"}]}""", "messages[0].x_note"),
        ("chat/completions", $$$"""{"model":"{{{Model}}}","messages":[{"role":"user","content":[{"type":"text","text":"hi","x_part":"@@"}]}]}""", "messages[0].content[0].x_part"),
        ("chat/completions", Chat + ""","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"@@":{"type":"string"}}}}}]}""", "tools[0].function.parameters.properties.@@"),
        ("chat/completions", Chat + ""","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","description":"@@"}}}]}""", "tools[0].function.parameters.description"),
        ("chat/completions", Chat + ""","tool_choice":{"type":"function","function":{"name":"@@"}}}""", "tool_choice.function.name"),
        ("chat/completions", Chat + ""","response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"description":"@@"}}}}""", "response_format.json_schema.schema.description"),
        ("chat/completions", Chat + ""","stream_options":{"include_usage":true,"x":"@@"}}""", "stream_options.x"),
        ("chat/completions", Chat + ""","logit_bias":{"@@":1}}""", "logit_bias.@@"),
        ("chat/completions", Chat + ""","metadata":{"k":"@@"}}""", "metadata.k"),
        ("completions", $$$"""{"model":"{{{Model}}}","prompt":"@@"}""", "prompt"),
        ("completions", $$$"""{"model":"{{{Model}}}","prompt":"hi","x_extra":{"deep":["@@"]}}""", "x_extra.deep[0]"),
        ("completions", $$$"""{"model":"{{{Model}}}","prompt":"hi","logit_bias":{"@@":1}}""", "logit_bias.@@"),
        ("embeddings", $$$"""{"model":"{{{Model}}}","input":["ok","@@"]}""", "input[1]"),
        ("embeddings", $$$"""{"model":"{{{Model}}}","input":"ok","x_extra":"@@"}""", "x_extra"),
        ("responses", $$$"""{"model":"{{{Model}}}","input":"@@"}""", "input"),
        ("responses", $$$"""{"model":"{{{Model}}}","input":"hi","tool_choice":{"type":"function","name":"@@"}}""", "tool_choice.name"),
        ("responses", """{"model":"openai/gpt-4o-mini","input":"hi","text":{"format":{"type":"json_schema","name":"s","schema":{"x":"@@"}}}}""", "text.format.schema.x"),
        ("responses", $$$"""{"model":"{{{Model}}}","input":"hi","tools":[{"type":"function","name":"f","parameters":{"@@":1}}]}""", "tools[0].parameters.@@"),
        ("responses", $$$"""{"model":"{{{Model}}}","input":[{"type":"function_call_output","call_id":"c1","output":"@@"}]}""", "input[0].output"),
        ("responses", $$$"""{"model":"{{{Model}}}","input":"hi","truncation":"@@"}""", "truncation"),
        ("responses/input_tokens", """{"model":"openai/gpt-4o-mini","input":"hi","tools":[{"type":"function","name":"f","parameters":{"properties":{"@@":{"type":"string"}}}}]}""", "tools[0].parameters.properties.@@"),
        ("responses/input_tokens", $$$"""{"model":"{{{Model}}}","input":"hi","tools":[{"type":"function","name":"f","parameters":{"description":"@@"}}]}""", "tools[0].parameters.description"),
    ];

    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        for (var i = 0; i < Positions.Length; i++)
        {
            foreach (var escape in BadEscapes)
            {
                data.Add(i, escape);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_bad_escape_is_one_400_on_every_path_with_nothing_stored_or_sent(int position, string escape)
    {
        var (route, template, param) = Positions[position];
        var body = template.Replace("@@", escape, StringComparison.Ordinal);
        var store = fixture.Host.Services.GetRequiredService<IJobStore>();
        var owner = fixture.Host.AnonymousOwner();
        var jobsBefore = (await store.ListAsync(owner, null, 1000, null, Ct)).Count;
        var upstreamBefore = fixture.Upstream.Requests.Count;

        var answers = new List<(string Path, JsonElement Error)>
        {
            ("sync", await ErrorAsync($"/openai/v1/{route}", body)),
        };
        if (route is "chat/completions" or "completions" or "responses")
        {
            // "stream": true goes at the end, so the escape keeps its byte offset.
            answers.Add(("stream", await ErrorAsync($"/openai/v1/{route}", body[..^1] + ""","stream":true}""")));
        }

        if (route != "responses/input_tokens")
        {
            answers.Add(("x-bf-async", await ErrorAsync($"/openai/v1/{route}", body, ("x-bf-async", "true"))));
            answers.Add(("envelope", await ErrorAsync($"/openai/v1/async/{route}", body)));
        }

        var expectedParam = param.Replace("@@", escape, StringComparison.Ordinal);
        var requestType = route switch
        {
            "chat/completions" => "chat_completion",
            "completions" => "text_completion",
            "embeddings" => "embedding",
            "responses" => "responses",
            _ => "count_tokens",
        };
        foreach (var (path, error) in answers)
        {
            InferenceKit.AssertError(error, 400, "invalid_json", expectedParam);
            Assert.Equal("invalid_request_error", error.GetProperty("error").GetProperty("type").GetString());
            Assert.Equal(requestType, error.GetProperty("extra_fields").GetProperty("request_type").GetString());
            Assert.Contains("UTF-16", error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
            AsyncTestKit.AssertSameJson(answers[0].Error, error);
            _ = path;
        }

        Assert.Equal(jobsBefore, (await store.ListAsync(owner, null, 1000, null, Ct)).Count);
        Assert.Equal(upstreamBefore, fixture.Upstream.Requests.Count);
    }

    [Theory]
    [InlineData(@"\ud83d\ude00")]
    [InlineData(@"\uD83D\uDE00 and \u00e9")]
    [InlineData("😀 raw")]
    public async Task A_valid_surrogate_pair_is_accepted_and_reaches_the_upstream(string text)
    {
        var upstreamBefore = fixture.Upstream.Requests.Count;
        var body = Chat + ""","x_extra":"TEXT","metadata":{"k":"TEXT"},"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"TEXT":{"type":"string"}}}}}]}""".Replace("TEXT", text, StringComparison.Ordinal);
        using var response = await InferenceKit.SendAsync(fixture.Host, HttpMethod.Post, "/openai/v1/chat/completions", body);
        var json = await InferenceKit.ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        Assert.Equal(upstreamBefore + 1, fixture.Upstream.Requests.Count);
        var sent = fixture.Upstream.Requests[^1].Body!.Value;
        Assert.Equal(JsonDocument.Parse($"\"{text}\"").RootElement.GetString(), sent.GetProperty("x_extra").GetString());

        var id = (await InferenceKit.ReadAsync(await InferenceKit.SendAsync(fixture.Host, HttpMethod.Post, "/openai/v1/async/chat/completions", body))).GetProperty("id").GetString()!;
        var envelope = await InferenceKit.EventuallyAsync("the job to finish", async () =>
        {
            var json = await InferenceKit.ReadAsync(await InferenceKit.SendAsync(fixture.Host, HttpMethod.Get, $"/openai/v1/async/chat/completions/{id}", null));
            return json.GetProperty("status").GetString() is "completed" or "failed" ? (JsonElement?)json : null;
        });
        Assert.Equal("completed", envelope!.Value.GetProperty("status").GetString());
    }

    /// <summary>Bodies over 1 MiB, and bodies without a Content-Length, are parsed as they stream in: the same rule, the same 400.</summary>
    [Theory]
    [InlineData(true, @"\ud800")]
    [InlineData(true, @"\udc00\ud800")]
    [InlineData(false, @"\ud800")]
    [InlineData(false, @"\uDFFF")]
    public async Task Streamed_bodies_keep_the_rule(bool large, string escape)
    {
        var padding = new string('a', large ? (int)BufferedJson.MaxLength + 1000 : 10);
        var body = Chat + $$$""","x_pad":"{{{padding}}}","x_extra":"{{{escape}}}"}""";
        var store = fixture.Host.Services.GetRequiredService<IJobStore>();
        var owner = fixture.Host.AnonymousOwner();
        var jobsBefore = (await store.ListAsync(owner, null, 1000, null, Ct)).Count;
        foreach (var (path, headers) in new[] { ("/openai/v1/chat/completions", Array.Empty<(string, string)>()), ("/openai/v1/chat/completions", [("x-bf-async", "true")]), ("/openai/v1/async/chat/completions", []) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new UnsizedContent(Encoding.UTF8.GetBytes(body)) };
            foreach (var (name, value) in headers)
            {
                request.Headers.Add(name, value);
            }

            using var response = await fixture.Host.Client.SendAsync(request, Ct);
            var json = await InferenceKit.ReadAsync(response);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path}: {(int)response.StatusCode} {json}");
            InferenceKit.AssertError(json, 400, "invalid_json");
        }

        Assert.Equal(jobsBefore, (await store.ListAsync(owner, null, 1000, null, Ct)).Count);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0xC3 })]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // a surrogate encoded directly in UTF-8 (CESU-style)
    [InlineData(new byte[] { 0xC0, 0xAF })] // overlong
    public async Task Invalid_utf8_in_kept_json_is_refused_the_same_way(byte[] bad)
    {
        var prefix = Encoding.UTF8.GetBytes(Chat + ""","x_extra":"a""");
        var body = prefix.Concat(bad).Concat(Encoding.UTF8.GetBytes("b\"}")).ToArray();
        foreach (var headers in new[] { Array.Empty<(string, string)>(), [("x-bf-async", "true")] })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/chat/completions") { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            foreach (var (name, value) in headers)
            {
                request.Headers.Add(name, value);
            }

            using var response = await fixture.Host.Client.SendAsync(request, Ct);
            var json = await InferenceKit.ReadAsync(response);
            InferenceKit.AssertError(json, 400, "invalid_json", "x_extra");
        }
    }

    private async Task<JsonElement> ErrorAsync(string path, string body, params (string Name, string Value)[] headers)
    {
        using var response = await InferenceKit.SendAsync(fixture.Host, HttpMethod.Post, path, body, headers);
        var json = await InferenceKit.ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path} {string.Join(",", headers.Select(h => h.Name))} answered {(int)response.StatusCode}: {json}");
        return json;
    }

    /// <summary>Content without a length: sent chunked, so the server cannot read it whole up front.</summary>
    private sealed class UnsizedContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}

/// <summary>The scanner itself: exact on every split of the text into chunks.</summary>
public sealed class JsonUnicodeScannerTests
{
    [Theory]
    [InlineData("""{"a":"plain"}""", true)]
    [InlineData("""{"a":"\ud83d\ude00"}""", true)]
    [InlineData("""{"a":"\u00e9\n\\u0041\\\\"}""", true)]
    [InlineData("""{"a":"\\ud800"}""", true)] // an escaped backslash, then the text "ud800"
    [InlineData("""{"a":"é😀"}""", true)]
    [InlineData("""{"a":"\ud800"}""", false)]
    [InlineData("""{"a":"\udfff"}""", false)]
    [InlineData("""{"a":"\udc00\ud800"}""", false)]
    [InlineData("""{"a":"\ud800\ud800"}""", false)]
    [InlineData("""{"a":"\ud800\n"}""", false)]
    [InlineData("""{"a":"\\\ud800"}""", false)]
    [InlineData("""{"\ud800":1}""", false)]
    public void Same_verdict_whole_and_in_any_two_chunks(string json, bool valid)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        Assert.Equal(valid, JsonUnicode.Check(bytes) is null);
        for (var split = 0; split <= bytes.Length; split++)
        {
            var scanner = default(JsonUnicodeScanner);
            var verdict = scanner.Scan(bytes.AsSpan(0, split)) && scanner.Scan(bytes.AsSpan(split)) && scanner.Complete();
            Assert.True(valid == verdict, $"split at {split}: {scanner.Error}");
        }
    }

    [Fact]
    public void Utf8_split_byte_by_byte_is_judged_like_the_whole()
    {
        var good = Encoding.UTF8.GetBytes("""{"a":"é€😀"}""");
        var bad = good.Take(7).Concat(new byte[] { 0xE2, 0x28, 0xA1 }).Concat(good.Skip(7)).ToArray();
        foreach (var (bytes, valid) in new[] { (good, true), (bad, false) })
        {
            var scanner = default(JsonUnicodeScanner);
            var verdict = true;
            foreach (var b in bytes)
            {
                verdict &= scanner.Scan([b]);
            }

            Assert.Equal(valid, verdict && scanner.Complete());
        }
    }

    [Fact]
    public void The_path_names_the_value_or_the_property_name()
    {
        Assert.Equal("messages[1].content", JsonUnicode.Check(Encoding.UTF8.GetBytes("""{"messages":[{"content":"ok"},{"content":"\ud800"}]}"""))!.Value.Path);
        Assert.Equal(@"tools[0].p.\udc00", JsonUnicode.Check(Encoding.UTF8.GetBytes("""{"tools":[{"p":{"\udc00":1}}]}"""))!.Value.Path);
        Assert.Equal("[2]", JsonUnicode.Check(Encoding.UTF8.GetBytes("""[1,2,"\ud800"]"""))!.Value.Path);
    }
}
