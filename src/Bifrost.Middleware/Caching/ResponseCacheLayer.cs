using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Operations;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.VectorData;

namespace Bifrost.Middleware.Caching;

/// <summary>The response cache's options as the host configured them (<c>Bifrost:Cache</c>), read once.</summary>
internal sealed class ResponseCacheSettings(IOptions<BifrostOptions> options)
{
    public ResponseCacheOptions Options { get; } = options.Value.Cache;

    public bool Enabled => Options.Enabled;
}

/// <summary>
/// The exact response cache, a layer of the gateway pipeline (order 450): inside governance (400), so a key that may not
/// call, or is over its budget or limits, is refused before any lookup and a hit is still recorded in the usage ledger —
/// at cost 0 (<c>extra_fields.cost</c> is 0 on hits) — and outside the attempt loop, so a hit never reaches a provider;
/// plugins (300) and the request log (350) see hits like any answer. Absent from the pipeline unless
/// <c>Bifrost:Cache:Enabled</c>.
/// <para>
/// A call is looked up only with a cache key (<c>x-bf-cache-key</c> / <see cref="BifrostCacheControl.Key"/>, else
/// <see cref="ResponseCacheOptions.DefaultCacheKey"/>), when its rule caches its resolved <c>provider/model</c>, and — unless
/// allowed — when it does not ask for a <c>temperature</c> above 0. Whole answers go through
/// <see cref="HybridCache.GetOrCreateAsync{TState, T}(string, TState, Func{TState, CancellationToken, ValueTask{T}}, HybridCacheEntryOptions?, IEnumerable{string}?, CancellationToken)"/>:
/// N identical concurrent calls make one upstream call. A failed call stores nothing. Streams are replayed chunk by chunk
/// from the stored chunk sequence; a streamed answer is stored only once it completed (never a failed, cut or cancelled one).
/// Every entry carries its own expiry, checked against the injected <see cref="TimeProvider"/>.
/// </para>
/// </summary>
internal sealed partial class ResponseCacheLayer(
    GatewayHandler inner,
    ResponseCacheSettings settings,
    HybridCache cache,
    ProviderRegistry registry,
    TimeProvider time,
    ResponseCacheMetrics metrics,
    ILogger<ResponseCacheLayer> logger,
    VectorStoreCollection<string, SemanticCacheEntry>? semanticStore = null) : DelegatingGatewayHandler(inner)
{
    public const int Order = 450;

    public const string Hit = "hit";
    public const string Miss = "miss";
    public const string Bypass = "bypass";

    private const HybridCacheEntryFlags NoWrite = HybridCacheEntryFlags.DisableLocalCacheWrite | HybridCacheEntryFlags.DisableDistributedCacheWrite;
    private const HybridCacheEntryFlags NoRead = HybridCacheEntryFlags.DisableLocalCacheRead | HybridCacheEntryFlags.DisableDistributedCacheRead;

    public static GatewayLayer Registration { get; } = new(
        Order,
        "cache",
        static (services, next) => services.GetRequiredService<ResponseCacheSettings>() is { Enabled: true } settings
            ? new ResponseCacheLayer(
                next,
                settings,
                services.GetRequiredService<HybridCache>(),
                services.GetRequiredService<ProviderRegistry>(),
                services.GetRequiredService<TimeProvider>(),
                services.GetRequiredService<ResponseCacheMetrics>(),
                services.GetRequiredService<ILogger<ResponseCacheLayer>>(),
                SemanticOn(settings.Options) ? services.GetRequiredService<VectorStoreCollection<string, SemanticCacheEntry>>() : null)
            : next);

    private ResponseCacheOptions Options => settings.Options;

    private TimeProvider Time => time;

    public override async Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
    {
        var control = CacheRequest.Current;
        if (Plan(operation, request, stream: false, control) is not { } plan)
        {
            return await Inner.SendAsync(operation, request, cancellationToken).ConfigureAwait(false);
        }

        var started = time.GetTimestamp();
        var state = new Fill<TRequest, TResponse, TChunk>(this, operation, request, plan);
        var flags = (plan.NoStore ? NoWrite : HybridCacheEntryFlags.None) | (plan.Refresh || !plan.ReadExact ? NoRead : HybridCacheEntryFlags.None);
        byte[] entry;
        SemanticHit? semanticHit = null;
        try
        {
            entry = await GetOrCreateAsync(plan, state, flags, cancellationToken).ConfigureAwait(false);
            if (!state.Created && CacheEntry.IsExpired(entry, time.GetUtcNow()))
            {
                // Past its own expiry (the injected clock) though the store still had it: fetched again and replaced.
                entry = await GetOrCreateAsync(plan, state, flags | NoRead, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (EntryTooLargeException tooLarge)
        {
            // Served, not stored. Calls that joined the one that fetched it read their own copy of its answer.
            LogTooLarge(logger, operation.Name, tooLarge.Size, Options.MaxEntryBytes);
            entry = tooLarge.Entry;
        }
        catch (SemanticHitException hit)
        {
            // An exact miss that a stored answer of a near text answers: served from that entry, nothing stored under this key.
            semanticHit = hit.Hit;
            entry = hit.Hit.Payload;
        }

        TResponse response;
        string outcome;
        if (semanticHit is null && state.Created && state.Response is { } fresh)
        {
            response = fresh;
            outcome = Miss;
        }
        else
        {
            response = CacheEntry.ReadResponse(entry, operation.ResponseInfo);
            outcome = Hit;
        }

        var extra = operation.ExtraFieldsOf(response);
        if (extra is null)
        {
            extra = new BifrostExtraFields { RequestType = operation.Name };
            operation.SetExtraFields(response, extra);
        }

        extra.CacheDebug = semanticHit is { } near
            ? SemanticDebug(near)
            : new BifrostCacheDebug { CacheHit = outcome == Hit, CacheId = plan.Id, HitType = outcome == Hit ? "direct" : null };
        if (outcome == Miss && state.Lookup is { } lookup)
        {
            AddEmbeddingDebug(extra.CacheDebug, lookup); // as Bifrost: the embedding's provider, model and tokens on a semantic miss too
        }

        if (outcome == Hit)
        {
            extra.Cost = 0; // nothing was paid for this answer: governance records it in the usage ledger at 0
            extra.Latency = (long)time.GetElapsedTime(started).TotalMilliseconds;
        }

        Report(control, operation.Name, outcome, semanticHit is not null || (outcome == Miss && plan.Semantic is not null) ? Semantic : Direct);
        return response;
    }

    public override IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
    {
        var control = CacheRequest.Current;
        return operation.CacheCodec is { } codec && Plan(operation, request, stream: true, control) is { } plan
            ? CachedStreamAsync(operation, request, codec, plan, control, cancellationToken)
            : Inner.StreamAsync(operation, request, cancellationToken);
    }

    private async IAsyncEnumerable<TChunk> CachedStreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, ChunkCodec<TChunk> codec, CachePlan plan, CacheRequest? control, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var streamName = operation.StreamName ?? operation.Name;
        byte[]? stored = null;
        if (!plan.Refresh && plan.ReadExact)
        {
            stored = await cache.GetOrCreateAsync<byte[]?>(
                plan.Key,
                static _ => ValueTask.FromResult<byte[]?>(null),
                new HybridCacheEntryOptions { Flags = HybridCacheEntryFlags.DisableUnderlyingData | NoWrite },
                null,
                cancellationToken).ConfigureAwait(false);
            if (stored is not null && CacheEntry.IsExpired(stored, time.GetUtcNow()))
            {
                stored = null;
            }
        }

        if (stored is not null)
        {
            Report(control, streamName, Hit, Direct);
            foreach (var chunk in Replay(operation, codec, stored, new BifrostCacheDebug { CacheHit = true, CacheId = plan.Id, HitType = "direct" }))
            {
                yield return chunk;
            }

            yield break;
        }

        SemanticLookup? lookup = null;
        if (plan.Semantic is { } semantic && !plan.Refresh)
        {
            lookup = await SemanticLookupAsync(streamName, semantic, cancellationToken).ConfigureAwait(false);
            if (lookup?.Hit is { } hit)
            {
                Report(control, streamName, Hit, Semantic);
                foreach (var chunk in Replay(operation, codec, hit.Payload, SemanticDebug(hit)))
                {
                    yield return chunk;
                }

                yield break;
            }
        }
        else if (plan.Semantic is { } refreshed)
        {
            lookup = await SemanticLookupAsync(streamName, refreshed with { SearchToo = false }, cancellationToken).ConfigureAwait(false);
        }

        Report(control, streamName, Miss, plan.Semantic is null ? Direct : Semantic);
        using var recorder = plan.NoStore ? null : new ChunkRecorder(Options.MaxEntryBytes);
        TChunk? last = null;
        await using (var enumerator = Inner.StreamAsync(operation, request, cancellationToken).GetAsyncEnumerator(cancellationToken))
        {
            while (await enumerator.MoveNextAsync().ConfigureAwait(false))
            {
                var chunk = enumerator.Current;
                recorder?.Add(chunk, codec);
                last = chunk;
                yield return chunk;
            }
        }

        // Reached only when the stream ended without an error: a failure throws out of MoveNextAsync, a caller that stops
        // reading disposes this enumerator at its last yield — neither stores anything; nor does an event stream that ended
        // before its closing event (a provider that closed the connection early).
        if (recorder is not null)
        {
            if (recorder.Overflowed)
            {
                LogTooLarge(logger, streamName, recorder.Size, Options.MaxEntryBytes);
            }
            else if (codec.Completes is { } completes && (last is null || !completes(last)))
            {
                LogIncomplete(logger, streamName);
            }
            else if (!cancellationToken.IsCancellationRequested)
            {
                var expires = time.GetUtcNow() + plan.Ttl;
                var entry = recorder.ToEntry(expires);
                await cache.SetAsync(plan.Key, entry, EntryOptions(plan.Ttl, HybridCacheEntryFlags.None), null, CancellationToken.None).ConfigureAwait(false);
                if (lookup?.Vector is { } vector)
                {
                    await StoreSemanticAsync(streamName, plan, lookup.Plan, vector, entry, expires).ConfigureAwait(false);
                }
            }
        }
    }

    private ValueTask<byte[]> GetOrCreateAsync<TRequest, TResponse, TChunk>(CachePlan plan, Fill<TRequest, TResponse, TChunk> state, HybridCacheEntryFlags flags, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class =>
        cache.GetOrCreateAsync(plan.Key, state, static (fill, ct) => fill.RunAsync(ct), EntryOptions(plan.Ttl, flags), null, cancellationToken);

    private static HybridCacheEntryOptions EntryOptions(TimeSpan ttl, HybridCacheEntryFlags flags) => new() { Expiration = ttl, LocalCacheExpiration = ttl, Flags = flags };

    /// <summary>Whether and how the call is cached; null: it goes past the cache (no key, its model's rule is off, a sampled answer, an operation the cache does not keep).</summary>
    private CachePlan? Plan<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, bool stream, CacheRequest? control)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        // Binary answers (speech) and uploads (transcriptions) are not kept: their bodies are streams, not JSON.
        if (operation.BodyOf is not null || operation.RequestBody != RouteBody.Json)
        {
            return Bypassed(control);
        }

        var cacheKey = control?.Key ?? Options.DefaultCacheKey;
        if (string.IsNullOrEmpty(cacheKey))
        {
            return Bypassed(control);
        }

        ResolvedModel target;
        try
        {
            target = RequestPlanner.PlanModels(registry, operation.Model(request), operation.Fallbacks(request), operation.Name)[0];
        }
        catch (BifrostException)
        {
            return null; // the attempt loop answers the 400 as without the cache
        }

        ResponseCacheRule? rule = null;
        foreach (var candidate in Options.Rules)
        {
            if (candidate.Matches(target.Provider.Name, target.Model))
            {
                rule = candidate;
                break;
            }
        }

        if (rule is { Enabled: false })
        {
            return Bypassed(control);
        }

        using var json = JsonDocument.Parse(JsonSerializer.SerializeToUtf8Bytes(request, operation.RequestInfo));
        var body = json.RootElement;
        if (!(rule?.CacheNonZeroTemperature ?? Options.CacheNonZeroTemperature)
            && body.ValueKind == JsonValueKind.Object
            && body.TryGetProperty("temperature"u8, out var temperature)
            && temperature.ValueKind == JsonValueKind.Number
            && temperature.GetDouble() > 0)
        {
            return Bypassed(control);
        }

        var tenant = Options.ShareAcrossTenants ? null : TenantOf(control);
        var semantic = control?.DirectOnly == true ? null : SemanticPlanOf(operation.Name, stream, tenant, target, cacheKey, rule, body, control);
        if (control?.SemanticOnly == true && semantic is null)
        {
            return Bypassed(control); // x-bf-cache-type: semantic for a request the semantic cache does not take
        }

        var (key, id) = CacheKeys.Of(tenant, operation.Name, stream, target.Provider.Name, target.Model, cacheKey, body);
        var ttl = control?.Ttl is { } asked ? (asked > Options.MaxTtl ? Options.MaxTtl : asked) : rule?.Ttl ?? Options.Ttl;
        return new CachePlan(key, id, ttl, control?.NoStore == true, control?.Refresh == true, ReadExact: control?.SemanticOnly != true, semantic);
    }

    private static CachePlan? Bypassed(CacheRequest? control)
    {
        if (control?.Outcome is { Status: null } box)
        {
            box.Status = Bypass;
        }

        return null;
    }

    /// <summary>Whose entries these are: the HTTP caller (its virtual key or job owner), else a job's virtual key or owner, else the host's in-process calls.</summary>
    private static string TenantOf(CacheRequest? control) =>
        control?.Tenant
        ?? (GovernanceCaller.Current is { } caller ? GovernanceCaller.OwnerPrefix + caller.KeyId : null)
        ?? RequestLog.RequestLogCaller.Current?.Owner
        ?? "host";

    private void Report(CacheRequest? control, string requestType, string outcome, string kind)
    {
        if (control?.Outcome is { } box)
        {
            box.Status = outcome;
        }

        metrics.Lookup(requestType, outcome, kind);
    }

    [LoggerMessage(EventId = 1420, Level = LogLevel.Debug, Message = "A {RequestType} answer of {Size} bytes was served but not cached: larger than Bifrost:Cache:MaxEntryBytes ({Max}).")]
    private static partial void LogTooLarge(ILogger logger, string requestType, long size, int max);

    [LoggerMessage(EventId = 1600, Level = LogLevel.Debug, Message = "A {RequestType} stream ended without its closing event: relayed, not cached.")]
    private static partial void LogIncomplete(ILogger logger, string requestType);

    /// <summary>One call's cache decision.</summary>
    private sealed record CachePlan(string Key, string Id, TimeSpan Ttl, bool NoStore, bool Refresh, bool ReadExact, SemanticPlan? Semantic);

    /// <summary>The factory state of one caller: only the caller whose factory runs gets <see cref="Created"/> and its own answer.</summary>
    private sealed class Fill<TRequest, TResponse, TChunk>(ResponseCacheLayer layer, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CachePlan plan)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        public bool Created { get; private set; }

        public TResponse? Response { get; private set; }

        /// <summary>The semantic lookup this caller made after the exact miss (null: none).</summary>
        public SemanticLookup? Lookup { get; private set; }

        public async ValueTask<byte[]> RunAsync(CancellationToken cancellationToken)
        {
            Created = true;
            if (plan.Semantic is { } semantic)
            {
                Lookup = await layer.SemanticLookupAsync(operation.Name, plan.Refresh ? semantic with { SearchToo = false } : semantic, cancellationToken).ConfigureAwait(false);
                if (Lookup?.Hit is { } hit)
                {
                    throw new SemanticHitException(hit);
                }
            }

            var response = await layer.Inner.SendAsync(operation, request, cancellationToken).ConfigureAwait(false);
            Response = response;
            var expires = layer.Time.GetUtcNow() + plan.Ttl;
            var entry = CacheEntry.OfResponse(expires, response, operation.ResponseInfo);
            if (entry.Length > layer.Options.MaxEntryBytes)
            {
                throw new EntryTooLargeException(entry);
            }

            if (Lookup?.Vector is { } vector && !plan.NoStore)
            {
                await layer.StoreSemanticAsync(operation.Name, plan, Lookup.Plan, vector, entry, expires).ConfigureAwait(false);
            }

            return entry;
        }
    }

    /// <summary>Thrown out of the factory so that HybridCache stores nothing; carries the answer to every caller waiting on it.</summary>
#pragma warning disable CA1032, CA1064 // internal control flow, never seen outside the layer
    private sealed class EntryTooLargeException(byte[] entry) : Exception("The answer is larger than Bifrost:Cache:MaxEntryBytes.")
#pragma warning restore CA1032, CA1064
    {
        public byte[] Entry { get; } = entry;

        public long Size => Entry.Length;
    }

    /// <summary>Thrown out of the factory on a semantic hit so that HybridCache stores nothing under the exact key; carries the hit to every caller waiting on it.</summary>
#pragma warning disable CA1032, CA1064 // internal control flow, never seen outside the layer
    private sealed class SemanticHitException(SemanticHit hit) : Exception("A semantic cache hit.")
#pragma warning restore CA1032, CA1064
    {
        public SemanticHit Hit { get; } = hit;
    }

    /// <summary>A stream's chunks as they pass (each in its operation's <see cref="ChunkCodec{TChunk}"/> form), up to the entry size; past it nothing more is kept (the stream is then not cached).</summary>
    private sealed class ChunkRecorder(int maxBytes) : IDisposable
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(4096);
        private Utf8JsonWriter? _writer;

        public bool Overflowed { get; private set; }

        public long Size { get; private set; }

        public void Add<TChunk>(TChunk chunk, ChunkCodec<TChunk> codec)
            where TChunk : class
        {
            if (Overflowed)
            {
                return;
            }

            if (_buffer.WrittenCount > 0)
            {
                _buffer.Write(","u8);
            }

            _writer ??= new Utf8JsonWriter(_buffer);
            codec.Write(_writer, chunk);
            _writer.Flush();
            _writer.Reset(); // the next chunk is another top-level value
            Size = _buffer.WrittenCount;
            if (Size > maxBytes - 64)
            {
                Overflowed = true;
                _buffer.Clear();
            }
        }

        public byte[] ToEntry(DateTimeOffset expires) => CacheEntry.OfChunks(expires, _buffer.WrittenSpan);

        public void Dispose() => _writer?.Dispose();
    }
}

/// <summary>
/// An entry's bytes: <c>{"expires_at":&lt;unix ms&gt;,"response":{...}}</c> for a whole answer, <c>{"expires_at":...,"chunks":[...]}</c>
/// for a stream, the answer in its wire JSON and the chunks in their operation's <see cref="ChunkCodec{TChunk}"/> form.
/// </summary>
internal static class CacheEntry
{
    public static byte[] OfResponse<T>(DateTimeOffset expires, T response, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("expires_at"u8, expires.ToUnixTimeMilliseconds());
            writer.WritePropertyName("response"u8);
            JsonSerializer.Serialize(writer, response, info);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    public static byte[] OfChunks(DateTimeOffset expires, ReadOnlySpan<byte> commaSeparatedChunks)
    {
        var head = System.Text.Encoding.UTF8.GetBytes($"{{\"expires_at\":{expires.ToUnixTimeMilliseconds()},\"chunks\":[");
        var entry = new byte[head.Length + commaSeparatedChunks.Length + 2];
        head.CopyTo(entry, 0);
        commaSeparatedChunks.CopyTo(entry.AsSpan(head.Length));
        entry[^2] = (byte)']';
        entry[^1] = (byte)'}';
        return entry;
    }

    public static bool IsExpired(byte[] entry, DateTimeOffset now)
    {
        var reader = new Utf8JsonReader(entry);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("expires_at"u8))
            {
                reader.Read();
                return reader.GetInt64() <= now.ToUnixTimeMilliseconds();
            }
        }

        return true;
    }

    public static T ReadResponse<T>(byte[] entry, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
    {
        using var document = JsonDocument.Parse(entry);
        return document.RootElement.GetProperty("response"u8).Deserialize(info) ?? throw new JsonException("An empty cache entry.");
    }

    public static List<T> ReadChunks<T>(byte[] entry, ChunkCodec<T> codec)
        where T : class
    {
        using var document = JsonDocument.Parse(entry);
        var chunks = new List<T>();
        foreach (var chunk in document.RootElement.GetProperty("chunks"u8).EnumerateArray())
        {
            chunks.Add(codec.Read(chunk));
        }

        return chunks;
    }
}

/// <summary>The response cache's counters (<c>bifrost.cache.lookups</c>, by request type, outcome (hit, miss) and kind (direct, semantic); <c>bifrost.cache.semantic.errors</c>, by stage) on the meter <c>Bifrost.Middleware</c>.</summary>
internal sealed class ResponseCacheMetrics
{
    public const string Lookups = "bifrost.cache.lookups";
    public const string OutcomeTag = "bifrost.cache.outcome";
    public const string RequestTypeTag = "bifrost.request.type";
    public const string KindTag = "bifrost.cache.kind";
    public const string SemanticErrors = "bifrost.cache.semantic.errors";
    public const string StageTag = "bifrost.cache.stage";

    private readonly Counter<long> _lookups;
    private readonly Counter<long> _semanticErrors;

    public ResponseCacheMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(Diagnostics.BifrostTelemetry.Name);
        _lookups = meter.CreateCounter<long>(Lookups, unit: "{lookup}", description: "Response cache lookups, by outcome (hit: answered from the cache; miss: answered by the provider and stored; error: the semantic lookup failed and the call went uncached by it) and kind (direct: the exact cache only; semantic: the semantic cache was looked up too).");
        _semanticErrors = meter.CreateCounter<long>(SemanticErrors, unit: "{error}", description: "Semantic cache failures, by stage (embedding: the embedding call failed; search, store: the vector store did); the call went on without the semantic cache.");
    }

    public void SemanticError(string requestType, string stage)
    {
        if (_semanticErrors.Enabled)
        {
            _semanticErrors.Add(1, new TagList { { RequestTypeTag, requestType }, { StageTag, stage } });
        }
    }

    public void Lookup(string requestType, string outcome, string kind)
    {
        if (_lookups.Enabled)
        {
            _lookups.Add(1, new TagList { { RequestTypeTag, requestType }, { OutcomeTag, outcome }, { KindTag, kind } });
        }
    }
}
