namespace Bifrost.Middleware.Endpoints;

internal static class ModelEndpoints
{
    public static async Task ListModelsAsync(HttpContext context)
    {
        var gateway = context.RequestServices.GetRequiredService<IBifrostClient>();
        var list = await gateway.ListModelsAsync(context.RequestAborted).ConfigureAwait(false);
        await BifrostResults.WriteJsonAsync(context, list, BifrostJson.Context.ModelList).ConfigureAwait(false);
    }
}
