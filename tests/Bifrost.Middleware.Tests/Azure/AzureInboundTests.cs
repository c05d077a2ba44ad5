using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;
using static Bifrost.Middleware.Tests.Inference.InferenceKit;

namespace Bifrost.Middleware.Tests.Azure;

/// <summary>
/// The Azure OpenAI-compatible inbound routes (<c>MapBifrostAzure</c>): the deployment sets the model (configured mapping,
/// else the name itself, or <c>provider/model</c> in the path), <c>api-version</c>, <c>api-key</c> as the virtual key,
/// streaming, async, errors — through TestHost on the local provider and against the fake OpenAI upstream.
/// </summary>
public sealed class AzureInboundTests
{
    private const string Version = "?api-version=2024-10-21";

    private static JsonObject Chat(string text, bool stream = false, string? model = null)
    {
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) };
        if (stream)
        {
            body["stream"] = true;
        }

        if (model is not null)
        {
            body["model"] = model;
        }

        return body;
    }

    /// <summary>A host with MapBifrost("/openai") and MapBifrostAzure() (both at /openai, as Bifrost serves them).</summary>
    private static async Task<GatewayHost> StartAsync(Action<BifrostOptions>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            options.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
            configure?.Invoke(options);
        });
        var app = builder.Build();
        app.MapBifrost("/openai");
        app.MapBifrostAzure();
        await app.StartAsync();
        return GatewayHost.ForStarted(app);
    }

    [Fact]
    public async Task A_configured_deployment_routes_to_its_provider_and_model_whatever_the_body_names()
    {
        await using var host = await StartAsync(o => o.AzureInbound.Deployments["chat-prod"] = "local/echo");

        var json = await host.PostOkAsync("/openai/openai/deployments/chat-prod/chat/completions" + Version, Chat("hello azure", model: "gpt-4o"));

        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        Assert.Equal("hello azure", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("echo", json.GetProperty("model").GetString());
        var extra = json.GetProperty("extra_fields");
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.Equal("echo", extra.GetProperty("model_requested").GetString());
        Assert.Equal("chat_completion", extra.GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task Images_speech_and_transcriptions_are_served_on_deployment_routes_too()
    {
        await using var host = await StartAsync(o => o.AzureInbound.Deployments["media"] = "local/echo");

        var image = await host.PostOkAsync("/openai/openai/deployments/media/images/generations" + Version, new JsonObject { ["prompt"] = "a cat" });
        var png = Convert.FromBase64String(image.GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, png[..4]);
        Assert.Equal("local", image.GetProperty("extra_fields").GetProperty("provider").GetString());

        using var speech = await host.Client.PostAsync(
            "/openai/openai/deployments/media/audio/speech" + Version,
            new StringContent("""{"input":"hi","voice":"alloy","response_format":"wav"}""", System.Text.Encoding.UTF8, "application/json"),
            TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, speech.StatusCode);
        Assert.Equal("audio/wav", speech.Content.Headers.ContentType?.MediaType);
        Assert.Equal("RIFF"u8.ToArray(), (await speech.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken))[..4]);

        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(new byte[1234]), "file", "meeting.wav" },
            { new StringContent("text"), "response_format" },
        };
        using var transcription = await host.Client.PostAsync("/openai/openai/deployments/media/audio/transcriptions" + Version, form, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, transcription.StatusCode);
        Assert.Equal("meeting.wav (1234 bytes)", (await transcription.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).Trim());
    }

    [Fact]
    public async Task An_unconfigured_deployment_is_the_model_and_a_provider_may_be_named_in_the_path()
    {
        await using var host = await StartAsync(o => o.AzureInbound.Deployments["other"] = "local/echo");

        // The deployment name is the model, routed by the usual rules (a bare model: the default provider).
        var bare = await host.PostOkAsync("/openai/openai/deployments/echo-deployment/chat/completions" + Version, Chat("bare"));
        Assert.Equal("echo-deployment", bare.GetProperty("model").GetString());
        Assert.Equal("local", bare.GetProperty("extra_fields").GetProperty("provider").GetString());

        // provider/model in two path segments, as Bifrost reads them.
        var named = await host.PostOkAsync("/openai/openai/deployments/local/named-model/chat/completions" + Version, Chat("named"));
        Assert.Equal("named-model", named.GetProperty("model").GetString());
        Assert.Equal("named", named.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Chat_embeddings_and_completions_answer_as_the_openai_shaped_routes_do()
    {
        await using var host = await StartAsync(o => o.AzureInbound.Deployments["emb"] = "local/echo");

        var chatOpenAI = await host.PostOkAsync("/openai/v1/chat/completions", Chat("same answer", model: "local/echo"));
        var chatAzure = await host.PostOkAsync("/openai/openai/deployments/emb/chat/completions" + Version, Chat("same answer"));
        AssertSameJson(WithoutVolatileFields(chatOpenAI), WithoutVolatileFields(chatAzure));

        var embeddingBody = new JsonObject { ["input"] = new JsonArray("first text", "second") };
        var embOpenAI = await host.PostOkAsync("/openai/v1/embeddings", new JsonObject { ["model"] = "local/echo", ["input"] = new JsonArray("first text", "second") });
        var embAzure = await host.PostOkAsync("/openai/openai/deployments/emb/embeddings" + Version, embeddingBody);
        Assert.Equal(2, embAzure.GetProperty("data").GetArrayLength());
        Assert.Equal(256, embAzure.GetProperty("data")[0].GetProperty("embedding").GetArrayLength());
        Assert.Equal("embedding", embAzure.GetProperty("extra_fields").GetProperty("request_type").GetString());
        AssertSameJson(WithoutVolatileFields(embOpenAI), WithoutVolatileFields(embAzure));

        var textOpenAI = await host.PostOkAsync("/openai/v1/completions", new JsonObject { ["model"] = "local/echo", ["prompt"] = "complete me" });
        var textAzure = await host.PostOkAsync("/openai/openai/deployments/emb/completions" + Version, new JsonObject { ["prompt"] = "complete me" });
        Assert.Equal("text_completion", textAzure.GetProperty("extra_fields").GetProperty("request_type").GetString());
        AssertSameJson(WithoutVolatileFields(textOpenAI), WithoutVolatileFields(textAzure));
    }

    [Fact]
    public async Task Streaming_answers_sse_chunks_ending_with_done()
    {
        await using var host = await StartAsync(o => o.AzureInbound.Deployments["chat"] = "local/echo");

        using var response = await host.PostAsync("/openai/openai/deployments/chat/chat/completions" + Version, Chat("stream these words", stream: true));
        var (chunks, done) = await ReadDataStreamAsync(response);

        Assert.True(done);
        Assert.True(chunks.Count >= 2, $"{chunks.Count} chunks");
        var text = string.Concat(chunks.Select(c => c.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0
            && choices[0].GetProperty("delta").TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String ? content.GetString() : string.Empty));
        Assert.Equal("stream these words", text);
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.All(chunks, c => Assert.Equal("echo", c.GetProperty("model").GetString()));
    }

    [Fact]
    public async Task X_bf_async_submits_on_the_azure_route_and_polls_there()
    {
        await using var host = await StartAsync(o => o.AzureInbound.Deployments["chat"] = "local/echo");
        const string path = "/openai/openai/deployments/chat/chat/completions" + Version;

        var submitted = await host.PostOkAsync(path, Chat("async azure"), ("x-bf-async", "true"));
        var id = submitted.GetProperty("id").GetString()!;
        Assert.Equal(0, submitted.GetProperty("choices").GetArrayLength());
        Assert.Equal("echo", submitted.GetProperty("model").GetString()); // the deployment's model, bare

        var completed = await EventuallyAsync($"job {id}", async () =>
        {
            using var poll = await host.SendAsync(HttpMethod.Post, path, "{}", ("x-bf-async-id", id));
            var json = await ReadAsync(poll);
            Assert.True(poll.StatusCode == HttpStatusCode.OK, $"poll answered {(int)poll.StatusCode}: {json}");
            return json.GetProperty("choices").GetArrayLength() == 0 ? (JsonElement?)null : json;
        });
        Assert.Equal("async azure", completed!.Value.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        using var get = await host.SendAsync(HttpMethod.Get, path, null, ("x-bf-async-id", id));
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("async azure", (await ReadAsync(get)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Api_version_is_optional_by_default_and_required_when_configured()
    {
        await using (var host = await StartAsync())
        {
            var json = await host.PostOkAsync("/openai/openai/deployments/echo/chat/completions", Chat("no version"));
            Assert.Equal("no version", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }

        await using (var strict = await StartAsync(o => o.AzureInbound.RequireApiVersion = true))
        {
            var error = await strict.PostErrorAsync("/openai/openai/deployments/echo/chat/completions", Chat("no version"), 400, "missing_api_version", "api-version");
            Assert.Equal("chat_completion", error.GetProperty("extra_fields").GetProperty("request_type").GetString());
            await strict.PostErrorAsync("/openai/openai/deployments/echo/embeddings?api-version=", new JsonObject { ["input"] = "x" }, 400, "missing_api_version", "api-version");
            var ok = await strict.PostOkAsync("/openai/openai/deployments/echo/chat/completions" + Version, Chat("versioned"));
            Assert.Equal("versioned", ok.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }
    }

    [Fact]
    public async Task The_upstream_gets_the_mapped_model_without_the_api_version_or_the_callers_api_key()
    {
        string? query = null;
        await using var upstream = await FakeOpenAIUpstream.StartAsync(async (context, request, ct) =>
        {
            query = context.Request.QueryString.Value;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(
                """{"id":"chatcmpl-up","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"from upstream"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}""",
                ct);
        });
        await using var host = await StartAsync(o =>
        {
            o.Providers["compat"] = new ProviderOptions { Type = "openai", BaseUrl = upstream.BaseUrl, MaxRetries = 0, Keys = [new ProviderKeyOptions { Value = "sk-upstream" }] };
            o.AzureInbound.Deployments["gpt-prod"] = "compat/gpt-4o-mini";
        });

        var json = await host.PostOkAsync("/openai/openai/deployments/gpt-prod/chat/completions" + Version, Chat("to upstream", model: "ignored"), ("api-key", "azure-caller-key"));

        Assert.Equal("from upstream", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("compat", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        var sent = Assert.Single(upstream.Requests);
        Assert.Equal("/v1/chat/completions", sent.Path);
        Assert.True(string.IsNullOrEmpty(query), $"query sent upstream: {query}");
        Assert.Equal("gpt-4o-mini", sent.Body!.Value.GetProperty("model").GetString());
        Assert.Equal("to upstream", sent.Body!.Value.GetProperty("messages")[0].GetProperty("content").GetString());
        Assert.Equal("Bearer sk-upstream", sent.Headers["Authorization"]);
        Assert.DoesNotContain(sent.Headers, h => h.Value.Contains("azure-caller-key", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Errors_are_in_the_bifrost_shape_with_their_statuses()
    {
        await using var host = await StartAsync();

        // Bad JSON: 400 invalid_json, with the operation's request type.
        using (var bad = await host.SendAsync(HttpMethod.Post, "/openai/openai/deployments/echo/chat/completions" + Version, "{not json"))
        {
            var json = await ReadAsync(bad);
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            AssertError(json, 400, "invalid_json");
            Assert.Equal("chat_completion", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
        }

        // Validation runs as on the OpenAI-shaped route (no messages).
        await host.PostErrorAsync("/openai/openai/deployments/echo/chat/completions" + Version, new JsonObject(), 400, "missing_required_parameter", "messages");

        // A path Azure does not have under a deployment: 404; a served path with another method: 405 with Allow.
        await host.PostErrorAsync("/openai/openai/deployments/echo/fine_tunes" + Version, new JsonObject(), 404, "unknown_url");
        using (var put = await host.SendAsync(HttpMethod.Put, "/openai/openai/deployments/echo/embeddings" + Version, "{}"))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, put.StatusCode);
            AssertError(await ReadAsync(put), 405, "method_not_allowed");
            Assert.Equal("POST", string.Join(", ", put.Content.Headers.Allow));
        }

        using (var get = await host.SendAsync(HttpMethod.Get, "/openai/openai/deployments/echo/chat/completions" + Version, null))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
            AssertError(await ReadAsync(get), 405, "method_not_allowed");
        }

    }

    [Fact]
    public async Task The_api_key_header_is_read_as_the_virtual_key_when_governance_is_on()
    {
        const string secret = "sk-bf-azure-caller-0001";
        await using var host = await StartAsync(o =>
        {
            o.Governance.Mode = GovernanceMode.Required;
            o.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "azure-app", Name = "azure app", Value = secret });
        });
        const string path = "/openai/openai/deployments/echo/chat/completions" + Version;

        var ok = await host.PostOkAsync(path, Chat("with key"), ("api-key", secret));
        Assert.Equal("with key", ok.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        using var missing = await host.PostAsync(path, Chat("no key"));
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        AssertError(await ReadAsync(missing), 401, "virtual_key_required");

        using var wrong = await host.PostAsync(path, Chat("wrong key"), ("api-key", "sk-bf-not-a-key"));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        AssertError(await ReadAsync(wrong), 401, "virtual_key_invalid");
    }

    [Theory]
    [InlineData(" padded ", "local/echo")]
    [InlineData("blank-model", " ")]
    [InlineData("slash", "local/")]
    public async Task A_bad_deployment_mapping_stops_the_start_naming_it(string deployment, string model)
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(o => o.AzureInbound.Deployments[deployment] = model));
        Assert.Contains($"Bifrost:AzureInbound:Deployments:{deployment}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_samples_configured_deployments_bind_from_configuration_and_serve()
    {
        // samples/Bifrost.Sample/appsettings.json maps Bifrost:AzureInbound:Deployments:chat and :embeddings to local/echo.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddJsonFile(Repository.PathOf("samples", "Bifrost.Sample", "appsettings.json"), optional: false);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Bifrost:AzureInbound:RequireApiVersion"] = "true" });
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));
        var app = builder.Build();
        app.MapBifrostAzure("/openai");
        await app.StartAsync(Ct);
        await using var host = GatewayHost.ForStarted(app);

        var options = app.Services.GetRequiredService<IOptions<BifrostOptions>>().Value.AzureInbound;
        Assert.True(options.RequireApiVersion);
        Assert.Equal("local/echo", options.Deployments["chat"]);
        var chat = await host.PostOkAsync("/openai/openai/deployments/chat/chat/completions" + Version, Chat("from the sample"));
        Assert.Equal("from the sample", chat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("local", chat.GetProperty("extra_fields").GetProperty("provider").GetString());
        var embeddings = await host.PostOkAsync("/openai/openai/deployments/embeddings/embeddings" + Version, new JsonObject { ["input"] = "sample" });
        Assert.Equal("echo", embeddings.GetProperty("model").GetString());

        // The sample's local provider lists its models: a deployment not configured is the model, and "nope" is not one of them.
        await host.PostErrorAsync("/openai/openai/deployments/nope/chat/completions" + Version, Chat("x"), 400, "model_not_found");
    }

    [Fact]
    public async Task A_body_over_MaxRequestBodySize_is_a_413_on_a_real_server()
    {
        // Kestrel: TestHost has no body-size feature.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            options.MaxRequestBodySize = 2048;
        });
        await using var app = builder.Build();
        app.MapBifrostAzure();
        await app.StartAsync(Ct);
        try
        {
            var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.Single();
            using var client = new HttpClient { BaseAddress = new Uri(address) };
            client.DefaultRequestHeaders.ExpectContinue = true;
            const string path = "/openai/openai/deployments/echo/chat/completions" + Version;

            using (var small = await client.PostAsync(path, new StringContent(Chat(new string('a', 1000)).ToJsonString(), System.Text.Encoding.UTF8, "application/json"), Ct))
            {
                Assert.Equal(HttpStatusCode.OK, small.StatusCode);
            }

            using var large = await client.PostAsync(path, new StringContent(Chat(new string('a', 10_000)).ToJsonString(), System.Text.Encoding.UTF8, "application/json"), Ct);
            var json = await ReadAsync(large);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
            AssertError(json, 413, "request_too_large");
            Assert.Equal("chat_completion", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public void MapBifrostAzure_without_AddBifrost_says_what_to_add()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        using var app = builder.Build();
        var ex = Assert.Throws<InvalidOperationException>(() => app.MapBifrostAzure());
        Assert.Contains("AddBifrost", ex.Message, StringComparison.Ordinal);
    }
}
