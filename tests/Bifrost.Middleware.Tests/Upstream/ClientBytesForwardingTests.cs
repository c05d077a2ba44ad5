using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>
/// Issue 18, JSON pass-through: the chat endpoint's request bytes reach an OpenAI-compatible provider as the client wrote them
/// (field order, unknown fields, number formatting, escapes), with only <c>model</c> rewritten and <c>fallbacks</c> dropped — and
/// the typed request is serialized instead wherever the bytes would not say the same (a plugin, a preset, an escaped name...).
/// The fake upstream speaks OpenAI's chat completions API (https://platform.openai.com/docs/api-reference/chat/create).
/// </summary>
public sealed class ClientBytesForwardingTests
{
    // Field order the typed writer would not keep (model not first, unknown fields between modelled ones), numbers as the
    // client wrote them (1.0, 1E2, 0.50), escapes the relaxed writer would not produce (\u00e9, \/), and model itself escaped.
    private const string Client =
        """{"messages":[{"role":"user","content":"caf\u00e9 \/ 1.0"}],"temperature":1.0,"x_vendor":{"a":[1E2,0.50,null]},"model":"openai/gpt\u002d4o-mini","fallbacks":["openai/gpt-4o"],"top_p":0.50,"logit_bias":{"50256":-100.0}}""";

    private const string Expected =
        """{"messages":[{"role":"user","content":"caf\u00e9 \/ 1.0"}],"temperature":1.0,"x_vendor":{"a":[1E2,0.50,null]},"model":"gpt-4o-mini","top_p":0.50,"logit_bias":{"50256":-100.0}}""";

    [Fact]
    public async Task Upstream_gets_the_clients_bytes_with_the_providers_model_and_no_fallbacks()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream);

        using var response = await host.PostChatAsync(Client);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Expected, Assert.Single(upstream.Requests).RawBody);
    }

    [Fact]
    public async Task A_stream_keeps_stream_and_stream_options_as_sent()
    {
        const string client = """{"model":"openai/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}],"stream_options":{"include_usage":true},"seed":7}""";
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream);

        using var response = await host.SendStreamingAsync(client, Ct);
        var events = await ReadSseDataAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal(client.Replace("openai/gpt-4o-mini", "gpt-4o-mini", StringComparison.Ordinal), Assert.Single(upstream.Requests).RawBody);
    }

    [Fact]
    public async Task A_non_streamed_call_drops_stream_false_and_its_stream_options()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream);

        using var response = await host.PostChatAsync("""{"model":"openai/gpt-4o-mini","stream":false,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}],"n":1}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"n":1}""", Assert.Single(upstream.Requests).RawBody);
    }

    [Fact]
    public async Task The_fallback_to_another_openai_provider_gets_the_bytes_with_its_own_model()
    {
        await using var a = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(503, "overloaded"));
        await using var b = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(a, p => p.MaxRetries = 0, o => o.Providers["other"] = Provider(b));

        using var response = await host.PostChatAsync("""{"model":"openai/gpt-4o-mini","temperature":1.0,"fallbacks":["other/model-b"],"messages":[{"role":"user","content":"Hi"}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"model":"gpt-4o-mini","temperature":1.0,"messages":[{"role":"user","content":"Hi"}]}""", Assert.Single(a.Requests).RawBody);
        Assert.Equal("""{"model":"model-b","temperature":1.0,"messages":[{"role":"user","content":"Hi"}]}""", Assert.Single(b.Requests).RawBody);
    }

    [Fact]
    public async Task The_fallback_to_a_preset_provider_gets_the_typed_request_with_the_presets_rewrite()
    {
        await using var a = await FakeOpenAIUpstream.StartAsync(FakeResponses.Error(503, "overloaded"));
        await using var b = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(a, p => p.MaxRetries = 0, o => o.Providers["grq"] = Provider(b, p => p.Type = "groq"));

        using var response = await host.PostChatAsync("""{"model":"openai/gpt-4o-mini","temperature":1.0,"logprobs":true,"fallbacks":["grq/llama"],"messages":[{"role":"user","content":"Hi"}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"model":"gpt-4o-mini","temperature":1.0,"logprobs":true,"messages":[{"role":"user","content":"Hi"}]}""", Assert.Single(a.Requests).RawBody);
        var preset = Assert.Single(b.Requests);
        var body = preset.Body!.Value;
        Assert.Equal("llama", body.GetProperty("model").GetString());
        Assert.False(body.TryGetProperty("logprobs", out _)); // Groq's preset drops it: the typed request was rewritten, not the bytes sent
        Assert.False(body.TryGetProperty("fallbacks", out _));
        Assert.Contains("\"temperature\":1", preset.RawBody, StringComparison.Ordinal);
        Assert.DoesNotContain("\"temperature\":1.0", preset.RawBody, StringComparison.Ordinal); // written by the serializer
    }

    [Fact]
    public async Task A_plugin_that_changes_the_request_in_place_is_honoured()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(
            o => o.Providers["openai"] = Provider(upstream),
            b => b.AddPlugin(new AppendMessage()));

        using var response = await host.PostChatAsync("""{"model":"openai/gpt-4o-mini","temperature":1.0,"messages":[{"role":"user","content":"Hi"}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = Assert.Single(upstream.Requests);
        var messages = received.Body!.Value.GetProperty("messages");
        Assert.Equal(2, messages.GetArrayLength());
        Assert.Equal("added by the plugin", messages[1].GetProperty("content").GetString());
        Assert.Equal("gpt-4o-mini", received.Body!.Value.GetProperty("model").GetString());
    }

    [Fact]
    public async Task A_host_decorating_the_client_gets_its_changes_sent()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(
            o => o.Providers["openai"] = Provider(upstream),
            services: s =>
            {
                var registered = s.Last(d => d.ServiceType == typeof(IBifrostClient));
                s.Add(ServiceDescriptor.Singleton<IBifrostClient>(sp => SettingTemperature.Wrap((IBifrostClient)ActivatorUtilities.CreateInstance(sp, registered.ImplementationType!))));
            });

        using var response = await host.PostChatAsync("""{"model":"openai/gpt-4o-mini","temperature":1.0,"messages":[{"role":"user","content":"Hi"}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0.25, Assert.Single(upstream.Requests).Body!.Value.GetProperty("temperature").GetDouble());
    }

    [Theory]
    [InlineData("""{"model":"openai/gpt-4o-mini","fallb\u0061cks":["openai/gpt-4o"],"temperature":1.0,"messages":[{"role":"user","content":"Hi"}]}""")] // an escaped name
    [InlineData("""{"model":"openai/gpt-4o-mini","temperature":1.0,"temperature":1.0,"messages":[{"role":"user","content":"Hi"}]}""")] // a name twice
    [InlineData("""{"model":"openai/gpt-4o-mini","temperature":1.0,"metadata":{"n":1},"messages":[{"role":"user","content":"Hi"}]}""")] // metadata the typed reader turns into text
    public async Task Bytes_that_could_say_something_else_are_not_forwarded(string client)
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream);

        using var response = await host.PostChatAsync(client);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = Assert.Single(upstream.Requests);
        Assert.Contains("\"temperature\":1", received.RawBody, StringComparison.Ordinal);
        Assert.DoesNotContain("\"temperature\":1.0", received.RawBody, StringComparison.Ordinal); // the serializer wrote it
        Assert.DoesNotContain("fallb", received.RawBody, StringComparison.Ordinal);
        if (received.Body!.Value.TryGetProperty("metadata", out var metadata))
        {
            Assert.Equal("1", metadata.GetProperty("n").GetString());
        }
    }

    [Fact]
    public async Task Azure_inbound_model_from_the_route_is_written_in()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "openai";
            options.Providers["openai"] = Provider(upstream);
        });
        var app = builder.Build();
        app.MapBifrost("/openai");
        app.MapBifrostAzure();
        await app.StartAsync(Ct);
        await using var host = GatewayHost.ForStarted(app);

        using var response = await host.PostJsonAsync("/openai/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21", """{"messages":[{"role":"user","content":"Hi"}],"temperature":1.0}""", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"temperature":1.0}""", Assert.Single(upstream.Requests).RawBody);
    }

    [Fact]
    public async Task Embeddings_get_the_clients_bytes_too()
    {
        // https://platform.openai.com/docs/api-reference/embeddings/create
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        upstream.Enqueue(FakeResponses.Json(200, """{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-0.25]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}}"""));
        await using var host = await StartAsync(upstream);

        using var response = await host.PostJsonAsync("/openai/v1/embeddings", """{"input":["caf\u00e9","x"],"fallbacks":["openai/x"],"model":"openai/text-embedding-3-small","dimensions":2,"x_vendor":1.50}""", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"input":["caf\u00e9","x"],"model":"text-embedding-3-small","dimensions":2,"x_vendor":1.50}""", Assert.Single(upstream.Requests).RawBody);
        Assert.Equal(-0.25, (await GatewayHost.ReadJsonAsync(response)).GetProperty("data")[0].GetProperty("embedding")[1].GetDouble());
    }

    private sealed class AppendMessage : IBifrostPlugin
    {
        public ValueTask PreHookAsync(BifrostPluginContext context, CancellationToken cancellationToken)
        {
            if (context.Request is ChatCompletionRequest chat)
            {
                chat.Messages!.Add(ChatCompletionMessage.User("added by the plugin")); // in place: no setter, no new request
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A host's decorator of <see cref="IBifrostClient"/> that changes the chat request before passing it on.</summary>
    public class SettingTemperature : System.Reflection.DispatchProxy
    {
        public IBifrostClient Inner { get; set; } = null!;

        public static IBifrostClient Wrap(IBifrostClient inner)
        {
            var proxy = Create<IBifrostClient, SettingTemperature>();
            ((SettingTemperature)(object)proxy).Inner = inner;
            return proxy;
        }

        protected override object? Invoke(System.Reflection.MethodInfo? targetMethod, object?[]? args)
        {
            if (args is [ChatCompletionRequest chat, ..])
            {
                chat.Temperature = 0.25;
            }

            return targetMethod!.Invoke(Inner, args);
        }
    }
}
