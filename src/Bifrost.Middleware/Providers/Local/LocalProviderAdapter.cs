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
/// A scripting value that is not a number in its range is a 400 naming it (<c>metadata.local_retry_after</c>).
/// Bounds: it refuses (400) what it cannot reasonably produce — more than <see cref="MaxOutputChars"/> characters of
/// output over several choices (<c>n</c>), more than <see cref="MaxEmbeddingValues"/> embedding components — so no
/// request makes it allocate more than a bounded multiple of its body. The gateway runs these checks before a job is
/// stored (<see cref="Gateway.IRequestPreflight"/>); the operations run them again.
/// </remarks>
internal sealed partial class LocalProviderAdapter(TimeProvider time) : IProviderAdapter, Gateway.IRequestPreflight
{
    private const string DefaultReply = "Hello from the Bifrost local provider.";

    /// <summary>The most characters of output over all choices of one answer when <c>n</c> (or several prompts) multiply it.</summary>
    internal const int MaxOutputChars = 1 << 20;

    /// <summary>What each choice costs besides its text when the output is bounded (its JSON framing, roughly).</summary>
    internal const int ChoiceOverhead = 64;

    /// <summary>The most embedding components (inputs × dimensions) of one answer.</summary>
    internal const int MaxEmbeddingValues = 1 << 20;

    /// <summary>The longest scripted <c>local_retry_after</c>, in seconds (a day).</summary>
    internal const double MaxRetryAfterSeconds = 86_400;

    public void Preflight(object request, string requestType)
    {
        switch (request)
        {
            case ChatCompletionRequest chat:
                Script.From(chat);
                CheckChatOutput(chat, script: null);
                break;
            case TextCompletionRequest text:
                CheckTextOutput(text, Script.From(text.Metadata));
                break;
            case EmbeddingRequest embeddings:
                CheckEmbeddings(embeddings);
                break;
            case ResponsesRequest responses when requestType != Gateway.BifrostGateway.CountTokensRequestType:
                Script.From(responses.Metadata);
                break;
        }
    }

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var script = await StartAsync(request.Metadata, cancellationToken).ConfigureAwait(false);
        var reply = CheckChatOutput(request, script);
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
        var script = await StartAsync(request.Metadata, cancellationToken).ConfigureAwait(false);
        var reply = CheckChatOutput(request, script);
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
                throw BifrostErrors.ProviderError(script.Status ?? 500, null, "local_scripted_stream_failure", $"Scripted failure after {sent} chunks.");
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

    /// <summary>The reply of a chat request; refuses <c>n</c> copies of it past <see cref="MaxOutputChars"/>.</summary>
    private static string CheckChatOutput(ChatCompletionRequest request, Script? script)
    {
        var reply = (script ?? Script.From(request)).Reply ?? LastUserText(request) ?? DefaultReply;
        var n = Math.Max(1, request.N ?? 1);
        if (n > 1 && (long)(reply.Length + ChoiceOverhead) * n > MaxOutputChars)
        {
            throw TooMuch("n", $"The local provider produces at most {MaxOutputChars} characters over several choices; {n} choices of a {reply.Length}-character reply are more. Lower 'n'.");
        }

        return reply;
    }

    private static BifrostException TooMuch(string param, string message) =>
        BifrostErrors.ProviderError(400, BifrostErrors.InvalidRequestType, "invalid_value", message, param);

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

    private static string NewId() => string.Create(33, 0, static (span, _) =>
    {
        "chatcmpl-".AsSpan().CopyTo(span);
        Random.Shared.GetItems("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", span[9..]);
    });

    /// <summary>Reads the request's script, waits its <c>local_delay_ms</c>, then fails as scripted (<c>local_status</c>).</summary>
    private async ValueTask<Script> StartAsync(IDictionary<string, string>? metadata, CancellationToken cancellationToken)
    {
        var script = Script.From(metadata);
        if (script.DelayMs > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(script.DelayMs), time, cancellationToken).ConfigureAwait(false);
        }

        script.ThrowIfFailing();
        return script;
    }

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
                Int(metadata, "local_status", int.MinValue),
                RetryAfter(metadata),
                Int(metadata, "local_delay_ms", 0) ?? 0,
                Int(metadata, "local_chunk_delay_ms", 0) ?? 0,
                Int(metadata, "local_fail_after_chunks", 0));
        }

        public void ThrowIfFailing()
        {
            if (Status is { } status && FailAfterChunks is null)
            {
                throw BifrostErrors.ProviderError(
                    status,
                    null,
                    "local_scripted_failure",
                    $"Scripted failure with status {status}.",
                    retryAfter: RetryAfterSeconds is { } s ? TimeSpan.FromSeconds(s) : null);
            }
        }

        /// <summary>A scripted integer; one that is not an integer of at least <paramref name="min"/> is a 400 naming it.</summary>
        private static int? Int(IDictionary<string, string> metadata, string key, int min)
        {
            if (!metadata.TryGetValue(key, out var value) || value is null)
            {
                return null;
            }

            if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) || parsed < min)
            {
                throw Invalid(key, min == int.MinValue ? "an integer" : $"an integer of at least {min}");
            }

            return parsed;
        }

        /// <summary>Seconds, finite, from 0 to <see cref="MaxRetryAfterSeconds"/> (NaN, 1e308 or a negative wait cannot be a TimeSpan).</summary>
        private static double? RetryAfter(IDictionary<string, string> metadata)
        {
            if (!metadata.TryGetValue("local_retry_after", out var value) || value is null)
            {
                return null;
            }

            if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds >= 0 && seconds <= MaxRetryAfterSeconds))
            {
                throw Invalid("local_retry_after", $"a number of seconds from 0 to {MaxRetryAfterSeconds.ToString(CultureInfo.InvariantCulture)}");
            }

            return seconds;
        }

        private static BifrostException Invalid(string key, string what) =>
            BifrostErrors.ProviderError(400, BifrostErrors.InvalidRequestType, "invalid_value", $"The local provider's 'metadata.{key}' must be {what}.", "metadata." + key);
    }
}
