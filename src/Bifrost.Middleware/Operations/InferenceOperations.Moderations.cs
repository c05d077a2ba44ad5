using Bifrost.Middleware.Gateway;

namespace Bifrost.Middleware.Operations;

/// <summary>Moderations (issue 17, J).</summary>
internal static partial class InferenceOperations
{
    public static readonly InferenceOperation<ModerationRequest, ModerationResponse, ModerationResponse> Moderations = new()
    {
        Name = "moderation",
        MetricName = "moderations",
        Summary = "moderations",
        Paths = ["moderations"],
        BatchLineUrl = "/v1/moderations",
        RequestInfo = BifrostJson.Context.ModerationRequest,
        ResponseInfo = BifrostJson.Context.ModerationResponse,
        Validate = RequestValidator.Validate,
        EstimateInputTokens = static (r, _) => Tokenization.TokenEstimate.Text(Texts(r)),
        Call = static (call, r, ct) => call.Adapter.ModerationAsync(call.Context, r.ForProvider(call.Target.Model), ct),
        ClientCall = static (client, r, ct) => client.ModerationAsync(r, ct),
        Pending = static (job, _, model) => new ModerationResponse
        {
            Id = job.Id,
            Model = model,
            ExtraFields = new BifrostExtraFields { RequestType = "moderation", ModelRequested = model },
        },
    };

    /// <summary>The texts of a moderations input (validated), for the input-token estimate.</summary>
    private static TextInput Texts(ModerationRequest request)
    {
        var items = ModerationInput.Read(request.Input);
        var texts = new string[items.Count];
        for (var i = 0; i < texts.Length; i++)
        {
            texts[i] = items[i].Text;
        }

        return TextInput.FromStrings(texts);
    }
}
