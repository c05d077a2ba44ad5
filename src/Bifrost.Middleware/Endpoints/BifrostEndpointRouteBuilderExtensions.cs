using System.Diagnostics.CodeAnalysis;
using Bifrost.Middleware;
using Bifrost.Middleware.Endpoints;
using Bifrost.Middleware.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Bifrost endpoints on the host's routing.</summary>
public static class BifrostEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the OpenAI-compatible endpoints under <paramref name="prefix"/>, each both with and without <c>/v1</c>
    /// (<c>/openai/v1/chat/completions</c> and <c>/openai/chat/completions</c>): <c>POST chat/completions</c>
    /// (JSON or SSE) and <c>GET models</c>. Other paths under the prefix answer 404 in the Bifrost error shape.
    /// </summary>
    /// <param name="endpoints">The route builder (the <c>WebApplication</c>).</param>
    /// <param name="prefix">The route prefix. Default <c>/openai</c>.</param>
    /// <returns>A builder for conventions that apply to every Bifrost endpoint (<c>RequireAuthorization</c>, <c>RequireRateLimiting</c>, ...).</returns>
    /// <exception cref="InvalidOperationException"><c>AddBifrost</c> was not called.</exception>
    public static IEndpointConventionBuilder MapBifrost(this IEndpointRouteBuilder endpoints, [StringSyntax("Route")] string prefix = "/openai")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        if (endpoints.ServiceProvider.GetService<BifrostMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'builder.Services.AddBifrost(...)' before calling 'MapBifrost'.");
        }

        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<BifrostOptions>>().Value;
        var group = endpoints.MapGroup(prefix);
        var bodyLimit = new RequestSizeLimitAttribute(options.MaxRequestBodySize);
        var uploadLimit = new RequestSizeLimitAttribute(options.Files.MaxUploadBytes + (1024 * 1024)); // the file plus multipart framing
        foreach (var version in (ReadOnlySpan<string>)["/v1", string.Empty])
        {
            var suffix = version.Length == 0 ? " (no version)" : $" ({version})";
            MapInference(group, version, "chat/completions", InferenceRoutes.Chat, bodyLimit, suffix);
            MapInference(group, version, "embeddings", InferenceRoutes.Embeddings, bodyLimit, suffix);
            MapInference(group, version, "completions", InferenceRoutes.Completions, bodyLimit, suffix);
            MapInference(group, version, "responses", InferenceRoutes.Responses, bodyLimit, suffix);
            group.MapPost(version + "/responses/input_tokens", Guard("count_tokens", InferenceRoutes.CountInputTokensAsync)).WithMetadata(bodyLimit).WithDisplayName("Bifrost count input tokens" + suffix);
            group.MapPost(version + "/count_tokens", Guard("count_tokens", InferenceRoutes.CountInputTokensAsync)).WithMetadata(bodyLimit).WithDisplayName("Bifrost count tokens" + suffix);
            group.MapPost(version + "/files", Guard(FileEndpoints.UploadRequestType, FileEndpoints.UploadAsync)).WithMetadata(uploadLimit).DisableAntiforgery().WithDisplayName("Bifrost upload file" + suffix);
            group.MapGet(version + "/files", Guard("file_list", FileEndpoints.ListAsync)).WithDisplayName("Bifrost list files" + suffix);
            group.MapGet(version + "/files/{file_id}", Guard("file_retrieve", FileEndpoints.GetAsync)).WithDisplayName("Bifrost get file" + suffix);
            group.MapGet(version + "/files/{file_id}/content", Guard("file_content", FileEndpoints.ContentAsync)).WithDisplayName("Bifrost file content" + suffix);
            group.MapDelete(version + "/files/{file_id}", Guard("file_delete", FileEndpoints.DeleteAsync)).WithDisplayName("Bifrost delete file" + suffix);
            group.MapPost(version + "/batches", Guard("batch_create", BatchEndpoints.CreateAsync)).WithMetadata(bodyLimit).WithDisplayName("Bifrost create batch" + suffix);
            group.MapGet(version + "/batches", Guard("batch_list", BatchEndpoints.ListAsync)).WithDisplayName("Bifrost list batches" + suffix);
            group.MapGet(version + "/batches/{batch_id}", Guard("batch_retrieve", BatchEndpoints.GetAsync)).WithDisplayName("Bifrost get batch" + suffix);
            group.MapPost(version + "/batches/{batch_id}/cancel", Guard("batch_cancel", BatchEndpoints.CancelAsync)).WithDisplayName("Bifrost cancel batch" + suffix);
            group.MapGet(version + "/batches/{batch_id}/results", Guard("batch_results", BatchEndpoints.ResultsAsync)).WithDisplayName("Bifrost batch results" + suffix);
            group.MapGet(version + "/models", Guard("list_models", ModelEndpoints.ListModelsAsync))
                .WithDisplayName($"Bifrost models ({version}{(version.Length == 0 ? "no version" : string.Empty)})");
        }

        group.Map("/{**path}", Guard(null, BifrostResults.UnknownRouteAsync)).WithDisplayName("Bifrost unknown route");
        return group;
    }

    private static void MapInference<TRequest, TResponse>(RouteGroupBuilder group, string version, string path, InferenceRoute<TRequest, TResponse> route, RequestSizeLimitAttribute bodyLimit, string suffix)
        where TRequest : class
        where TResponse : class
    {
        group.MapPost($"{version}/{path}", Guard(route.RequestType, route.HandleAsync)).WithMetadata(bodyLimit).WithDisplayName($"Bifrost {path}{suffix}");
        group.MapGet($"{version}/{path}", Guard(route.RequestType, route.PollOnlyAsync)).WithDisplayName($"Bifrost {path} async poll{suffix}");
        group.MapPost($"{version}/async/{path}", Guard(route.RequestType, route.SubmitEnvelopeAsync)).WithMetadata(bodyLimit).WithDisplayName($"Bifrost async {path}{suffix}");
        group.MapGet($"{version}/async/{path}/{{job_id}}", Guard(route.RequestType, route.GetEnvelopeAsync)).WithDisplayName($"Bifrost async {path} job{suffix}");
    }

    /// <summary>Every Bifrost delegate is mapped through the one safety net (<see cref="BifrostResults.Guard"/>).</summary>
    private static RequestDelegate Guard(string? requestType, RequestDelegate handler) => BifrostResults.Guard(requestType, handler);
}
