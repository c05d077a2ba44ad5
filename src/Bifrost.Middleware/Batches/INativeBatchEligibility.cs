using Bifrost.Middleware.Gateway;

namespace Bifrost.Middleware.Batches;

/// <summary>
/// An <see cref="IProviderBatchAdapter"/> that decides which batches its provider's batch API takes: the endpoint (Cohere's
/// embed jobs: embeddings only; Bedrock: the endpoint of the model's family), one model per batch (Gemini, Vertex, Bedrock,
/// Cohere), which models (Bedrock: the families of its batch table), settings (a storage location, signing) and a minimum
/// size (Bedrock); with <see cref="INativeBatchLineEligibility"/>, which lines (Bedrock, Vertex's Claude). A batch it refuses runs
/// line by line through the gateway (<see cref="NativeBatchRunner.ChooseProvider"/>), as for a provider without
/// <see cref="ProviderOptions.NativeBatches"/>. An adapter without it takes every chat-completions batch.
/// </summary>
internal interface INativeBatchEligibility
{
    /// <summary>Null when the batch can run on the provider's batch API; otherwise why not (for the log).</summary>
    /// <param name="batch">The batch: its provider (every line goes to it), endpoint, bare models and line count.</param>
    string? Refuses(NativeBatchCandidate batch);
}

/// <summary>
/// An eligibility that also reads the lines: after <see cref="INativeBatchEligibility.Refuses"/> accepted the batch,
/// <see cref="NativeBatchRunner.ChooseProviderAsync"/> reads the input once and asks about each line's body (Bedrock: a family
/// writes a text conversation exactly, not tools or images). One refused line runs the whole batch through the gateway.
/// </summary>
internal interface INativeBatchLineEligibility : INativeBatchEligibility
{
    /// <summary>Null when the provider's batch API takes this line exactly; otherwise why not (for the log).</summary>
    /// <param name="batch">The batch <see cref="INativeBatchEligibility.Refuses"/> accepted.</param>
    /// <param name="number">The line's 1-based number in the input.</param>
    /// <param name="customId">The line's <c>custom_id</c>.</param>
    /// <param name="body">The line's <c>body</c>.</param>
    string? RefusesLine(NativeBatchCandidate batch, int number, string customId, JsonElement body);
}

/// <summary>A batch <see cref="NativeBatchRunner.ChooseProvider"/> considers for a provider's batch API.</summary>
/// <param name="Provider">The provider every line resolves to.</param>
/// <param name="Endpoint">The batch's endpoint, e.g. <c>/v1/chat/completions</c>.</param>
/// <param name="Models">The bare model names of the lines.</param>
/// <param name="Lines">How many lines the batch has.</param>
internal readonly record struct NativeBatchCandidate(ProviderRuntime Provider, string Endpoint, IReadOnlySet<string> Models, int Lines)
{
    /// <summary>The chat-completions endpoint: the one every native batch API takes unless its adapter says otherwise.</summary>
    public const string ChatEndpoint = "/v1/chat/completions";

    /// <summary>Why a provider whose batch runs one model of <paramref name="endpoint"/> cannot take this batch, or null.</summary>
    public string? RefusesUnlessOneModelOf(string endpoint) =>
        Endpoint != endpoint ? $"its batch API does not run {Endpoint} batches"
        : Models.Count != 1 ? $"the batch names {Models.Count} models and its batch API runs one model per batch"
        : null;

    /// <summary>The batch's one model (after <see cref="RefusesUnlessOneModelOf"/> accepted it).</summary>
    public string Model => Models.First();
}
