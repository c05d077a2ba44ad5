using System.ClientModel.Primitives;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Responses;

namespace Bifrost.Middleware.Client;

/// <summary>
/// Async inference on a Bifrost gateway through the OpenAI SDK's clients. The SDK's typed methods cannot send the
/// <c>x-bf-async</c> / <c>x-bf-async-id</c> headers per call, and read the pending answer (an empty result) as if it
/// were final; these extensions send the request through the client's protocol method (its endpoint, credential and
/// pipeline apply), return a <see cref="BifrostAsyncJob{T}"/> with the job id, and read the finished answer with the
/// SDK's own model reader into the typed result.
/// </summary>
public static class BifrostAsyncClientExtensions
{
    /// <summary>Submits a chat completion as a job (<c>x-bf-async: true</c>); the gateway answers at once with its id.</summary>
    /// <param name="client">The SDK's chat client, pointed at the gateway; its model is the request's <c>model</c>.</param>
    /// <param name="messages">The conversation.</param>
    /// <param name="options">The SDK's completion options (streaming is not possible with async).</param>
    /// <param name="asyncOptions">Poll interval, timeout and result TTL; the defaults when <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the submission.</param>
    /// <returns>The job: <see cref="BifrostAsyncJob{T}.WaitForResultAsync"/> polls it to the <see cref="ChatCompletion"/>.</returns>
    public static Task<BifrostAsyncJob<ChatCompletion>> SubmitChatCompletionAsync(
        this ChatClient client,
        IEnumerable<ChatMessage> messages,
        ChatCompletionOptions? options = null,
        BifrostAsyncOptions? asyncOptions = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(messages);
        var body = AsyncRoute.Body(
            writer =>
            {
                writer.WriteString("model", ModelOf(client));
                writer.WritePropertyName("messages");
                writer.WriteStartArray();
                foreach (var message in messages)
                {
                    ((IJsonModel<ChatMessage>)message).Write(writer, ModelReaderWriterOptions.Json);
                }

                writer.WriteEndArray();
            },
            options is null ? null : ModelReaderWriter.Write(options, ModelReaderWriterOptions.Json),
            "model",
            "messages",
            "stream",
            "stream_options");
        return ChatRoute(client).SubmitAsync<ChatCompletion>(body, asyncOptions, cancellationToken);
    }

    /// <summary>Runs a chat completion as a job: submits it and polls until it finishes.</summary>
    /// <param name="client">The SDK's chat client, pointed at the gateway.</param>
    /// <param name="messages">The conversation.</param>
    /// <param name="options">The SDK's completion options.</param>
    /// <param name="asyncOptions">Poll interval, timeout and result TTL.</param>
    /// <param name="cancellationToken">Cancels the submission and the polling (not the job).</param>
    /// <returns>The completion, as the synchronous call would have answered.</returns>
    /// <exception cref="System.ClientModel.ClientResultException">The submission or the job failed, with the gateway's status and error body.</exception>
    /// <exception cref="TimeoutException">The job did not finish within <see cref="BifrostAsyncOptions.Timeout"/>.</exception>
    public static Task<ChatCompletion> CompleteChatInBackgroundAsync(
        this ChatClient client,
        IEnumerable<ChatMessage> messages,
        ChatCompletionOptions? options = null,
        BifrostAsyncOptions? asyncOptions = null,
        CancellationToken cancellationToken = default)
        => AsyncRoute.WaitAsync(client.SubmitChatCompletionAsync(messages, options, asyncOptions, cancellationToken), cancellationToken);

    /// <summary>A handle on a chat completion job submitted earlier (by this process or another), to poll it by id.</summary>
    /// <param name="client">The SDK's chat client, pointed at the gateway, with the submitter's credential (jobs belong to their caller).</param>
    /// <param name="jobId">The job id.</param>
    /// <param name="asyncOptions">Poll interval and timeout.</param>
    /// <returns>The job.</returns>
    public static BifrostAsyncJob<ChatCompletion> GetChatCompletionJob(this ChatClient client, string jobId, BifrostAsyncOptions? asyncOptions = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        return ChatRoute(client).Job<ChatCompletion>(jobId, asyncOptions);
    }

    /// <summary>Submits an embeddings request as a job (<c>x-bf-async: true</c>).</summary>
    /// <param name="client">The SDK's embedding client, pointed at the gateway; its model is the request's <c>model</c>.</param>
    /// <param name="inputs">The texts to embed.</param>
    /// <param name="options">The SDK's options (<c>dimensions</c>, end user id).</param>
    /// <param name="asyncOptions">Poll interval, timeout and result TTL.</param>
    /// <param name="cancellationToken">Cancels the submission.</param>
    /// <returns>The job: <see cref="BifrostAsyncJob{T}.WaitForResultAsync"/> polls it to the <see cref="OpenAIEmbeddingCollection"/>.</returns>
    public static Task<BifrostAsyncJob<OpenAIEmbeddingCollection>> SubmitEmbeddingsAsync(
        this EmbeddingClient client,
        IEnumerable<string> inputs,
        EmbeddingGenerationOptions? options = null,
        BifrostAsyncOptions? asyncOptions = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(inputs);
        var body = AsyncRoute.Body(
            writer =>
            {
                writer.WriteString("model", ModelOf(client));
                writer.WritePropertyName("input");
                writer.WriteStartArray();
                foreach (var input in inputs)
                {
                    writer.WriteStringValue(input);
                }

                writer.WriteEndArray();
                writer.WriteString("encoding_format", "base64"); // as the SDK's own GenerateEmbeddingsAsync asks
                if (options?.Dimensions is { } dimensions)
                {
                    writer.WriteNumber("dimensions", dimensions);
                }

                if (options?.EndUserId is { } user)
                {
                    writer.WriteString("user", user);
                }
            },
            options: null);
        return EmbeddingsRoute(client).SubmitAsync<OpenAIEmbeddingCollection>(body, asyncOptions, cancellationToken);
    }

    /// <summary>Runs an embeddings request as a job: submits it and polls until it finishes.</summary>
    /// <param name="client">The SDK's embedding client, pointed at the gateway.</param>
    /// <param name="inputs">The texts to embed.</param>
    /// <param name="options">The SDK's options.</param>
    /// <param name="asyncOptions">Poll interval, timeout and result TTL.</param>
    /// <param name="cancellationToken">Cancels the submission and the polling (not the job).</param>
    /// <returns>The embeddings, one per input in order.</returns>
    /// <exception cref="System.ClientModel.ClientResultException">The submission or the job failed, with the gateway's status and error body.</exception>
    /// <exception cref="TimeoutException">The job did not finish within <see cref="BifrostAsyncOptions.Timeout"/>.</exception>
    public static Task<OpenAIEmbeddingCollection> GenerateEmbeddingsInBackgroundAsync(
        this EmbeddingClient client,
        IEnumerable<string> inputs,
        EmbeddingGenerationOptions? options = null,
        BifrostAsyncOptions? asyncOptions = null,
        CancellationToken cancellationToken = default)
        => AsyncRoute.WaitAsync(client.SubmitEmbeddingsAsync(inputs, options, asyncOptions, cancellationToken), cancellationToken);

    /// <summary>A handle on an embeddings job submitted earlier, to poll it by id.</summary>
    /// <param name="client">The SDK's embedding client, pointed at the gateway, with the submitter's credential.</param>
    /// <param name="jobId">The job id.</param>
    /// <param name="asyncOptions">Poll interval and timeout.</param>
    /// <returns>The job.</returns>
    public static BifrostAsyncJob<OpenAIEmbeddingCollection> GetEmbeddingsJob(this EmbeddingClient client, string jobId, BifrostAsyncOptions? asyncOptions = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        return EmbeddingsRoute(client).Job<OpenAIEmbeddingCollection>(jobId, asyncOptions);
    }

    /// <summary>Submits a Responses API request as a job (<c>x-bf-async: true</c>).</summary>
    /// <param name="client">The SDK's Responses client (evaluation-only in the SDK, hence <c>OPENAI001</c>), pointed at the gateway.</param>
    /// <param name="options">The request, including its model and input (streaming is not possible with async).</param>
    /// <param name="asyncOptions">Poll interval, timeout and result TTL.</param>
    /// <param name="cancellationToken">Cancels the submission.</param>
    /// <returns>The job: <see cref="BifrostAsyncJob{T}.WaitForResultAsync"/> polls it to the <see cref="ResponseResult"/>.</returns>
    [Experimental("OPENAI001")]
    public static Task<BifrostAsyncJob<ResponseResult>> SubmitResponseAsync(
        this ResponsesClient client,
        CreateResponseOptions options,
        BifrostAsyncOptions? asyncOptions = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        var body = AsyncRoute.Body(_ => { }, ModelReaderWriter.Write(options, ModelReaderWriterOptions.Json), "stream", "stream_options");
        return ResponsesRoute(client).SubmitAsync<ResponseResult>(body, asyncOptions, cancellationToken);
    }

    /// <summary>Runs a Responses API request as a job: submits it and polls until it finishes.</summary>
    /// <param name="client">The SDK's Responses client, pointed at the gateway.</param>
    /// <param name="options">The request.</param>
    /// <param name="asyncOptions">Poll interval, timeout and result TTL.</param>
    /// <param name="cancellationToken">Cancels the submission and the polling (not the job).</param>
    /// <returns>The response, as the synchronous call would have answered.</returns>
    /// <exception cref="System.ClientModel.ClientResultException">The submission or the job failed, with the gateway's status and error body.</exception>
    /// <exception cref="TimeoutException">The job did not finish within <see cref="BifrostAsyncOptions.Timeout"/>.</exception>
    [Experimental("OPENAI001")]
    public static Task<ResponseResult> CreateResponseInBackgroundAsync(
        this ResponsesClient client,
        CreateResponseOptions options,
        BifrostAsyncOptions? asyncOptions = null,
        CancellationToken cancellationToken = default)
        => AsyncRoute.WaitAsync(client.SubmitResponseAsync(options, asyncOptions, cancellationToken), cancellationToken);

    /// <summary>A handle on a Responses API job submitted earlier, to poll it by id.</summary>
    /// <param name="client">The SDK's Responses client, pointed at the gateway, with the submitter's credential.</param>
    /// <param name="jobId">The job id.</param>
    /// <param name="asyncOptions">Poll interval and timeout.</param>
    /// <returns>The job.</returns>
    [Experimental("OPENAI001")]
    public static BifrostAsyncJob<ResponseResult> GetResponseJob(this ResponsesClient client, string jobId, BifrostAsyncOptions? asyncOptions = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        return ResponsesRoute(client).Job<ResponseResult>(jobId, asyncOptions);
    }

    // The clients' Model is marked evaluation-only (OPENAI001) in SDK 2.x although it is how the SDK itself fills "model".
#pragma warning disable OPENAI001
    private static string ModelOf(ChatClient client) => client.Model;

    private static string ModelOf(EmbeddingClient client) => client.Model;
#pragma warning restore OPENAI001

    private static AsyncRoute ChatRoute(ChatClient client) => new(client.CompleteChatAsync, root => AsyncRoute.HasEmptyArray(root, "choices"));

    private static AsyncRoute EmbeddingsRoute(EmbeddingClient client) => new(client.GenerateEmbeddingsAsync, root => AsyncRoute.HasEmptyArray(root, "data"));

    [Experimental("OPENAI001")]
    private static AsyncRoute ResponsesRoute(ResponsesClient client) => new(client.CreateResponseAsync, IsResponsePending);

    /// <summary>The Responses pending shape: <c>status</c> <c>queued</c> or <c>in_progress</c>.</summary>
    private static bool IsResponsePending(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object
        && root.TryGetProperty("status", out var status)
        && status.ValueKind == JsonValueKind.String
        && status.GetString() is "queued" or "in_progress";
}
