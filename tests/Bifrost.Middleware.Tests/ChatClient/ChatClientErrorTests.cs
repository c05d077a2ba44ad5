using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;

namespace Bifrost.Middleware.Tests.ChatClientBridge;

/// <summary>Exceptions of an IChatClient become Bifrost provider errors that the gateway retries and falls back on by status.</summary>
public sealed class ChatClientErrorTests
{
    private const string Ask = """{"model":"mea/m","messages":[{"role":"user","content":"hi"}]}""";

    [Fact]
    public async Task An_http_status_from_the_client_is_the_answers_status_and_429_is_retried()
    {
        var chat = new FakeChatClient { OnResponse = _ => throw new HttpRequestException("Too many requests, slow down", null, HttpStatusCode.TooManyRequests) };
        await using var host = await BridgeHost.StartAsync(chat, provider: p =>
        {
            p.MaxRetries = 1;
            p.RetryBaseDelay = TimeSpan.FromMilliseconds(1);
        });

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(2, chat.Calls.Count);
        Assert.False(body.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(429, body.GetProperty("status_code").GetInt32());
        Assert.Equal("rate_limit_error", body.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("Too many requests, slow down", body.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("mea", body.GetProperty("extra_fields").GetProperty("provider").GetString());
    }

    [Fact]
    public async Task A_400_from_the_client_is_not_retried()
    {
        var chat = new FakeChatClient { OnResponse = _ => throw new HttpRequestException("bad schema", null, HttpStatusCode.BadRequest) };
        await using var host = await BridgeHost.StartAsync(chat, provider: p => p.MaxRetries = 2);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Single(chat.Calls);
        Assert.Equal("bad schema", body.GetProperty("error").GetProperty("message").GetString());
        Assert.False(body.GetProperty("is_bifrost_error").GetBoolean());
    }

    [Fact]
    public async Task Any_other_exception_is_a_502_with_its_message_and_a_retryable_one_falls_back()
    {
        var chat = new FakeChatClient { OnResponse = _ => throw new InvalidOperationException("model exploded") };
        await using var host = await BridgeHost.StartAsync(chat);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);
        var (fallback, fallbackBody) = await BridgeHost.PostAsync(
            host,
            "/openai/v1/chat/completions",
            """{"model":"mea/m","fallbacks":["local/echo"],"messages":[{"role":"user","content":"saved by the fallback"}]}""");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("provider_error", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("model exploded", body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, fallback.StatusCode);
        Assert.Equal("local", fallbackBody.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal("saved by the fallback", fallbackBody.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task An_sdk_client_result_exception_keeps_its_status()
    {
        // What the OpenAI SDK's IChatClient (Microsoft.Extensions.AI.OpenAI) throws for a 503 from upstream.
        var chat = new FakeChatClient { OnResponse = _ => throw new ClientResultException("Service Unavailable: overloaded", new StatusResponse(503)) };
        await using var host = await BridgeHost.StartAsync(chat);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("Service Unavailable: overloaded", body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_bifrost_exception_from_the_client_passes_through_unchanged()
    {
        var chat = new FakeChatClient { OnResponse = _ => throw BifrostException.Provider(418, "teapot_error", "short_and_stout", "I am a teapot") };
        await using var host = await BridgeHost.StartAsync(chat);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        Assert.Equal((HttpStatusCode)418, response.StatusCode);
        Assert.Equal("short_and_stout", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("teapot_error", body.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_connection_failure_without_status_is_a_retryable_502()
    {
        var chat = new FakeChatClient { OnResponse = _ => throw new HttpRequestException("No connection could be made") };
        await using var host = await BridgeHost.StartAsync(chat, provider: p =>
        {
            p.MaxRetries = 1;
            p.RetryBaseDelay = TimeSpan.FromMilliseconds(1);
        });

        var (response, _) = await BridgeHost.PostAsync(host, "/openai/v1/chat/completions", Ask);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(2, chat.Calls.Count);
    }

    [Fact]
    public async Task Embedding_generator_failures_map_the_same_way()
    {
        var embeddings = new FakeEmbeddingGenerator { OnGenerate = (_, _, _) => throw new HttpRequestException("unauthorized", null, HttpStatusCode.Unauthorized) };
        await using var host = await BridgeHost.StartAsync(new FakeChatClient(), embeddings);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/embeddings", """{"model":"mea/e","input":"x"}""");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("authentication_error", body.GetProperty("error").GetProperty("type").GetString());
    }

    /// <summary>Just enough of an HTTP response for a <see cref="ClientResultException"/> to carry a status.</summary>
    private sealed class StatusResponse(int status) : PipelineResponse
    {
        public override int Status => status;

        public override string ReasonPhrase => string.Empty;

        public override Stream? ContentStream { get; set; }

        public override BinaryData Content => BinaryData.Empty;

        protected override PipelineResponseHeaders HeadersCore => new NoHeaders();

        public override BinaryData BufferContent(CancellationToken cancellationToken = default) => BinaryData.Empty;

        public override ValueTask<BinaryData> BufferContentAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(BinaryData.Empty);

        public override void Dispose()
        {
        }

        private sealed class NoHeaders : PipelineResponseHeaders
        {
            public override bool TryGetValue(string name, out string? value)
            {
                value = null;
                return false;
            }

            public override bool TryGetValues(string name, out IEnumerable<string>? values)
            {
                values = null;
                return false;
            }

            public override IEnumerator<KeyValuePair<string, string>> GetEnumerator() => Enumerable.Empty<KeyValuePair<string, string>>().GetEnumerator();
        }
    }
}
