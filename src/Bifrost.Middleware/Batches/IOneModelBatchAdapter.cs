namespace Bifrost.Middleware.Batches;

/// <summary>
/// Marks an <see cref="IProviderBatchAdapter"/> whose provider runs one model per batch (Gemini: the model is in the batch's
/// URL). A batch whose lines name several of the provider's models is not sent there: it runs line by line through the
/// gateway (<see cref="NativeBatchRunner.ChooseProvider"/>).
/// </summary>
internal interface IOneModelBatchAdapter
{
}
