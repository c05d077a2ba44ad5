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
