using System.Text.Json;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Jobs;
using Bifrost.Middleware.Responses;
using Bifrost.Middleware.Serialization;
using Microsoft.AspNetCore.Http;

namespace Bifrost.Middleware.Endpoints;

/// <summary>The inference routes besides chat: embeddings, legacy completions, the Responses API, input-token counting.</summary>
internal static class InferenceRoutes
{
    public const string ChatKind = JobKinds.ChatCompletion;
    public const string EmbeddingKind = "embedding";
    public const string TextCompletionKind = "text_completion";
    public const string ResponsesKind = "responses";

    public static readonly InferenceRoute<ChatCompletionRequest, ChatCompletionResponse> Chat = new()
    {
        Kind = ChatKind,
        RequestType = BifrostGateway.ChatRequestType,
        RequestInfo = BifrostJson.Context.ChatCompletionRequest,
        ResponseInfo = BifrostJson.Context.ChatCompletionResponse,
        Validate = static (registry, request) => ChatRequestPlanner.Plan(registry, request, BifrostGateway.ChatRequestType),
        Run = static (gateway, request, cancellationToken) => gateway.ChatCompletionAsync(request, cancellationToken),
        IsStream = static request => request.Stream == true,
        WriteStream = static (context, gateway, request, cancellationToken) =>
            Sse.WriteDataStreamAsync(context, gateway.ChatCompletionStreamAsync(request, cancellationToken), BifrostJson.Context.ChatCompletionChunk, cancellationToken),
        Pending = static (job, request) => new ChatCompletionResponse
        {
            Id = job.Id,
            Created = job.CreatedAt.ToUnixTimeSeconds(),
            Model = request?.Model,
            Choices = [],
            ExtraFields = new BifrostExtraFields { RequestType = BifrostGateway.ChatRequestType, ModelRequested = request?.Model },
        },
    };

    public static readonly InferenceRoute<EmbeddingRequest, EmbeddingResponse> Embeddings = new()
    {
        Kind = EmbeddingKind,
        RequestType = BifrostGateway.EmbeddingRequestType,
        RequestInfo = BifrostJson.Context.EmbeddingRequest,
        ResponseInfo = BifrostJson.Context.EmbeddingResponse,
        Validate = static (registry, request) => ChatRequestPlanner.Plan(registry, request, BifrostGateway.EmbeddingRequestType),
        Run = static (gateway, request, cancellationToken) => gateway.EmbeddingsAsync(request, cancellationToken),
        Pending = static (job, request) => new EmbeddingResponse
        {
            Model = request?.Model,
            ExtraFields = new BifrostExtraFields { RequestType = BifrostGateway.EmbeddingRequestType, ModelRequested = request?.Model },
            AdditionalProperties = new Dictionary<string, JsonElement> { ["id"] = JsonSerializer.SerializeToElement(job.Id, BifrostJson.Context.String) },
        },
    };

    public static readonly InferenceRoute<TextCompletionRequest, TextCompletionResponse> Completions = new()
    {
        Kind = TextCompletionKind,
        RequestType = BifrostGateway.TextRequestType,
        RequestInfo = BifrostJson.Context.TextCompletionRequest,
        ResponseInfo = BifrostJson.Context.TextCompletionResponse,
        Validate = static (registry, request) => ChatRequestPlanner.Plan(registry, request, BifrostGateway.TextRequestType),
        Run = static (gateway, request, cancellationToken) => gateway.TextCompletionAsync(request, cancellationToken),
        IsStream = static request => request.Stream == true,
        WriteStream = static (context, gateway, request, cancellationToken) =>
            Sse.WriteDataStreamAsync(context, gateway.TextCompletionStreamAsync(request, cancellationToken), BifrostJson.Context.TextCompletionResponse, cancellationToken),
        Pending = static (job, request) => new TextCompletionResponse
        {
            Id = job.Id,
            Created = job.CreatedAt.ToUnixTimeSeconds(),
            Model = request?.Model,
            ExtraFields = new BifrostExtraFields { RequestType = BifrostGateway.TextRequestType, ModelRequested = request?.Model },
        },
    };

    public static readonly InferenceRoute<ResponsesRequest, ResponsesResponse> Responses = new()
    {
        Kind = ResponsesKind,
        RequestType = BifrostGateway.ResponsesRequestType,
        RequestInfo = BifrostJson.Context.ResponsesRequest,
        ResponseInfo = BifrostJson.Context.ResponsesResponse,
        Validate = static (registry, request) =>
        {
            var target = ChatRequestPlanner.Plan(registry, request, BifrostGateway.ResponsesRequestType)[0];
            if (!target.Provider.Adapter.SupportsNativeResponses(new ProviderContext(target.Provider.Name, target.Provider.Options, target.Model, null)))
            {
                try
                {
                    ResponsesChatConverter.ToChat(request, stream: false); // refuses what chat completions cannot express, before a job is stored
                }
                catch (BifrostException ex)
                {
                    // The same extra_fields as the synchronous call's refusal.
                    ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = BifrostGateway.ResponsesRequestType, Provider = target.Provider.Name, ModelRequested = target.Model };
                    throw;
                }
            }
        },
        Run = static (gateway, request, cancellationToken) => gateway.ResponsesAsync(request, cancellationToken),
        IsStream = static request => request.Stream == true,
        WriteStream = static (context, gateway, request, cancellationToken) =>
            Sse.WriteEventStreamAsync(context, gateway.ResponsesStreamAsync(request, cancellationToken), cancellationToken),
        Pending = static (job, request) => new ResponsesResponse
        {
            Id = job.Id,
            CreatedAt = job.CreatedAt.ToUnixTimeSeconds(),
            Status = job.Status == JobStatus.Processing ? "in_progress" : "queued",
            Model = request?.Model,
            Instructions = request?.Instructions is { } instructions ? new ResponsesInput(instructions) : null,
            ExtraFields = new BifrostExtraFields { RequestType = BifrostGateway.ResponsesRequestType, ModelRequested = request?.Model },
        },
    };

    /// <summary><c>POST responses/input_tokens</c> and Bifrost's <c>POST count_tokens</c>: a Responses-shaped or a chat-shaped (<c>messages</c>) body.</summary>
    public static async Task CountInputTokensAsync(HttpContext context)
    {
        var request = await BifrostResults.ReadJsonAsync(context, BifrostJson.Context.ResponsesRequest, BifrostGateway.CountTokensRequestType).ConfigureAwait(false);
        ChatShapedTokenCount.Normalize(request);
        var gateway = context.RequestServices.GetRequiredService<IBifrostClient>();
        var counted = await gateway.CountInputTokensAsync(request, context.RequestAborted).ConfigureAwait(false);
        await BifrostResults.WriteJsonAsync(context, counted, BifrostJson.Context.InputTokensResponse).ConfigureAwait(false);
    }
}
