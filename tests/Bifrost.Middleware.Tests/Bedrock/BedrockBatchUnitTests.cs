using System.Text.Json;
using Bifrost.Middleware.Providers.Bedrock;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>The pieces of Bedrock native batches that need no fake: S3 locations, job timeouts, the output object's key, URLs.</summary>
public sealed class BedrockBatchUnitTests
{
    [Theory]
    [InlineData("s3://my-bucket", "my-bucket", "")]
    [InlineData("s3://my-bucket/", "my-bucket", "")]
    [InlineData("s3://my.bucket-1/batches/in/", "my.bucket-1", "batches/in/")]
    [InlineData(" s3://abc/p ", "abc", "p/")]
    public void S3_locations_are_read(string value, string bucket, string prefix)
    {
        Assert.True(BedrockS3Location.TryParse(value, out var location));
        Assert.Equal((bucket, prefix), (location.Bucket, location.Prefix));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("https://my-bucket/p")]
    [InlineData("s3://")]
    [InlineData("s3://ab")]
    [InlineData("s3://My-Bucket")]
    [InlineData("s3://-bucket")]
    [InlineData("s3://bucket_name")]
    [InlineData("s3://bucket/a//b")]
    public void Other_locations_are_refused(string? value) => Assert.False(BedrockS3Location.TryParse(value, out _));

    [Theory]
    [InlineData("24h", 24)]
    [InlineData("1h", 24)]
    [InlineData("72h", 72)]
    [InlineData("1000h", 168)]
    [InlineData("24", null)]
    [InlineData("h", null)]
    [InlineData(null, null)]
    public void The_job_timeout_is_the_completion_window_within_Bedrocks_bounds(string? window, int? hours) =>
        Assert.Equal(hours, BedrockAdapter.TimeoutHours(window));

    [Theory]
    [InlineData("anthropic.claude-3-5-sonnet-20240620-v1:0", true)]
    [InlineData("us.anthropic.claude-3-7-sonnet-20250219-v1:0", true)]
    [InlineData("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0", true)]
    [InlineData("amazon.nova-pro-v1:0", false)]
    [InlineData("meta.llama3-70b-instruct-v1:0", false)]
    public void Claude_models_are_recognised(string model, bool claude) => Assert.Equal(claude, BedrockAdapter.IsClaude(model));

    [Theory]
    [InlineData("anthropic.claude-3-haiku-20240307-v1:0", "Claude", "/v1/chat/completions")]
    [InlineData("amazon.nova-pro-v1:0", "Amazon Nova", "/v1/chat/completions")]
    [InlineData("us.amazon.nova-lite-v1:0", "Amazon Nova", "/v1/chat/completions")]
    [InlineData("meta.llama3-1-8b-instruct-v1:0", "Meta Llama 3", "/v1/chat/completions")]
    [InlineData("us.meta.llama3-3-70b-instruct-v1:0", "Meta Llama 3", "/v1/chat/completions")]
    [InlineData("amazon.titan-embed-text-v2:0", "Titan Text Embeddings V2", "/v1/embeddings")]
    [InlineData("amazon.nova-canvas-v1:0", null, null)]
    [InlineData("meta.llama2-13b-chat-v1", null, null)]
    [InlineData("meta.llama4-scout-17b-instruct-v1:0", null, null)]
    [InlineData("amazon.titan-embed-text-v1", null, null)]
    [InlineData("mistral.mistral-large-2407-v1:0", null, null)]
    [InlineData("cohere.command-r-v1:0", null, null)]
    public void Each_model_has_its_batch_family_and_endpoint(string model, string? family, string? endpoint)
    {
        var found = BedrockBatchModels.For(model);
        Assert.Equal(family, found?.Name);
        Assert.Equal(endpoint, found?.Endpoint);
    }

    [Fact]
    public void The_Llama_prompt_is_Llama_3s_chat_template_with_developer_as_system_and_parts_joined()
    {
        var prompt = BedrockBatchModels.LlamaPrompt(
        [
            ChatCompletionMessage.FromText("developer", "Rules."),
            new ChatCompletionMessage { Role = "user", Content = new ChatCompletionContent([new ChatContentPart { Type = "text", Text = "a" }, new ChatContentPart { Type = "text", Text = "b" }]) },
        ]);

        Assert.Equal("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nRules.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\na\nb<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", prompt);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"temperature":0,"top_p":1,"stop":["x"],"n":1,"presence_penalty":0,"response_format":{"type":"text"},"user":"u"}""", true, null)]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"stop":["x"]}""", false, "'stop'")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"tool_choice":"auto"}""", true, "'tool_choice'")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"logprobs":true}""", true, "log probabilities")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"seed":3}""", true, "'seed'")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"frequency_penalty":0.5}""", true, "'frequency_penalty'")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"low"}""", true, "'reasoning_effort'")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"modalities":["audio"]}""", true, "'modalities'")]
    [InlineData("""{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}""", true, "tool calls or tool results")]
    [InlineData("""{"messages":[{"role":"tool","tool_call_id":"c","content":"r"}]}""", true, "tool calls or tool results")]
    [InlineData("""{"messages":[]}""", true, "no messages")]
    public void A_text_conversation_is_all_Nova_and_Llama_records_carry(string body, bool stop, string? refused)
    {
        using var document = JsonDocument.Parse(body);
        Assert.Equal(refused, BedrockBatchModels.TextChatRefuses(document.RootElement, stop, systemAnywhere: true));
    }

    [Fact]
    public void The_output_object_is_the_input_files_name_with_out_under_the_job_id()
    {
        var job = new BedrockBatchJob
        {
            InputDataConfig = new BedrockBatchInputDataConfig { S3InputDataConfig = new BedrockS3InputDataConfig { S3Uri = "s3://b-1/p/bifrost-x/input.jsonl" } },
            OutputDataConfig = new BedrockBatchOutputDataConfig { S3OutputDataConfig = new BedrockS3OutputDataConfig { S3Uri = "s3://b-2/p/bifrost-x/output/" } },
        };

        var output = BedrockAdapter.OutputObject("arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdef123456", job);

        Assert.Equal(new BedrockS3Location("b-2", "p/bifrost-x/output/abcdef123456/input.jsonl.out"), output);
        Assert.Null(BedrockAdapter.OutputObject("arn:x/y", new BedrockBatchJob()));
    }

    [Fact]
    public void S3_objects_are_virtual_hosted_on_AWS_and_path_style_on_a_configured_endpoint()
    {
        var context = new ProviderContext("aws", new ProviderOptions { Type = "bedrock", Region = "eu-west-3" }, string.Empty, null);

        Assert.Equal("https://my-bucket.s3.eu-west-3.amazonaws.com/p/a%20b/input.jsonl", BedrockAdapter.S3Object(context, new BedrockBatchOptions(), "my-bucket", "p/a b/input.jsonl").AbsoluteUri);
        Assert.Equal("http://127.0.0.1:9000/my-bucket/p/input.jsonl", BedrockAdapter.S3Object(context, new BedrockBatchOptions { S3Endpoint = "http://127.0.0.1:9000/" }, "my-bucket", "p/input.jsonl").AbsoluteUri);
        Assert.Equal("https://bedrock.eu-west-3.amazonaws.com/model-invocation-job", BedrockAdapter.ControlPlane(context, new BedrockBatchOptions(), "model-invocation-job").AbsoluteUri);
    }
}
