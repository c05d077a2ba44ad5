namespace Bifrost.Middleware.Endpoints;

/// <summary>Handlers of the inference routes that are not a pipeline operation.</summary>
internal static class InferenceEndpoints
{
    /// <summary><c>POST responses/input_tokens</c> and Bifrost's <c>POST count_tokens</c>: a Responses-shaped or a chat-shaped (<c>messages</c>) body.</summary>
    public static async Task CountInputTokensAsync(HttpContext context)
    {
        var request = await BifrostResults.ReadJsonAsync(context, BifrostJson.Context.ResponsesRequest).ConfigureAwait(false);
        ChatShapedTokenCount.Normalize(request);
        var gateway = context.RequestServices.GetRequiredService<IBifrostClient>();
        var counted = await gateway.CountInputTokensAsync(request, context.RequestAborted).ConfigureAwait(false);
        await BifrostResults.WriteJsonAsync(context, counted, BifrostJson.Context.InputTokensResponse).ConfigureAwait(false);
    }
}
