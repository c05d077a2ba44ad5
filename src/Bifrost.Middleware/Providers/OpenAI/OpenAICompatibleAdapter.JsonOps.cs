using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.OpenAI;

/// <summary>Moderations, image generation and rerank upstream (issue 17, J): the request and answer pass through as OpenAI's shape.</summary>
internal sealed partial class OpenAICompatibleAdapter
{
    public Task<ModerationResponse> ModerationAsync(ProviderContext context, ModerationRequest request, CancellationToken cancellationToken) =>
        _azure
            ? throw ProviderErrors.Unsupported(context, "moderations") // Azure OpenAI documents no moderations route (it filters content on every call)
            : PostAsync(context, "moderations", request, BifrostJson.Context.ModerationRequest, BifrostJson.Context.ModerationResponse, cancellationToken);

    public Task<ImageResponse> ImageGenerationAsync(ProviderContext context, ImageRequest request, CancellationToken cancellationToken) =>
        PostAsync(context, "images/generations", request, BifrostJson.Context.ImageRequest, BifrostJson.Context.ImageResponse, cancellationToken);

    /// <summary>A streamed generation (issue 17, img): OpenAI's image streaming events relayed as they arrive (https://platform.openai.com/docs/api-reference/images-streaming).</summary>
    public IAsyncEnumerable<ImageStreamEvent> StreamImageGenerationAsync(ProviderContext context, ImageRequest request, CancellationToken cancellationToken) =>
        StreamAsync(context, "images/generations", request, BifrostJson.Context.ImageRequest, BifrostJson.Context.ImageStreamEvent, cancellationToken);

    /// <summary>Rerank on a server that serves it (vLLM, Jina- or Cohere-compatible): <c>POST {BaseUrl}/rerank</c>, results sorted most relevant first.</summary>
    public async Task<RerankResponse> RerankAsync(ProviderContext context, RerankRequest request, CancellationToken cancellationToken)
    {
        if (_azure)
        {
            throw ProviderErrors.Unsupported(context, "rerank");
        }

        var answer = await PostAsync(context, "rerank", request, BifrostJson.Context.RerankRequest, BifrostJson.Context.RerankResponse, cancellationToken).ConfigureAwait(false);
        var count = Gateway.RerankInput.Read(request.Documents).Count;
        foreach (var result in answer.Results)
        {
            if (result is null || result.Index < 0 || result.Index >= count)
            {
                throw UpstreamHttp.InvalidResponse(context, "a rerank result whose index is not one of the documents");
            }
        }

        Gateway.RerankInput.Sort(answer.Results);
        return answer;
    }
}
