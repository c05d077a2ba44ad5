using Bifrost.Middleware.Gateway;

namespace Bifrost.Middleware.Operations;

/// <summary>Image generation (issue 17, J).</summary>
internal static partial class InferenceOperations
{
    public static readonly InferenceOperation<ImageRequest, ImageResponse, ImageResponse> ImageGeneration = new()
    {
        Name = "image_generation",
        MetricName = "images",
        Summary = "image generation",
        Paths = ["images/generations"],
        RequestInfo = BifrostJson.Context.ImageRequest,
        ResponseInfo = BifrostJson.Context.ImageResponse,
        Validate = RequestValidator.Validate,
        EstimateInputTokens = static (r, _) => Tokenization.TokenEstimate.Text(r.Prompt is { } prompt ? TextInput.FromString(prompt) : null),
        Call = static (call, r, ct) => call.Adapter.ImageGenerationAsync(call.Context, r.ForProvider(call.Target.Model), ct),
        Complete = static (_, response, target) =>
        {
            response.Model ??= target.Model; // OpenAI's answer names no model; Bifrost's does
            return response;
        },
        Pending = static (job, _, model) => new ImageResponse
        {
            Id = job.Id,
            Created = job.CreatedAt.ToUnixTimeSeconds(),
            Model = model,
            ExtraFields = new BifrostExtraFields { RequestType = "image_generation", ModelRequested = model },
        },
    };
}
