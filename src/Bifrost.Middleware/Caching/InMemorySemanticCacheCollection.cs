using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.VectorData;

namespace Bifrost.Middleware.Caching;

/// <summary>
/// The semantic cache's default vector collection: in this process's memory, searched exhaustively (cosine similarity over
/// the entries that pass the filter; at the default 10,000 entries of 256 dimensions a search is a few milliseconds at most,
/// and only entries of the request's own partition are compared). Microsoft.Extensions.VectorData ships no in-memory
/// connector, so this implements the package's <see cref="VectorStoreCollection{TKey, TRecord}"/> — the narrowest type that
/// both searches (<see cref="IVectorSearchable{TRecord}"/> only searches) and stores — for <see cref="SemanticCacheEntry"/>
/// alone. Eviction: an entry past its <see cref="SemanticCacheEntry.ExpiresAt"/> (the injected <see cref="TimeProvider"/>) is
/// never returned and is dropped at the next write; past <see cref="SemanticCacheOptions.MaxEntries"/> the entries that
/// expire first are dropped.
/// </summary>
internal sealed class InMemorySemanticCacheCollection(TimeProvider time, int maxEntries) : VectorStoreCollection<string, SemanticCacheEntry>
{
    private readonly Dictionary<string, SemanticCacheEntry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public override string Name => "bifrost_semantic_cache";

    /// <summary>The entries held now, expired ones included until the next write (for tests and diagnostics).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) => Task.FromResult(true);

    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _entries.Clear();
        }

        return Task.CompletedTask;
    }

    public override Task<SemanticCacheEntry?> GetAsync(string key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return Task.FromResult(_entries.TryGetValue(key, out var entry) && entry.ExpiresAt > Now ? entry : null);
        }
    }

    public override async IAsyncEnumerable<SemanticCacheEntry> GetAsync(Expression<Func<SemanticCacheEntry, bool>> filter, int top, FilteredRecordRetrievalOptions<SemanticCacheEntry>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        var predicate = filter.Compile(preferInterpretation: true);
        List<SemanticCacheEntry> matches;
        lock (_lock)
        {
            var now = Now;
            matches = [.. _entries.Values.Where(e => e.ExpiresAt > now && predicate(e)).OrderBy(static e => e.Key, StringComparer.Ordinal).Skip(options?.Skip ?? 0).Take(top)];
        }

        foreach (var match in matches)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return match;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    public override Task DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _entries.Remove(key);
        }

        return Task.CompletedTask;
    }

    public override Task UpsertAsync(SemanticCacheEntry record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (_lock)
        {
            _entries[record.Key] = record;
            if (_entries.Count > maxEntries)
            {
                Evict();
            }
        }

        return Task.CompletedTask;
    }

    public override async Task UpsertAsync(IEnumerable<SemanticCacheEntry> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        foreach (var record in records)
        {
            await UpsertAsync(record, cancellationToken).ConfigureAwait(false);
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<SemanticCacheEntry>> SearchAsync<TInput>(TInput searchValue, int top, VectorSearchOptions<SemanticCacheEntry>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        ReadOnlyMemory<float> query = searchValue switch
        {
            ReadOnlyMemory<float> memory => memory,
            float[] array => array,
            Microsoft.Extensions.AI.Embedding<float> embedding => embedding.Vector,
            _ => throw new NotSupportedException($"The in-memory semantic cache searches with ReadOnlyMemory<float>, float[] or Embedding<float>, not {typeof(TInput).Name}."),
        };
        var predicate = options?.Filter?.Compile(preferInterpretation: true);
        var results = new List<VectorSearchResult<SemanticCacheEntry>>();
        lock (_lock)
        {
            var now = Now;
            foreach (var entry in _entries.Values)
            {
                if (entry.ExpiresAt <= now || entry.Embedding.Length != query.Length || (predicate is not null && !predicate(entry)))
                {
                    continue;
                }

                var score = Cosine(query.Span, entry.Embedding.Span);
                if (options?.ScoreThreshold is { } threshold && score < threshold)
                {
                    continue;
                }

                results.Add(new VectorSearchResult<SemanticCacheEntry>(entry, score));
            }
        }

        foreach (var result in results.OrderByDescending(static r => r.Score).ThenBy(static r => r.Record.Key, StringComparer.Ordinal).Skip(options?.Skip ?? 0).Take(top))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return result;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    public override object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    /// <summary>The cosine similarity of two vectors of the same length (0 when either is all zeros).</summary>
    internal static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, normA = 0, normB = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            normA += (double)a[i] * a[i];
            normB += (double)b[i] * b[i];
        }

        return normA == 0 || normB == 0 ? 0 : dot / Math.Sqrt(normA * normB);
    }

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Drops the expired entries, then, while still over the limit, the ones that expire first.</summary>
    private void Evict()
    {
        var now = Now;
        foreach (var key in _entries.Where(e => e.Value.ExpiresAt <= now).Select(static e => e.Key).ToList())
        {
            _entries.Remove(key);
        }

        if (_entries.Count > maxEntries)
        {
            foreach (var key in _entries.Values.OrderBy(static e => e.ExpiresAt).ThenBy(static e => e.Key, StringComparer.Ordinal).Take(_entries.Count - maxEntries).Select(static e => e.Key).ToList())
            {
                _entries.Remove(key);
            }
        }
    }
}
