using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.ChatClientBridge;

/// <summary>One call an <see cref="IChatClient"/> received: what it was asked, and the token it was given.</summary>
public sealed record ChatClientCall(IReadOnlyList<AI.ChatMessage> Messages, ChatOptions? Options, bool Streaming, CancellationToken Token);

/// <summary>An <see cref="IChatClient"/> that records every call and answers as each test scripts (by default, "hello").</summary>
public sealed class FakeChatClient : IChatClient
{
    public ConcurrentQueue<ChatClientCall> Calls { get; } = new();

    public ChatClientCall LastCall => Calls.Last();

    public Func<ChatClientCall, Task<ChatResponse>> OnResponse { get; set; } =
        _ => Task.FromResult(new ChatResponse(new AI.ChatMessage(ChatRole.Assistant, "hello")));

    public Func<ChatClientCall, IAsyncEnumerable<ChatResponseUpdate>> OnStream { get; set; } =
        call => Updates(call.Token, new ChatResponseUpdate(ChatRole.Assistant, "hel"), new ChatResponseUpdate(null, "lo") { FinishReason = ChatFinishReason.Stop });

    public ChatClientMetadata? Metadata { get; set; }

    public Task<ChatResponse> GetResponseAsync(IEnumerable<AI.ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = new ChatClientCall([.. messages], options, Streaming: false, cancellationToken);
        Calls.Enqueue(call);
        return OnResponse(call);
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AI.ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = new ChatClientCall([.. messages], options, Streaming: true, cancellationToken);
        Calls.Enqueue(call);
        return OnStream(call);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(ChatClientMetadata) ? Metadata :
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }

    /// <summary>Yields the updates asynchronously, observing the token between them.</summary>
    public static async IAsyncEnumerable<ChatResponseUpdate> Updates([EnumeratorCancellation] CancellationToken cancellationToken, params ChatResponseUpdate[] updates)
    {
        foreach (var update in updates)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            yield return update;
        }
    }

    /// <summary>A stream that throws before its first update.</summary>
    public static async IAsyncEnumerable<ChatResponseUpdate> Throwing(Exception exception, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        if (exception is not null)
        {
            throw exception;
        }

        yield break;
    }
}

/// <summary>An embedding generator that records its calls and answers with a small deterministic vector per input.</summary>
public sealed class FakeEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    public ConcurrentQueue<(IReadOnlyList<string> Values, EmbeddingGenerationOptions? Options, CancellationToken Token)> Calls { get; } = new();

    public Func<IReadOnlyList<string>, EmbeddingGenerationOptions?, CancellationToken, Task<GeneratedEmbeddings<Embedding<float>>>>? OnGenerate { get; set; }

    public static float[] VectorOf(string value, int dimensions) =>
        [.. Enumerable.Range(0, dimensions).Select(i => (value.Length * 10) + i + 0.5f)];

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = values.ToList();
        Calls.Enqueue((list, options, cancellationToken));
        if (OnGenerate is { } onGenerate)
        {
            return onGenerate(list, options, cancellationToken);
        }

        var dimensions = options?.Dimensions ?? 3;
        var result = new GeneratedEmbeddings<Embedding<float>>(list.Select(v => new Embedding<float>(VectorOf(v, dimensions)) { ModelId = "fake-embed-1" }))
        {
            Usage = new UsageDetails { InputTokenCount = list.Sum(v => v.Split(' ').Length), TotalTokenCount = list.Sum(v => v.Split(' ').Length) },
        };
        return Task.FromResult(result);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(EmbeddingGeneratorMetadata) ? new EmbeddingGeneratorMetadata("fake", null, "fake-embed-1") :
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
