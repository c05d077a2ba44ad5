using Bifrost.Middleware.Endpoints;
using Bifrost.Middleware.Files;

namespace Bifrost.Middleware.Operations;

/// <summary>The built-in operations that only describe routes: input-token counting, models, files, batches.</summary>
internal static class EndpointOperations
{
    public static readonly EndpointOperation CountTokens = new()
    {
        Name = "count_tokens",
        Summary = "input-token count",
        RouteList =
        [
            Post("responses/input_tokens", InferenceEndpoints.CountInputTokensAsync, "count input tokens", typeof(ResponsesRequest), typeof(InputTokensResponse)),
            Post("count_tokens", InferenceEndpoints.CountInputTokensAsync, "count tokens", typeof(ResponsesRequest), typeof(InputTokensResponse)),
        ],
    };

    public static readonly EndpointOperation ListModels = new()
    {
        Name = "list_models",
        Summary = "model list",
        RouteList = [Get("models", ModelEndpoints.ListModelsAsync, "models", typeof(ModelList))],
    };

    public static readonly EndpointOperation FileUpload = new()
    {
        Name = "file_upload",
        Summary = "file upload",
        RouteList = [new("POST", "files", FileEndpoints.UploadAsync, "upload file") { Body = RouteBody.Upload, ResponseType = typeof(StoredFile) }],
    };

    public static readonly EndpointOperation FileList = Simple("file_list", "file list", Get("files", FileEndpoints.ListAsync, "list files", typeof(FileListResponse)));

    public static readonly EndpointOperation FileRetrieve = Simple("file_retrieve", "file", Get("files/{file_id}", FileEndpoints.GetAsync, "get file", typeof(StoredFile)));

    public static readonly EndpointOperation FileContent = Simple(
        "file_content",
        "file content",
        Get("files/{file_id}/content", FileEndpoints.ContentAsync, "file content", null) with { ContentTypes = ["application/octet-stream", "application/jsonl"] });

    public static readonly EndpointOperation FileDelete = Simple("file_delete", "file deletion", new("DELETE", "files/{file_id}", FileEndpoints.DeleteAsync, "delete file") { ResponseType = typeof(FileDeletedResponse) });

    public static readonly EndpointOperation BatchCreate = Simple("batch_create", "batch creation", Post("batches", BatchEndpoints.CreateAsync, "create batch", typeof(Batches.BatchCreateRequest), typeof(BatchObject)));

    public static readonly EndpointOperation BatchList = Simple("batch_list", "batch list", Get("batches", BatchEndpoints.ListAsync, "list batches", typeof(Batches.BatchListResponse)));

    public static readonly EndpointOperation BatchRetrieve = Simple("batch_retrieve", "batch", Get("batches/{batch_id}", BatchEndpoints.GetAsync, "get batch", typeof(BatchObject)));

    public static readonly EndpointOperation BatchCancel = Simple("batch_cancel", "batch cancellation", new("POST", "batches/{batch_id}/cancel", BatchEndpoints.CancelAsync, "cancel batch") { ResponseType = typeof(BatchObject) });

    public static readonly EndpointOperation BatchResults = Simple(
        "batch_results",
        "batch results",
        Get("batches/{batch_id}/results", BatchEndpoints.ResultsAsync, "batch results", null) with { ContentTypes = ["application/jsonl"] });

    /// <summary>The built-in endpoint operations, in the order their routes are mapped.</summary>
    public static IEnumerable<BifrostOperation> All =>
        [CountTokens, FileUpload, FileList, FileRetrieve, FileContent, FileDelete, BatchCreate, BatchList, BatchRetrieve, BatchCancel, BatchResults, ListModels];

    private static EndpointOperation Simple(string name, string summary, OperationRoute route) => new() { Name = name, Summary = summary, RouteList = [route] };

    private static OperationRoute Post(string path, Microsoft.AspNetCore.Http.RequestDelegate handler, string display, Type? body, Type? response) =>
        new("POST", path, handler, display) { Body = RouteBody.Json, RequestBodyType = body, ResponseType = response };

    private static OperationRoute Get(string path, Microsoft.AspNetCore.Http.RequestDelegate handler, string display, Type? response) =>
        new("GET", path, handler, display) { ResponseType = response };
}
