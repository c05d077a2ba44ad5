namespace Bifrost.Middleware.Operations;

/// <summary>The built-in operations that only describe routes: input-token counting, models, files, batches.</summary>
internal static class EndpointOperations
{
    /// <summary>What a provider-routed call may answer besides its own errors: a rate limit, a provider failure or timeout.</summary>
    internal static readonly int[] Upstream = [429, 502, 504];

    public static readonly EndpointOperation CountTokens = new()
    {
        Name = "count_tokens",
        Summary = "input-token count",
        RouteList =
        [
            Post("responses/input_tokens", InferenceEndpoints.CountInputTokensAsync, "count input tokens", typeof(ResponsesRequest), typeof(InputTokensResponse)) with { ErrorStatuses = Upstream },
            Post("count_tokens", InferenceEndpoints.CountInputTokensAsync, "count tokens", typeof(ResponsesRequest), typeof(InputTokensResponse)) with { ErrorStatuses = Upstream },
        ],
    };

    public static readonly EndpointOperation ListModels = new()
    {
        Name = "list_models",
        Summary = "model list",
        Tag = "Bifrost models",
        RouteList = [Get("models", ModelEndpoints.ListModelsAsync, "models", typeof(ModelList))],
    };

    public static readonly EndpointOperation FileUpload = new()
    {
        Name = "file_upload",
        Summary = "file upload",
        Tag = FilesTag,
        RouteList = [new("POST", "files", FileEndpoints.UploadAsync, "upload file") { Body = RouteBody.Upload, ResponseType = typeof(StoredFile), ErrorStatuses = [429] }],
    };

    public static readonly EndpointOperation FileList = Simple("file_list", "file list", Get("files", FileEndpoints.ListAsync, "list files", typeof(FileListResponse)) with { ErrorStatuses = [400] }, FilesTag);

    public static readonly EndpointOperation FileRetrieve = Simple("file_retrieve", "file", Get("files/{file_id}", FileEndpoints.GetAsync, "get file", typeof(StoredFile)), FilesTag);

    public static readonly EndpointOperation FileContent = Simple(
        "file_content",
        "file content",
        Get("files/{file_id}/content", FileEndpoints.ContentAsync, "file content", null) with { ContentTypes = ["application/octet-stream", "application/jsonl"] },
        FilesTag);

    public static readonly EndpointOperation FileDelete = Simple("file_delete", "file deletion", new("DELETE", "files/{file_id}", FileEndpoints.DeleteAsync, "delete file") { ResponseType = typeof(FileDeletedResponse), ErrorStatuses = [409] }, FilesTag);

    public static readonly EndpointOperation BatchCreate = Simple("batch_create", "batch creation", Post("batches", BatchEndpoints.CreateAsync, "create batch", typeof(Batches.BatchCreateRequest), typeof(BatchObject)) with { ErrorStatuses = [404, 429] }, BatchesTag);

    public static readonly EndpointOperation BatchList = Simple("batch_list", "batch list", Get("batches", BatchEndpoints.ListAsync, "list batches", typeof(Batches.BatchListResponse)) with { ErrorStatuses = [400] }, BatchesTag);

    public static readonly EndpointOperation BatchRetrieve = Simple("batch_retrieve", "batch", Get("batches/{batch_id}", BatchEndpoints.GetAsync, "get batch", typeof(BatchObject)), BatchesTag);

    public static readonly EndpointOperation BatchCancel = Simple("batch_cancel", "batch cancellation", new("POST", "batches/{batch_id}/cancel", BatchEndpoints.CancelAsync, "cancel batch") { ResponseType = typeof(BatchObject), ErrorStatuses = [409] }, BatchesTag);

    public static readonly EndpointOperation BatchResults = Simple(
        "batch_results",
        "batch results",
        Get("batches/{batch_id}/results", BatchEndpoints.ResultsAsync, "batch results", null) with { ContentTypes = ["application/jsonl"] },
        BatchesTag);

    /// <summary>The built-in endpoint operations, in the order their routes are mapped.</summary>
    public static IEnumerable<BifrostOperation> All =>
        [CountTokens, FileUpload, FileList, FileRetrieve, FileContent, FileDelete, BatchCreate, BatchList, BatchRetrieve, BatchCancel, BatchResults, ListModels];

    private const string FilesTag = "Bifrost files";
    private const string BatchesTag = "Bifrost batches";

    private static EndpointOperation Simple(string name, string summary, OperationRoute route, string tag) => new() { Name = name, Summary = summary, Tag = tag, RouteList = [route] };

    private static OperationRoute Post(string path, Microsoft.AspNetCore.Http.RequestDelegate handler, string display, Type? body, Type? response) =>
        new("POST", path, handler, display) { Body = RouteBody.Json, RequestBodyType = body, ResponseType = response };

    private static OperationRoute Get(string path, Microsoft.AspNetCore.Http.RequestDelegate handler, string display, Type? response) =>
        new("GET", path, handler, display) { ResponseType = response };
}
