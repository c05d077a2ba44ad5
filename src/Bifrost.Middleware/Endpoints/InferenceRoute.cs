using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Jobs;
using Bifrost.Middleware.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// One inference route (embeddings, completions, responses): the synchronous call, SSE streaming, and async inference
/// through the <c>x-bf-async</c> headers and the <c>v1/async/...</c> job envelope — all in the route's own shapes.
/// </summary>
internal sealed class InferenceRoute<TRequest, TResponse>
    where TRequest : class
    where TResponse : class
{
    public required string Kind { get; init; }

    public required string RequestType { get; init; }

    public required JsonTypeInfo<TRequest> RequestInfo { get; init; }

    public required JsonTypeInfo<TResponse> ResponseInfo { get; init; }

    /// <summary>Validates like the synchronous call would (throws 400s).</summary>
    public required Action<ProviderRegistry, TRequest> Validate { get; init; }

    public required Func<IBifrostClient, TRequest, CancellationToken, Task<TResponse>> Run { get; init; }

    /// <summary>Whether the request asks for a stream, and how to write it (null: the route has no streaming).</summary>
    public Func<TRequest, bool>? IsStream { get; init; }

    public Func<HttpContext, IBifrostClient, TRequest, CancellationToken, Task>? WriteStream { get; init; }

    /// <summary>The route's shape with an empty result, for a job still pending or running.</summary>
    public required Func<JobRecord, TRequest?, TResponse> Pending { get; init; }

    public async Task HandleAsync(HttpContext context)
    {
        if (AsyncEndpoints.AsyncId(context) is { } jobId)
        {
            await using var reader = await AsyncEndpoints.OpenAsync(context, jobId, Kind, RequestType).ConfigureAwait(false);
            await AsyncEndpoints.WritePollAsync(context, reader, pending => BifrostResults.WriteJsonAsync(context, Pending(pending, ReadPayload(pending)), ResponseInfo)).ConfigureAwait(false);
            return;
        }

        var request = await BifrostResults.ReadJsonAsync(context, RequestInfo, RequestType).ConfigureAwait(false);
        if (AsyncEndpoints.IsAsyncRequested(context))
        {
            var job = await SubmitAsync(context, request).ConfigureAwait(false);
            await BifrostResults.WriteJsonAsync(context, Pending(job, request), ResponseInfo).ConfigureAwait(false);
            return;
        }

        var gateway = context.RequestServices.GetRequiredService<IBifrostClient>();
        if (IsStream?.Invoke(request) == true)
        {
            await WriteStream!(context, gateway, request, context.RequestAborted).ConfigureAwait(false);
            return;
        }

        var response = await Run(gateway, request, context.RequestAborted).ConfigureAwait(false);
        await BifrostResults.WriteJsonAsync(context, response, ResponseInfo).ConfigureAwait(false);
    }

    public async Task SubmitEnvelopeAsync(HttpContext context)
    {
        var request = await BifrostResults.ReadJsonAsync(context, RequestInfo, RequestType).ConfigureAwait(false);
        var job = await SubmitAsync(context, request).ConfigureAwait(false);
        await AsyncEndpoints.WriteAcceptedAsync(context, job).ConfigureAwait(false);
    }

    public async Task GetEnvelopeAsync(HttpContext context)
    {
        var id = context.Request.RouteValues["job_id"] as string ?? string.Empty;
        await using var reader = await AsyncEndpoints.OpenAsync(context, id, Kind, RequestType).ConfigureAwait(false);
        await AsyncEndpoints.WriteEnvelopeAsync(context, reader).ConfigureAwait(false);
    }

    public Task PollOnlyAsync(HttpContext context) =>
        AsyncEndpoints.AsyncId(context) is null ? BifrostResults.MethodNotAllowedAsync(context, "POST") : HandleAsync(context);

    /// <summary>The job handler that runs this route's async jobs.</summary>
    public IJobHandler CreateJobHandler() => new RouteJobHandler(this);

    private Task<JobRecord> SubmitAsync(HttpContext context, TRequest request)
    {
        if (IsStream?.Invoke(request) == true)
        {
            var error = BifrostException.Gateway(400, "invalid_request_error", "async_stream_not_supported", "Async inference (x-bf-async) is not compatible with \"stream\": true.", "stream");
            error.Error.ExtraFields = new BifrostExtraFields { RequestType = RequestType };
            throw error;
        }

        Validate(context.RequestServices.GetRequiredService<ProviderRegistry>(), request);
        return AsyncEndpoints.SubmitAsync(context, Kind, JsonSerializer.SerializeToUtf8Bytes(request, RequestInfo), RequestType);
    }

    private TRequest? ReadPayload(JobRecord job)
    {
        try
        {
            return JsonSerializer.Deserialize(job.Payload.Span, RequestInfo);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed class RouteJobHandler(InferenceRoute<TRequest, TResponse> route) : IJobHandler
    {
        public string Kind => route.Kind;

        public async Task<JobRunResult> ExecuteAsync(JobExecution execution, CancellationToken cancellationToken)
        {
            var request = JsonSerializer.Deserialize(execution.Job.Payload.Span, route.RequestInfo)
                ?? throw BifrostException.Gateway(400, "invalid_request_error", "invalid_json", "The stored request is empty.");
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, execution.CancellationRequested);
            var gateway = execution.Services.GetRequiredService<IBifrostClient>();
            var response = await route.Run(gateway, request, linked.Token).ConfigureAwait(false);
            return new JobRunResult(new JobOutcome(200, JsonSerializer.SerializeToUtf8Bytes(response, route.ResponseInfo)));
        }
    }
}

/// <summary>Server-sent events in the two shapes OpenAI uses.</summary>
internal static class Sse
{
    /// <summary>
    /// <c>data: {json}</c> per item, then <c>data: [DONE]</c> (chat and text completions). Until the first item,
    /// failures are ordinary JSON errors; after it, one <c>data: {error}</c> event ends the stream.
    /// </summary>
    public static async Task WriteDataStreamAsync<T>(HttpContext context, IAsyncEnumerable<T> items, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        await using var enumerator = items.GetAsyncEnumerator(cancellationToken);
        var more = await enumerator.MoveNextAsync().ConfigureAwait(false);
        var body = Start(context);
        using var json = new Utf8JsonWriter(body, BifrostJson.WriterOptions);
        try
        {
            while (more)
            {
                body.Write("data: "u8);
                json.Reset(body);
                JsonSerializer.Serialize(json, enumerator.Current, typeInfo);
                body.Write("\n\n"u8);
                await body.FlushAsync(cancellationToken).ConfigureAwait(false);
                more = await enumerator.MoveNextAsync().ConfigureAwait(false);
            }

            body.Write("data: [DONE]\n\n"u8);
            await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (Failure(context, ex) is { } error)
        {
            body.Write("data: "u8);
            json.Reset(body);
            JsonSerializer.Serialize(json, error.Error, BifrostJson.Context.BifrostError);
            body.Write("\n\n"u8);
            await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary><c>event: {type}</c> + <c>data: {json}</c> per event (the Responses API); a failure after the start is an <c>error</c> event.</summary>
    public static async Task WriteEventStreamAsync(HttpContext context, IAsyncEnumerable<ResponsesStreamEvent> events, CancellationToken cancellationToken)
    {
        await using var enumerator = events.GetAsyncEnumerator(cancellationToken);
        var more = await enumerator.MoveNextAsync().ConfigureAwait(false);
        var body = Start(context);
        using var json = new Utf8JsonWriter(body, BifrostJson.WriterOptions);
        var sequence = 0;
        try
        {
            while (more)
            {
                Write(body, json, enumerator.Current);
                sequence++;
                await body.FlushAsync(cancellationToken).ConfigureAwait(false);
                more = await enumerator.MoveNextAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (Failure(context, ex) is { } error)
        {
            Write(body, json, Responses.ResponsesChatConverter.ErrorEvent(error.Error, sequence));
            await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// What ends a started stream with an error event: a <see cref="BifrostException"/> as it is, any other exception
    /// (except the client going away) as the safety net's logged 500 <c>internal_error</c>; null lets it propagate.
    /// </summary>
    private static BifrostException? Failure(HttpContext context, Exception exception) => exception switch
    {
        BifrostException bifrost => bifrost,
        OperationCanceledException when context.RequestAborted.IsCancellationRequested => null,
        _ => BifrostResults.Unexpected(context, exception, afterStart: true),
    };

    private static void Write(System.IO.Pipelines.PipeWriter body, Utf8JsonWriter json, ResponsesStreamEvent item)
    {
        body.Write("event: "u8);
        body.Write(System.Text.Encoding.UTF8.GetBytes(item.Type));
        body.Write("\ndata: "u8);
        json.Reset(body);
        item.Data.WriteTo(json);
        json.Flush();
        body.Write("\n\n"u8);
    }

    private static System.IO.Pipelines.PipeWriter Start(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        return response.BodyWriter;
    }
}
