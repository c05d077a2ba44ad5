using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bifrost.Middleware.Benchmarks;

/// <summary>
/// The endpoint around the gateway, without Kestrel: <c>POST chat/completions</c> on a <see cref="DefaultHttpContext"/>
/// (read the wire JSON with our context → gateway on the local provider → write the JSON answer, or the SSE stream).
/// Subtract <see cref="GatewayBenchmarks"/> to get the JSON/SSE cost of the endpoint itself.
/// </summary>
[MemoryDiagnoser]
public class EndpointBenchmarks
{
    private static readonly byte[] ChatBody = Encoding.UTF8.GetBytes(
        """{"model":"local/echo","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark, please."}]}""");

    private static readonly byte[] StreamBody = Encoding.UTF8.GetBytes(
        """{"model":"local/echo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark, please."}]}""");

    private ServiceProvider _services = null!;
    private RequestDelegate _chat = null!;
    private MemoryStream _requestBody = null!;
    private MemoryStream _responseBody = null!;

    [GlobalSetup]
    public void Setup()
    {
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] };
        });
        _services = services.BuildServiceProvider();
        _chat = Bifrost.Middleware.Operations.InferenceOperations.Chat.Routes[0].Handler; // POST chat/completions
        _requestBody = new MemoryStream();
        _responseBody = new MemoryStream(64 * 1024);
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Description = "POST chat/completions JSON (DefaultHttpContext, local)")]
    public Task<long> ChatJson() => RunAsync(ChatBody);

    [Benchmark(Description = "POST chat/completions SSE (DefaultHttpContext, local, 10 chunks)")]
    public Task<long> ChatSse() => RunAsync(StreamBody);

    private async Task<long> RunAsync(byte[] body)
    {
        _requestBody.SetLength(0);
        _requestBody.Write(body);
        _requestBody.Position = 0;
        _responseBody.SetLength(0);
        var context = new DefaultHttpContext { RequestServices = _services };
        context.Request.Method = "POST";
        context.Request.ContentType = "application/json";
        context.Request.ContentLength = body.Length;
        context.Request.Body = _requestBody;
        context.Response.Body = _responseBody;
        await _chat(context);
        await context.Response.CompleteAsync();
        return _responseBody.Length;
    }
}
