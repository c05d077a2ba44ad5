using System.Globalization;
using System.Runtime.CompilerServices;

namespace Bifrost.Middleware.Providers.Local;

/// <summary>
/// The built-in deterministic provider (type <c>local</c>): no network, no key. It answers with the text of
/// the last user message (or a scripted reply), streams it word by word, and reports its usage in its own
/// token unit: one token per word piece it reads or writes, plus OpenAI's per-message framing (3 per message, 3 per reply).
/// </summary>
/// <remarks>
/// Scripting, through the request's <c>metadata</c> (a standard OpenAI field, so any SDK can set it):
/// <c>local_reply</c> (the answer text), <c>local_status</c> (fail with this HTTP status),
/// <c>local_retry_after</c> (seconds, with <c>local_status</c>), <c>local_delay_ms</c> (wait before answering),
/// <c>local_chunk_delay_ms</c> (wait between stream chunks), <c>local_fail_after_chunks</c> (stream: fail after N chunks).
/// </remarks>
internal sealed partial class LocalProviderAdapter(TimeProvider time) : IProviderAdapter
{
    private const string DefaultReply = "Hello from the Bifrost local provider.";

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var script = Script.From(request);
        if (script.DelayMs > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(script.DelayMs), time, cancellationToken).ConfigureAwait(false);
        }

        script.ThrowIfFailing();
        var reply = script.Reply ?? LastUserText(request) ?? DefaultReply;
        var completionTokens = CountPieces(reply);
        var n = Math.Max(1, request.N ?? 1);
        var choices = new List<ChatChoice>(n);
        for (var i = 0; i < n; i++)
        {
            choices.Add(new ChatChoice { Index = i, Message = new ChatResponseMessage { Content = reply }, FinishReason = "stop" });
        }

        return new ChatCompletionResponse
        {
            Id = NewId(),
            Created = time.GetUtcNow().ToUnixTimeSeconds(),
            Model = context.Model,
            Choices = choices,
            Usage = Usage(request, completionTokens * n),
        };
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var script = Script.From(request);
        if (script.DelayMs > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(script.DelayMs), time, cancellationToken).ConfigureAwait(false);
        }

        script.ThrowIfFailing();
        var reply = script.Reply ?? LastUserText(request) ?? DefaultReply;
        var id = NewId();
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var sent = 0;

        ChatCompletionChunk Chunk(ChatDelta delta, string? finish) => new()
        {
            Id = id,
            Created = created,
            Model = context.Model,
            Choices = [new ChatChunkChoice { Index = 0, Delta = delta, FinishReason = finish }],
        };

        yield return Chunk(new ChatDelta { Role = "assistant", Content = string.Empty }, null);
        var pieces = 0;
        var start = 0;
        while (start < reply.Length)
        {
            var end = NextPieceEnd(reply, start);
            if (script.ChunkDelayMs > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(script.ChunkDelayMs), time, cancellationToken).ConfigureAwait(false);
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (script.FailAfterChunks is { } failAfter && sent >= failAfter)
            {
                throw BifrostException.Provider(script.Status ?? 500, null, "local_scripted_stream_failure", $"Scripted failure after {sent} chunks.");
            }

            yield return Chunk(new ChatDelta { Content = reply[start..end] }, null);
            sent++;
            pieces++;
            start = end;
        }

        yield return Chunk(new ChatDelta(), "stop");
        if (request.StreamOptions?.IncludeUsage == true)
        {
            yield return new ChatCompletionChunk { Id = id, Created = created, Model = context.Model, Usage = Usage(request, pieces) };
        }
    }

    public Task<IReadOnlyList<ModelInfo>> ListModelsAsync(ProviderContext context, CancellationToken cancellationToken)
    {
        IReadOnlyList<ModelInfo> models = context.Options.Models.Count == 0
            ? [new ModelInfo { Id = "echo", OwnedBy = context.ProviderName }]
            : [.. context.Options.Models.Select(m => new ModelInfo { Id = m, OwnedBy = context.ProviderName })];
        return Task.FromResult(models);
    }

    private static ChatUsage Usage(ChatCompletionRequest request, int completionTokens)
    {
        var prompt = 3;
        foreach (var message in request.Messages!)
        {
            prompt += 3 + (message.Content is null ? 0 : CountPieces(message.Content.GetText()));
        }

        return new ChatUsage { PromptTokens = prompt, CompletionTokens = completionTokens, TotalTokens = prompt + completionTokens };
    }

    private static string? LastUserText(ChatCompletionRequest request)
    {
        var messages = request.Messages!;
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (string.Equals(messages[i].Role, "user", StringComparison.Ordinal) && messages[i].Content is { } content)
            {
                var text = content.GetText();
                return text.Length == 0 ? null : text;
            }
        }

        return null;
    }

    /// <summary>A piece is a run of whitespace followed by a run of non-whitespace ("Hello", " world", "!").</summary>
    internal static int NextPieceEnd(string text, int start)
    {
        var i = start;
        while (i < text.Length && char.IsWhiteSpace(text[i]))
        {
            i++;
        }

        while (i < text.Length && !char.IsWhiteSpace(text[i]))
        {
            i++;
        }

        return i;
    }

    internal static int CountPieces(string text)
    {
        var count = 0;
        for (var i = 0; i < text.Length; i = NextPieceEnd(text, i))
        {
            count++;
        }

        return count;
    }

    private static string NewId() => string.Create(33, Random.Shared.NextInt64(), static (span, seed) =>
    {
        "chatcmpl-".AsSpan().CopyTo(span);
        var random = new Random((int)seed ^ (int)(seed >> 32));
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        for (var i = 9; i < span.Length; i++)
        {
            span[i] = alphabet[random.Next(alphabet.Length)];
        }
    });

    private readonly record struct Script(string? Reply, int? Status, double? RetryAfterSeconds, int DelayMs, int ChunkDelayMs, int? FailAfterChunks)
    {
        public static Script From(ChatCompletionRequest request) => From(request.Metadata);

        public static Script From(IDictionary<string, string>? source)
        {
            if (source is not { Count: > 0 } metadata)
            {
                return default;
            }

            return new Script(
                metadata.TryGetValue("local_reply", out var reply) ? reply : null,
                Int(metadata, "local_status"),
                metadata.TryGetValue("local_retry_after", out var ra) && double.TryParse(ra, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) ? seconds : null,
                Int(metadata, "local_delay_ms") ?? 0,
                Int(metadata, "local_chunk_delay_ms") ?? 0,
                Int(metadata, "local_fail_after_chunks"));
        }

        public void ThrowIfFailing()
        {
            if (Status is { } status && FailAfterChunks is null)
            {
                throw BifrostException.Provider(
                    status,
                    null,
                    "local_scripted_failure",
                    $"Scripted failure with status {status}.",
                    retryAfter: RetryAfterSeconds is { } s ? TimeSpan.FromSeconds(s) : null);
            }
        }

        private static int? Int(IDictionary<string, string> metadata, string key) =>
            metadata.TryGetValue(key, out var value) && int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) ? parsed : null;
    }
}
