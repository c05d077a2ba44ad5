namespace Bifrost.Middleware.Operations;

/// <summary>
/// One operation of the gateway, described once: its name (the <c>request_type</c> in <c>extra_fields</c> and the
/// plugins' <see cref="BifrostPluginContext.RequestType"/>), its metric name and its HTTP routes. Everything else is derived
/// from the registered descriptors (<see cref="OperationRegistry"/>): <c>MapBifrost</c>'s routes, the 404/405 table, the
/// async job handlers and the batch line dispatch. Inference operations (<see cref="InferenceOperation{TRequest, TResponse, TChunk}"/>)
/// also run through the gateway pipeline; the others (files, batches, models, token counting) only describe their routes.
/// </summary>
internal abstract class BifrostOperation
{
    /// <summary>The request type: <c>chat_completion</c>, <c>embedding</c>, <c>file_upload</c>, ...</summary>
    public required string Name { get; init; }

    /// <summary>The <c>gen_ai.operation.name</c> of its metrics (default: <see cref="Name"/>).</summary>
    public string? MetricName { get; init; }

    /// <summary>A short human description, for route display names and OpenAPI summaries.</summary>
    public required string Summary { get; init; }

    /// <summary>The OpenAPI tag of its routes (the area: <c>Bifrost inference</c>, <c>Bifrost files</c>, ...).</summary>
    public string Tag { get; init; } = "Bifrost inference";

    /// <summary>The routes relative to the <c>MapBifrost</c> prefix and version (<c>chat/completions</c>, <c>files/{file_id}</c>).</summary>
    public abstract IReadOnlyList<OperationRoute> Routes { get; }

    /// <summary>The async job kind this operation runs, or null when it has no async jobs.</summary>
    public virtual string? JobKind => null;

    /// <summary>The <c>url</c> of batch lines this operation serves (<c>/v1/chat/completions</c>), or null.</summary>
    public virtual string? BatchUrl => null;

    /// <summary>The handler of this operation's async jobs (null when it has none).</summary>
    public virtual IJobHandler? CreateJobHandler() => null;

    /// <summary>Runs one batch line of this operation through the gateway (only when <see cref="BatchUrl"/> is set).</summary>
    /// <returns>The response's id (the line's <c>request_id</c>) and a writer of its JSON body.</returns>
    public virtual Task<BatchLineAnswer> RunBatchLineAsync(IServiceProvider services, System.Text.Json.JsonElement body, string? defaultModel, BatchLineId line, CancellationToken cancellationToken) =>
        throw new NotSupportedException($"Operation '{Name}' has no batch lines.");

    internal string Metric => MetricName ?? Name;

    // Azure OpenAI-compatible inbound (MapBifrostAzure).

    /// <summary>
    /// The routes of <paramref name="path"/> (one of this operation's, relative like <see cref="Routes"/>) with the request's
    /// model taken from the route instead of the body (Azure's <c>deployments/{deployment}/...</c>): the same handlers, run
    /// after <paramref name="model"/> sets the model. Empty when the operation does not serve <paramref name="path"/> with a
    /// JSON body it reads itself (multipart uploads, routes of their own).
    /// </summary>
    public virtual IReadOnlyList<OperationRoute> RoutesWithModelFrom(string path, Func<HttpContext, string> model) => [];
}

/// <summary>Which batch line runs: the batch's id and the line's <c>custom_id</c> (for the usage mark and the request log).</summary>
internal readonly record struct BatchLineId(string BatchId, string CustomId);

/// <summary>What one batch line answered: the response id and how to write its body.</summary>
internal readonly record struct BatchLineAnswer(string? RequestId, Action<System.Text.Json.Utf8JsonWriter> WriteBody);

/// <summary>What a route's body is, for its size limit and OpenAPI metadata.</summary>
internal enum RouteBody
{
    /// <summary>No body (GET, DELETE).</summary>
    None,

    /// <summary>A JSON body bounded by <c>MaxRequestBodySize</c>.</summary>
    Json,

    /// <summary>A multipart upload bounded by <c>Files:MaxUploadBytes</c>.</summary>
    Upload,
}

/// <summary>One HTTP route of an operation.</summary>
/// <param name="Method">GET, POST or DELETE.</param>
/// <param name="Path">The path relative to the prefix and version, e.g. <c>files/{file_id}</c>.</param>
/// <param name="Handler">The delegate (mapped through the safety net).</param>
/// <param name="DisplayName">The endpoint's display name (without the version suffix).</param>
internal sealed record OperationRoute(string Method, string Path, RequestDelegate Handler, string DisplayName)
{
    /// <summary>The body the route reads.</summary>
    public RouteBody Body { get; init; }

    /// <summary>
    /// Whether the route's method is announced in a 405's <c>Allow</c> header (false for routes that only serve a special
    /// case, such as the <c>GET chat/completions</c> that only answers <c>x-bf-async-id</c> polls).
    /// </summary>
    public bool Advertised { get; init; } = true;

    /// <summary>The JSON request body type, for OpenAPI (null: none or multipart).</summary>
    public Type? RequestBodyType { get; init; }

    /// <summary>The success response type, for OpenAPI (null: none documented).</summary>
    public Type? ResponseType { get; init; }

    /// <summary>The success status (200, or 202 for the async envelope's submit).</summary>
    public int SuccessStatus { get; init; } = StatusCodes.Status200OK;

    /// <summary>The response content types (JSON, plus <c>text/event-stream</c> for streamable routes, <c>application/octet-stream</c> for file content).</summary>
    public string[] ContentTypes { get; init; } = ["application/json"];

    /// <summary>Another success status with the same type, for an answer still pending (202 while an async job runs), for OpenAPI.</summary>
    public int? PendingStatus { get; init; }

    /// <summary>
    /// The error statuses (Bifrost error shape) the route answers besides those its shape implies (500 always; 400 and 413
    /// with a body; 404 with an id in the path), for OpenAPI: 429 where admission control or a provider's rate limit
    /// applies, 502/504 for provider-routed calls, 409 for state conflicts, ...
    /// </summary>
    public IReadOnlyList<int> ErrorStatuses { get; init; } = [];

    /// <summary>The OpenAPI summary (default: the operation's <see cref="BifrostOperation.Summary"/>).</summary>
    public string? Summary { get; init; }

    /// <summary>The OpenAPI description: what the route does beyond its summary (async headers, streaming), or null.</summary>
    public string? Description { get; init; }
}

/// <summary>An operation that only describes routes (files, batches, models, token counting): its handlers do the work.</summary>
internal sealed class EndpointOperation : BifrostOperation
{
    public required IReadOnlyList<OperationRoute> RouteList { get; init; }

    public override IReadOnlyList<OperationRoute> Routes => RouteList;
}
