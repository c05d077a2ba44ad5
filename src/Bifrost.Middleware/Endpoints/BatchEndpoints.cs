namespace Bifrost.Middleware.Endpoints;

/// <summary>The OpenAI batches API: create, retrieve, list (newest first), cancel. Batches run as jobs.</summary>
internal static class BatchEndpoints
{
    public static Task CreateAsync(HttpContext context) => AnswerAsync(context, async (service, owner, cancellationToken) =>
        await service.CreateAsync(owner, await BifrostResults.ReadJsonAsync(context, BifrostJson.Context.BatchCreateRequest).ConfigureAwait(false), cancellationToken).ConfigureAwait(false));

    public static Task GetAsync(HttpContext context) => AnswerAsync(context, (service, owner, cancellationToken) => service.GetAsync(owner, Id(context), cancellationToken));

    public static Task ListAsync(HttpContext context) => context.Request.Path.Value?.EndsWith('/') == true
        ? MissingIdAsync(context, "batch_retrieve", "batch_id")
        : FileEndpoints.RunAsync(async () =>
    {
        var limit = FileEndpoints.ParseLimit(context.Request.Query["limit"], 20, 100);
        var after = context.Request.Query["after"].ToString();
        var list = await Service(context).ListAsync(Owner(context), limit, after.Length == 0 ? null : after, context.RequestAborted).ConfigureAwait(false);
        foreach (var batch in list.Data)
        {
            batch.ExtraFields!.RequestType = "batch_list";
        }

        await BifrostResults.WriteJsonAsync(context, list, BifrostJson.Context.BatchListResponse).ConfigureAwait(false);
    });

    public static Task CancelAsync(HttpContext context) => AnswerAsync(context, (service, owner, cancellationToken) => service.CancelAsync(owner, Id(context), cancellationToken));

    /// <summary><c>GET batches/{batch_id}/results</c> (Bifrost): the results of an ended batch, streamed.</summary>
    public static Task ResultsAsync(HttpContext context) => FileEndpoints.RunAsync(async () =>
    {
        await Service(context).WriteResultsAsync(
            Owner(context),
            Id(context),
            context.Response.BodyWriter,
            batch =>
            {
                batch.ExtraFields!.RequestType = "batch_results";
                context.Response.StatusCode = StatusCodes.Status200OK;
                context.Response.ContentType = "application/json";
            },
            context.RequestAborted).ConfigureAwait(false);
    });

    /// <summary>A collection route called with an empty id (<c>GET batches/</c>, <c>GET files/</c>): 400 naming the id, as Bifrost answers.</summary>
    internal static Task MissingIdAsync(HttpContext context, string requestType, string param) =>
        BifrostResults.WriteErrorAsync(context, BifrostErrors.InvalidRequest("invalid_request", $"'{param}' is required.", param).WithRequestType(requestType));

    /// <summary>Runs a batch action for the caller and answers its batch object, with the route's request type.</summary>
    private static Task AnswerAsync(HttpContext context, Func<BatchService, string, CancellationToken, Task<BatchObject>> action) => FileEndpoints.RunAsync(async () =>
    {
        var batch = await action(Service(context), Owner(context), context.RequestAborted).ConfigureAwait(false);
        batch.ExtraFields!.RequestType = BifrostResults.RequestType(context);
        await BifrostResults.WriteJsonAsync(context, batch, BifrostJson.Context.BatchObject).ConfigureAwait(false);
    });

    private static BatchService Service(HttpContext context) => context.RequestServices.GetRequiredService<BatchService>();

    private static string Owner(HttpContext context) => Governance.GovernanceCaller.OwnerOf(context);

    private static string Id(HttpContext context) => context.Request.RouteValues["batch_id"] as string ?? string.Empty;
}
