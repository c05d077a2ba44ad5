using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Bifrost.Middleware.Serialization;

namespace Bifrost.Middleware.Benchmarks;

/// <summary>
/// The four JSON passes of a proxied chat completion, with the gateway's own serializer context: read the client's
/// request, write the upstream request, read the upstream answer (async from a stream, and sync from the buffered bytes
/// as the adapter now does when Content-Length is known), write the client's answer.
/// </summary>
[MemoryDiagnoser]
public class SerializationBenchmarks
{
    private static readonly byte[] RequestBody = Encoding.UTF8.GetBytes(
        """{"model":"openai/gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64,"temperature":0}""");

    private static readonly byte[] AnswerBody = Encoding.UTF8.GetBytes(
        """{"id":"chatcmpl-mock0000000000000000000000","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed response from the mock upstream used for gateway benchmarks.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":17,"total_tokens":29},"system_fingerprint":"fp_mock"}""");

    private ChatCompletionRequest _request = null!;
    private ChatCompletionResponse _answer = null!;
    private MemoryStream _requestStream = null!;
    private MemoryStream _answerStream = null!;
    private PooledBufferWriter _buffer = null!;
    private Utf8JsonWriter _writer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _request = JsonSerializer.Deserialize(RequestBody, BifrostJson.Context.ChatCompletionRequest)!;
        _answer = JsonSerializer.Deserialize(AnswerBody, BifrostJson.Context.ChatCompletionResponse)!;
        _answer.ExtraFields = new BifrostExtraFields { RequestType = "chat_completion", Provider = "openai", ModelRequested = "gpt-4o-mini", Latency = 1 };
        _requestStream = new MemoryStream(RequestBody, writable: false);
        _answerStream = new MemoryStream(AnswerBody, writable: false);
        _buffer = new PooledBufferWriter(64 * 1024);
        _writer = new Utf8JsonWriter(_buffer, BifrostJson.WriterOptions);
    }

    [Benchmark(Description = "read client request (DeserializeAsync, stream)")]
    public ValueTask<ChatCompletionRequest?> ReadRequest()
    {
        _requestStream.Position = 0;
        return JsonSerializer.DeserializeAsync(_requestStream, BifrostJson.Context.ChatCompletionRequest);
    }

    [Benchmark(Description = "read client request (Deserialize, buffered span)")]
    public ChatCompletionRequest? ReadRequestSync() => JsonSerializer.Deserialize(RequestBody, BifrostJson.Context.ChatCompletionRequest);

    [Benchmark(Description = "write upstream request (SerializeToUtf8Bytes)")]
    public byte[] WriteUpstreamRequest() => JsonSerializer.SerializeToUtf8Bytes(_request, BifrostJson.Context.ChatCompletionRequest);

    /// <summary>Issue 18: what replaces <see cref="WriteUpstreamRequest"/> when the client's bytes are forwarded (<c>model</c> rewritten).</summary>
    [Benchmark(Description = "splice client bytes for upstream (RequestSplice)")]
    public byte[]? SpliceUpstreamRequest() => RequestSplice.TryWrite(RequestBody, "gpt-4o-mini", stream: false, out var body) ? body : null;

    [Benchmark(Description = "read upstream answer (DeserializeAsync, stream)")]
    public ValueTask<ChatCompletionResponse?> ReadAnswerAsync()
    {
        _answerStream.Position = 0;
        return JsonSerializer.DeserializeAsync(_answerStream, BifrostJson.Context.ChatCompletionResponse);
    }

    [Benchmark(Description = "read upstream answer (Deserialize, buffered span)")]
    public ChatCompletionResponse? ReadAnswerSync() => JsonSerializer.Deserialize(AnswerBody, BifrostJson.Context.ChatCompletionResponse);

    [Benchmark(Description = "write client answer (Utf8JsonWriter into pooled buffer)")]
    public int WriteAnswer()
    {
        _buffer.Dispose();
        _buffer = new PooledBufferWriter(4096);
        _writer.Reset(_buffer);
        JsonSerializer.Serialize(_writer, _answer, BifrostJson.Context.ChatCompletionResponse);
        _writer.Flush();
        return _buffer.WrittenCount;
    }
}
