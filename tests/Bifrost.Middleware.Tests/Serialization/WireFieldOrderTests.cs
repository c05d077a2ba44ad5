using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Serialization;

namespace Bifrost.Middleware.Tests.Serialization;

/// <summary>
/// The wire types share base classes (envelope, choice, request, schema); what they write stays field for field and in
/// the same order as before: each JSON below is read and written back byte for byte.
/// </summary>
public sealed class WireFieldOrderTests
{
    [Fact]
    public void Chat_completion_keeps_its_field_order()
        => AssertRoundTrip(
            """{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"no","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}],"annotations":[]},"finish_reason":"tool_calls","logprobs":{"content":[]},"x_choice":1}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0}},"system_fingerprint":"fp_1","service_tier":"default","extra_fields":{"request_type":"chat_completion","provider":"openai","latency":5},"x_top":{"a":[1,2]}}""",
            BifrostJson.Context.ChatCompletionResponse);

    [Fact]
    public void Chat_completion_chunk_keeps_its_field_order()
        => AssertRoundTrip(
            """{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi","refusal":"r","tool_calls":[{"index":0,"id":"call_1","function":{"arguments":"{"}}]},"finish_reason":null,"logprobs":{"content":[]}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"system_fingerprint":"fp_1","service_tier":"default","extra_fields":{"chunk_index":0},"obfuscation":"x"}""",
            BifrostJson.Context.ChatCompletionChunk);

    [Fact]
    public void Text_completion_keeps_its_field_order()
        => AssertRoundTrip(
            """{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"gpt-3.5-turbo-instruct","choices":[{"text":"Hi","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"system_fingerprint":"fp_1","extra_fields":{"request_type":"text_completion"},"x_top":true}""",
            BifrostJson.Context.TextCompletionResponse);

    [Fact]
    public void Requests_keep_their_field_order_with_model_first_and_fallbacks_last()
    {
        AssertRoundTrip(
            """{"model":"openai/gpt-3.5-turbo-instruct","prompt":"Say hi","suffix":"!","max_tokens":5,"temperature":0.5,"top_p":1,"n":1,"stream":true,"stream_options":{"include_usage":true},"logprobs":2,"echo":false,"stop":"\n","seed":7,"user":"u","metadata":{"k":"v"},"fallbacks":["anthropic/claude"],"x_vendor":1}""",
            BifrostJson.Context.TextCompletionRequest);
        AssertRoundTrip(
            """{"model":"openai/text-embedding-3-small","input":["a","b"],"dimensions":8,"encoding_format":"base64","user":"u","fallbacks":["local/e"],"x_vendor":1}""",
            BifrostJson.Context.EmbeddingRequest);
        AssertRoundTrip(
            """{"model":"openai/gpt-4o-mini","input":"Hi","instructions":"Be terse.","tools":[{"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":true,"x_tool":1}],"text":{"format":{"type":"json_schema","name":"s","schema":{},"strict":true}},"max_output_tokens":9,"metadata":{"k":"v"},"stream":true,"user":"u","fallbacks":["local/m"]}""",
            BifrostJson.Context.ResponsesRequest);
    }

    [Fact]
    public void Chat_request_for_a_provider_keeps_its_field_order_and_drops_fallbacks_and_stream_fields()
    {
        var request = JsonSerializer.Deserialize(
            """{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"fallbacks":["local/m"],"stream":true,"stream_options":{"include_usage":true},"temperature":0.5,"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{},"strict":true}}],"response_format":{"type":"json_schema","json_schema":{"name":"s","description":"d","schema":{},"strict":false}},"user":"u","service_tier":"flex","x_vendor":1}""",
            BifrostJson.Context.ChatCompletionRequest)!;

        Assert.Equal(
            """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.5,"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{},"strict":true}}],"response_format":{"type":"json_schema","json_schema":{"name":"s","description":"d","schema":{},"strict":false}},"user":"u","service_tier":"flex","x_vendor":1}""",
            JsonSerializer.Serialize(request.ForProvider("gpt-4o-mini", stream: true), BifrostJson.Context.ChatCompletionRequest));
        Assert.Equal(
            """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"temperature":0.5,"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{},"strict":true}}],"response_format":{"type":"json_schema","json_schema":{"name":"s","description":"d","schema":{},"strict":false}},"user":"u","service_tier":"flex","x_vendor":1}""",
            JsonSerializer.Serialize(request.ForProvider("gpt-4o-mini", stream: false), BifrostJson.Context.ChatCompletionRequest));
        Assert.Equal("openai/gpt-4o-mini", request.Model);
        Assert.Equal(["local/m"], request.Fallbacks!);
    }

    private static void AssertRoundTrip<T>(string json, JsonTypeInfo<T> typeInfo)
        where T : class
        => Assert.Equal(json, JsonSerializer.Serialize(JsonSerializer.Deserialize(json, typeInfo)!, typeInfo));
}
