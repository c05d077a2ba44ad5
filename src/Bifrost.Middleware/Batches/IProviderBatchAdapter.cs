namespace Bifrost.Middleware.Batches;

/// <summary>
/// Optional capability of a provider adapter: the provider's own batch API (often half the price). When a batch's
/// lines all go to one provider whose options set <see cref="ProviderOptions.NativeBatches"/> and whose adapter
/// implements this interface, the gateway runs the batch there and copies the results back into its file store;
/// the client sees the same batch object either way.
/// </summary>
public interface IProviderBatchAdapter
{
    /// <summary>Uploads the input (OpenAI batch JSONL, models already bare provider names) and creates the provider's batch.</summary>
    /// <param name="context">The provider (no model).</param>
    /// <param name="input">The JSONL input.</param>
    /// <param name="request">Endpoint, completion window and metadata of the batch.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The provider's batch (its own id, status and counts).</returns>
    Task<BatchObject> CreateBatchAsync(ProviderContext context, Stream input, ProviderBatchRequest request, CancellationToken cancellationToken);

    /// <summary>Reads the provider's batch.</summary>
    /// <param name="context">The provider.</param>
    /// <param name="batchId">The provider's batch id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<BatchObject> GetBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken);

    /// <summary>Asks the provider to cancel its batch.</summary>
    /// <param name="context">The provider.</param>
    /// <param name="batchId">The provider's batch id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<BatchObject> CancelBatchAsync(ProviderContext context, string batchId, CancellationToken cancellationToken);

    /// <summary>Opens one of the provider's files (a batch output or error file). The caller disposes the stream.</summary>
    /// <param name="context">The provider.</param>
    /// <param name="fileId">The provider's file id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<Stream> OpenFileAsync(ProviderContext context, string fileId, CancellationToken cancellationToken);
}

/// <summary>What a native batch is created with.</summary>
public sealed class ProviderBatchRequest
{
    /// <summary>The endpoint, e.g. <c>/v1/chat/completions</c>.</summary>
    public required string Endpoint { get; init; }

    /// <summary>The completion window, <c>24h</c>.</summary>
    public required string CompletionWindow { get; init; }

    /// <summary>The caller's metadata.</summary>
    public IDictionary<string, string>? Metadata { get; init; }
}
