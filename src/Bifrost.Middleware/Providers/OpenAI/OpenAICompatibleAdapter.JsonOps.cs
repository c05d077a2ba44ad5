namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>Moderations and image generation upstream (issue 17, J): the request and answer pass through as OpenAI's shape.</summary>
internal sealed partial class OpenAICompatibleAdapter
{
    public Task<ModerationResponse> ModerationAsync(ProviderContext context, ModerationRequest request, CancellationToken cancellationToken) =>
        _azure
            ? throw ProviderErrors.Unsupported(context, "moderations") // Azure OpenAI documents no moderations route (it filters content on every call)
            : PostAsync(context, "moderations", request, BifrostJson.Context.ModerationRequest, BifrostJson.Context.ModerationResponse, cancellationToken);

    public Task<ImageResponse> ImageGenerationAsync(ProviderContext context, ImageGenerationRequest request, CancellationToken cancellationToken) =>
        PostAsync(context, "images/generations", request, BifrostJson.Context.ImageGenerationRequest, BifrostJson.Context.ImageResponse, cancellationToken);
}
