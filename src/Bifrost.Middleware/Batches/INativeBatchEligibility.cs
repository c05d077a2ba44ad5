using Bifrost.Middleware.Gateway;

namespace Bifrost.Middleware.Batches;

/// <summary>
/// An <see cref="IProviderBatchAdapter"/> that runs only some batches natively (Bedrock: Claude models, a minimum number of
/// records, S3 configured and SigV4 signing). A batch it refuses runs line by line through the gateway
/// (<see cref="NativeBatchRunner.ChooseProvider"/>), as for a provider without <see cref="ProviderOptions.NativeBatches"/>.
/// </summary>
internal interface INativeBatchEligibility
{
    /// <summary>Null when the batch can run on the provider's batch API; otherwise why not (the adapter logs it).</summary>
    /// <param name="provider">The provider every line goes to.</param>
    /// <param name="models">The bare model names of the lines.</param>
    /// <param name="lines">How many lines the batch has.</param>
    string? Refuses(ProviderRuntime provider, IReadOnlySet<string> models, int lines);
}
