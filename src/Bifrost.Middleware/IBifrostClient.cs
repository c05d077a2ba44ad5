namespace Bifrost.Middleware;

/// <summary>
/// The gateway, in process: the same routing, fallbacks, key selection and retries as the HTTP endpoints,
/// without HTTP. Inject it anywhere after <c>AddBifrost</c>. Failures throw <see cref="BifrostException"/>.
/// </summary>
public interface IBifrostClient
{
    /// <summary>Runs a chat completion.</summary>
    /// <param name="request">The request; <c>model</c> is <c>provider/model</c> or a bare model of the default provider.</param>
    /// <param name="cancellationToken">Cancels the call, including the upstream request.</param>
    /// <returns>The completion, with <c>extra_fields</c>.</returns>
    Task<ChatCompletionResponse> ChatCompletionAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default);

    /// <summary>Streams a chat completion. Retries and fallbacks apply until the first chunk arrives, never after.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the stream, including the upstream request.</param>
    /// <returns>The chunks, each with <c>extra_fields</c> and its <c>chunk_index</c>.</returns>
    IAsyncEnumerable<ChatCompletionChunk> ChatCompletionStreamAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default);

    /// <summary>Lists the models of every provider, ids as <c>provider/model</c>.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<ModelList> ListModelsAsync(CancellationToken cancellationToken = default);
}
