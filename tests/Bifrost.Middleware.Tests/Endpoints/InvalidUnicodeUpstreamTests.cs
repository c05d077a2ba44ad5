using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Anthropic;
using Bifrost.Middleware.Tests.Inference;
using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Upstream;

namespace Bifrost.Middleware.Tests.Endpoints;

/// <summary>
/// An upstream answer with invalid UTF-16 escapes or broken UTF-8 — from the real local fake OpenAI-compatible and
/// Anthropic servers — is a 502 <c>invalid_provider_response</c>: as JSON before a stream starts, as the stream's error
/// event after it, and as the job's outcome for async requests. Never a 500 or an empty body.
/// </summary>
public sealed class InvalidUnicodeUpstreamTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Completions whose text breaks the rule in a typed field, in an extension field, and as raw bytes.</summary>
    public static TheoryData<string> BadCompletions() => new()
    {
        """{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a\ud800b"},"finish_reason":"stop"}]}""",
        """{"id":"c1","object":"chat.completion","created":1,"model":"m","x_vendor":{"note":"\udc00\ud800"},"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}""",
        """{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok","x_extra":{"\uDBFF":1}},"finish_reason":"stop"}]}""",
    };

    [Theory]
    [MemberData(nameof(BadCompletions))]
    public async Task OpenAI_compatible_answer_with_bad_unicode_is_a_502_sync_and_async(string completion)
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Json(200, completion));
        await using var host = await UpstreamGateway.StartAsync(upstream, p => p.MaxRetries = 0, o =>
        {
            o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
            o.Jobs.MaxAttempts = 1;
        });

        using var response = await host.PostChatAsync(UpstreamGateway.Chat());
        var sync = await InferenceKit.ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.BadGateway, sync.ToString());
        var error = UpstreamGateway.AssertProviderError(sync, 502);
        Assert.Equal("invalid_provider_response", error.GetProperty("code").GetString());

        var envelope = await FinishedEnvelopeAsync(host, UpstreamGateway.Chat());
        Assert.Equal("failed", envelope.GetProperty("status").GetString());
        Assert.Equal(502, envelope.GetProperty("status_code").GetInt32());
        Assert.Equal("invalid_provider_response", envelope.GetProperty("error").GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(sync.GetProperty("error").GetProperty("message").GetString(), envelope.GetProperty("error").GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task OpenAI_compatible_answer_with_broken_utf8_is_a_502()
    {
        var bytes = Encoding.UTF8.GetBytes(FakeResponses.Completion("m", "ok")).ToList();
        bytes.InsertRange(bytes.IndexOf((byte)'o'), [0xED, 0xA0, 0x80]); // a surrogate encoded in UTF-8
        await using var upstream = await FakeOpenAIUpstream.StartAsync(async (context, _, cancellationToken) =>
        {
            context.Response.ContentType = "application/json";
            await context.Response.Body.WriteAsync(bytes.ToArray(), cancellationToken);
        });
        await using var host = await UpstreamGateway.StartAsync(upstream, p => p.MaxRetries = 0);
        using var response = await host.PostChatAsync(UpstreamGateway.Chat());
        var json = await InferenceKit.ReadAsync(response);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("invalid_provider_response", UpstreamGateway.AssertProviderError(json, 502).GetProperty("code").GetString());
    }

    [Fact]
    public async Task OpenAI_compatible_stream_breaking_the_rule_after_the_first_chunk_ends_with_an_error_event()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await FakeOpenAIUpstream.StartAsync(async (context, _, cancellationToken) =>
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.WriteAsync($"data: {FakeResponses.Chunk("m", role: "assistant", content: "first")}\n\n", cancellationToken);
            await context.Response.Body.FlushAsync(cancellationToken);
            await release.Task.WaitAsync(cancellationToken);
            await context.Response.WriteAsync("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\ud800\"}}]}\n\n", cancellationToken);
            await context.Response.WriteAsync("data: [DONE]\n\n", cancellationToken);
        });
        await using var host = await UpstreamGateway.StartAsync(upstream, p => p.MaxRetries = 0);
        using var response = await host.SendStreamingAsync(UpstreamGateway.Chat(stream: true), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        var first = UpstreamGateway.Parse((await UpstreamGateway.ReadEventAsync(reader, Ct))!);
        Assert.Equal("first", first.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        release.SetResult();
        var last = UpstreamGateway.Parse((await UpstreamGateway.ReadEventAsync(reader, Ct))!);
        Assert.Equal("invalid_provider_response", UpstreamGateway.AssertProviderError(last, 502).GetProperty("code").GetString());
        Assert.Null(await UpstreamGateway.ReadEventAsync(reader, Ct));
    }

    [Fact]
    public async Task OpenAI_compatible_stream_breaking_the_rule_before_the_first_chunk_is_a_502_answer()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Sse("{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\udfff\"}}]}"));
        await using var host = await UpstreamGateway.StartAsync(upstream, p => p.MaxRetries = 0);
        using var response = await host.PostChatAsync(UpstreamGateway.Chat(stream: true));
        var json = await InferenceKit.ReadAsync(response);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("invalid_provider_response", UpstreamGateway.AssertProviderError(json, 502).GetProperty("code").GetString());
    }

    [Fact]
    public async Task OpenAI_compatible_error_body_with_bad_escapes_keeps_the_upstream_status()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Json(400, """{"error":{"message":"bad \ud800 thing","type":"invalid_request_error","code":"x"}}"""));
        await using var host = await UpstreamGateway.StartAsync(upstream, p => p.MaxRetries = 0);
        using var response = await host.PostChatAsync(UpstreamGateway.Chat());
        var json = await InferenceKit.ReadAsync(response);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        UpstreamGateway.AssertProviderError(json, 400);
    }

    [Fact]
    public async Task A_valid_pair_from_upstream_passes_through()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync(FakeResponses.Json(200, """{"id":"c1","object":"chat.completion","created":1,"model":"m","x_vendor":"\ud83d\ude00","choices":[{"index":0,"message":{"role":"assistant","content":"\ud83d\ude00"},"finish_reason":"stop"}]}"""));
        await using var host = await UpstreamGateway.StartAsync(upstream, p => p.MaxRetries = 0);
        using var response = await host.PostChatAsync(UpstreamGateway.Chat());
        var json = await InferenceKit.ReadAsync(response);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("😀", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Anthropic_answer_with_bad_unicode_is_a_502_sync_and_async()
    {
        await using var fake = await FakeAnthropicUpstream.StartAsync();
        fake.RawMessage = static message =>
            """{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"a\udc00"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}""";
        await using var host = await AnthropicHostAsync(fake);
        var body = """{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}""";
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body, Ct);
        var sync = await InferenceKit.ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.BadGateway, sync.ToString());
        Assert.Equal("invalid_provider_response", UpstreamGateway.AssertProviderError(sync, 502).GetProperty("code").GetString());

        var envelope = await FinishedEnvelopeAsync(host, body);
        Assert.Equal(502, envelope.GetProperty("status_code").GetInt32());
        Assert.Equal("invalid_provider_response", envelope.GetProperty("error").GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Anthropic_stream_with_bad_unicode_ends_with_a_502_never_a_500()
    {
        await using var fake = await FakeAnthropicUpstream.StartAsync();
        fake.RawStream = static message =>
        [
            .. FakeAnthropicUpstream.Events(message).Take(3),
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\ud800\"}}\n\n",
        ];
        await using var host = await AnthropicHostAsync(fake);
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"anthropic/claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"hi"}]}""", Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        // The bad event may arrive in the same read as the first ones: then the stream has not started and the answer is JSON.
        var error = response.StatusCode == HttpStatusCode.OK
            ? UpstreamGateway.Parse(UpstreamGateway.ParseSse(text)[^1])
            : UpstreamGateway.Parse(text);
        Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.BadGateway, text);
        Assert.Equal("invalid_provider_response", UpstreamGateway.AssertProviderError(error, 502).GetProperty("code").GetString());
    }

    private static Task<GatewayHost> AnthropicHostAsync(FakeAnthropicUpstream fake) => GatewayHost.StartAsync(o =>
    {
        o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
        o.Jobs.MaxAttempts = 1;
        o.Providers["anthropic"] = new ProviderOptions
        {
            Type = "anthropic",
            BaseUrl = fake.BaseUrl,
            Keys = [new ProviderKeyOptions { Value = "sk-ant-test" }],
            MaxRetries = 0,
        };
    });

    private static async Task<JsonElement> FinishedEnvelopeAsync(GatewayHost host, string body)
    {
        using var submit = await host.PostJsonAsync("/openai/v1/async/chat/completions", body, Ct);
        var id = (await InferenceKit.ReadAsync(submit)).GetProperty("id").GetString()!;
        return (await InferenceKit.EventuallyAsync<JsonElement?>("the job to finish", async () =>
        {
            using var get = await host.Client.GetAsync($"/openai/v1/async/chat/completions/{id}", Ct);
            var json = await InferenceKit.ReadAsync(get);
            return json.GetProperty("status").GetString() is "completed" or "failed" ? json : null;
        }))!.Value;
    }
}

/// <summary>Batch input files and batch bodies keep the same rule: a 400 naming the line, nothing stored.</summary>
public sealed class InvalidUnicodeBatchTests
{
    public static TheoryData<string> BadLines() => new()
    {
        """{"custom_id":"a\ud800","method":"POST","url":"/v1/chat/completions","body":{"model":"local/echo","messages":[]}}""",
        """{"custom_id":"a","method":"PO\udc00ST","url":"/v1/chat/completions","body":{"model":"local/echo","messages":[]}}""",
        """{"custom_id":"a","method":"POST","url":"/v1/chat/\udc00\ud800completions","body":{"model":"local/echo","messages":[]}}""",
        """{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"local/\ud800","messages":[]}}""",
        """{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"local/echo","messages":[],"x\uDBFF":1}}""",
        """{"custom_id":"a","\uDC00":1,"method":"POST","url":"/v1/chat/completions","body":{"model":"local/echo","messages":[]}}""",
        """{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"local/echo","messages":[{"role":"user","content":"x\ud800\u0041"}]}}""",
    };

    [Theory]
    [MemberData(nameof(BadLines))]
    public async Task A_batch_file_line_with_bad_escapes_is_refused_and_not_stored(string line)
    {
        await using var host = await FileBatchHost.StartAsync();
        var lines = new[] { BatchLines.Chat("ok-1"), line, BatchLines.Chat("ok-2") };
        using var response = await host.UploadAsync(BatchLines.Jsonl(lines));
        var error = await FileBatchHost.ExpectErrorAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_batch_file", error.GetProperty("code").GetString());
        Assert.Contains("line 2", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("UTF-16", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        await AssertNoFilesAsync(host);
    }

    [Fact]
    public async Task A_batch_file_line_with_broken_utf8_is_refused_and_not_stored()
    {
        await using var host = await FileBatchHost.StartAsync();
        var good = Encoding.UTF8.GetBytes(BatchLines.Chat("ok-1") + "\n");
        var bad = Encoding.UTF8.GetBytes(BatchLines.Chat("ok-2", text: "Xhello")).ToList();
        bad[bad.IndexOf((byte)'X')] = 0xFF;
        using var response = await host.UploadAsync([.. good, .. bad, (byte)'\n']);
        var error = await FileBatchHost.ExpectErrorAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_batch_file", error.GetProperty("code").GetString());
        Assert.Contains("line 2", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        await AssertNoFilesAsync(host);
    }

    [Fact]
    public async Task Valid_pairs_crlf_and_a_bom_are_accepted_and_the_batch_runs()
    {
        await using var host = await FileBatchHost.StartAsync();
        var text = "\uFEFF" + BatchLines.Chat("a", text: "😀") + "\r\n" + BatchLines.Chat("b").Replace("hello", "\\ud83d\\ude00", StringComparison.Ordinal) + "\r\n\r\n";
        var file = await host.UploadOkAsync(Encoding.UTF8.GetBytes(text));
        var batch = await host.CreateBatchAsync(file.GetProperty("id").GetString()!);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(done);
        BatchLines.AssertExactlyOnce(["a", "b"], output, errors);
        Assert.Empty(errors);
    }

    [Theory]
    [InlineData("""{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"k":"\ud800"}}""", "metadata.k")]
    [InlineData("""{"input_file_id":"file-\udc00","endpoint":"/v1/chat/completions","completion_window":"24h"}""", "input_file_id")]
    [InlineData("""{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h","x\ud800":1}""", @"x\ud800")]
    public async Task A_batch_body_with_bad_escapes_is_a_400_invalid_json(string body, string param)
    {
        await using var host = await FileBatchHost.StartAsync();
        using var response = await host.CreateBatchRawAsync(body);
        var error = await FileBatchHost.ExpectErrorAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_json", error.GetProperty("code").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    private static async Task AssertNoFilesAsync(FileBatchHost host)
    {
        using var list = await host.GetAsync(FileBatchHost.FilesPath);
        var json = await FileBatchHost.ExpectAsync(list, HttpStatusCode.OK);
        Assert.Equal(0, json.GetProperty("data").GetArrayLength());
    }
}
