using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.OpenAI;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Presets;

/// <summary>
/// A fake OpenAI-compatible upstream (Kestrel) standing in for every preset's real host: the gateway's upstream client gets
/// a handler that records the URI the adapter chose (e.g. <c>https://api.groq.com/openai/v1/chat/completions</c>) and sends
/// the request to the fake instead, so the default base URLs are asserted exactly without leaving the machine.
/// The fake answers as the OpenAI chat-completions reference does (https://platform.openai.com/docs/api-reference/chat),
/// which every preset's provider documents it speaks (sources in OpenAIPresets).
/// </summary>
public abstract class PresetTestBase : IAsyncLifetime
{
    protected const string Key = "sk-preset-secret-123";

    protected FakeOpenAIUpstream Upstream { get; private set; } = null!;

    /// <summary>The URIs the adapter addressed, in order (before they were redirected to the fake).</summary>
    protected ConcurrentQueue<Uri> Addressed { get; } = new();

    protected LogSink Logs { get; } = new();

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual async ValueTask InitializeAsync() => Upstream = await FakeOpenAIUpstream.StartAsync();

    public virtual async ValueTask DisposeAsync()
    {
        await Upstream.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    /// <summary>A host with one provider named <paramref name="name"/> of type <paramref name="type"/> (with the key unless <paramref name="key"/> is null).</summary>
    protected Task<GatewayHost> StartAsync(string type, string? key = Key, Action<ProviderOptions>? configure = null, string? name = null) =>
        GatewayHost.StartAsync(
            options =>
            {
                var provider = new ProviderOptions { Type = type, MaxRetries = 0, RetryBaseDelay = TimeSpan.Zero };
                if (key is not null)
                {
                    provider.Keys.Add(new ProviderKeyOptions { Value = key });
                }

                configure?.Invoke(provider);
                options.Providers[name ?? type] = provider;
            },
            services: services =>
            {
                services.AddSingleton<ILoggerProvider>(Logs);
                services.AddLogging(static b => b.SetMinimumLevel(LogLevel.Debug));
                services.AddHttpClient(OpenAICompatibleAdapter.HttpClientName).AddHttpMessageHandler(() => new RedirectToFake(Addressed, Upstream.Port));
            });

    protected static async Task<JsonElement> ChatAsync(GatewayHost host, JsonObject body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body.ToJsonString(), Ct);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.True(expected == response.StatusCode, $"Expected {expected}, got {response.StatusCode}: {json}");
        return json;
    }

    protected static JsonObject Chat(string model, params (string Name, JsonNode? Value)[] fields)
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }),
        };
        foreach (var (name, value) in fields)
        {
            body[name] = value;
        }

        return body;
    }

    /// <summary>The JSON body of the only chat request the fake received.</summary>
    protected JsonElement SentBody()
    {
        var request = Assert.Single(Upstream.Requests, static r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));
        return request.Body!.Value;
    }

    protected static bool Has(JsonElement body, string name) => body.TryGetProperty(name, out _);

    /// <summary>Sends every request to the fake upstream, keeping its path and query, after recording the URI the adapter chose.</summary>
    private sealed class RedirectToFake(ConcurrentQueue<Uri> addressed, int port) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            addressed.Enqueue(request.RequestUri!);
            request.RequestUri = new UriBuilder(request.RequestUri!) { Scheme = Uri.UriSchemeHttp, Host = "127.0.0.1", Port = port }.Uri;
            return base.SendAsync(request, cancellationToken);
        }
    }
}
