using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Anthropic;

namespace Bifrost.Middleware.Tests.Caching;

/// <summary>
/// The response cache on the Anthropic-compatible route (<c>POST /anthropic/v1/messages</c>, whole answers): the
/// <c>x-bf-cache-*</c> headers apply there too, an identical request is an exact hit and a paraphrase a semantic one,
/// against a fake Anthropic upstream speaking Anthropic's Messages wire format
/// (https://docs.anthropic.com/en/api/messages) that echoes the last user text.
/// </summary>
public sealed class AnthropicCacheTests : IAsyncLifetime
{
    private FakeAnthropicUpstream _upstream = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _upstream = await FakeAnthropicUpstream.StartAsync();

    public ValueTask DisposeAsync() => _upstream.DisposeAsync();

    private static async Task<(string Status, JsonElement Json)> MessageAsync(AnthropicInboundTests.InboundHost host, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/anthropic/v1/messages")
        {
            Content = new StringContent(
                JsonSerializer.Serialize(new { model = "anthropic/claude-sonnet-4-5", max_tokens = 64, messages = new[] { new { role = "user", content = text } } }),
                Encoding.UTF8,
                "application/json"),
        };
        request.Headers.TryAddWithoutValidation("anthropic-version", "2023-06-01");
        request.Headers.Add("x-bf-cache-key", "k");
        using var response = await host.Client.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return (response.Headers.TryGetValues("x-bf-cache-status", out var values) ? values.Single() : "(none)", JsonDocument.Parse(body).RootElement.Clone());
    }

    private static string Text(JsonElement message) => message.GetProperty("content")[0].GetProperty("text").GetString()!;

    [Fact]
    public async Task Identical_messages_hit_exactly_and_paraphrases_semantically()
    {
        await using var host = await AnthropicInboundTests.InboundHost.StartAsync(_upstream.BaseUrl, o =>
        {
            o.Cache.Enabled = true;
            o.Cache.Semantic.Enabled = true;
            o.Cache.Semantic.EmbeddingModel = "local/hash-embed";
            o.Cache.Semantic.Threshold = 0.85;
        });

        var (firstStatus, first) = await MessageAsync(host, "What is the capital of France?");
        var (sameStatus, same) = await MessageAsync(host, "What is the capital of France?");
        var (nearStatus, near) = await MessageAsync(host, "what's the capital of france");
        var (farStatus, far) = await MessageAsync(host, "How do I bake sourdough bread at home?");

        Assert.Equal(("miss", "hit", "hit", "miss"), (firstStatus, sameStatus, nearStatus, farStatus));
        Assert.Equal(2, _upstream.MessageRequests.Count());
        Assert.Equal("echo: What is the capital of France?", Text(first));
        Assert.Equal(first.GetProperty("id").GetString(), same.GetProperty("id").GetString());
        Assert.Equal(first.GetProperty("id").GetString(), near.GetProperty("id").GetString());
        Assert.Equal("echo: What is the capital of France?", Text(near));
        Assert.Equal("echo: How do I bake sourdough bread at home?", Text(far));
    }
}
