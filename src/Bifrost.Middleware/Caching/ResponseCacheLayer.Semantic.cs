using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Operations;
using Microsoft.Extensions.VectorData;

namespace Bifrost.Middleware.Caching;

/// <summary>
/// The semantic cache (<c>Bifrost:Cache:Semantic</c>), a second lookup of the cache layer after an exact miss: the request's
/// text (<see cref="SemanticCacheRequestText"/>) is embedded with the configured model by the rest of the pipeline below
/// this layer (routing, keys, retries, fallbacks: the embedding call never re-enters the cache, and governance does not count
/// it against the caller's key), the registered <see cref="VectorStoreCollection{TKey, TRecord}"/> of
/// <see cref="SemanticCacheEntry"/> is searched within the request's partition, and the nearest unexpired entry whose cosine
/// similarity reaches the threshold is replayed — whole or as a stream, as the exact cache replays. A miss stores the answer
/// with its embedding once it is complete, beside the exact entry. A failed embedding call or vector store leaves the call
/// to go on without the semantic cache (logged, counted in <c>bifrost.cache.semantic.errors</c>).
/// </summary>
internal sealed partial class ResponseCacheLayer
{
    public const string Direct = "direct";
    public const string Semantic = "semantic";

    /// <summary>Whether any model may get semantic lookups.</summary>
    internal static bool SemanticOn(ResponseCacheOptions options) =>
        options.Semantic is { } semantic && (semantic.Enabled || options.Rules.Any(static r => r?.Semantic == true)) && !string.IsNullOrWhiteSpace(semantic.EmbeddingModel);

    private SemanticPlan? SemanticPlanOf(string operation, bool stream, string? tenant, ResolvedModel target, string cacheKey, ResponseCacheRule? rule, JsonElement body, CacheRequest? control)
    {
        var semantic = Options.Semantic;
        if (semanticStore is null || !(rule?.Semantic ?? semantic.Enabled) || SemanticCacheRequestText.Split(operation, body, semantic.Text) is not { } split)
        {
            return null;
        }

        var threshold = rule?.SemanticThreshold ?? semantic.Threshold;
        if (control?.Threshold is { } asked && asked > threshold)
        {
            threshold = asked; // a request may only raise the configured threshold
        }

        var partition = SemanticCacheRequestText.Partition(tenant, operation, stream, target.Provider.Name, target.Model, cacheKey, semantic.EmbeddingModel!, split.Others);
        return new SemanticPlan(partition, split.Text, threshold, SearchToo: true);
    }

    /// <summary>Embeds the plan's text and (unless refreshing) searches the store; null when the embedding call or the search failed.</summary>
    private async Task<SemanticLookup?> SemanticLookupAsync(string requestType, SemanticPlan plan, CancellationToken cancellationToken)
    {
        var model = Options.Semantic.EmbeddingModel!;
        float[] vector;
        int? tokens;
        try
        {
            var request = new EmbeddingRequest(model, TextInput.FromString(plan.Text)) { Dimensions = Options.Semantic.Dimensions };
            var response = await Inner.SendAsync(InferenceOperations.Embeddings, request, cancellationToken).ConfigureAwait(false);
            vector = response.Data.Count > 0 ? response.Data[0].Embedding.ToFloats() : throw new InvalidOperationException("The embedding model returned no embedding.");
            tokens = response.Usage?.PromptTokens;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            LogEmbeddingFailed(logger, requestType, model, ErrorCode(ex));
            metrics.SemanticError(requestType, "embedding");
            return null;
        }

        var lookup = new SemanticLookup(plan, vector, tokens, Hit: null);
        if (!plan.SearchToo)
        {
            return lookup;
        }

        try
        {
            var partition = plan.Partition;
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var options = new VectorSearchOptions<SemanticCacheEntry> { Filter = r => r.Partition == partition && r.ExpiresAt > now };
            await foreach (var result in semanticStore!.SearchAsync(new ReadOnlyMemory<float>(vector), 1, options, cancellationToken).ConfigureAwait(false))
            {
                if (result.Score is { } similarity && similarity >= plan.Threshold && result.Record.ExpiresAt > now)
                {
                    LogSemanticHit(logger, requestType, similarity, plan.Threshold);
                    return lookup with { Hit = new SemanticHit(result.Record.Key, result.Record.Payload, similarity, plan.Threshold, lookup) };
                }
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            LogStoreFailed(logger, requestType, "search", ex.GetType().Name);
            metrics.SemanticError(requestType, "search");
            return null;
        }

        return lookup;
    }

    /// <summary>Stores a completed answer with its embedding; a failure is logged and counted, never the caller's.</summary>
    private async Task StoreSemanticAsync(string requestType, CachePlan plan, SemanticPlan semantic, float[] vector, byte[] entry, DateTimeOffset expires)
    {
        try
        {
            await semanticStore!.UpsertAsync(
                new SemanticCacheEntry { Key = plan.Key, Partition = semantic.Partition, ExpiresAt = expires.ToUnixTimeMilliseconds(), Payload = entry, Embedding = vector },
                CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogStoreFailed(logger, requestType, "store", ex.GetType().Name);
            metrics.SemanticError(requestType, "store");
        }
    }

    private BifrostCacheDebug SemanticDebug(SemanticHit hit)
    {
        var debug = new BifrostCacheDebug
        {
            CacheHit = true,
            CacheId = hit.Key.StartsWith("bifrost:cache:v1:", StringComparison.Ordinal) ? hit.Key["bifrost:cache:v1:".Length..][..32] : hit.Key,
            HitType = Semantic,
            Similarity = Math.Round(hit.Similarity, 6),
            Threshold = hit.Threshold,
        };
        AddEmbeddingDebug(debug, hit.Lookup);
        return debug;
    }

    private void AddEmbeddingDebug(BifrostCacheDebug debug, SemanticLookup lookup)
    {
        var model = Options.Semantic.EmbeddingModel!;
        var slash = model.IndexOf('/', StringComparison.Ordinal);
        debug.ProviderUsed = model[..slash];
        debug.ModelUsed = model[(slash + 1)..];
        debug.InputTokens = lookup.InputTokens;
    }

    /// <summary>
    /// A stored stream's chunks, ready to replay: cost 0 on the chunk that carries the usage, <paramref name="debug"/> on the
    /// last chunk (as Bifrost: the chat usage chunk, Responses' <c>response.completed</c>; Anthropic's <c>message_stop</c>,
    /// whose wire has no <c>extra_fields</c>: the <c>x-bf-cache-status</c> header tells the HTTP caller).
    /// </summary>
    private static List<TChunk> Replay<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, ChunkCodec<TChunk> codec, byte[] stored, BifrostCacheDebug debug)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var chunks = CacheEntry.ReadChunks(stored, codec);
        for (var i = 0; i < chunks.Count; i++)
        {
            var isLast = i == chunks.Count - 1;
            if ((isLast || operation.ChunkUsageOf?.Invoke(chunks[i]) is not null) && operation.ChunkExtraFieldsOf?.Invoke(chunks[i]) is { } extra)
            {
                var changed = false;
                if (extra.Cost is not null)
                {
                    extra.Cost = 0; // the usage chunk: nothing was paid
                    changed = true;
                }

                if (isLast)
                {
                    extra.CacheDebug = debug;
                    changed = true;
                }

                if (changed && operation.WithChunkExtraFields is { } set)
                {
                    chunks[i] = set(chunks[i], extra); // a copy for chunks that keep extra_fields in their data (Responses events)
                }
            }
        }

        return chunks;
    }

    private static string ErrorCode(Exception ex) => ex is BifrostException bifrost ? $"{bifrost.StatusCode} {bifrost.Error.Error.Code ?? bifrost.Error.Error.Type}" : ex.GetType().Name;

    [LoggerMessage(EventId = 1540, Level = LogLevel.Warning, Message = "The semantic cache could not embed a {RequestType} request with {EmbeddingModel} ({Error}): the call goes on without the semantic cache.")]
    private static partial void LogEmbeddingFailed(ILogger logger, string requestType, string embeddingModel, string error);

    [LoggerMessage(EventId = 1541, Level = LogLevel.Warning, Message = "The semantic cache's vector store failed to {Stage} for a {RequestType} request ({Error}): the call goes on without the semantic cache.")]
    private static partial void LogStoreFailed(ILogger logger, string requestType, string stage, string error);

    [LoggerMessage(EventId = 1542, Level = LogLevel.Debug, Message = "A {RequestType} request was answered by the semantic cache (similarity {Similarity}, threshold {Threshold}).")]
    private static partial void LogSemanticHit(ILogger logger, string requestType, double similarity, double threshold);

    /// <summary>The semantic side of one call's cache decision: its partition, the text to embed, the threshold; <see cref="SearchToo"/> false when refreshing (embed to store, do not look up).</summary>
    private sealed record SemanticPlan(string Partition, string Text, double Threshold, bool SearchToo);

    /// <summary>A semantic lookup: the text's embedding (to store with the answer on a miss) and the hit, if any.</summary>
    private sealed record SemanticLookup(SemanticPlan Plan, float[]? Vector, int? InputTokens, SemanticHit? Hit);

    /// <summary>A stored answer near enough: its key, bytes, similarity and the threshold it passed.</summary>
    private sealed record SemanticHit(string Key, byte[] Payload, double Similarity, double Threshold, SemanticLookup Lookup);
}
