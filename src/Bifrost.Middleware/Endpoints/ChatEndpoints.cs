using System.Buffers;
using System.Text.Json;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Bifrost.Middleware.Endpoints;

/// <summary><c>POST chat/completions</c>: JSON, or SSE when <c>stream</c> is true.</summary>
internal static class ChatEndpoints
{
    public static async Task ChatCompletionsAsync(HttpContext context)
    {
        var gateway = context.RequestServices.GetRequiredService<IBifrostClient>();
        var cancellationToken = context.RequestAborted;
        ChatCompletionRequest request;
        try
        {
            request = await BifrostResults.ReadJsonAsync(context, BifrostJson.Context.ChatCompletionRequest, BifrostGateway.ChatRequestType).ConfigureAwait(false);
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

    private static async Task StreamAsync(HttpContext context, IBifrostClient gateway, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        await using var chunks = gateway.ChatCompletionStreamAsync(request, cancellationToken).GetAsyncEnumerator(cancellationToken);

        // Until the first chunk, failures (after retries and fallbacks) are ordinary JSON errors with their status.
        var more = await chunks.MoveNextAsync().ConfigureAwait(false);

        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var body = response.BodyWriter;
        using var json = new Utf8JsonWriter(body, BifrostJson.WriterOptions);
        try
        {
            while (more)
            {
                body.Write("data: "u8);
                json.Reset(body);
                JsonSerializer.Serialize(json, chunks.Current, BifrostJson.Context.ChatCompletionChunk);
                body.Write("\n\n"u8);
                await body.FlushAsync(cancellationToken).ConfigureAwait(false);
                more = await chunks.MoveNextAsync().ConfigureAwait(false);
            }

            body.Write("data: [DONE]\n\n"u8);
            await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex)
        {
            // The stream has begun: the error goes out as one SSE event, then the stream ends.
            body.Write("data: "u8);
            json.Reset(body);
            JsonSerializer.Serialize(json, ex.Error, BifrostJson.Context.BifrostError);
            body.Write("\n\n"u8);
            await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
