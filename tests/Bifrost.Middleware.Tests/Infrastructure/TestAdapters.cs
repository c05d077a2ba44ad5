using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>A provider adapter whose behaviour each test scripts; it records every call it receives.</summary>
public class ScriptedAdapter : IProviderAdapter
{
    public ConcurrentQueue<(ProviderContext Context, ChatCompletionRequest Request)> Calls { get; } = new();

    /// <summary>Non-streamed behaviour; by default answers "reply from {provider}".</summary>
    public Func<ProviderContext, ChatCompletionRequest, CancellationToken, Task<ChatCompletionResponse>> OnChat { get; set; } =
        (context, _, _) => Task.FromResult(Replies.Text(context, $"reply from {context.ProviderName}"));

    /// <summary>Streamed behaviour; by default streams "reply from {provider}" in two pieces.</summary>
    public Func<ProviderContext, ChatCompletionRequest, CancellationToken, IAsyncEnumerable<ChatCompletionChunk>> OnStream { get; set; } =
        (context, _, cancellationToken) => Replies.Stream(context, ["reply from", $" {context.ProviderName}"], cancellationToken);

    public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        Calls.Enqueue((context, request));
        return OnChat(context, request, cancellationToken);
    }

    public IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        Calls.Enqueue((context, request));
        return OnStream(context, request, cancellationToken);
    }
}

/// <summary>Registered with <c>AddProvider&lt;CapturingAdapter&gt;("acme")</c>: constructed by DI, captures the requests it gets.</summary>
public sealed class CapturingAdapter : ScriptedAdapter;

public static class Replies
{
    public static ChatCompletionResponse Text(ProviderContext context, string text) => new()
    {
        Id = "chatcmpl-test",
        Created = 1,
        Model = context.Model,
        Choices = [new ChatChoice { Index = 0, Message = new ChatResponseMessage { Content = text }, FinishReason = "stop" }],
        Usage = new ChatUsage { PromptTokens = 1, CompletionTokens = 1, TotalTokens = 2 },
    };

    public static async IAsyncEnumerable<ChatCompletionChunk> Stream(ProviderContext context, string[] pieces, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        yield return Chunk(context, new ChatDelta { Role = "assistant", Content = string.Empty }, null);
        foreach (var piece in pieces)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return Chunk(context, new ChatDelta { Content = piece }, null);
        }

        yield return Chunk(context, new ChatDelta(), "stop");
    }

    /// <summary>A stream that throws before its first chunk.</summary>
    public static async IAsyncEnumerable<ChatCompletionChunk> Failing(Exception exception)
    {
        await Task.Yield();
        if (exception is not null)
        {
            throw exception;
        }

        yield break;
    }

    public static ChatCompletionChunk Chunk(ProviderContext context, ChatDelta delta, string? finishReason) => new()
    {
        Id = "chatcmpl-test",
        Created = 1,
        Model = context.Model,
        Choices = [new ChatChunkChoice { Index = 0, Delta = delta, FinishReason = finishReason }],
    };
}

/// <summary>
/// Passes every operation to another adapter and counts the calls that reached it (including the gateway's preflight,
/// which it forwards when the inner adapter has one): tests assert that rejected requests reached no provider.
/// </summary>
internal sealed class CountingAdapter(IProviderAdapter inner) : IProviderAdapter, Bifrost.Middleware.Gateway.IRequestPreflight
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public void Preflight(object request, string requestType) => (inner as Bifrost.Middleware.Gateway.IRequestPreflight)?.Preflight(request, requestType);

    public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) =>
        Count(inner.ChatCompletionAsync(context, request, cancellationToken));

    public IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) =>
        Count(inner.StreamChatCompletionAsync(context, request, cancellationToken));

    public Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken) =>
        Count(inner.EmbeddingsAsync(context, request, cancellationToken));

    public Task<TextCompletionResponse> TextCompletionAsync(ProviderContext context, TextCompletionRequest request, CancellationToken cancellationToken) =>
        Count(inner.TextCompletionAsync(context, request, cancellationToken));

    public IAsyncEnumerable<TextCompletionResponse> StreamTextCompletionAsync(ProviderContext context, TextCompletionRequest request, CancellationToken cancellationToken) =>
        Count(inner.StreamTextCompletionAsync(context, request, cancellationToken));

    public bool SupportsNativeResponses(ProviderContext context) => inner.SupportsNativeResponses(context);

    public Task<ResponsesResponse> ResponsesAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken) =>
        Count(inner.ResponsesAsync(context, request, cancellationToken));

    public IAsyncEnumerable<ResponsesStreamEvent> StreamResponsesAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken) =>
        Count(inner.StreamResponsesAsync(context, request, cancellationToken));

    public Task<int?> CountInputTokensAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken) =>
        Count(inner.CountInputTokensAsync(context, request, cancellationToken));

    public Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken) => inner.ListModelsAsync(context, cancellationToken);

    private T Count<T>(T value)
    {
        Interlocked.Increment(ref _calls);
        return value;
    }
}
