namespace Bifrost.Middleware.Providers.Bedrock;

// Bedrock batch inference (control plane, https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateModelInvocationJob.html,
// API_GetModelInvocationJob.html) and its S3 records (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html,
// batch-inference-results.html). Serialized with BedrockJsonContext (camelCase).

/// <summary><c>POST /model-invocation-job</c>.</summary>
internal sealed class BedrockBatchJobRequest
{
    public string JobName { get; set; } = string.Empty;

    public string RoleArn { get; set; } = string.Empty;

    public string? ClientRequestToken { get; set; }

    public string ModelId { get; set; } = string.Empty;

    public BedrockBatchInputDataConfig InputDataConfig { get; set; } = new();

    public BedrockBatchOutputDataConfig OutputDataConfig { get; set; } = new();

    public int? TimeoutDurationInHours { get; set; }
}

internal sealed class BedrockBatchInputDataConfig
{
    public BedrockS3InputDataConfig? S3InputDataConfig { get; set; }
}

internal sealed class BedrockS3InputDataConfig
{
    public string? S3Uri { get; set; }

    public string? S3InputFormat { get; set; }
}

internal sealed class BedrockBatchOutputDataConfig
{
    public BedrockS3OutputDataConfig? S3OutputDataConfig { get; set; }
}

internal sealed class BedrockS3OutputDataConfig
{
    public string? S3Uri { get; set; }
}

/// <summary>The answer of <c>CreateModelInvocationJob</c>: <c>{"jobArn"}</c>.</summary>
internal sealed class BedrockBatchJobCreated
{
    public string? JobArn { get; set; }
}

/// <summary>The answer of <c>GET /model-invocation-job/{jobIdentifier}</c>.</summary>
internal sealed class BedrockBatchJob
{
    public string? JobArn { get; set; }

    public string? JobName { get; set; }

    public string? ModelId { get; set; }

    /// <summary>Submitted, Validating, Scheduled, InProgress, Completed, PartiallyCompleted, Failed, Stopping, Stopped, Expired.</summary>
    public string? Status { get; set; }

    public string? Message { get; set; }

    public DateTimeOffset? SubmitTime { get; set; }

    public DateTimeOffset? EndTime { get; set; }

    public DateTimeOffset? JobExpirationTime { get; set; }

    public BedrockBatchInputDataConfig? InputDataConfig { get; set; }

    public BedrockBatchOutputDataConfig? OutputDataConfig { get; set; }

    public int? TotalRecordCount { get; set; }

    public int? ProcessedRecordCount { get; set; }

    public int? SuccessRecordCount { get; set; }

    public int? ErrorRecordCount { get; set; }
}

/// <summary>One line of a batch output file: <c>{"recordId", "modelInput", "modelOutput"}</c>, or <c>"error"</c> instead of <c>modelOutput</c>.</summary>
internal sealed class BedrockBatchRecord
{
    public string? RecordId { get; set; }

    /// <summary>The InvokeModel answer of the model (for Claude: an Anthropic Messages response).</summary>
    public JsonElement? ModelOutput { get; set; }

    public BedrockBatchRecordError? Error { get; set; }
}

/// <summary><c>{"errorCode": 400, "errorMessage": "..."}</c>.</summary>
internal sealed class BedrockBatchRecordError
{
    public int? ErrorCode { get; set; }

    public string? ErrorMessage { get; set; }
}

/// <summary>Meta Llama's InvokeModel answer (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html), a batch record's <c>modelOutput</c>.</summary>
internal sealed class LlamaResponse
{
    [JsonPropertyName("generation")]
    public string? Generation { get; set; }

    [JsonPropertyName("prompt_token_count")]
    public int? PromptTokenCount { get; set; }

    [JsonPropertyName("generation_token_count")]
    public int? GenerationTokenCount { get; set; }

    [JsonPropertyName("stop_reason")]
    public string? StopReason { get; set; }
}

/// <summary>An <c>s3://bucket/prefix</c> location.</summary>
/// <param name="Bucket">The bucket.</param>
/// <param name="Prefix">The key prefix, empty or ending with <c>/</c>.</param>
internal readonly record struct BedrockS3Location(string Bucket, string Prefix)
{
    /// <summary>Parses <c>s3://bucket</c> or <c>s3://bucket/prefix</c> (a valid bucket name: 3-63 lower-case letters, digits, dots and hyphens).</summary>
    public static bool TryParse(string? value, out BedrockS3Location location)
    {
        location = default;
        if (value is null || !value.Trim().StartsWith("s3://", StringComparison.Ordinal))
        {
            return false;
        }

        var rest = value.Trim()[5..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? string.Empty : rest[(slash + 1)..].Trim('/');
        if (bucket.Length is < 3 or > 63 || !bucket.All(static c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '-')
            || !char.IsAsciiLetterOrDigit(bucket[0]) || !char.IsAsciiLetterOrDigit(bucket[^1]) || prefix.Contains("//", StringComparison.Ordinal))
        {
            return false;
        }

        location = new BedrockS3Location(bucket, prefix.Length == 0 ? string.Empty : prefix + "/");
        return true;
    }

    /// <summary><c>s3://{bucket}/{key}</c>.</summary>
    public string ToUri(string key) => $"s3://{Bucket}/{key}";
}
