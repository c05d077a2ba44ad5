using System.Text.Json;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Jobs;
using Bifrost.Middleware.Serialization;
using Microsoft.AspNetCore.Http;

namespace Bifrost.Middleware.Endpoints;

/// <summary><c>POST chat/completions</c>: JSON, or SSE when <c>stream</c> is true.</summary>
internal static class ChatEndpoints
{
    public static async Task ChatCompletionsAsync(HttpContext context)
    {
        var cancellationToken = context.RequestAborted;
        try
        {
            if (AsyncEndpoints.AsyncId(context) is { } jobId)
            {
                var job = await AsyncEndpoints.FindAsync(context, jobId, JobKinds.ChatCompletion, BifrostGateway.ChatRequestType).ConfigureAwait(false);
                await AsyncEndpoints.WritePollAsync(context, job, pending => WritePendingAsync(context, pending)).ConfigureAwait(false);
                return;
            }

            var request = await BifrostResults.ReadJsonAsync(context, BifrostJson.Context.ChatCompletionRequest, BifrostGateway.ChatRequestType).ConfigureAwait(false);
            if (AsyncEndpoints.IsAsyncRequested(context))
            {
                var job = await SubmitAsync(context, request).ConfigureAwait(false);
                await WritePendingAsync(context, job, request.Model).ConfigureAwait(false);
                return;
            }

            var gateway = context.RequestServices.GetRequiredService<IBifrostClient>();
            if (request.Stream == true)
            {
                await StreamAsync(context, gateway, request, cancellationToken).ConfigureAwait(false);
                return;
            }

            var response = await gateway.ChatCompletionAsync(request, cancellationToken).ConfigureAwait(false);
            await BifrostResults.WriteJsonAsync(context, response, BifrostJson.Context.ChatCompletionResponse).ConfigureAwait(false);
        }
        catch (BifrostException ex) when (!context.Response.HasStarted)
        {
            await BifrostResults.WriteErrorAsync(context, ex).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away; the upstream call was cancelled with it. Nothing to answer.
        }
    }

    /// <summary><c>GET chat/completions</c> with <c>x-bf-async-id</c>: a poll (POST works too); without the header, 405.</summary>
    public static Task PollOnlyAsync(HttpContext context) =>
        AsyncEndpoints.AsyncId(context) is null ? BifrostResults.MethodNotAllowedAsync(context, "POST") : ChatCompletionsAsync(context);

    /// <summary><c>POST v1/async/chat/completions</c>: 202 with the job envelope's first state.</summary>
    public static async Task SubmitEnvelopeAsync(HttpContext context)
    {
        try
        {
            var request = await BifrostResults.ReadJsonAsync(context, BifrostJson.Context.ChatCompletionRequest, BifrostGateway.ChatRequestType).ConfigureAwait(false);
            var job = await SubmitAsync(context, request).ConfigureAwait(false);
            await AsyncEndpoints.WriteAcceptedAsync(context, job).ConfigureAwait(false);
        }
        catch (BifrostException ex) when (!context.Response.HasStarted)
        {
            await BifrostResults.WriteErrorAsync(context, ex).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
    }

    /// <summary><c>GET v1/async/chat/completions/{job_id}</c>: the job envelope.</summary>
    public static async Task GetEnvelopeAsync(HttpContext context)
    {
        try
        {
            var id = context.Request.RouteValues["job_id"] as string ?? string.Empty;
            var job = await AsyncEndpoints.FindAsync(context, id, JobKinds.ChatCompletion, BifrostGateway.ChatRequestType).ConfigureAwait(false);
            await AsyncEndpoints.WriteEnvelopeAsync(context, job).ConfigureAwait(false);
        }
        catch (BifrostException ex) when (!context.Response.HasStarted)
        {
            await BifrostResults.WriteErrorAsync(context, ex).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
    }

    /// <summary>Validates like the synchronous call would (so bad input fails now, not in the job), then stores the job.</summary>
    private static Task<JobRecord> SubmitAsync(HttpContext context, ChatCompletionRequest request)
    {
        if (request.Stream == true)
        {
            var error = BifrostException.Gateway(400, "invalid_request_error", "async_stream_not_supported", "Async inference (x-bf-async) is not compatible with \"stream\": true.", "stream");
            error.Error.ExtraFields = new BifrostExtraFields { RequestType = BifrostGateway.ChatRequestType, ModelRequested = request.Model };
            throw error;
        }

        ChatRequestPlanner.Plan(context.RequestServices.GetRequiredService<ProviderRegistry>(), request, BifrostGateway.ChatRequestType);
        var payload = JsonSerializer.SerializeToUtf8Bytes(request, BifrostJson.Context.ChatCompletionRequest);
        return AsyncEndpoints.SubmitAsync(context, JobKinds.ChatCompletion, payload, BifrostGateway.ChatRequestType);
    }

    /// <summary>The route's own shape with an empty result: a <c>chat.completion</c> whose id is the job id and whose choices are empty.</summary>
    private static Task WritePendingAsync(HttpContext context, JobRecord job, string? model = null)
    {
        model ??= JsonSerializer.Deserialize(job.Payload.Span, BifrostJson.Context.ChatCompletionRequest)?.Model;
        var pending = new ChatCompletionResponse
        {
            Id = job.Id,
            Created = job.CreatedAt.ToUnixTimeSeconds(),
            Model = model,
            Choices = [],
            ExtraFields = new BifrostExtraFields { RequestType = BifrostGateway.ChatRequestType, ModelRequested = model },
        };
        return BifrostResults.WriteJsonAsync(context, pending, BifrostJson.Context.ChatCompletionResponse);
    }

    /// <summary>SSE: until the first chunk, failures (after retries and fallbacks) are ordinary JSON errors with their status; after it, one error event.</summary>
    private static Task StreamAsync(HttpContext context, IBifrostClient gateway, ChatCompletionRequest request, CancellationToken cancellationToken) =>
        Sse.WriteDataStreamAsync(context, gateway.ChatCompletionStreamAsync(request, cancellationToken), BifrostJson.Context.ChatCompletionChunk, cancellationToken);
}
