using System.Runtime.CompilerServices;
using System.Text;

namespace Bifrost.Middleware.Providers.Local;

/// <summary>Embeddings and text completions of the local provider (Responses run through its chat completions).</summary>
internal sealed partial class LocalProviderAdapter
{
    /// <summary>Dimensions of local embeddings when the request does not ask.</summary>
    internal const int DefaultDimensions = 256;

    /// <summary>The most dimensions local embeddings have (OpenAI's largest model, text-embedding-3-large, has 3072).</summary>
    internal const int MaxDimensions = 3072;

    /// <summary>
    /// Deterministic embeddings in which near texts are near (<see cref="Vector"/>): hashed character 3-grams of the
    /// normalized text, L2-normalized, so the same text always gives the same vector, a paraphrase a vector of high cosine
    /// similarity and an unrelated text one of low similarity — what the semantic cache's tests need without a model.
    /// </summary>
    public Task<EmbeddingResponse> EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken)
    {
        var input = request.Input!;
        var dimensions = CheckEmbeddings(request);
        var response = new EmbeddingResponse { Model = context.Model };
        var tokens = 0;
        for (var i = 0; i < input.Count; i++)
        {
            var text = input.Texts is { } texts ? texts[i] : string.Join(' ', input.Tokens![i]);
            tokens += input.Texts is not null ? CountPieces(text) : input.Tokens![i].Length;
            response.Data.Add(new EmbeddingData { Index = i, Embedding = new EmbeddingVector(Vector(text, dimensions)) });
        }

        response.Usage = new EmbeddingUsage { PromptTokens = tokens, TotalTokens = tokens };
        return Task.FromResult(response);
    }

    public async Task<TextCompletionResponse> TextCompletionAsync(ProviderContext context, TextCompletionRequest request, CancellationToken cancellationToken)
    {
        var script = await StartAsync(request.Metadata, cancellationToken).ConfigureAwait(false);
        CheckTextOutput(request, script);
        var prompts = Prompts(request);
        var response = new TextCompletionResponse { Id = NewId().Replace("chatcmpl-", "cmpl-", StringComparison.Ordinal), Created = time.GetUtcNow().ToUnixTimeSeconds(), Model = context.Model };
        var promptTokens = 0;
        var completionTokens = 0;
        var n = Math.Max(1, request.N ?? 1);
        var index = 0;
        foreach (var prompt in prompts)
        {
            promptTokens += CountPieces(prompt);
            var reply = script.Reply ?? (prompt.Length == 0 ? DefaultReply : prompt);
            for (var c = 0; c < n; c++)
            {
                response.Choices.Add(new TextChoice { Index = index++, Text = request.Echo == true ? prompt + reply : reply, FinishReason = "stop" });
                completionTokens += CountPieces(reply);
            }
        }

        response.Usage = new ChatUsage { PromptTokens = promptTokens, CompletionTokens = completionTokens, TotalTokens = promptTokens + completionTokens };
        return response;
    }

    public async IAsyncEnumerable<TextCompletionResponse> StreamTextCompletionAsync(ProviderContext context, TextCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var script = await StartAsync(request.Metadata, cancellationToken).ConfigureAwait(false);
        CheckTextOutput(request, script);
        var id = NewId().Replace("chatcmpl-", "cmpl-", StringComparison.Ordinal);
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        TextCompletionResponse Chunk(int index, string text, string? finish) =>
            new() { Id = id, Created = created, Model = context.Model, Choices = [new TextChoice { Index = index, Text = text, FinishReason = finish }] };

        // The choices of the sync answer (n per prompt, in order), each streamed piece by piece and finished on its own.
        var n = Math.Max(1, request.N ?? 1);
        var index = 0;
        var promptTokens = 0;
        var pieces = 0;
        foreach (var prompt in Prompts(request))
        {
            promptTokens += CountPieces(prompt);
            var reply = script.Reply ?? (prompt.Length == 0 ? DefaultReply : prompt);
            for (var c = 0; c < n; c++, index++)
            {
                if (request.Echo == true && prompt.Length > 0)
                {
                    yield return Chunk(index, prompt, null);
                }

                for (var start = 0; start < reply.Length;)
                {
                    var end = NextPieceEnd(reply, start);
                    if (script.ChunkDelayMs > 0)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(script.ChunkDelayMs), time, cancellationToken).ConfigureAwait(false);
                    }

                    cancellationToken.ThrowIfCancellationRequested();
                    yield return Chunk(index, reply[start..end], null);
                    pieces++;
                    start = end;
                }

                yield return Chunk(index, string.Empty, "stop");
            }
        }

        if (request.StreamOptions?.IncludeUsage == true)
        {
            yield return new TextCompletionResponse { Id = id, Created = created, Model = context.Model, Usage = new ChatUsage { PromptTokens = promptTokens, CompletionTokens = pieces, TotalTokens = promptTokens + pieces } };
        }
    }

    /// <summary>The dimensions of a local embeddings request; refuses more than <see cref="MaxDimensions"/> or <see cref="MaxEmbeddingValues"/> components in all.</summary>
    private static int CheckEmbeddings(EmbeddingRequest request)
    {
        var dimensions = request.Dimensions ?? DefaultDimensions;
        if (dimensions > MaxDimensions)
        {
            throw TooMuch("dimensions", $"'dimensions' must be at most {MaxDimensions} for local embeddings.");
        }

        var count = request.Input?.Count ?? 0;
        if ((long)count * dimensions > MaxEmbeddingValues)
        {
            throw TooMuch("input", $"The local provider produces at most {MaxEmbeddingValues} embedding components per request; {count} inputs of {dimensions} dimensions are more. Send fewer inputs or fewer dimensions.");
        }

        return dimensions;
    }

    /// <summary>Refuses text completions whose choices (n per prompt, with the echoed prompt) hold more than <see cref="MaxOutputChars"/> characters when n multiplies them.</summary>
    private static void CheckTextOutput(TextCompletionRequest request, Script script)
    {
        var n = Math.Max(1, request.N ?? 1);
        if (n == 1 || request.Prompt is null)
        {
            return;
        }

        long total = 0;
        foreach (var prompt in Prompts(request))
        {
            var reply = script.Reply ?? (prompt.Length == 0 ? DefaultReply : prompt);
            total += (long)n * (reply.Length + ChoiceOverhead + (request.Echo == true ? prompt.Length : 0));
            if (total > MaxOutputChars)
            {
                throw TooMuch("n", $"The local provider produces at most {MaxOutputChars} characters over several choices; {n} choices per prompt are more. Lower 'n'.");
            }
        }
    }

    private static IEnumerable<string> Prompts(TextCompletionRequest request)
    {
        var prompt = request.Prompt!;
        return prompt.Texts is { } texts ? texts : prompt.Tokens!.Select(tokens => string.Join(' ', tokens));
    }

    /// <summary>The length of the character n-grams of <see cref="Vector"/>.</summary>
    internal const int GramLength = 3;

    /// <summary>
    /// A text's local embedding, a feature-hashed bag of character 3-grams: the text is lower-cased (invariant culture), every
    /// character that is not a letter or a digit is dropped except whitespace, whitespace runs become one space, and the
    /// result is framed by one space on each side (so words' first and last letters weigh as much as the middle ones). Each
    /// 3-gram's stable 64-bit FNV-1a hash (over its UTF-16 code units) picks a dimension (the hash modulo
    /// <paramref name="dimensions"/>) and a sign (the hash's top bit); the vector is the sum of these ±1s, L2-normalized.
    /// A text with no 3-gram (empty, or one character) hashes its framed form as one gram. The same text gives the same
    /// vector on every platform and runtime; "What is the capital of France?" and "what's the capital of france" have a
    /// cosine similarity of about 0.8 at 256 dimensions, unrelated sentences about 0.
    /// </summary>
    internal static float[] Vector(string text, int dimensions)
    {
        var normalized = Normalize(text);
        var values = new float[dimensions];
        if (normalized.Length < GramLength)
        {
            Add(values, normalized.AsSpan());
        }
        else
        {
            for (var i = 0; i + GramLength <= normalized.Length; i++)
            {
                Add(values, normalized.AsSpan(i, GramLength));
            }
        }

        double sum = 0;
        foreach (var value in values)
        {
            sum += (double)value * value;
        }

        if (sum == 0)
        {
            values[0] = 1; // every gram's ±1 cancelled out (or the hashes collided that way): still a unit vector
            return values;
        }

        var norm = (float)Math.Sqrt(sum);
        for (var i = 0; i < dimensions; i++)
        {
            values[i] /= norm;
        }

        return values;

        static void Add(float[] values, ReadOnlySpan<char> gram)
        {
            // 64-bit FNV-1a: stable across processes and platforms (string.GetHashCode is randomized per process).
            var hash = 14695981039346656037UL;
            foreach (var c in gram)
            {
                hash = (hash ^ (byte)c) * 1099511628211UL;
                hash = (hash ^ (byte)(c >> 8)) * 1099511628211UL;
            }

            values[(int)(hash % (ulong)values.Length)] += (hash >> 63) == 0 ? 1f : -1f;
        }
    }

    /// <summary>The text <see cref="Vector"/> takes the grams of: lower-cased, letters, digits and single spaces only, framed by spaces.</summary>
    internal static string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length + 2);
        builder.Append(' ');
        foreach (var c in text)
        {
            if (char.IsLetterOrDigit(c))
            {
                builder.Append(char.ToLowerInvariant(c));
            }
            else if (char.IsWhiteSpace(c) && builder[^1] != ' ')
            {
                builder.Append(' ');
            }
        }

        if (builder[^1] != ' ')
        {
            builder.Append(' ');
        }

        return builder.ToString();
    }
}
