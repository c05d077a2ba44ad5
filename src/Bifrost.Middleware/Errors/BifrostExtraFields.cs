using System.Text.Json;

namespace Bifrost.Middleware;

/// <summary>Bifrost's <c>extra_fields</c>: gateway metadata added to every response, stream chunk and error.</summary>
public sealed class BifrostExtraFields
{
    /// <summary>The kind of request: <c>chat_completion</c>, <c>chat_completion_stream</c>, <c>list_models</c>, ...</summary>
    public string? RequestType { get; set; }

    /// <summary>The provider that served (or failed) the request.</summary>
    public string? Provider { get; set; }

    /// <summary>The model the caller asked for, without the provider prefix.</summary>
    public string? ModelRequested { get; set; }

    /// <summary>The provider's own model id, when it differs from <see cref="ModelRequested"/>.</summary>
    public string? ModelDeployment { get; set; }

    /// <summary>Gateway-measured latency in milliseconds (on stream chunks: since the request started).</summary>
    public long? Latency { get; set; }

    /// <summary>Index of a stream chunk, from 0.</summary>
    public int? ChunkIndex { get; set; }

    /// <summary>For token counts: <c>native</c> (the provider counted) or <c>estimated</c> (counted locally).</summary>
    public string? CountMethod { get; set; }

    /// <summary>The raw provider request, only when asked for.</summary>
    public JsonElement? RawRequest { get; set; }

    /// <summary>The raw provider response, only when asked for.</summary>
    public JsonElement? RawResponse { get; set; }
}
