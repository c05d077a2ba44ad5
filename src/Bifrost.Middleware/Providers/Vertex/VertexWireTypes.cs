using System.Text.Encodings.Web;

namespace Bifrost.Middleware.Providers.Vertex;

// What Vertex AI adds to the Gemini and Anthropic wire formats (those are reused as they are): the text-embedding
// models' :predict (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api) and the
// countTokens request, whose fields sit at the top level on Vertex
// (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.publishers.models/countTokens).

/// <summary>The body of <c>publishers/google/models/{model}:predict</c> for embeddings.</summary>
internal sealed class VertexPredictRequest
{
    public IList<VertexEmbedInstance> Instances { get; set; } = [];

    public VertexEmbedParameters? Parameters { get; set; }
}

internal sealed class VertexEmbedInstance
{
    public string? Content { get; set; }

    [JsonPropertyName("task_type")]
    public string? TaskType { get; set; }

    public string? Title { get; set; }
}

internal sealed class VertexEmbedParameters
{
    public bool? AutoTruncate { get; set; }

    public int? OutputDimensionality { get; set; }
}

/// <summary><c>{"predictions":[{"embeddings":{"values":[...],"statistics":{"token_count":n,"truncated":false}}}]}</c>.</summary>
internal sealed class VertexPredictResponse
{
    public IList<VertexPrediction>? Predictions { get; set; }
}

internal sealed class VertexPrediction
{
    public VertexEmbeddings? Embeddings { get; set; }
}

internal sealed class VertexEmbeddings
{
    public float[]? Values { get; set; }

    public VertexEmbedStatistics? Statistics { get; set; }
}

internal sealed class VertexEmbedStatistics
{
    [JsonPropertyName("token_count")]
    public double? TokenCount { get; set; }

    public bool? Truncated { get; set; }
}

// vbatch: Vertex AI batch prediction jobs and the Cloud Storage JSON API they read and write
// (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs,
// https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage,
// https://cloud.google.com/storage/docs/json_api/v1/objects).

/// <summary>A <c>BatchPredictionJob</c>, as created and as read back.</summary>
internal sealed class VertexBatchJob
{
    /// <summary><c>projects/{project}/locations/{location}/batchPredictionJobs/{id}</c> (output only).</summary>
    public string? Name { get; set; }

    public string? DisplayName { get; set; }

    /// <summary><c>publishers/google/models/{model}</c>.</summary>
    public string? Model { get; set; }

    public VertexBatchInputConfig? InputConfig { get; set; }

    public VertexBatchOutputConfig? OutputConfig { get; set; }

    /// <summary>Labels of the job; the gateway keeps its line count there (<c>bifrost_lines</c>).</summary>
    public IDictionary<string, string>? Labels { get; set; }

    /// <summary><c>JOB_STATE_QUEUED</c>, <c>_PENDING</c>, <c>_RUNNING</c>, <c>_SUCCEEDED</c>, <c>_PARTIALLY_SUCCEEDED</c>, <c>_FAILED</c>, <c>_CANCELLING</c>, <c>_CANCELLED</c>, <c>_PAUSED</c>, <c>_EXPIRED</c>, <c>_UPDATING</c>.</summary>
    public string? State { get; set; }

    /// <summary>A <c>google.rpc.Status</c> when the job failed.</summary>
    public VertexRpcStatus? Error { get; set; }

    public VertexBatchOutputInfo? OutputInfo { get; set; }

    public VertexCompletionStats? CompletionStats { get; set; }

    public string? CreateTime { get; set; }

    public string? EndTime { get; set; }
}

internal sealed class VertexBatchInputConfig
{
    /// <summary><c>jsonl</c>.</summary>
    public string? InstancesFormat { get; set; }

    public VertexGcsSource? GcsSource { get; set; }
}

internal sealed class VertexGcsSource
{
    public IList<string> Uris { get; set; } = [];
}

internal sealed class VertexBatchOutputConfig
{
    /// <summary><c>jsonl</c>.</summary>
    public string? PredictionsFormat { get; set; }

    public VertexGcsDestination? GcsDestination { get; set; }
}

internal sealed class VertexGcsDestination
{
    public string? OutputUriPrefix { get; set; }
}

internal sealed class VertexBatchOutputInfo
{
    /// <summary>The job's own directory under the output prefix, e.g. <c>gs://bucket/out/prediction-model-2026-12-06T10:00:00.000000Z</c>.</summary>
    public string? GcsOutputDirectory { get; set; }
}

/// <summary>Counts (int64: strings in protobuf JSON, numbers accepted too).</summary>
internal sealed class VertexCompletionStats
{
    [JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)]
    public long? SuccessfulCount { get; set; }

    [JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)]
    public long? FailedCount { get; set; }

    [JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)]
    public long? IncompleteCount { get; set; }
}

/// <summary>A <c>google.rpc.Status</c>: <c>code</c> is the gRPC code.</summary>
internal sealed class VertexRpcStatus
{
    public int? Code { get; set; }

    public string? Message { get; set; }

    public string? Status { get; set; }
}

/// <summary>A Cloud Storage object resource (the fields the gateway reads).</summary>
internal sealed class GcsObject
{
    public string? Name { get; set; }

    public string? Bucket { get; set; }
}

/// <summary>A page of <c>objects.list</c>: <c>{"items": [...], "nextPageToken"}</c>.</summary>
internal sealed class GcsObjectList
{
    public IList<GcsObject>? Items { get; set; }

    public string? NextPageToken { get; set; }
}

/// <summary>
/// A page of Model Garden's <c>GET v1beta1/publishers/{publisher}/models</c>: <c>{"publisherModels": [...], "nextPageToken"}</c>
/// (https://cloud.google.com/vertex-ai/docs/reference/rest/v1beta1/publishers.models/list).
/// </summary>
internal sealed class VertexPublisherModelList
{
    public IList<VertexPublisherModel>? PublisherModels { get; set; }

    public string? NextPageToken { get; set; }
}

/// <summary>A PublisherModel: <c>name</c> (<c>publishers/{publisher}/models/{model}</c>), <c>versionId</c>, <c>launchStage</c>.</summary>
internal sealed class VertexPublisherModel
{
    public string? Name { get; set; }

    public string? VersionId { get; set; }

    public string? LaunchStage { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(VertexPredictRequest))]
[JsonSerializable(typeof(VertexPredictResponse))]
[JsonSerializable(typeof(VertexBatchJob))]
[JsonSerializable(typeof(GcsObject))]
[JsonSerializable(typeof(GcsObjectList))]
[JsonSerializable(typeof(VertexRpcStatus))]
[JsonSerializable(typeof(VertexPublisherModelList))]
[JsonSerializable(typeof(string))]
internal sealed partial class VertexJsonContext : JsonSerializerContext
{
    /// <summary>The context the adapter uses: generated metadata with the relaxed encoder the gateway writes with.</summary>
    public static VertexJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
