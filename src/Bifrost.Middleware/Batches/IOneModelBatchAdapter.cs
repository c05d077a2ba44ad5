namespace Bifrost.Middleware.Batches;

/// <summary>
/// Marks an <see cref="IProviderBatchAdapter"/> whose provider runs one model per batch (Gemini: the model is in the batch's
/// URL). A batch whose lines name several of the provider's models is not sent there: it runs line by line through the
/// gateway (<see cref="NativeBatchRunner.ChooseProvider"/>).
/// </summary>
internal interface IOneModelBatchAdapter
{
    // vbatch: a provider may run some of its models natively and leave others to the gateway (Vertex: Gemini, not Claude)

    /// <summary>Whether a batch of <paramref name="model"/> (the bare model) runs on the provider's batch API; otherwise line by line through the gateway. Default: every model.</summary>
    bool RunsNatively(ProviderOptions options, string model) => true;
}

// gaps: native batches of other endpoints than chat completions (Cohere's embed jobs run /v1/embeddings lines).

/// <summary>
/// Names the endpoints an <see cref="IProviderBatchAdapter"/> runs natively. Without it, an adapter runs native batches of
/// <c>/v1/chat/completions</c> only; a batch of another endpoint runs line by line through the gateway.
/// </summary>
internal interface INativeBatchEndpoints
{
    /// <summary>Whether batches of <paramref name="endpoint"/> (e.g. <c>/v1/embeddings</c>) run on the provider's batch API.</summary>
    bool RunsNativeBatchesOf(string endpoint);
}
