using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>A gateway (TestHost) whose provider <c>openai</c> is a <see cref="FakeOpenAIUpstream"/>, and client-side helpers.</summary>
internal static class UpstreamGateway
{
    public const string ChatPath = "/openai/v1/chat/completions";

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>An OpenAI-compatible provider pointing at the upstream: one key <c>sk-test</c>, fast retries, a 10 s attempt timeout.</summary>
    public static ProviderOptions Provider(FakeOpenAIUpstream upstream, Action<ProviderOptions>? configure = null)
    {
        var provider = new ProviderOptions
        {
            Type = "openai",
            BaseUrl = upstream.BaseUrl,
            Keys = [new ProviderKeyOptions { Value = "sk-test" }],
            Timeout = TimeSpan.FromSeconds(10),
            RetryBaseDelay = TimeSpan.FromMilliseconds(10),
            RetryMaxDelay = TimeSpan.FromSeconds(2),
        };
        configure?.Invoke(provider);
        return provider;
    }

    public static Task<GatewayHost> StartAsync(FakeOpenAIUpstream upstream, Action<ProviderOptions>? configure = null, Action<BifrostOptions>? more = null) =>
        GatewayHost.StartAsync(options =>
        {
            options.Providers["openai"] = Provider(upstream, configure);
            more?.Invoke(options);
        });

    /// <summary>A minimal chat request body; <paramref name="extra"/> is appended as more JSON members (e.g. <c>"fallbacks":["other/m"]</c>).</summary>
    public static string Chat(string model = "openai/gpt-4o-mini", bool stream = false, string? extra = null) =>
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":"Hi"}]{{(stream ? ""","stream":true""" : "")}}{{(extra is null ? "" : "," + extra)}}}""";

    public static Task<HttpResponseMessage> PostChatAsync(this GatewayHost host, string body) => host.PostJsonAsync(ChatPath, body, Ct);

    /// <summary>Sends a request and returns as soon as the headers arrive (for streams).</summary>
    public static Task<HttpResponseMessage> SendStreamingAsync(this GatewayHost host, string body, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, ChatPath) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    /// <summary>Reads a whole SSE response and returns the <c>data:</c> payloads in order.</summary>
    public static async Task<List<string>> ReadSseDataAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        return ParseSse(text);
    }

    public static List<string> ParseSse(string text)
    {
        var events = new List<string>();
        foreach (var block in text.Replace("\r\n", "\n", StringComparison.Ordinal).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var data = string.Join("\n", block.Split('\n').Where(static l => l.StartsWith("data:", StringComparison.Ordinal)).Select(static l => l[5..].TrimStart(' ')));
            if (data.Length > 0)
            {
                events.Add(data);
            }
        }

        return events;
    }

    /// <summary>Reads SSE events one by one from an open stream (for tests that act between events).</summary>
    public static async Task<string?> ReadEventAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        var data = new StringBuilder();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                if (data.Length > 0)
                {
                    return data.ToString();
                }

                continue;
            }

            if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                data.Append(line.AsSpan(5).TrimStart(' '));
            }
        }

        return data.Length > 0 ? data.ToString() : null;
    }

    public static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();

    /// <summary>Asserts the Bifrost error shape of a provider error and returns its <c>error</c> object.</summary>
    public static JsonElement AssertProviderError(JsonElement json, int status)
    {
        Assert.False(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(status, json.GetProperty("status_code").GetInt32());
        return json.GetProperty("error");
    }
}
