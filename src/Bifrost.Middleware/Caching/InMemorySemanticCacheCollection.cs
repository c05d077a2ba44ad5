using System.Linq.Expressions;
using System.Numerics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.VectorData;

namespace Bifrost.Middleware.Caching;

/// <summary>
/// The semantic cache's default vector collection: in this process's memory, searched exhaustively within a partition.
/// Microsoft.Extensions.VectorData ships no in-memory connector, so this implements the package's
/// <see cref="VectorStoreCollection{TKey, TRecord}"/> — the narrowest type that both searches and stores — for
/// <see cref="SemanticCacheEntry"/> alone.
/// <para>
/// Entries are kept per <see cref="SemanticCacheEntry.Partition"/>, each with a copy of its vector and the vector's norm
/// taken when it was stored. The cache layer's filter (<c>r =&gt; r.Partition == p &amp;&amp; r.ExpiresAt &gt; now</c>) is read
/// once per search: only that partition's entries are compared (a SIMD dot product over the stored copies, in double
/// precision), no delegate runs per entry, and concurrent searches share a read lock. Any other filter is compiled once per
/// search and run over every entry. Eviction: an entry past its <see cref="SemanticCacheEntry.ExpiresAt"/> (the injected
/// <see cref="TimeProvider"/>) is never returned and is dropped at the next eviction; past
/// <see cref="SemanticCacheOptions.MaxEntries"/> the entries that expire first are dropped — down to a tenth below the
/// limit, so the sort that picks them runs once per so many writes, not at every write.
/// </para>
/// </summary>
internal sealed class InMemorySemanticCacheCollection(TimeProvider time, int maxEntries) : VectorStoreCollection<string, SemanticCacheEntry>
{
    private readonly Dictionary<string, Item> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Item>> _partitions = new(StringComparer.Ordinal);
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);

    public override string Name => "bifrost_semantic_cache";

    /// <summary>The entries held now, expired ones included until the next eviction (for tests and diagnostics).</summary>
    public int Count
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return _entries.Count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) => Task.FromResult(true);

    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        _lock.EnterWriteLock();
        try
        {
            _entries.Clear();
            _partitions.Clear();
        }
        finally
        {
            _lock.ExitWriteLock();
        }

        return Task.CompletedTask;
    }

    public override Task<SemanticCacheEntry?> GetAsync(string key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        _lock.EnterReadLock();
        try
        {
            return Task.FromResult(_entries.TryGetValue(key, out var item) && item.ExpiresAt > Now ? item.Entry : null);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    public override async IAsyncEnumerable<SemanticCacheEntry> GetAsync(Expression<Func<SemanticCacheEntry, bool>> filter, int top, FilteredRecordRetrievalOptions<SemanticCacheEntry>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        var predicate = filter.Compile();
        List<SemanticCacheEntry> matches;
        _lock.EnterReadLock();
        try
        {
            var now = Now;
            matches = [.. _entries.Values.Where(i => i.ExpiresAt > now && predicate(i.Entry)).Select(static i => i.Entry).OrderBy(static e => e.Key, StringComparer.Ordinal).Skip(options?.Skip ?? 0).Take(top)];
        }
        finally
        {
            _lock.ExitReadLock();
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
        _lock.EnterWriteLock();
        try
        {
            Remove(key);
        }
        finally
        {
            _lock.ExitWriteLock();
        }

        return Task.CompletedTask;
    }

    public override Task UpsertAsync(SemanticCacheEntry record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        var vector = record.Embedding.ToArray();
        var item = new Item(record, vector, Math.Sqrt(Dot(vector, vector)));
        _lock.EnterWriteLock();
        try
        {
            Remove(record.Key);
            _entries[record.Key] = item;
            ref var bucket = ref CollectionsMarshal.GetValueRefOrAddDefault(_partitions, item.Partition, out _);
            bucket ??= [];
            item.Index = bucket.Count;
            bucket.Add(item);
            if (_entries.Count > maxEntries)
            {
                Evict();
            }
        }
        finally
        {
            _lock.ExitWriteLock();
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

        // The layer's filter names one partition and an expiry bound: read them once. Any other filter runs per entry.
        string? partition = null;
        long notExpiredAt = long.MinValue;
        Func<SemanticCacheEntry, bool>? predicate = null;
        if (options?.Filter is { } filter && !Filters.TryRead(filter, out partition, out notExpiredAt))
        {
            predicate = filter.Compile();
        }

        var best = Scan(query.Span, partition, notExpiredAt, predicate, options?.ScoreThreshold, (options?.Skip ?? 0) + top);
        foreach (var result in best.Skip(options?.Skip ?? 0))
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
        var norms = Math.Sqrt(Dot(a, a) * Dot(b, b));
        return norms == 0 ? 0 : Dot(a, b) / norms;
    }

    /// <summary>The dot product of two vectors of the same length, summed in double precision (SIMD where the machine has it).</summary>
    internal static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var length = Math.Min(a.Length, b.Length);
        var i = 0;
        double sum = 0;
        if (Vector.IsHardwareAccelerated && length >= Vector<float>.Count)
        {
            var acc = Vector<double>.Zero;
            for (; i <= length - Vector<float>.Count; i += Vector<float>.Count)
            {
                Vector.Widen(new Vector<float>(a[i..]), out var aLow, out var aHigh);
                Vector.Widen(new Vector<float>(b[i..]), out var bLow, out var bHigh);
                acc += (aLow * bLow) + (aHigh * bHigh);
            }

            sum = Vector.Sum(acc);
        }

        for (; i < length; i++)
        {
            sum += (double)a[i] * b[i];
        }

        return sum;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _lock.Dispose();
        }

        base.Dispose(disposing);
    }

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The <paramref name="keep"/> best entries of a partition (or of all, through <paramref name="predicate"/>), under the read lock.</summary>
    private List<VectorSearchResult<SemanticCacheEntry>> Scan(ReadOnlySpan<float> query, string? partition, long notExpiredAt, Func<SemanticCacheEntry, bool>? predicate, double? threshold, int keep)
    {
        var queryNorm = Math.Sqrt(Dot(query, query));
        var best = new List<VectorSearchResult<SemanticCacheEntry>>(Math.Min(keep, 16));
        _lock.EnterReadLock();
        try
        {
            var now = Math.Max(Now, notExpiredAt);
            if (partition is not null)
            {
                if (_partitions.TryGetValue(partition, out var bucket))
                {
                    foreach (var item in bucket)
                    {
                        Consider(item, query, queryNorm, now, predicate, threshold, keep, best);
                    }
                }
            }
            else
            {
                foreach (var item in _entries.Values)
                {
                    Consider(item, query, queryNorm, now, predicate, threshold, keep, best);
                }
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }

        return best;
    }

    /// <summary>Scores one entry and keeps it when it is among the best so far (a result is allocated only then).</summary>
    private static void Consider(Item item, ReadOnlySpan<float> query, double queryNorm, long now, Func<SemanticCacheEntry, bool>? predicate, double? threshold, int keep, List<VectorSearchResult<SemanticCacheEntry>> best)
    {
        if (item.ExpiresAt <= now || item.Vector.Length != query.Length || (predicate is not null && !predicate(item.Entry)))
        {
            return;
        }

        var score = queryNorm == 0 || item.Norm == 0 ? 0 : Dot(query, item.Vector) / (queryNorm * item.Norm);
        if ((threshold is { } min && score < min) || (best.Count == keep && !Better(score, item.Entry.Key, best[^1])))
        {
            return;
        }

        Insert(best, keep, new VectorSearchResult<SemanticCacheEntry>(item.Entry, score));
    }

    private static bool Better(double score, string key, VectorSearchResult<SemanticCacheEntry> than) =>
        score > than.Score || (score == than.Score && string.CompareOrdinal(key, than.Record.Key) < 0);

    /// <summary>Keeps the <paramref name="keep"/> best results, best first (ties: by key), as the results come.</summary>
    private static void Insert(List<VectorSearchResult<SemanticCacheEntry>> best, int keep, VectorSearchResult<SemanticCacheEntry> result)
    {
        var at = best.Count;
        while (at > 0 && Better(result.Score ?? 0, result.Record.Key, best[at - 1]))
        {
            at--;
        }

        if (at >= keep)
        {
            return;
        }

        best.Insert(at, result);
        if (best.Count > keep)
        {
            best.RemoveAt(best.Count - 1);
        }
    }

    /// <summary>Under the write lock: drops an entry from the key map and its partition (the last one of the partition takes its place).</summary>
    private void Remove(string key)
    {
        if (!_entries.Remove(key, out var item))
        {
            return;
        }

        var bucket = _partitions[item.Partition];
        var last = bucket[^1];
        bucket[item.Index] = last;
        last.Index = item.Index;
        bucket.RemoveAt(bucket.Count - 1);
        if (bucket.Count == 0)
        {
            _partitions.Remove(item.Partition);
        }
    }

    /// <summary>Under the write lock: drops the expired entries, then, while still over the limit, the ones that expire first — down to a tenth below it.</summary>
    private void Evict()
    {
        var now = Now;
        foreach (var key in _entries.Values.Where(i => i.ExpiresAt <= now).Select(static i => i.Entry.Key).ToList())
        {
            Remove(key);
        }

        if (_entries.Count > maxEntries)
        {
            var target = maxEntries - (maxEntries / 10);
            foreach (var key in _entries.Values.OrderBy(static i => i.ExpiresAt).ThenBy(static i => i.Entry.Key, StringComparer.Ordinal).Take(_entries.Count - target).Select(static i => i.Entry.Key).ToList())
            {
                Remove(key);
            }
        }
    }

    /// <summary>A stored entry with what was read from it when it was stored (its key, partition, expiry and a copy of its vector).</summary>
    private sealed class Item(SemanticCacheEntry entry, float[] vector, double norm)
    {
        public SemanticCacheEntry Entry { get; } = entry;

        public string Partition { get; } = entry.Partition;

        public long ExpiresAt { get; } = entry.ExpiresAt;

        public float[] Vector { get; } = vector;

        public double Norm { get; } = norm;

        /// <summary>The item's place in its partition's list.</summary>
        public int Index { get; set; }
    }

    /// <summary>Reads the filter the cache layer passes — <c>Partition == p</c> and <c>ExpiresAt &gt; t</c> terms joined by <c>&amp;&amp;</c>.</summary>
    private static class Filters
    {
        public static bool TryRead(Expression<Func<SemanticCacheEntry, bool>> filter, out string? partition, out long notExpiredAt)
        {
            partition = null;
            notExpiredAt = long.MinValue;
            return Read(filter.Body, filter.Parameters[0], ref partition, ref notExpiredAt);
        }

        private static bool Read(Expression body, ParameterExpression record, ref string? partition, ref long notExpiredAt)
        {
            switch (body)
            {
                case BinaryExpression { NodeType: ExpressionType.AndAlso } and:
                    return Read(and.Left, record, ref partition, ref notExpiredAt) && Read(and.Right, record, ref partition, ref notExpiredAt);
                case BinaryExpression { NodeType: ExpressionType.Equal } equal when IsMember(equal.Left, record, nameof(SemanticCacheEntry.Partition)) && TryValue(equal.Right, record, out var right) && right is string p1 && partition is null:
                    partition = p1;
                    return true;
                case BinaryExpression { NodeType: ExpressionType.Equal } equal when IsMember(equal.Right, record, nameof(SemanticCacheEntry.Partition)) && TryValue(equal.Left, record, out var left) && left is string p2 && partition is null:
                    partition = p2;
                    return true;
                case BinaryExpression { NodeType: ExpressionType.GreaterThan } greater when IsMember(greater.Left, record, nameof(SemanticCacheEntry.ExpiresAt)) && TryValue(greater.Right, record, out var bound) && bound is long t:
                    notExpiredAt = Math.Max(notExpiredAt, t);
                    return true;
                default:
                    return false;
            }
        }

        private static bool IsMember(Expression expression, ParameterExpression record, string name) =>
            expression is MemberExpression { Member.Name: var member } access && member == name && access.Expression == record;

        /// <summary>The value of an expression that does not read the record: a constant or a captured variable.</summary>
        private static bool TryValue(Expression expression, ParameterExpression record, out object? value)
        {
            switch (expression)
            {
                case ConstantExpression constant:
                    value = constant.Value;
                    return true;
                case MemberExpression { Expression: ConstantExpression { Value: var closure }, Member: FieldInfo field }:
                    value = field.GetValue(closure);
                    return true;
                case MemberExpression { Expression: ConstantExpression { Value: var owner }, Member: PropertyInfo property }:
                    value = property.GetValue(owner);
                    return true;
                case UnaryExpression { NodeType: ExpressionType.Convert } convert when convert.Operand.Type == typeof(int) && convert.Type == typeof(long) && TryValue(convert.Operand, record, out var narrow) && narrow is int small:
                    value = (long)small;
                    return true;
                default:
                    value = null;
                    return false;
            }
        }
    }
}
