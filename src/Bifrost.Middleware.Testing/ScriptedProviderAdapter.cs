using System.Globalization;
using System.Runtime.CompilerServices;

namespace Bifrost.Middleware.Testing;

/// <summary>
/// The adapter of every scripted provider: records the attempt, takes the provider's next <see cref="ScriptedResponse"/>,
/// waits its delay (bounded by the provider's <c>Timeout</c>, past which the attempt times out as an HTTP one does), then
/// fails or answers as scripted.
/// </summary>
internal sealed class ScriptedProviderAdapter(BifrostScripts scripts, TimeProvider time) : IProviderAdapter
{
    internal const string ChatOperation = "chat.completions";
    internal const string EmbeddingsOperation = "embeddings";
    private const int EmbeddingDimensions = 8;

    private long _ids;

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        var response = await StartAsync(context, ChatOperation, stream: false, request, cancellationToken).ConfigureAwait(false);
        var content = ContentOf(response, request);
        var toolCalls = ToolCallsOf(response);
        return new ChatCompletionResponse
        {
            Id = NewId("chatcmpl-"),
            Created = time.GetUtcNow().ToUnixTimeSeconds(),
            Model = context.Model,
            Choices =
            [
                new ChatChoice
                {
                    Index = 0,
                    Message = new ChatResponseMessage { Content = content, ToolCalls = toolCalls },
                    FinishReason = response?.FinishReason ?? (toolCalls is null ? "stop" : "tool_calls"),
                },
            ],
            Usage = Usage(request, response, content, toolCalls),
        };
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var response = await StartAsync(context, ChatOperation, stream: true, request, cancellationToken).ConfigureAwait(false);
        var content = ContentOf(response, request);
        var toolCalls = ToolCallsOf(response);
        // Every chunk of the stream shares the envelope (id, created, model); the usage chunk has no choice.
        var envelope = new ChatCompletionChunk { Id = NewId("chatcmpl-"), Created = time.GetUtcNow().ToUnixTimeSeconds(), Model = context.Model };
        ChatCompletionChunk Chunk(ChatDelta delta, string? finish)
        {
            var chunk = new ChatCompletionChunk { Id = envelope.Id, Created = envelope.Created, Model = envelope.Model };
            chunk.Choices.Add(new ChatChunkChoice { Delta = delta, FinishReason = finish });
            return chunk;
        }

        yield return Chunk(new ChatDelta { Role = "assistant", Content = string.Empty }, null);
        var sent = 0;
        foreach (var piece in response?.Chunks ?? (content is null ? [] : Pieces(content)))
        {
            if (response is { ChunkDelay: var delay } && delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (response?.FailAfterChunks is { } failAfter && sent >= failAfter)
            {
                throw BifrostException.Provider(response.StatusCode ?? 500, null, response.ErrorCode ?? "scripted_stream_failure", response.ErrorMessage ?? $"Scripted stream failure after {sent} chunks.");
            }

            yield return Chunk(new ChatDelta { Content = piece }, null);
            sent++;
        }

        if (toolCalls is not null)
        {
            yield return Chunk(new ChatDelta { ToolCalls = toolCalls }, null);
        }

        yield return Chunk(new ChatDelta(), response?.FinishReason ?? (toolCalls is null ? "stop" : "tool_calls"));
        if (request.StreamOptions?.IncludeUsage == true)
        {
            envelope.Usage = Usage(request, response, content, toolCalls);
            yield return envelope;
        }
    }

    public async Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken)
    {
        var response = await StartAsync(context, EmbeddingsOperation, stream: false, request, cancellationToken).ConfigureAwait(false);
        var texts = request.Input?.Texts ?? [];
        var count = request.Input?.Tokens?.Count ?? texts.Count;
        var data = new List<EmbeddingData>(count);
        for (var i = 0; i < count; i++)
        {
            var vector = response?.Embeddings is { } scripted
                ? scripted[Math.Min(i, scripted.Count - 1)]
                : DefaultVector(i < texts.Count ? texts[i] : i.ToString(CultureInfo.InvariantCulture), request.Dimensions ?? EmbeddingDimensions);
            data.Add(new EmbeddingData { Index = i, Embedding = new EmbeddingVector(vector) });
        }

        var tokens = response?.PromptTokens ?? texts.Sum(CountWords);
        return new EmbeddingResponse { Data = data, Model = context.Model, Usage = new EmbeddingUsage { PromptTokens = tokens, TotalTokens = tokens } };
    }

    /// <summary>Records the attempt, takes the next answer, waits its delay and throws its failure.</summary>
    private async ValueTask<ScriptedResponse?> StartAsync(ProviderContext context, string operation, bool stream, InferenceRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var provider = scripts.Find(context.ProviderName)
            ?? throw new InvalidOperationException($"Provider '{context.ProviderName}' is served by the scripted adapter but has no script.");
        scripts.Record(provider, new RecordedRequest(context, operation, stream, request));
        var response = provider.Next();
        if (response is null)
        {
            return null;
        }

        if (response.Delay > TimeSpan.Zero)
        {
            var timeout = context.Options.Timeout;
            if (response.Delay > timeout)
            {
                await Task.Delay(timeout, time, cancellationToken).ConfigureAwait(false);
                throw BifrostException.Provider(504, null, "provider_timeout", $"Provider '{context.ProviderName}' did not answer within {timeout} (scripted delay {response.Delay}).");
            }

            await Task.Delay(response.Delay, time, cancellationToken).ConfigureAwait(false);
        }

        // A failure after some chunks is the stream's (below); without a stream it fails now.
        if (response.StatusCode is { } status && (response.FailAfterChunks is null || !stream))
        {
            throw BifrostException.Provider(
                status,
                null,
                response.ErrorCode ?? "scripted_error",
                response.ErrorMessage ?? $"Scripted failure with status {status.ToString(CultureInfo.InvariantCulture)}.",
                retryAfter: response.RetryAfter);
        }

        return response;
    }

    /// <summary>The answer text: the scripted one, else (no tool calls either) the last user message echoed.</summary>
    private static string? ContentOf(ScriptedResponse? response, ChatCompletionRequest request)
    {
        if (response?.Content is { } content)
        {
            return content;
        }

        if (response is { ToolCalls.Count: > 0 } || response?.Chunks is not null)
        {
            return response.Chunks is { } chunks ? string.Concat(chunks) : null;
        }

        var messages = request.Messages ?? [];
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (string.Equals(messages[i].Role, "user", StringComparison.Ordinal) && messages[i].Content is { } text)
            {
                return text.GetText();
            }
        }

        return string.Empty;
    }

    private List<ChatCompletionToolCall>? ToolCallsOf(ScriptedResponse? response)
    {
        if (response is not { ToolCalls.Count: > 0 } scripted)
        {
            return null;
        }

        var calls = new List<ChatCompletionToolCall>(scripted.ToolCalls.Count);
        foreach (var call in scripted.ToolCalls)
        {
            calls.Add(new ChatCompletionToolCall
            {
                Index = calls.Count,
                Id = call.Id ?? NewId("call_"),
                Type = "function",
                Function = new ChatCompletionFunctionCall { Name = call.Name, Arguments = call.Arguments },
            });
        }

        return calls;
    }

    private static ChatUsage Usage(ChatCompletionRequest request, ScriptedResponse? response, string? content, List<ChatCompletionToolCall>? toolCalls)
    {
        var prompt = response?.PromptTokens ?? (3 + (request.Messages ?? []).Sum(static m => 3 + (m.Content is { } c ? CountWords(c.GetText()) : 0)));
        var completion = response?.CompletionTokens
            ?? (content is null ? 0 : CountWords(content)) + (toolCalls?.Sum(static c => 3 + CountWords(c.Function!.Arguments ?? string.Empty)) ?? 0);
        return new ChatUsage { PromptTokens = prompt, CompletionTokens = completion, TotalTokens = prompt + completion };
    }

    /// <summary>Word pieces: a run of whitespace followed by a run of non-whitespace (<c>"Hello"</c>, <c>" world"</c>).</summary>
    internal static IEnumerable<string> Pieces(string text)
    {
        var start = 0;
        while (start < text.Length)
        {
            var end = start;
            while (end < text.Length && char.IsWhiteSpace(text[end]))
            {
                end++;
            }

            while (end < text.Length && !char.IsWhiteSpace(text[end]))
            {
                end++;
            }

            yield return text[start..end];
            start = end;
        }
    }

    private static int CountWords(string text) => Pieces(text).Count();

    /// <summary>A deterministic unit vector of the text (same text, same vector), so similarity tests are stable.</summary>
    private static float[] DefaultVector(string text, int dimensions)
    {
        var vector = new float[Math.Clamp(dimensions, 1, 4096)];
        var hash = 2166136261u;
        for (var i = 0; i < vector.Length; i++)
        {
            foreach (var ch in text)
            {
                hash = (hash ^ ch) * 16777619u;
            }

            hash = (hash ^ (uint)i) * 16777619u;
            vector[i] = (hash % 2001 / 1000f) - 1f;
        }

        var norm = MathF.Sqrt(vector.Sum(static v => v * v));
        if (norm > 0)
        {
            for (var i = 0; i < vector.Length; i++)
            {
                vector[i] /= norm;
            }
        }

        return vector;
    }

    private string NewId(string prefix) => prefix + "scripted" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture);
}
