using Bifrost.Middleware.Gateway;

namespace Bifrost.Middleware.Operations;

/// <summary>Rerank (issue 17, J).</summary>
internal static partial class InferenceOperations
{
    public static readonly InferenceOperation<RerankRequest, RerankResponse, RerankResponse> Rerank = new()
    {
        Name = "rerank",
        Summary = "rerank",
        Paths = ["rerank"],
        RequestInfo = BifrostJson.Context.RerankRequest,
        ResponseInfo = BifrostJson.Context.RerankResponse,
        Validate = RequestValidator.Validate,
        EstimateInputTokens = static (r, _) => Tokenization.TokenEstimate.Text(TextInput.FromStrings([r.Query ?? string.Empty, .. RerankInput.Read(r.Documents)])),
        Call = static (call, r, ct) => call.Adapter.RerankAsync(call.Context, r.ForProvider(call.Target.Model), ct),
        ClientCall = static (client, r, ct) => client.RerankAsync(r, ct),
        Complete = static (_, response, target) =>
        {
            response.Model ??= target.Model;
            return response;
        },
        Pending = static (job, _, model) => new RerankResponse
        {
            Id = job.Id,
            Model = model,
            ExtraFields = new BifrostExtraFields { RequestType = "rerank", ModelRequested = model },
        },
    };
}
