using System.Runtime.CompilerServices;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.AIAbstractions;

/// <summary>
/// A gateway in a service container, without HTTP: the local provider (<c>local/echo</c>, which echoes the last user message
/// and reports usage) and a recording provider <c>acme</c> whose answers each test scripts.
/// </summary>
internal static class AIHost
{
    public static ServiceProvider Build(ScriptedAdapter? acme = null, Action<IBifrostBuilder>? bifrost = null, Action<IServiceCollection>? services = null)
    {
        var collection = new ServiceCollection();
        var builder = collection.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"], MaxRetries = 0 };
        });
        builder.AddProvider("acme", _ => acme ?? new ScriptedAdapter()).ConfigureProvider("acme", p => p.MaxRetries = 0);
        bifrost?.Invoke(builder);
        services?.Invoke(collection);
        return collection.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }

    public static ChatCompletionResponse ToolCall(ProviderContext context, string id, string name, string arguments) => new()
    {
        Id = "chatcmpl-tool",
        Created = 1_700_000_000,
        Model = context.Model,
        Choices =
        [
            new ChatChoice
            {
                Index = 0,
                FinishReason = "tool_calls",
                Message = new ChatResponseMessage { ToolCalls = [new ChatCompletionToolCall { Id = id, Type = "function", Function = new ChatCompletionFunctionCall { Name = name, Arguments = arguments } }] },
            },
        ],
        Usage = new ChatUsage { PromptTokens = 10, CompletionTokens = 5, TotalTokens = 15 },
    };

    /// <summary>Chunks, yielded asynchronously, observing the token.</summary>
    public static async IAsyncEnumerable<ChatCompletionChunk> Chunks(IEnumerable<ChatCompletionChunk> chunks, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var chunk in chunks)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            yield return chunk;
        }
    }
}

/// <summary>A scripted provider that also answers embeddings (re-implementing the interface's default method) and records them.</summary>
internal sealed class EmbeddingAdapter : ScriptedAdapter, IProviderAdapter
{
    public List<EmbeddingRequest> EmbeddingCalls { get; } = [];

    public Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken)
    {
        EmbeddingCalls.Add(request);
        var dimensions = request.Dimensions ?? 3;
        var response = new EmbeddingResponse { Model = context.Model, Usage = new EmbeddingUsage { PromptTokens = 7, TotalTokens = 7 } };

        // Answered in reverse order: the generator must place each vector by its index.
        for (var i = request.Input!.Count - 1; i >= 0; i--)
        {
            response.Data.Add(new EmbeddingData { Index = i, Embedding = new EmbeddingVector([.. Enumerable.Range(0, dimensions).Select(d => i + (d / 10f))]) });
        }

        return Task.FromResult(response);
    }
}
