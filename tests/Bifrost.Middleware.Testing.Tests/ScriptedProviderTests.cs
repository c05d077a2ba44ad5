using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenAI;
using OpenAI.Chat;
using Xunit;

namespace Bifrost.Middleware.Testing.Tests;

/// <summary>Scripted providers through the gateway: queues, per-provider scripts, fallbacks, recorded requests, the testing defaults.</summary>
public sealed class ScriptedProviderTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Answers_come_from_the_queue_in_order_then_the_last_user_message_is_echoed()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Reply("first").Reply("second");
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        using var client = server.CreateClient();

        Assert.Equal("first", await ChatAsync(client, "openai/gpt-4o-mini", "one"));
        Assert.Equal("second", await ChatAsync(client, "openai/gpt-4o-mini", "two"));
        Assert.Equal("three", await ChatAsync(client, "openai/gpt-4o-mini", "three"));
        Assert.Equal(0, scripts["openai"].Pending);
        Assert.Equal(["one", "two", "three"], scripts["openai"].Requests.Select(r => r.LastUserMessage));
    }

    [Fact]
    public async Task Each_provider_answers_from_its_own_queue_and_WhenEmpty_replaces_the_echo()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Reply("from openai");
        scripts["anthropic"].Reply("from anthropic").WhenEmpty(ScriptedResponse.Text("anthropic default"));
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        using var client = server.CreateClient();

        Assert.Equal("from anthropic", await ChatAsync(client, "anthropic/claude-x", "a"));
        Assert.Equal("from openai", await ChatAsync(client, "openai/gpt-4o-mini", "b"));
        Assert.Equal("anthropic default", await ChatAsync(client, "anthropic/claude-x", "c"));

        Assert.Equal(["anthropic", "openai", "anthropic"], scripts.Requests.Select(r => r.Provider));
        Assert.Equal(["claude-x", "claude-x"], scripts["anthropic"].Requests.Select(r => r.Model));
    }

    [Fact]
    public async Task A_failing_provider_is_retried_at_once_then_falls_back_to_another_scripted_provider()
    {
        var scripts = new BifrostScripts();
        scripts["local"].Fail(500).Fail(502).Fail(503);
        scripts["local2"].Reply("from local2");
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        using var client = server.CreateClient();

        using var response = await client.PostAsJsonAsync("chat/completions", new
        {
            model = "local/echo",
            fallbacks = new[] { "local2/echo" },
            messages = new[] { new { role = "user", content = "hi" } },
        }, Ct);

        var body = await ReadAsync(response, HttpStatusCode.OK);
        Assert.Equal("from local2", Content(body));
        Assert.Equal("local2", body["extra_fields"]!["provider"]!.GetValue<string>());
        Assert.Equal(["local:0", "local:1", "local:2", "local2:0"], scripts.Requests.Select(r => $"{r.Provider}:{r.Attempt}"));
    }

    [Fact]
    public async Task A_scripted_503_then_200_completes_with_two_attempts_because_the_testing_defaults_remove_retry_delays()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Fail(503).Reply("ok");
        await using var server = await BifrostTestServer.StartAsync(
            scripts,
            options => options.Providers["openai"] = new ProviderOptions { RetryBaseDelay = TimeSpan.FromMinutes(5), RetryMaxDelay = TimeSpan.FromMinutes(10) },
            Ct);
        using var client = server.CreateClient();

        Assert.Equal("ok", await ChatAsync(client, "openai/gpt-4o-mini", "hi"));

        Assert.Equal([0, 1], scripts["openai"].Requests.Select(r => r.Attempt));
        var options = server.Services.GetRequiredService<IOptions<BifrostOptions>>().Value;
        Assert.Equal(TimeSpan.Zero, options.Providers["openai"].RetryBaseDelay);
        Assert.Equal(TimeSpan.Zero, options.Providers["openai"].RetryMaxDelay);
        Assert.Equal(BifrostTestingServiceCollectionExtensions.ScriptedAttemptTimeout, options.Providers["openai"].Timeout);
        Assert.Equal(TimeSpan.Zero, options.Jobs.RetryBaseDelay);
    }

    [Fact]
    public async Task A_client_error_passes_through_with_its_status_and_message_and_is_not_retried()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Fail(400, "The scripted request is bad.").Reply("never");
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        using var client = server.CreateClient();

        using var response = await PostChatAsync(client, "openai/gpt-4o-mini", "hi");

        var body = await ReadAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("The scripted request is bad.", body["error"]!["message"]!.GetValue<string>());
        Assert.Single(scripts["openai"].Requests);
        Assert.Equal(1, scripts["openai"].Pending);
    }

    [Fact]
    public async Task A_429_with_retry_after_is_answered_with_the_status_after_the_retries()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].WhenEmpty(ScriptedResponse.Error(429, "slow down", TimeSpan.FromSeconds(7)));
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        using var client = server.CreateClient();

        using var response = await PostChatAsync(client, "openai/gpt-4o-mini", "hi");

        var body = await ReadAsync(response, HttpStatusCode.TooManyRequests);
        Assert.Equal("slow down", body["error"]!["message"]!.GetValue<string>());
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);

        // Retry-After (7 s) is above RetryMaxDelay (0 under the testing defaults): not waited for, so no retry either.
        Assert.Single(scripts["openai"].Requests);
    }

    [Fact]
    public async Task FailWhenEmpty_answers_a_500_naming_the_provider_instead_of_echoing()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].FailWhenEmpty();
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        using var client = server.CreateClient();

        using var response = await PostChatAsync(client, "openai/gpt-4o-mini", "hi");

        var body = await ReadAsync(response, HttpStatusCode.InternalServerError);
        Assert.Equal("scripted_queue_empty", body["error"]!["code"]!.GetValue<string>());
        Assert.Contains("'openai'", body["error"]!["message"]!.GetValue<string>());
        Assert.Single(scripts["openai"].Requests);
    }

    [Fact]
    public async Task A_delay_longer_than_the_attempt_timeout_is_a_504_timeout()
    {
        var scripts = new BifrostScripts();
        scripts["slow"].Enqueue(ScriptedResponse.Text("late") with { Delay = TimeSpan.FromMinutes(1) });
        await using var server = await BifrostTestServer.StartAsync(
            scripts,
            options => options.Providers["slow"] = new ProviderOptions { Timeout = TimeSpan.FromMilliseconds(50), MaxRetries = 0 },
            Ct);
        using var client = server.CreateClient();

        using var response = await PostChatAsync(client, "slow/model", "hi");

        var body = await ReadAsync(response, HttpStatusCode.GatewayTimeout);
        Assert.Equal("provider_timeout", body["error"]!["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_OpenAI_SDK_gets_text_usage_and_the_recorded_request_shows_what_the_provider_received()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Enqueue(ScriptedResponse.Text("Hello there.") with { PromptTokens = 7, CompletionTokens = 3 });
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        var chat = Sdk(server).GetChatClient("openai/gpt-4o-mini");

        ChatCompletion completion = await chat.CompleteChatAsync(
            [new SystemChatMessage("Be brief."), new UserChatMessage("Hi")],
            new ChatCompletionOptions { Temperature = 0.25f },
            Ct);

        Assert.Equal("Hello there.", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(7, completion.Usage.InputTokenCount);
        Assert.Equal(3, completion.Usage.OutputTokenCount);

        var request = Assert.Single(scripts.Requests);
        Assert.Equal(("openai", "gpt-4o-mini", "chat.completions", false), (request.Provider, request.Model, request.Operation, request.Stream));
        Assert.Equal(0.25f, request.Chat!.Temperature!.Value, 3);
        Assert.Equal(["system", "user"], request.Chat.Messages!.Select(m => m.Role));
        Assert.Equal("Hi", request.LastUserMessage);
    }

    [Fact]
    public async Task The_OpenAI_SDK_streams_the_scripted_chunks()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Enqueue(ScriptedResponse.Text("unused") with { Chunks = ["Hel", "lo", " world"] });
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        var chat = Sdk(server).GetChatClient("openai/gpt-4o-mini");

        var pieces = new List<string>();
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Hi")], cancellationToken: Ct))
        {
            pieces.AddRange(update.ContentUpdate.Select(p => p.Text));
            finish ??= update.FinishReason;
        }

        Assert.Equal(["Hel", "lo", " world"], pieces.Where(p => p.Length > 0));
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.True(Assert.Single(scripts.Requests).Stream);
    }

    [Fact]
    public async Task The_OpenAI_SDK_gets_a_scripted_tool_call()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].ReplyWithToolCall("get_weather", """{"city":"Paris"}""");
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        var chat = Sdk(server).GetChatClient("openai/gpt-4o-mini");
        var options = new ChatCompletionOptions { Tools = { global::OpenAI.Chat.ChatTool.CreateFunctionTool("get_weather", "The weather of a city.") } };

        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("Weather in Paris?")], options, Ct);

        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Paris"}""", call.FunctionArguments.ToString());
        Assert.False(string.IsNullOrEmpty(call.Id));
        Assert.Equal("get_weather", Assert.Single(Assert.Single(scripts.Requests).Chat!.Tools!).Function!.Name);
    }

    [Fact]
    public async Task A_stream_scripted_to_fail_after_chunks_ends_with_an_error_event()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Enqueue(ScriptedResponse.Text("one two three") with { FailAfterChunks = 1, StatusCode = 502 });
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        using var client = server.CreateClient();

        using var response = await client.PostAsJsonAsync("chat/completions", new
        {
            model = "openai/gpt-4o-mini",
            stream = true,
            messages = new[] { new { role = "user", content = "hi" } },
        }, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = await response.Content.ReadAsStringAsync(Ct);
        Assert.Contains("\"content\":\"one\"", events);
        Assert.DoesNotContain("\"content\":\" two\"", events);
        Assert.Contains("Scripted stream failure after 1 chunks.", events);
    }

    [Fact]
    public async Task Embeddings_are_deterministic_by_default_and_scripted_vectors_are_returned_as_given()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Enqueue(ScriptedResponse.Embedding([1f, 0f], [0f, 1f]));
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);
        using var client = server.CreateClient();

        var scripted = await EmbedAsync(client, ["a", "b"]);
        var first = await EmbedAsync(client, ["same", "other"]);
        var second = await EmbedAsync(client, ["same"]);

        Assert.Equal(new[] { new[] { 1f, 0f }, new[] { 0f, 1f } }, scripted);
        Assert.Equal(first[0], second[0]);
        Assert.NotEqual(first[0], first[1]);
        Assert.Equal(1.0, Math.Sqrt(first[0].Sum(v => (double)v * v)), 3);
        Assert.All(scripts.Requests, r => Assert.Equal("embeddings", r.Operation));
        Assert.Equal(["same", "other"], scripts.Requests[1].Embeddings!.Input!.Texts!);
    }

    [Fact]
    public async Task A_provider_named_after_the_host_registered_the_scripts_is_refused_clearly()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Reply("x");
        await using var server = await BifrostTestServer.StartAsync(scripts, cancellationToken: Ct);

        var error = Assert.Throws<InvalidOperationException>(() => scripts["anthropic"]);
        Assert.Contains("before the host is built", error.Message);
        Assert.Same(scripts["openai"], scripts["OpenAI"]);
    }

    [Fact]
    public async Task The_local_provider_reads_metadata_scripting_numbers_as_well_as_strings()
    {
        await using var server = await BifrostTestServer.StartAsync(
            new BifrostScripts(),
            options => options.Providers["local"] = new ProviderOptions { Type = "local", MaxRetries = 0 },
            Ct);
        using var client = server.CreateClient();

        using var failed = await PostRawAsync(client, """{"model":"local/echo","messages":[{"role":"user","content":"hi"}],"metadata":{"local_status":503,"local_retry_after":1.5}}""");
        Assert.Equal("local_scripted_failure", (await ReadAsync(failed, HttpStatusCode.ServiceUnavailable))["error"]!["code"]!.GetValue<string>());
        Assert.Equal(TimeSpan.FromSeconds(2), failed.Headers.RetryAfter?.Delta); // Retry-After is whole seconds, rounded up

        using var answered = await PostRawAsync(client, """{"model":"local/echo","messages":[{"role":"user","content":"hi"}],"metadata":{"local_reply":"numbers ok","local_delay_ms":0,"flag":true}}""");
        Assert.Equal("numbers ok", Content(await ReadAsync(answered, HttpStatusCode.OK)));

        using var strings = await PostRawAsync(client, """{"model":"local/echo","messages":[{"role":"user","content":"hi"}],"metadata":{"local_status":"503"}}""");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, strings.StatusCode);

        using var invalid = await PostRawAsync(client, """{"model":"local/echo","messages":[{"role":"user","content":"hi"}],"metadata":{"local_status":{"x":1}}}""");
        var error = await ReadAsync(invalid, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_json", error["error"]!["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_configured_provider_of_an_app_is_replaced_and_records_its_configured_key()
    {
        var scripts = new BifrostScripts();
        scripts["openai"].Reply("scripted");
        await using var factory = new WebApplicationFactory<Program>();
        using var client = factory.WithWebHostBuilder(web => web
                .UseSetting("Bifrost:Providers:openai:Keys:0:Value", "sk-test-key")
                .UseBifrostScripts(scripts))
            .CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", "dev-key-change-me"); // the README app's caller key
        client.BaseAddress = new Uri(client.BaseAddress!, "/openai/v1/");

        Assert.Equal("scripted", await ChatAsync(client, "openai/gpt-4o-mini", "hi"));
        Assert.Equal("hi", await ChatAsync(client, "local/echo", "hi")); // the app's other providers are untouched

        var request = Assert.Single(scripts.Requests);
        Assert.Equal(("openai", "gpt-4o-mini", "sk-test-key"), (request.Provider, request.Model, request.ApiKey));

        // The app's Models still apply to the scripted provider.
        using var unknown = await PostChatAsync(client, "openai/not-configured", "hi");
        Assert.Equal("model_not_found", (await ReadAsync(unknown, HttpStatusCode.BadRequest))["error"]!["code"]!.GetValue<string>());
    }

    private static OpenAIClient Sdk(BifrostTestServer server) => new(
        new ApiKeyCredential("unused"),
        new OpenAIClientOptions { Endpoint = server.BaseAddress, Transport = new HttpClientPipelineTransport(server.CreateClient()) });

    private static Task<HttpResponseMessage> PostChatAsync(HttpClient client, string model, string text) =>
        client.PostAsJsonAsync("chat/completions", new { model, messages = new[] { new { role = "user", content = text } } }, Ct);

    private static Task<HttpResponseMessage> PostRawAsync(HttpClient client, string json) =>
        client.PostAsync("chat/completions", new StringContent(json, Encoding.UTF8, "application/json"), Ct);

    private static async Task<string?> ChatAsync(HttpClient client, string model, string text)
    {
        using var response = await PostChatAsync(client, model, text);
        return Content(await ReadAsync(response, HttpStatusCode.OK));
    }

    private static async Task<float[][]> EmbedAsync(HttpClient client, string[] input)
    {
        using var response = await client.PostAsJsonAsync("embeddings", new { model = "openai/text-embedding-3-small", input }, Ct);
        var body = await ReadAsync(response, HttpStatusCode.OK);
        return [.. body["data"]!.AsArray().Select(d => d!["embedding"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray())];
    }

    private static string? Content(JsonNode body) => body["choices"]![0]!["message"]!["content"]?.GetValue<string>();

    private static async Task<JsonNode> ReadAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == expected, $"Expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }
}
