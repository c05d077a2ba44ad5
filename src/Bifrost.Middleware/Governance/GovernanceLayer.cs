using System.Runtime.CompilerServices;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Governance.Pricing;
using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Governance;

/// <summary>
/// Applies the current caller's virtual key (<see cref="GovernanceCaller.Current"/>) to every operation before anything
/// reaches a provider: the key must still exist, be active and not expired (401), and of the primary model and its
/// fallbacks those the key may not use are skipped (403 when none is left). Then one admission
/// (<see cref="IGovernanceCounterStore.TryAdmitAsync"/>) over every budget and request/token limit on the path —
/// customer → team → key → the key's provider config — reserving the input estimate (tokens, and their cost at the
/// model's input price): 402 <c>budget_exceeded</c> or 429 (Retry-After), nothing sent. Targets whose provider config
/// refuses are skipped like disallowed ones. A key's concurrent slots are taken per instance
/// (<see cref="GovernanceRateLimiter"/>) and held until the call (or its stream) ends. After the call the real usage is
/// settled (real − reserved; 0 on failure) and recorded in the usage ledger (<see cref="UsageLedger"/>) — also for calls
/// without a key (Optional mode; the host's own in-process calls). Absent from the pipeline when <c>Governance:Mode</c> is Off.
/// </summary>
internal sealed partial class GovernanceLayer(
    GatewayHandler inner,
    VirtualKeyStore store,
    ProviderRegistry registry,
    GovernanceRateLimiter limiter,
    IGovernanceCounterStore counters,
    UsageLedger ledger,
    PricingCatalog pricing,
    TimeProvider time,
    ILogger<GovernanceLayer> logger,
    Diagnostics.OperationalMetrics metrics) : DelegatingGatewayHandler(inner)
{
    public const int Order = 400;

    public static GatewayLayer Registration { get; } = new(
        Order,
        "governance",
        static (services, next) => services.GetRequiredService<VirtualKeyStore>() is { Mode: not GovernanceMode.Off } store
            ? new GovernanceLayer(
                next,
                store,
                services.GetRequiredService<ProviderRegistry>(),
                services.GetRequiredService<GovernanceRateLimiter>(),
                services.GetRequiredService<IGovernanceCounterStore>(),
                services.GetRequiredService<UsageLedger>(),
                services.GetRequiredService<PricingCatalog>(),
                services.GetRequiredService<TimeProvider>(),
                services.GetRequiredService<ILogger<GovernanceLayer>>(),
                services.GetRequiredService<Diagnostics.OperationalMetrics>())
            : next);

    public override async Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
    {
        var started = new CallStart(time.GetUtcNow(), time.GetTimestamp());
        var caller = GovernanceCaller.Current;
        GovernanceRateLimiter.Lease? slot = null;
        Ticket? ticket = null;
        if (caller is not null)
        {
            try
            {
                var plan = Check(caller, operation, request, operation.Name);
                (slot, ticket) = await AdmitAsync(caller, operation, request, plan, operation.Name, started.At, cancellationToken).ConfigureAwait(false);
            }
            catch (BifrostException ex)
            {
                metrics.GovernanceRefused(ex);
                throw;
            }
        }

        using (slot)
        {
            TResponse response;
            try
            {
                response = await Inner.SendAsync(operation, request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                await SettleAsync(caller, ticket, operation.Name, UsageSource.Sync, StatusOf(ex, cancellationToken), (ex as BifrostException)?.Error.ExtraFields, null, null, null, started).ConfigureAwait(false);
                throw;
            }

            var extra = operation.ExtraFieldsOf(response);
            var usage = operation.CostUsageOf?.Invoke(response) ?? operation.UsageOf?.Invoke(response);
            await SettleAsync(caller, ticket, operation.Name, UsageSource.Sync, 200, extra, usage, extra?.Cost, operation.ResponseIdOf?.Invoke(response), started).ConfigureAwait(false);
            return response;
        }
    }

    public override IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        GovernedStreamAsync(GovernanceCaller.Current, operation, request, cancellationToken);

    private async IAsyncEnumerable<TChunk> GovernedStreamAsync<TRequest, TResponse, TChunk>(GovernanceCaller? caller, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var started = new CallStart(time.GetUtcNow(), time.GetTimestamp());
        var requestType = operation.StreamName ?? operation.Name;
        GovernanceRateLimiter.Lease? slot = null;
        Ticket? ticket = null;
        if (caller is not null)
        {
            try
            {
                var plan = Check(caller, operation, request, requestType);
                (slot, ticket) = await AdmitAsync(caller, operation, request, plan, requestType, started.At, cancellationToken).ConfigureAwait(false);
            }
            catch (BifrostException ex)
            {
                metrics.GovernanceRefused(ex);
                throw;
            }
        }

        // Settled when the stream ends, however it ends: completed, failed, or cut by the caller (whatever usage was
        // reported is charged; without any, the reservation is released).
        var status = 499;
        BifrostExtraFields? extra = null;
        TokenCounts? usage = null;
        double? cost = null;
        try
        {
            await using var chunks = Inner.StreamAsync(operation, request, cancellationToken).GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                try
                {
                    if (!await chunks.MoveNextAsync().ConfigureAwait(false))
                    {
                        status = 200;
                        break;
                    }
                }
                catch (Exception ex)
                {
                    status = StatusOf(ex, cancellationToken);
                    extra ??= (ex as BifrostException)?.Error.ExtraFields;
                    throw;
                }

                var chunk = chunks.Current;
                if (operation.ChunkExtraFieldsOf?.Invoke(chunk) is { } chunkExtra)
                {
                    extra ??= chunkExtra;
                    if (operation.ChunkUsageOf?.Invoke(chunk) is { } reported)
                    {
                        usage = reported;
                        cost = chunkExtra.Cost;
                    }
                }
                else if (operation.ChunkUsageOf?.Invoke(chunk) is { } reported)
                {
                    usage = reported;
                }

                yield return chunk;
            }
        }
        finally
        {
            slot?.Dispose();
            await SettleAsync(caller, ticket, requestType, UsageSource.Stream, status, extra, usage, cost, null, started).ConfigureAwait(false);
        }
    }

    /// <summary>Takes the key's concurrent slot and admits the call against every budget and limit on its path (throws the 402/429).</summary>
    private ValueTask<(GovernanceRateLimiter.Lease? Slot, Ticket? Ticket)> AdmitAsync<TRequest, TResponse, TChunk>(GovernanceCaller caller, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, ResolvedModel[]? plan, string requestType, DateTimeOffset now, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var key = caller.Key!;
        GovernanceRateLimiter.Lease? slot = null;
        if (key.RateLimits?.Concurrent is { } concurrent)
        {
            try
            {
                slot = limiter.Acquire(key, concurrent);
            }
            catch (BifrostException ex)
            {
                throw Decorate(ex, requestType, registry.BareModel(operation.Model(request)));
            }
        }

        var limits = KeyLimits.Of(key, store);
        if (limits.IsEmpty)
        {
            return ValueTask.FromResult<(GovernanceRateLimiter.Lease?, Ticket?)>((slot, null));
        }

#pragma warning disable CA2012 // awaited once: here when it completed, else by AdmittedAsync
        var pending = AdmitCoreAsync(limits, operation, request, plan, requestType, now, cancellationToken);
#pragma warning restore CA2012
        return pending.IsCompletedSuccessfully
            ? ValueTask.FromResult<(GovernanceRateLimiter.Lease?, Ticket?)>((slot, pending.Result))
            : AdmittedAsync(slot, pending);
    }

    /// <summary>Awaits an admission that did not complete at once; the concurrent slot is released when it refuses or fails.</summary>
    private static async ValueTask<(GovernanceRateLimiter.Lease? Slot, Ticket? Ticket)> AdmittedAsync(GovernanceRateLimiter.Lease? slot, ValueTask<Ticket> pending)
    {
        try
        {
            return (slot, await pending.ConfigureAwait(false));
        }
        catch
        {
            slot?.Dispose();
            throw;
        }
    }

    private async ValueTask<Ticket> AdmitCoreAsync<TRequest, TResponse, TChunk>(KeyLimits limits, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, ResolvedModel[]? plan, string requestType, DateTimeOffset now, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        plan ??= RequestPlanner.PlanModels(registry, operation.Model(request), operation.Fallbacks(request), requestType);
        long reservedTokens = 0;
        var reservedCost = 0m;
        if (limits.NeedsEstimate && operation.EstimateInputTokens is { } estimate)
        {
            reservedTokens = estimate(request, plan[0].Model);
            if (pricing.Find(plan[0]) is { } price)
            {
                reservedCost = (decimal)price.Cost(new TokenCounts(reservedTokens, 0));
            }
        }

        // The first provider of the plan whose provider config admits the call (with every common limit) is the one
        // reserved; targets of providers whose config refused are skipped, like targets the key may not use.
        BifrostException? first = null;
        List<string>? refusedProviders = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var provider = plan[i].Provider.Name;
            if (refusedProviders?.Contains(provider, StringComparer.OrdinalIgnoreCase) == true)
            {
                continue;
            }

            var path = limits.PathFor(provider);
            GovernanceAdmission admission;
            var refusedWindowEnd = default(DateTimeOffset);
            try
            {
                if (path.Length == 0)
                {
                    admission = GovernanceAdmission.Allowed;
                }
                else
                {
                    var checks = RentChecks(path.Length);
                    for (var c = 0; c < path.Length; c++)
                    {
                        checks[c] = path[c].Check(now, reservedTokens, reservedCost);
                    }

                    // The checks array is reused by the next call on this thread only when the store answered
                    // synchronously (the in-process counters); a store that went async keeps its own.
#pragma warning disable CA2012 // awaited once, right below; only asked first whether it completed synchronously
                    var pending = counters.TryAdmitAsync(checks, cancellationToken);
#pragma warning restore CA2012
                    var synchronous = pending.IsCompletedSuccessfully;
                    admission = await pending.ConfigureAwait(false);
                    if (!admission.Admitted)
                    {
                        refusedWindowEnd = checks[admission.RefusedIndex].WindowEnd;
                    }

                    if (synchronous)
                    {
                        ReturnChecks(checks);
                    }
                }
            }
            catch (Exception ex) when (ex is not BifrostException && !(ex is OperationCanceledException && cancellationToken.IsCancellationRequested))
            {
                // The counter store cannot be reached (e.g. PostgreSQL down): the call is refused with a 503, never
                // sent unchecked and never a 500.
                LogAdmitFailed(logger, limits.KeyId, ex);
                throw Decorate(GovernanceErrors.Unavailable(), requestType, plan[i].Model);
            }

            if (admission.Admitted)
            {
                if (refusedProviders is not null)
                {
                    Skip(operation, request, plan, refusedProviders, first!);
                }

                return new Ticket(limits, provider, path, limits.Common.Length, now, reservedTokens, reservedCost);
            }

            var refusedBy = path[admission.RefusedIndex];
            var refusal = Decorate(refusedBy.Refusal(admission.Counts, refusedWindowEnd, now), requestType, plan[i].Model);
            if (admission.RefusedIndex < limits.Common.Length)
            {
                throw refusal;
            }

            refusal.Error.ExtraFields!.Provider = provider;
            first ??= refusal;
            (refusedProviders ??= []).Add(provider);
        }

        throw first!;
    }

    /// <summary>Drops the targets of refused providers from the request (the admitted one is left first), or throws when it cannot.</summary>
    private static void Skip<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, ResolvedModel[] plan, List<string> refusedProviders, BifrostException first)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var model = operation.Model(request);
        var fallbacks = operation.Fallbacks(request);
        if (fallbacks is null || fallbacks.IsReadOnly)
        {
            throw first;
        }

        var allowed = new List<string>(plan.Length);
        for (var i = 0; i < plan.Length; i++)
        {
            if (!refusedProviders.Contains(plan[i].Provider.Name, StringComparer.OrdinalIgnoreCase))
            {
                allowed.Add(i == 0 ? model! : fallbacks[i - 1]);
            }
        }

        operation.SetModel(request, allowed[0]);
        fallbacks.Clear();
        for (var i = 1; i < allowed.Count; i++)
        {
            fallbacks.Add(allowed[i]);
        }
    }

    /// <summary>Charges the counters with the real usage (minus what was reserved) and records the call in the usage ledger.</summary>
    private async ValueTask SettleAsync(GovernanceCaller? caller, Ticket? ticket, string requestType, string defaultSource, int status, BifrostExtraFields? extra, TokenCounts? usage, double? cost, string? responseId, CallStart started)
    {
        var provider = extra?.Provider ?? ticket?.Provider;
        var model = extra?.ModelRequested;
        if (usage is { } counts && cost is null && pricing.Find(provider, model) is { } price)
        {
            cost = price.Cost(counts);
        }

        // A failed call is charged what it reported (a cut stream its usage chunk, if any), else nothing.
        var tokens = usage is { } u ? u.Input + u.Output : 0;
        var costUsd = usage is null ? 0m : (decimal)(cost ?? 0);
        if (ticket is { } admitted)
        {
            try
            {
                // The charges list is reused by the next call on this thread when the store settled synchronously.
                var charges = t_charges ?? new List<GovernanceCounterCharge>(8);
                t_charges = null;
                charges.Clear();
                admitted.Charges(charges, provider, tokens, costUsd);
                if (charges.Count == 0)
                {
                    t_charges = charges;
                }
                else
                {
#pragma warning disable CA2012 // awaited once, right below; only asked first whether it completed synchronously
                    var pending = counters.SettleAsync(charges, CancellationToken.None);
#pragma warning restore CA2012
                    var synchronous = pending.IsCompletedSuccessfully;
                    await pending.ConfigureAwait(false);
                    if (synchronous)
                    {
                        t_charges = charges;
                    }
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogSettleFailed(logger, caller?.KeyId, ex);
            }
        }

        var duration = time.GetElapsedTime(started.Timestamp);
        var source = UsageSource.Current;
        var key = caller?.Key;
        ledger.Record(new UsageRecord
        {
            Time = started.At + duration, // when the call ended, without reading the clock again
            RequestId = source?.RequestId ?? responseId,
            VirtualKeyId = caller?.KeyId,
            Team = key?.Team,
            Customer = key?.Customer,
            Provider = provider ?? string.Empty,
            Model = model ?? string.Empty,
            Operation = requestType,
            Source = source?.Source ?? defaultSource,
            InputTokens = usage?.Input ?? 0,
            OutputTokens = usage?.Output ?? 0,
            CachedInputTokens = usage?.CachedInput ?? 0,
            ReasoningTokens = usage?.Reasoning ?? 0,
            CostUsd = usage is null ? (status == 200 ? null : 0m) : cost is null ? null : costUsd, // unknown price: null, never a made-up figure
            Status = status,
            Duration = duration,
        });
    }

    private static int StatusOf(Exception ex, CancellationToken cancellationToken) => ex switch
    {
        BifrostException bifrost => bifrost.StatusCode,
        OperationCanceledException when cancellationToken.IsCancellationRequested => 499,
        _ => 500,
    };

    /// <summary>Throws the 401/403s; skips the targets the key may not use. Returns the plan when the request was left unchanged, else null.</summary>
    private ResolvedModel[]? Check<TRequest, TResponse, TChunk>(GovernanceCaller caller, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, string requestType)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var model = operation.Model(request);
        try
        {
            var key = caller.Key ?? throw GovernanceErrors.Unauthorized("virtual_key_not_found", "virtual_key_invalid", $"Virtual key '{caller.KeyId}' no longer exists.");
            store.CheckUsable(key);
        }
        catch (BifrostException ex)
        {
            throw Decorate(ex, requestType, registry.BareModel(model));
        }

        // Bad input is the core's 400 as without governance; the plan is resolved here only to check it.
        RequestPlanner.Validate(registry, operation, request, requestType);
        var fallbacks = operation.Fallbacks(request);
        var plan = RequestPlanner.PlanModels(registry, model, fallbacks, requestType);
        var vk = caller.Key!;
        BifrostException? first = null;
        List<int>? refused = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var target = plan[i];
            var refusal = !vk.AllowsProvider(target.Provider.Name)
                ? GovernanceErrors.Forbidden("provider_blocked", "provider_not_allowed", $"Virtual key '{caller.KeyId}' may not use provider '{target.Provider.Name}'.", ParamOf(i))
                : !vk.AllowsModel(target.Provider.Name, target.Model)
                    ? GovernanceErrors.Forbidden("model_blocked", "model_not_allowed", $"Virtual key '{caller.KeyId}' may not use model '{target.Provider.Name}/{target.Model}'.", ParamOf(i))
                    : null;
            if (refusal is not null)
            {
                Decorate(refusal, requestType, target.Model).Error.ExtraFields!.Provider = target.Provider.Name;
                first ??= refusal;
                (refused ??= []).Add(i);
            }
        }

        if (refused is null)
        {
            return plan;
        }

        // As Bifrost (governance runs before each attempt): a target the key may not use is skipped, the next one is
        // tried; when none is left, the first refusal is the answer. Nothing is ever sent to a refused target.
        if (refused.Count == plan.Length || fallbacks is null || fallbacks.IsReadOnly)
        {
            throw first!;
        }

        var allowed = new List<string>(plan.Length);
        for (var i = 0; i < plan.Length; i++)
        {
            if (!refused.Contains(i))
            {
                allowed.Add(i == 0 ? model! : fallbacks[i - 1]);
            }
        }

        operation.SetModel(request, allowed[0]);
        fallbacks.Clear();
        for (var i = 1; i < allowed.Count; i++)
        {
            fallbacks.Add(allowed[i]);
        }

        return null;
    }

    private static string ParamOf(int target) => target == 0 ? "model" : $"fallbacks[{target - 1}]";

    [ThreadStatic]
    private static GovernanceCounterCheck[]?[]? t_checks;

    [ThreadStatic]
    private static List<GovernanceCounterCharge>? t_charges;

    /// <summary>A checks array of exactly <paramref name="length"/> entries: this thread's spare one, else a new one.</summary>
    private static GovernanceCounterCheck[] RentChecks(int length)
    {
        var spare = t_checks;
        if (spare is not null && length < spare.Length && spare[length] is { } checks)
        {
            spare[length] = null;
            return checks;
        }

        return new GovernanceCounterCheck[length];
    }

    private static void ReturnChecks(GovernanceCounterCheck[] checks)
    {
        var spare = t_checks ??= new GovernanceCounterCheck[]?[8];
        if (checks.Length < spare.Length)
        {
            Array.Clear(checks);
            spare[checks.Length] = checks;
        }
    }

    private static BifrostException Decorate(BifrostException ex, string requestType, string? model)
    {
        ex.Error.ExtraFields ??= new BifrostExtraFields { RequestType = requestType, ModelRequested = model };
        return ex;
    }

    [LoggerMessage(EventId = 65, Level = LogLevel.Warning, Message = "Could not settle the usage of a call of virtual key {KeyId} into the governance counters.")]
    private static partial void LogSettleFailed(ILogger logger, string? keyId, Exception exception);

    [LoggerMessage(EventId = 66, Level = LogLevel.Error, Message = "The governance counter store failed to admit a call of virtual key {KeyId}; the call was refused with 503.")]
    private static partial void LogAdmitFailed(ILogger logger, string keyId, Exception exception);

    /// <summary>When a call started: the wall clock (its admission windows) and the timestamp its duration is measured from.</summary>
    private readonly record struct CallStart(DateTimeOffset At, long Timestamp);

    /// <summary>An admitted call: the limits it was admitted against (windows as at admission) and what was reserved.</summary>
    private readonly struct Ticket(KeyLimits limits, string provider, GovernanceLimit[] path, int common, DateTimeOffset admittedAt, long reservedTokens, decimal reservedCost)
    {
        public string Provider => provider;

        /// <summary>
        /// What to add to each window: real − reserved where the call was admitted; when another provider answered (a
        /// fallback), the admitted provider config gets its reservation back and the answering one is charged the real usage.
        /// </summary>
        public void Charges(List<GovernanceCounterCharge> charges, string? answered, long tokens, decimal cost)
        {
            var same = answered is null || string.Equals(answered, provider, StringComparison.OrdinalIgnoreCase);
            for (var i = 0; i < path.Length; i++)
            {
                var real = i < common || same;
                Add(charges, path[i], admittedAt, (real ? tokens : 0) - reservedTokens, (real ? cost : 0m) - reservedCost);
            }

            if (!same)
            {
                foreach (var limit in limits.ForProvider(answered))
                {
                    Add(charges, limit, admittedAt, tokens, cost);
                }
            }
        }

        private static void Add(List<GovernanceCounterCharge> charges, GovernanceLimit limit, DateTimeOffset admittedAt, long tokens, decimal cost)
        {
            if (tokens != 0 || cost != 0m)
            {
                var (start, end) = limit.WindowAt(admittedAt); // the window the call was admitted in
                charges.Add(new GovernanceCounterCharge(limit.Scope, start, end, tokens, cost));
            }
        }
    }
}
