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
