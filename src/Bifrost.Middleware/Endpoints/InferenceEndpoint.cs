using System.Buffers;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Operations;
using Microsoft.AspNetCore.Http.Features;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// The HTTP routes of one inference operation: the synchronous call, SSE streaming, and async inference through the
/// <c>x-bf-async</c> headers and the <c>v1/async/...</c> job envelope — all in the operation's own shapes.
/// </summary>
/// <param name="operation">The operation.</param>
/// <param name="routeModel">When set, the model comes from the route (Azure's deployment), replacing the body's.</param>
internal sealed class InferenceEndpoint<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, Func<HttpContext, string>? routeModel = null)
    where TRequest : class
    where TResponse : class
    where TChunk : class
{
    /// <summary>The routes of <paramref name="operation"/>: per path, <c>POST path</c> (JSON or SSE, or an async submit),
    /// <c>GET path</c> (an <c>x-bf-async-id</c> poll), and when it runs async <c>POST async/path</c> and <c>GET async/path/{job_id}</c>.</summary>
    public static IReadOnlyList<OperationRoute> Routes(InferenceOperation<TRequest, TResponse, TChunk> operation)
    {
        var endpoint = new InferenceEndpoint<TRequest, TResponse, TChunk>(operation);
        var types = operation.ContentTypes ?? (operation.StreamShape == StreamShape.None ? ["application/json"] : ["application/json", "text/event-stream"]);
        var routes = new List<OperationRoute>();
        foreach (var path in operation.Paths)
        {
            routes.Add(new("POST", path, endpoint.HandleAsync, path)
            {
                Body = operation.RequestBody,
                RequestBodyType = operation.RequestBody == RouteBody.Json ? typeof(TRequest) : operation.UploadForm,
                ResponseType = typeof(TResponse),
                ContentTypes = types,
                ErrorStatuses = operation.Async ? [404, .. EndpointOperations.Upstream] : EndpointOperations.Upstream,
                Description = (operation.Streams ? "With \"stream\": true the answer is server-sent events (text/event-stream). " : string.Empty)
                    + (operation.Async ? $"With the header {AsyncEndpoints.AsyncHeader}: true the call is queued as an async job and answered at once with the empty shape; send the same request with {AsyncEndpoints.AsyncIdHeader} to poll it." : string.Empty),
            });
            if (operation.Async)
            {
                routes.Add(new("GET", path, endpoint.PollOnlyAsync, path + " async poll")
                {
                    Advertised = false,
                    ResponseType = typeof(TResponse),
                    ErrorStatuses = [404, StatusCodes.Status405MethodNotAllowed, .. EndpointOperations.Upstream],
                    Summary = $"Poll an async {operation.Summary} job",
                    Description = $"Needs the header {AsyncEndpoints.AsyncIdHeader} (else 405): the job's result or error as the synchronous call would have answered, or the empty shape while it runs.",
                });
                routes.Add(new("POST", "async/" + path, endpoint.SubmitEnvelopeAsync, "async " + path)
                {
                    Body = RouteBody.Json,
                    RequestBodyType = typeof(TRequest),
                    ResponseType = typeof(AsyncJobEnvelope),
                    SuccessStatus = StatusCodes.Status202Accepted,
                    ErrorStatuses = [StatusCodes.Status429TooManyRequests],
                    Summary = $"Submit an async {operation.Summary} job",
                });
                routes.Add(new("GET", "async/" + path + "/{job_id}", endpoint.GetEnvelopeAsync, "async " + path + " job")
                {
                    ResponseType = typeof(AsyncJobEnvelope),
                    PendingStatus = StatusCodes.Status202Accepted,
                    Summary = $"Get an async {operation.Summary} job",
                    Description = "202 while the job is pending or processing, 200 once it finished (its result or error inside).",
                });
            }
        }

        return routes;
    }

    /// <summary>
    /// The routes of one of the operation's paths with the model from the route (Azure OpenAI-compatible inbound):
    /// <c>POST path</c> (JSON, SSE or an <c>x-bf-async</c> submit) and, when it runs async, <c>GET path</c> (an
    /// <c>x-bf-async-id</c> poll). The <c>async/...</c> envelope stays on the OpenAI-shaped routes.
    /// </summary>
    public static IReadOnlyList<OperationRoute> RoutesWithModelFrom(InferenceOperation<TRequest, TResponse, TChunk> operation, string path, Func<HttpContext, string> model)
    {
        var endpoint = new InferenceEndpoint<TRequest, TResponse, TChunk>(operation, model);
        var routes = new List<OperationRoute>();
        foreach (var route in operation.Routes)
        {
            if (string.Equals(route.Path, path, StringComparison.Ordinal))
            {
                RequestDelegate? handler = route.Method switch
                {
                    "POST" => endpoint.HandleAsync,
                    "GET" => endpoint.PollOnlyAsync,
                    _ => null,
                };
                if (handler is not null)
                {
                    routes.Add(route with { Handler = handler });
                }
            }
        }

        return routes;
    }

    public async Task HandleAsync(HttpContext context)
    {
        if (operation.Async && AsyncEndpoints.AsyncId(context) is { } jobId)
        {
            await using var reader = await AsyncEndpoints.OpenAsync(context, jobId, operation.Name).ConfigureAwait(false);
            await AsyncEndpoints.WritePollAsync(context, reader, pending => BifrostResults.WriteJsonAsync(context, PendingShape(context, pending, ReadPayload(pending)), operation.ResponseInfo)).ConfigureAwait(false);
            return;
        }

        TRequest request;
        RequestBytes? bytes = null;
        if ((typeof(TRequest) == typeof(ChatCompletionRequest) || typeof(TRequest) == typeof(EmbeddingRequest)) && operation.ReadRequest is null)
        {
            (request, bytes) = await BifrostResults.ReadJsonKeepingBytesAsync(context, operation.RequestInfo).ConfigureAwait(false);
        }
        else
        {
            request = await ReadAsync(context).ConfigureAwait(false);
        }

        try
        {
            if (routeModel is not null)
            {
                operation.SetModel(request, routeModel(context));
            }

            if (operation.Async && AsyncEndpoints.IsAsyncRequested(context))
            {
                var job = await SubmitAsync(context, request).ConfigureAwait(false);
                await BifrostResults.WriteJsonAsync(context, PendingShape(context, job, request), operation.ResponseInfo).ConfigureAwait(false);
                return;
            }

            RequestLog.RequestLogCaller.Enter(context); // the caller as the request log records it (flows into the pipeline)
            CacheHeaders.Enter(context); // the x-bf-cache-* headers and the tenant, for the response cache (when it is on)
            if (bytes is not null && request is InferenceRequest inference && OnlyBuiltInCodeSees(context.RequestServices))
            {
                inference.ClientBytes = bytes; // issue 18: an OpenAI-compatible adapter may forward them with its model
            }

            if (operation.Streams && operation.IsStreamRequested?.Invoke(request) == true)
            {
                if (request is ChatCompletionRequest { ClientBytes: not null } chat)
                {
                    chat.RelayChunks = StreamRelay.IsAllowed(context.RequestServices); // issue 18: the provider's chunk bytes relayed
                }

                var chunks = operation.StreamAsync(context.RequestServices, request, context.RequestAborted);
                await (operation.StreamShape switch
                {
                    StreamShape.Events => Sse.WriteEventStreamAsync(context, (IAsyncEnumerable<ResponsesStreamEvent>)chunks, context.RequestAborted),
                    StreamShape.TypedEvents => Sse.WriteTypedEventStreamAsync(context, chunks, operation.ChunkInfo!, operation.EventTypeOf!, context.RequestAborted),
                    _ => Sse.WriteDataStreamAsync(context, chunks, operation.ChunkInfo!, context.RequestAborted),
                }).ConfigureAwait(false);
                return;
            }

            var response = await operation.RunAsync(context.RequestServices, request, context.RequestAborted).ConfigureAwait(false);
            if (operation.BodyOf is { } bodyOf)
            {
                await using (response as IAsyncDisposable)
                {
                    var (body, contentType) = bodyOf(response);
                    await BinaryBody.RelayAsync(context, body, contentType, context.RequestAborted).ConfigureAwait(false);
                }

                return;
            }

            await BifrostResults.WriteJsonAsync(context, response, operation.ResponseInfo).ConfigureAwait(false);
        }
        finally
        {
            bytes?.Release(); // the call is over: no attempt can still read them
        }
    }

    /// <summary>
    /// Whether nothing but the gateway's own code sees a request between this endpoint and the provider adapter, so the
    /// typed request still says what the client's bytes say (only <c>model</c> and <c>fallbacks</c>, which the adapter's splice
    /// rewrites and drops, are changed by the built-in layers): the built-in <see cref="IBifrostClient"/> (a host's decorator
    /// could change the request) and no plugin (a pre-hook may change the request in place, e.g. add a message).
    /// </summary>
    private static bool OnlyBuiltInCodeSees(IServiceProvider services)
    {
        if (services.GetService<IBifrostClient>() is not Gateway.BifrostGateway)
        {
            return false;
        }

        var layers = services.GetRequiredService<GatewayPipeline>().Layers;
        for (var i = 0; i < layers.Count; i++)
        {
            if (string.Equals(layers[i], PluginLayer.Registration.Name, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The request: the operation's own reader (a multipart upload) or its JSON body.</summary>
    private async Task<TRequest> ReadAsync(HttpContext context) =>
        operation.ReadRequest is { } read
            ? await read(context).ConfigureAwait(false)
            : await BifrostResults.ReadJsonAsync(context, operation.RequestInfo).ConfigureAwait(false);

    public async Task SubmitEnvelopeAsync(HttpContext context)
    {
        var request = await ReadAsync(context).ConfigureAwait(false);
        var job = await SubmitAsync(context, request).ConfigureAwait(false);
        await AsyncEndpoints.WriteAcceptedAsync(context, job).ConfigureAwait(false);
    }

    public async Task GetEnvelopeAsync(HttpContext context)
    {
        var id = context.Request.RouteValues["job_id"] as string ?? string.Empty;
        await using var reader = await AsyncEndpoints.OpenAsync(context, id, operation.Name).ConfigureAwait(false);
        await AsyncEndpoints.WriteEnvelopeAsync(context, reader).ConfigureAwait(false);
    }

    public Task PollOnlyAsync(HttpContext context) =>
        AsyncEndpoints.AsyncId(context) is null ? BifrostResults.MethodNotAllowedAsync(context, "POST") : HandleAsync(context);

    private async Task<JobRecord> SubmitAsync(HttpContext context, TRequest request)
    {
        if (operation.IsStreamRequested?.Invoke(request) == true)
        {
            throw BifrostErrors.InvalidRequest("async_stream_not_supported", "Async inference (x-bf-async) is not compatible with \"stream\": true.", "stream");
        }

        operation.CheckSubmit(context.RequestServices.GetRequiredService<ProviderRegistry>(), request);
        if (operation.BeforeSubmit is { } prepare)
        {
            await prepare(request, context.RequestAborted).ConfigureAwait(false);
        }

        return await AsyncEndpoints.SubmitAsync(context, operation.Name, JsonSerializer.SerializeToUtf8Bytes(request, operation.RequestInfo)).ConfigureAwait(false);
    }

    /// <summary>The empty shape of a job still pending or running, reporting the model bare as the finished answer will.</summary>
    private TResponse PendingShape(HttpContext context, JobRecord job, TRequest? request) =>
        operation.Pending(job, request, request is null ? null : context.RequestServices.GetRequiredService<ProviderRegistry>().BareModel(operation.Model(request)));

    private TRequest? ReadPayload(JobRecord job)
    {
        try
        {
            return JsonSerializer.Deserialize(job.Payload.Span, operation.RequestInfo);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>A binary answer relayed to the client as it is read (audio bytes, or a provider's own text or event stream).</summary>
internal static class BinaryBody
{
    private const int BufferSize = 16 * 1024;

    /// <summary>Writes <paramref name="body"/> with <paramref name="contentType"/>, flushing after every read (no buffering on the way).</summary>
    public static async Task RelayAsync(HttpContext context, Stream body, string contentType, CancellationToken cancellationToken)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = contentType;
        if (contentType.StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase))
        {
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
        }

        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            int read;
            while ((read = await body.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                await response.Body.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
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
                if (enumerator.Current is ChatCompletionChunk relayed && relayed.TryTakeProviderJson(out var provider, out var length))
                {
                    WriteRelayed(body, json, relayed, provider, length);
                }
                else
                {
                    json.Reset(body);
                    JsonSerializer.Serialize(json, enumerator.Current, typeInfo);
                    body.Write("\n\n"u8);
                }

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

    /// <summary>
    /// Issue 18: a relayed chat chunk — the provider's JSON object as received, its closing brace replaced by the chunk's
    /// <c>extra_fields</c> as the last member (<see cref="ChatCompletionChunk.HasProviderJson"/>) — and the event's end;
    /// the buffer goes back to the pool.
    /// </summary>
    private static void WriteRelayed(System.IO.Pipelines.PipeWriter body, Utf8JsonWriter json, ChatCompletionChunk chunk, byte[] provider, int length)
    {
        try
        {
            body.Write(provider.AsSpan(0, length - 1));
            if (chunk.ExtraFields is { } extra)
            {
                body.Write(",\"extra_fields\":"u8);
                json.Reset(body);
                JsonSerializer.Serialize(json, extra, BifrostJson.Context.BifrostExtraFields);
            }

            body.Write("}\n\n"u8);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(provider);
        }
    }

    /// <summary>
    /// <c>event: {type}</c> + <c>data: {json}</c> per item (image generation streams), no closing <c>[DONE]</c>. Until the
    /// first item, failures are ordinary JSON errors; after it, one <c>event: error</c> with the Bifrost error ends the stream.
    /// </summary>
    public static async Task WriteTypedEventStreamAsync<T>(HttpContext context, IAsyncEnumerable<T> items, JsonTypeInfo<T> typeInfo, Func<T, string?> typeOf, CancellationToken cancellationToken)
    {
        await using var enumerator = items.GetAsyncEnumerator(cancellationToken);
        var more = await enumerator.MoveNextAsync().ConfigureAwait(false);
        var body = Start(context);
        using var json = new Utf8JsonWriter(body, BifrostJson.WriterOptions);
        try
        {
            while (more)
            {
                if (typeOf(enumerator.Current) is { Length: > 0 } type && !type.AsSpan().ContainsAny('\r', '\n'))
                {
                    body.Write("event: "u8);
                    body.Write(System.Text.Encoding.UTF8.GetBytes(type));
                    body.Write("\n"u8);
                }

                body.Write("data: "u8);
                json.Reset(body);
                JsonSerializer.Serialize(json, enumerator.Current, typeInfo);
                body.Write("\n\n"u8);
                await body.FlushAsync(cancellationToken).ConfigureAwait(false);
                more = await enumerator.MoveNextAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (Failure(context, ex) is { } error)
        {
            body.Write("event: error\ndata: "u8);
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
