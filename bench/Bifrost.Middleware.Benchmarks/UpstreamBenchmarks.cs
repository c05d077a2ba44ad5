using System.Net;
using System.Text;
using BenchmarkDotNet.Attributes;
using Bifrost.Middleware.Providers.OpenAI;
using Microsoft.Extensions.DependencyInjection;

namespace Bifrost.Middleware.Benchmarks;

/// <summary>
/// The OpenAI-compatible adapter without a network: <see cref="IBifrostClient"/> → adapter → the real named HttpClient
/// handler pipeline → a stub primary handler answering the bench mock's exact body.
/// This is the in-process part of the whole-path cost (request serialization, HttpRequestMessage, response parsing).
/// </summary>
[MemoryDiagnoser]
public class UpstreamBenchmarks
{
    // The body of /work/shared/bench/mock-upstream.mjs for gpt-4o-mini.
    private static readonly byte[] CompletionBody = Encoding.UTF8.GetBytes(
        """{"id":"chatcmpl-mock0000000000000000000000","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed response from the mock upstream used for gateway benchmarks.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":17,"total_tokens":29},"system_fingerprint":"fp_mock"}""");

    private ServiceProvider _services = null!;
    private IBifrostClient _client = null!;
    private ChatCompletionRequest _request = null!;

    [GlobalSetup]
    public void Setup()
    {
        var services = new ServiceCollection();
        services.AddBifrost(options =>
        {
            options.Providers["openai"] = new ProviderOptions
            {
                Type = "openai",
                BaseUrl = "http://127.0.0.1:18080/v1",
                Keys = [new ProviderKeyOptions { Value = "sk-mock" }],
                Models = ["gpt-4o-mini"],
            };
        });
        services.AddHttpClient(OpenAICompatibleAdapter.HttpClientName).ConfigurePrimaryHttpMessageHandler(static () => new StubHandler());
        _services = services.BuildServiceProvider();
        _client = _services.GetRequiredService<IBifrostClient>();
        _request = new ChatCompletionRequest
        {
            Model = "openai/gpt-4o-mini",
            Messages = [ChatCompletionMessage.FromText("system", "You are a helpful assistant."), ChatCompletionMessage.FromText("user", "Say hello in one short sentence.")],
            MaxTokens = 64,
            Temperature = 0,
        };
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Description = "IBifrostClient.ChatCompletionAsync (openai adapter, stub handler)")]
    public Task<ChatCompletionResponse> ChatCompletion() => _client.ChatCompletionAsync(_request);

    private sealed class StubHandler : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            // Drain the request body as a socket handler would, and answer asynchronously as a real upstream does
            // (so every async layer above completes asynchronously and allocates what it allocates in production).
            await request.Content!.CopyToAsync(Stream.Null, cancellationToken);
            await Task.Yield();
            var content = new ByteArrayContent(CompletionBody);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = content, RequestMessage = request };
        }
    }
}
