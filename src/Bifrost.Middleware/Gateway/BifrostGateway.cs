using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Diagnostics;
using Bifrost.Middleware.Responses;
using Bifrost.Middleware.Tokenization;
using Microsoft.Extensions.Logging;

namespace Bifrost.Middleware.Gateway;

/// <summary>
/// The gateway core behind <see cref="IBifrostClient"/>: resolves <c>provider/model</c>, tries the primary and
/// then the fallbacks, retries retryable failures with backoff (honouring Retry-After), picks keys, fills
/// <c>extra_fields</c> and records metrics. One attempt loop serves every operation. Knows nothing of HTTP.
/// </summary>
internal sealed class BifrostGateway(ProviderRegistry registry, BifrostMetrics metrics, TokenCounter tokens, TimeProvider time, ILogger<BifrostGateway> logger, IEnumerable<IBifrostPlugin> plugins) : IBifrostClient
{
    private readonly PluginPipeline _plugins = new([.. plugins]);

    internal const string ChatRequestType = "chat_completion";
    internal const string ChatStreamRequestType = "chat_completion_stream";
    internal const string TextRequestType = "text_completion";
    internal const string TextStreamRequestType = "text_completion_stream";
    internal const string EmbeddingRequestType = "embedding";
    internal const string ResponsesRequestType = "responses";
    internal const string ResponsesStreamRequestType = "responses_stream";
    internal const string CountTokensRequestType = "count_tokens";
    internal const string ListModelsRequestType = "list_models";

    public Task<ChatCompletionResponse> ChatCompletionAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default) =>
        _plugins.IsEmpty ? CoreChatCompletionAsync(request, cancellationToken) : _plugins.RunAsync(ChatRequestType, request, CoreChatCompletionAsync, cancellationToken);

    public IAsyncEnumerable<ChatCompletionChunk> ChatCompletionStreamAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default) =>
        _plugins.IsEmpty ? CoreChatCompletionStreamAsync(request, cancellationToken) : _plugins.StreamAsync<ChatCompletionRequest, ChatCompletionChunk>(ChatStreamRequestType, request, CoreChatCompletionStreamAsync, static answer => answer is ChatCompletionResponse whole ? Providers.OpenAI.OpenAICompatibleAdapter.ChunksOf(whole, includeUsage: true) : null, cancellationToken);

    public Task<EmbeddingResponse> EmbeddingsAsync(EmbeddingRequest request, CancellationToken cancellationToken = default) =>
        _plugins.IsEmpty ? CoreEmbeddingsAsync(request, cancellationToken) : _plugins.RunAsync(EmbeddingRequestType, request, CoreEmbeddingsAsync, cancellationToken);

    public Task<TextCompletionResponse> TextCompletionAsync(TextCompletionRequest request, CancellationToken cancellationToken = default) =>
        _plugins.IsEmpty ? CoreTextCompletionAsync(request, cancellationToken) : _plugins.RunAsync(TextRequestType, request, CoreTextCompletionAsync, cancellationToken);

    public IAsyncEnumerable<TextCompletionResponse> TextCompletionStreamAsync(TextCompletionRequest request, CancellationToken cancellationToken = default) =>
        _plugins.IsEmpty ? CoreTextCompletionStreamAsync(request, cancellationToken) : _plugins.StreamAsync<TextCompletionRequest, TextCompletionResponse>(TextStreamRequestType, request, CoreTextCompletionStreamAsync, null, cancellationToken);

    public Task<ResponsesResponse> ResponsesAsync(ResponsesRequest request, CancellationToken cancellationToken = default) =>
        _plugins.IsEmpty ? CoreResponsesAsync(request, cancellationToken) : _plugins.RunAsync(ResponsesRequestType, request, CoreResponsesAsync, cancellationToken);

    public IAsyncEnumerable<ResponsesStreamEvent> ResponsesStreamAsync(ResponsesRequest request, CancellationToken cancellationToken = default) =>
        _plugins.IsEmpty ? CoreResponsesStreamAsync(request, cancellationToken) : _plugins.StreamAsync<ResponsesRequest, ResponsesStreamEvent>(ResponsesStreamRequestType, request, CoreResponsesStreamAsync, null, cancellationToken);

    private async Task<ChatCompletionResponse> CoreChatCompletionAsync(ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, ChatRequestType);
        var (response, target) = await RunAsync(
            plan,
            ChatRequestType,
            "chat",
            request,
            static (target, context, request, cancellationToken) => target.Provider.Adapter.ChatCompletionAsync(context, request.ForProvider(target.Model, stream: false), cancellationToken),
            cancellationToken).ConfigureAwait(false);
        var elapsed = time.GetElapsedTime(start);
        response.ExtraFields = Extra(response.ExtraFields, ChatRequestType, target, elapsed);
        metrics.RecordCompletion("chat", target.Provider.Name, target.Model, elapsed.TotalSeconds, null, response.Usage);
        return response;
    }

    private async IAsyncEnumerable<ChatCompletionChunk> CoreChatCompletionStreamAsync(ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, ChatStreamRequestType);
        var (enumerator, target) = await StartStreamAsync(
            plan,
            ChatStreamRequestType,
            request,
            static (target, context, request, cancellationToken) => target.Provider.Adapter.StreamChatCompletionAsync(context, request.ForProvider(target.Model, stream: true), cancellationToken),
            cancellationToken).ConfigureAwait(false);
        if (enumerator is null)
        {
            yield break;
        }

        var index = 0;
        ChatUsage? usage = null;
        string? errorType = null;
        try
        {
            do
            {
                var chunk = enumerator.Current;
                usage = chunk.Usage ?? usage;
                chunk.ExtraFields = Extra(chunk.ExtraFields, ChatStreamRequestType, target, time.GetElapsedTime(start));
                chunk.ExtraFields.ChunkIndex = index++;
                yield return chunk;
            }
            while (await NextAsync(enumerator, target, ChatStreamRequestType, e => errorType = e, cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            await enumerator.DisposeAsync().ConfigureAwait(false);
            metrics.RecordCompletion("chat", target.Provider.Name, target.Model, time.GetElapsedTime(start).TotalSeconds, errorType, usage);
        }
    }

    private async Task<EmbeddingResponse> CoreEmbeddingsAsync(EmbeddingRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, EmbeddingRequestType);
        var (response, target) = await RunAsync(
            plan,
            EmbeddingRequestType,
            "embeddings",
            request,
            static (target, context, request, cancellationToken) => target.Provider.Adapter.EmbeddingsAsync(context, request.ForProvider(target.Model), cancellationToken),
            cancellationToken).ConfigureAwait(false);

        // The caller gets the encoding it asked for, whatever the provider sent (the Node SDK asks for base64 by default).
        var base64 = request.EncodingFormat == "base64";
        foreach (var item in response.Data)
        {
            try
            {
                item.Embedding = item.Embedding.As(base64);
            }
            catch (FormatException)
            {
                throw Decorate(BifrostException.Provider(502, "api_error", "invalid_provider_response", $"Provider '{target.Provider.Name}' sent an embedding that is not valid base64."), target, EmbeddingRequestType);
            }
        }

        var elapsed = time.GetElapsedTime(start);
        response.ExtraFields = Extra(response.ExtraFields, EmbeddingRequestType, target, elapsed);
        metrics.RecordCompletion("embeddings", target.Provider.Name, target.Model, elapsed.TotalSeconds, null, null);
        return response;
    }

    private async Task<TextCompletionResponse> CoreTextCompletionAsync(TextCompletionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, TextRequestType);
        var (response, target) = await RunAsync(
            plan,
            TextRequestType,
            "text_completion",
            request,
            static (target, context, request, cancellationToken) => target.Provider.Adapter.TextCompletionAsync(context, request.ForProvider(target.Model, stream: false), cancellationToken),
            cancellationToken).ConfigureAwait(false);
        var elapsed = time.GetElapsedTime(start);
        response.ExtraFields = Extra(response.ExtraFields, TextRequestType, target, elapsed);
        metrics.RecordCompletion("text_completion", target.Provider.Name, target.Model, elapsed.TotalSeconds, null, response.Usage);
        return response;
    }

    private async IAsyncEnumerable<TextCompletionResponse> CoreTextCompletionStreamAsync(TextCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, TextStreamRequestType);
        var (enumerator, target) = await StartStreamAsync(
            plan,
            TextStreamRequestType,
            request,
            static (target, context, request, cancellationToken) => target.Provider.Adapter.StreamTextCompletionAsync(context, request.ForProvider(target.Model, stream: true), cancellationToken),
            cancellationToken).ConfigureAwait(false);
        if (enumerator is null)
        {
            yield break;
        }

        var index = 0;
        try
        {
            do
            {
                var chunk = enumerator.Current;
                chunk.ExtraFields = Extra(chunk.ExtraFields, TextStreamRequestType, target, time.GetElapsedTime(start));
                chunk.ExtraFields.ChunkIndex = index++;
                yield return chunk;
            }
            while (await NextAsync(enumerator, target, TextStreamRequestType, null, cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            await enumerator.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<ResponsesResponse> CoreResponsesAsync(ResponsesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, ResponsesRequestType);
        var (response, target) = await RunAsync(
            plan,
            ResponsesRequestType,
            "responses",
            request,
            static async (target, context, request, cancellationToken) =>
            {
                var adapter = target.Provider.Adapter;
                if (adapter.SupportsNativeResponses(context))
                {
                    return await adapter.ResponsesAsync(context, request.ForProvider(target.Model, stream: false), cancellationToken).ConfigureAwait(false);
                }

                var chat = ResponsesChatConverter.ToChat(request, stream: false).ForProvider(target.Model, stream: false);
                var answer = await adapter.ChatCompletionAsync(context, chat, cancellationToken).ConfigureAwait(false);
                return ResponsesChatConverter.FromChat(answer, request);
            },
            cancellationToken).ConfigureAwait(false);
        var elapsed = time.GetElapsedTime(start);
        response.ExtraFields = Extra(response.ExtraFields, ResponsesRequestType, target, elapsed);
        metrics.RecordCompletion("responses", target.Provider.Name, target.Model, elapsed.TotalSeconds, null, null);
        return response;
    }

    private async IAsyncEnumerable<ResponsesStreamEvent> CoreResponsesStreamAsync(ResponsesRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, ResponsesStreamRequestType);
        var (enumerator, target) = await StartStreamAsync(
            plan,
            ResponsesStreamRequestType,
            (Request: request, Time: time),
            static (target, context, state, cancellationToken) =>
            {
                var adapter = target.Provider.Adapter;
                if (adapter.SupportsNativeResponses(context))
                {
                    return adapter.StreamResponsesAsync(context, state.Request.ForProvider(target.Model, stream: true), cancellationToken);
                }

                var chat = ResponsesChatConverter.ToChat(state.Request, stream: true).ForProvider(target.Model, stream: true);
                return ResponsesChatConverter.StreamFromChat(adapter.StreamChatCompletionAsync(context, chat, cancellationToken), state.Request, state.Time, cancellationToken);
            },
            cancellationToken).ConfigureAwait(false);
        if (enumerator is null)
        {
            yield break;
        }

        var index = 0;
        try
        {
            do
            {
                yield return WithExtraFields(enumerator.Current, target, start, index++);
            }
            while (await NextAsync(enumerator, target, ResponsesStreamRequestType, null, cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            await enumerator.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async Task<InputTokensResponse> CountInputTokensAsync(ResponsesRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var start = time.GetTimestamp();
        var plan = ChatRequestPlanner.Plan(registry, request, CountTokensRequestType);
        var target = plan[0];

        // The provider counts when it can (its own tokenizer is the truth); otherwise count locally.
        int? native = null;
        try
        {
            native = await target.Provider.Adapter.CountInputTokensAsync(CreateContext(target, 0), request.ForProvider(target.Model, stream: false), cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex) when (ex.IsRetryable)
        {
            Log.ProviderFailed(logger, target.Provider.Name, ex.StatusCode, ex.Error.Error.Code, ex.Message);
        }

        int count;
        string method;
        if (native is { } value)
        {
            count = value;
            method = "native";
        }
        else
        {
            if (request.PreviousResponseId is not null)
            {
                // The stored conversation is only on the provider: a local count would silently leave it out.
                throw Decorate(BifrostException.Gateway(400, "invalid_request_error", "unsupported_parameter", "'previous_response_id' cannot be counted locally: the stored conversation is only known to a provider that counts natively. Send the whole conversation in 'input'.", "previous_response_id"), target, CountTokensRequestType);
            }

            var chat = ResponsesChatConverter.ToChatMessages(request);
            var tools = request.Tools?.Where(t => t.Type == "function").Select(t => new ChatTool { Type = "function", Function = new ChatFunctionDefinition { Name = t.Name, Description = t.Description, Parameters = t.Parameters } }).ToList();
            count = tokens.CountChat(target.Model, chat, tools).Tokens;
            method = "estimated";
        }

        var extra = Extra(null, CountTokensRequestType, target, time.GetElapsedTime(start));
        extra.CountMethod = method;
        return new InputTokensResponse { InputTokens = count, ExtraFields = extra };
    }

    public async Task<ModelList> ListModelsAsync(CancellationToken cancellationToken = default)
    {
        var start = time.GetTimestamp();
        var providers = registry.Providers.ToArray();
        var tasks = new Task<IReadOnlyList<ModelInfo>>[providers.Length];
        for (var i = 0; i < providers.Length; i++)
        {
            tasks[i] = ListOneAsync(providers[i], cancellationToken);
        }

        var list = new ModelList();
        for (var i = 0; i < providers.Length; i++)
        {
            foreach (var model in await tasks[i].ConfigureAwait(false))
            {
                var prefix = providers[i].Name + "/";
                if (!model.Id.StartsWith(prefix, StringComparison.Ordinal))
                {
                    model.Id = prefix + model.Id;
                }

                model.OwnedBy ??= providers[i].Name;
                list.Data.Add(model);
            }
        }

        list.ExtraFields = new BifrostExtraFields { RequestType = ListModelsRequestType, Latency = (long)time.GetElapsedTime(start).TotalMilliseconds };
        return list;
    }

    private async Task<IReadOnlyList<ModelInfo>> ListOneAsync(ProviderRuntime provider, CancellationToken cancellationToken)
    {
        try
        {
            var context = new ProviderContext(provider.Name, provider.Options, string.Empty, provider.SelectAnyKey(Random.Shared));
            return await provider.Adapter.ListModelsAsync(context, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
        {
            Log.ListModelsFailed(logger, provider.Name, ex);
            return [];
        }
    }

    /// <summary>Tries the plan's targets in order, each with its retries; returns the first success and who served it.</summary>
    private async Task<(TResponse Response, ResolvedModel Target)> RunAsync<TRequest, TResponse>(
        ResolvedModel[] plan,
        string requestType,
        string operation,
        TRequest request,
        Func<ResolvedModel, ProviderContext, TRequest, CancellationToken, Task<TResponse>> call,
        CancellationToken cancellationToken)
        where TResponse : class
    {
        var start = time.GetTimestamp();
        BifrostException? last = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var target = plan[i];
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    var response = await call(target, CreateContext(target, attempt), request, cancellationToken).ConfigureAwait(false)
                        ?? throw BifrostException.Provider(502, "api_error", "empty_response", $"Provider '{target.Provider.Name}' returned no response.");
                    metrics.RecordAttempt(target.Provider.Name, "success");
                    return (response, target);
                }
                catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
                {
                    var error = Normalize(ex, target.Provider.Name);
                    var outcome = await HandleFailureAsync(error, target, attempt, i + 1 < plan.Length ? plan[i + 1] : null, cancellationToken).ConfigureAwait(false);
                    if (outcome == Outcome.Fail)
                    {
                        metrics.RecordCompletion(operation, target.Provider.Name, target.Model, time.GetElapsedTime(start).TotalSeconds, ErrorType(error), null);
                        throw Decorate(error, target, requestType);
                    }

                    last = error;
                    if (outcome == Outcome.NextTarget)
                    {
                        break;
                    }
                }
            }
        }

        throw Decorate(last!, plan[^1], requestType);
    }

    /// <summary>Opens a stream and reads its first item, retrying and falling back; after it, no retry ever happens.</summary>
    private async Task<(IAsyncEnumerator<TChunk>? Enumerator, ResolvedModel Target)> StartStreamAsync<TState, TChunk>(
        ResolvedModel[] plan,
        string requestType,
        TState state,
        Func<ResolvedModel, ProviderContext, TState, CancellationToken, IAsyncEnumerable<TChunk>> open,
        CancellationToken cancellationToken)
    {
        BifrostException? last = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var target = plan[i];
            for (var attempt = 0; ; attempt++)
            {
                IAsyncEnumerator<TChunk>? enumerator = null;
                try
                {
                    enumerator = open(target, CreateContext(target, attempt), state, cancellationToken).GetAsyncEnumerator(cancellationToken);
                    if (await enumerator.MoveNextAsync().ConfigureAwait(false))
                    {
                        metrics.RecordAttempt(target.Provider.Name, "success");
                        return (enumerator, target);
                    }

                    await enumerator.DisposeAsync().ConfigureAwait(false);
                    return (null, target);
                }
                catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
                {
                    if (enumerator is not null)
                    {
                        await enumerator.DisposeAsync().ConfigureAwait(false);
                    }

                    var error = Normalize(ex, target.Provider.Name);
                    var outcome = await HandleFailureAsync(error, target, attempt, i + 1 < plan.Length ? plan[i + 1] : null, cancellationToken).ConfigureAwait(false);
                    if (outcome == Outcome.Fail)
                    {
                        throw Decorate(error, target, requestType);
                    }

                    last = error;
                    if (outcome == Outcome.NextTarget)
                    {
                        break;
                    }
                }
                catch
                {
                    if (enumerator is not null)
                    {
                        await enumerator.DisposeAsync().ConfigureAwait(false);
                    }

                    throw;
                }
            }
        }

        throw Decorate(last!, plan[^1], requestType);
    }

    /// <summary>The next item of a started stream; a failure now is final (it reaches the client as an SSE error event).</summary>
    private async ValueTask<bool> NextAsync<TChunk>(IAsyncEnumerator<TChunk> enumerator, ResolvedModel target, string requestType, Action<string>? onError, CancellationToken cancellationToken)
    {
        try
        {
            return await enumerator.MoveNextAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (!IsCallerCancellation(ex, cancellationToken))
        {
            var error = Normalize(ex, target.Provider.Name);
            onError?.Invoke(ErrorType(error));
            Log.StreamFailedAfterStart(logger, target.Provider.Name, ex);
            throw Decorate(error, target, requestType);
        }
    }

    private enum Outcome
    {
        Retry,
        NextTarget,
        Fail,
    }

    /// <summary>Decides what follows a failed attempt, and waits the backoff when it is a retry.</summary>
    private async ValueTask<Outcome> HandleFailureAsync(BifrostException error, ResolvedModel target, int attempt, ResolvedModel? next, CancellationToken cancellationToken)
    {
        var provider = target.Provider;
        if (!error.IsRetryable)
        {
            metrics.RecordAttempt(provider.Name, "error");
            Log.ProviderFailed(logger, provider.Name, error.StatusCode, error.Error.Error.Code, error.Message);
            return Outcome.Fail;
        }

        var delay = NextDelay(error, attempt, provider.Options);
        if (delay is { } wait)
        {
            metrics.RecordAttempt(provider.Name, "retry");
            Log.Retrying(logger, provider.Name, attempt + 1, error.StatusCode, error.Error.Error.Code, (long)wait.TotalMilliseconds);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
            }

            return Outcome.Retry;
        }

        if (next is { } fallback)
        {
            metrics.RecordAttempt(provider.Name, "fallback");
            Log.FallingBack(logger, provider.Name, error.StatusCode, error.Error.Error.Code, fallback.Provider.Name + "/" + fallback.Model);
            return Outcome.NextTarget;
        }

        metrics.RecordAttempt(provider.Name, "error");
        Log.ProviderFailed(logger, provider.Name, error.StatusCode, error.Error.Error.Code, error.Message);
        return Outcome.Fail;
    }

    /// <summary>Exponential backoff with jitter; the provider's Retry-After wins when it is not longer than <see cref="ProviderOptions.RetryMaxDelay"/>.</summary>
    internal static TimeSpan? NextDelay(BifrostException error, int attempt, ProviderOptions options) => new Resilience.Backoff(options.RetryBaseDelay, options.RetryMaxDelay, options.MaxRetries).NextDelay(attempt, error.RetryAfter);

    /// <summary>Adds <c>extra_fields</c> (with <c>chunk_index</c>) to a Responses stream event, as to every stream chunk.</summary>
    private ResponsesStreamEvent WithExtraFields(ResponsesStreamEvent item, ResolvedModel target, long start, int index)
    {
        if (System.Text.Json.Nodes.JsonNode.Parse(item.Data.GetRawText()) is not System.Text.Json.Nodes.JsonObject node)
        {
            return item;
        }

        var extra = Extra(null, ResponsesStreamRequestType, target, time.GetElapsedTime(start));
        extra.ChunkIndex = index;
        node["extra_fields"] = System.Text.Json.JsonSerializer.SerializeToNode(extra, Serialization.BifrostJson.Context.BifrostExtraFields);
        return new ResponsesStreamEvent(item.Type, System.Text.Json.JsonSerializer.SerializeToElement(node, Serialization.BifrostJson.Context.JsonNode));
    }

    private static BifrostExtraFields Extra(BifrostExtraFields? existing, string requestType, ResolvedModel target, TimeSpan elapsed)
    {
        var extra = existing ?? new BifrostExtraFields();
        extra.RequestType = requestType;
        extra.Provider = target.Provider.Name;
        extra.ModelRequested = target.Model;
        extra.Latency = (long)elapsed.TotalMilliseconds;
        return extra;
    }

    private static string ErrorType(BifrostException error) =>
        error.Error.Error.Code ?? error.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static ProviderContext CreateContext(ResolvedModel target, int attempt) =>
        new(target.Provider.Name, target.Provider.Options, target.Model, target.Provider.SelectKey(target.Model, Random.Shared)) { Attempt = attempt };

    private static bool IsCallerCancellation(Exception ex, CancellationToken cancellationToken) =>
        ex is OperationCanceledException && cancellationToken.IsCancellationRequested;

    /// <summary>Turns anything an adapter threw into a <see cref="BifrostException"/>: timeouts and connection failures are retryable.</summary>
    private BifrostException Normalize(Exception ex, string provider)
    {
        switch (ex)
        {
            case BifrostException bifrost:
                return bifrost;
            case OperationCanceledException or TimeoutException:
                return BifrostException.Provider(504, "api_error", "provider_timeout", $"Provider '{provider}' did not answer in time.");
            case HttpRequestException or SocketException or IOException:
                return BifrostException.Provider(502, "api_error", "provider_unreachable", $"Provider '{provider}' could not be reached: {ex.Message}");
            default:
                Log.AdapterCrashed(logger, provider, ex);
                return new BifrostException(
                    new BifrostError
                    {
                        IsBifrostError = true,
                        StatusCode = 500,
                        Error = new BifrostErrorDetail { Type = "api_error", Code = "provider_adapter_error", Message = $"Provider '{provider}' failed unexpectedly: {ex.Message}" },
                    },
                    ex);
        }
    }

    private static BifrostException Decorate(BifrostException error, ResolvedModel target, string requestType)
    {
        var extra = error.Error.ExtraFields ??= new BifrostExtraFields();
        extra.Provider ??= target.Provider.Name;
        extra.ModelRequested ??= target.Model;
        extra.RequestType ??= requestType;
        return error;
    }
}
