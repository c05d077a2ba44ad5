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

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(VertexPredictRequest))]
[JsonSerializable(typeof(VertexPredictResponse))]
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
