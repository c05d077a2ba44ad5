using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
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
    /// Stable pseudo-embeddings: each input's SHA-256 seeds a generator of the vector's components, normalized to unit
    /// length, so the same text always gives the same vector (and different texts different ones).
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

    internal static float[] Vector(string text, int dimensions)
    {
        Span<byte> seed = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), seed);
        var state = BinaryPrimitives.ReadUInt64LittleEndian(seed) | 1;
        var values = new float[dimensions];
        double sum = 0;
        for (var i = 0; i < dimensions; i++)
        {
            // xorshift64*: deterministic on every platform and runtime version.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            var next = state * 2685821657736338717UL;
            var value = ((next >> 11) * (1.0 / (1UL << 53))) - 0.5;
            values[i] = (float)value;
            sum += value * value;
        }

        var norm = (float)Math.Sqrt(sum);
        for (var i = 0; i < dimensions; i++)
        {
            values[i] /= norm;
        }

        return values;
    }
}
