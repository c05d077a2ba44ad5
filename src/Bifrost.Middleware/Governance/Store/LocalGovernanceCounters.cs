using System.Runtime.CompilerServices;

namespace Bifrost.Middleware.Governance;

/// <summary>
/// The scopes the governance layer counts in (core-owned; opaque to stores): budgets of a customer, a team, a virtual
/// key and a key's provider config, and the request/token limits of a key and of its provider configs.
/// </summary>
internal static class GovernanceScopes
{
    public const string BudgetCustomer = "budget:customer:";
    public const string BudgetTeam = "budget:team:";
    public const string BudgetKey = "budget:vk:";
    public const string RateKey = "rate:vk:";
    public const string ProviderInfix = ":provider:";

    /// <summary>The ledger filter whose spend a budget scope starts from, or null for scopes that are not budgets.</summary>
    public static UsageQuery? LedgerFilter(string scope, DateTimeOffset start, DateTimeOffset end)
    {
        var from = start == DateTimeOffset.MinValue ? (DateTimeOffset?)null : start;
        var to = end == DateTimeOffset.MaxValue ? (DateTimeOffset?)null : end;
        if (scope.StartsWith(BudgetCustomer, StringComparison.Ordinal))
        {
            return new UsageQuery { Customer = scope[BudgetCustomer.Length..], From = from, To = to };
        }

        if (scope.StartsWith(BudgetTeam, StringComparison.Ordinal))
        {
            return new UsageQuery { Team = scope[BudgetTeam.Length..], From = from, To = to };
        }

        if (scope.StartsWith(BudgetKey, StringComparison.Ordinal))
        {
            var rest = scope[BudgetKey.Length..];
            var at = rest.LastIndexOf(ProviderInfix, StringComparison.Ordinal);
            return at < 0
                ? new UsageQuery { VirtualKeyId = rest, From = from, To = to }
                : new UsageQuery { VirtualKeyId = rest[..at], Provider = rest[(at + ProviderInfix.Length)..], From = from, To = to };
        }

        return null;
    }
}

/// <summary>
/// The default <see cref="IGovernanceCounterStore"/>: windows in this process, under one lock (admission over several
/// scopes is atomic), keyed by (scope, start, end) and forgotten once their end passed. A budget window is seeded on
/// first use with the spend the usage ledger (<see cref="IGovernanceStore.SumUsageAsync"/>) holds for its scope since the
/// window's start, so with a durable store a budget's spend survives a restart; request and token windows start at zero.
/// Not shared between instances (the PostgreSQL store provides a shared one).
/// </summary>
internal sealed class LocalGovernanceCounters(IGovernanceStore store, TimeProvider time) : IGovernanceCounterStore
{
    private static readonly TimeSpan SweepEvery = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private const int RecentSlots = 64;

    private readonly Dictionary<(string Scope, DateTimeOffset Start, DateTimeOffset End), Counter> _windows = [];
    private readonly Recent[] _recent = new Recent[RecentSlots];
    private DateTimeOffset _nextSweep = DateTimeOffset.MinValue;

    /// <summary>How many windows are held (tests).</summary>
    internal int WindowCount
    {
        get
        {
            lock (_gate)
            {
                return _windows.Count;
            }
        }
    }

    public ValueTask<GovernanceAdmission> TryAdmitAsync(IReadOnlyList<GovernanceCounterCheck> checks, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checks);
        lock (_gate)
        {
            Sweep();
            if (TryAdmit(checks, out var admission))
            {
                return ValueTask.FromResult(admission);
            }
        }

        return SeedAndAdmitAsync(checks, cancellationToken);
    }

    private async ValueTask<GovernanceAdmission> SeedAndAdmitAsync(IReadOnlyList<GovernanceCounterCheck> checks, CancellationToken cancellationToken)
    {
        while (true)
        {
            for (var i = 0; i < checks.Count; i++)
            {
                await EnsureAsync(checks[i].Scope, checks[i].WindowStart, checks[i].WindowEnd, cancellationToken).ConfigureAwait(false);
            }

            lock (_gate)
            {
                if (TryAdmit(checks, out var admission))
                {
                    return admission;
                }
            }
        }
    }

    public ValueTask SettleAsync(IReadOnlyList<GovernanceCounterCharge> charges, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(charges);
        lock (_gate)
        {
            var found = Scratch(charges.Count);
            for (var i = 0; i < charges.Count; i++)
            {
                var charge = charges[i];
                if (!TryFind(charge.Scope, charge.WindowStart, charge.WindowEnd, out var counter))
                {
                    Array.Clear(found, 0, i);
                    return SeedAndSettleAsync(charges, cancellationToken);
                }

                found[i] = counter;
            }

            for (var i = 0; i < charges.Count; i++)
            {
                found[i].Tokens += charges[i].Tokens;
                found[i].Cost += charges[i].CostUsd;
            }

            Array.Clear(found, 0, charges.Count);
            return ValueTask.CompletedTask;
        }
    }

    private async ValueTask SeedAndSettleAsync(IReadOnlyList<GovernanceCounterCharge> charges, CancellationToken cancellationToken)
    {
        for (var i = 0; i < charges.Count; i++)
        {
            await EnsureAsync(charges[i].Scope, charges[i].WindowStart, charges[i].WindowEnd, cancellationToken).ConfigureAwait(false);
        }

        lock (_gate)
        {
            Apply(charges);
        }
    }

    private void Apply(IReadOnlyList<GovernanceCounterCharge> charges)
    {
        foreach (var charge in charges)
        {
            if (!TryFind(charge.Scope, charge.WindowStart, charge.WindowEnd, out var counter))
            {
                _windows[(charge.Scope, charge.WindowStart, charge.WindowEnd)] = counter = new Counter(); // swept meanwhile
            }

            counter.Tokens += charge.Tokens;
            counter.Cost += charge.CostUsd;
        }
    }

    public ValueTask<GovernanceCounts> GetCountsAsync(string scope, DateTimeOffset windowStart, DateTimeOffset windowEnd, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_windows.TryGetValue((scope, windowStart, windowEnd), out var counter) ? counter.Counts : default);
        }
    }

    [ThreadStatic]
    private static Counter[]? t_scratch;

    private static Counter[] Scratch(int count) =>
        t_scratch is { } scratch && scratch.Length >= count ? scratch : t_scratch = new Counter[Math.Max(8, count)];

    /// <summary>
    /// Under the lock: the counter of a window. The scopes of a key's limits are the same string instances call after call,
    /// so a small cache indexed by the scope instance's identity answers most lookups without hashing the scope's text;
    /// a miss (another instance of an equal scope, another window) falls back to the dictionary and takes the slot.
    /// </summary>
    private bool TryFind(string scope, DateTimeOffset start, DateTimeOffset end, out Counter counter)
    {
        ref var recent = ref _recent[RuntimeHelpers.GetHashCode(scope) & (RecentSlots - 1)];
        if (ReferenceEquals(recent.Scope, scope) && recent.Start == start && recent.End == end)
        {
            counter = recent.Counter!;
            return true;
        }

        if (!_windows.TryGetValue((scope, start, end), out counter!))
        {
            return false;
        }

        recent = new Recent(scope, start, end, counter);
        return true;
    }

    /// <summary>Under the lock: false when a window is missing (to be seeded first); else the admission, applied when admitted.</summary>
    private bool TryAdmit(IReadOnlyList<GovernanceCounterCheck> checks, out GovernanceAdmission admission)
    {
        admission = default;
        var found = Scratch(checks.Count);
        for (var i = 0; i < checks.Count; i++)
        {
            var check = checks[i];
            if (!TryFind(check.Scope, check.WindowStart, check.WindowEnd, out var counter))
            {
                Array.Clear(found, 0, i);
                return false;
            }

            found[i] = counter;
        }

        for (var i = 0; i < checks.Count; i++)
        {
            var check = checks[i];
            var counter = found[i];
            if ((check.MaxRequests is { } requests && counter.Requests >= requests)
                || (check.MaxTokens is { } tokens && counter.Tokens >= tokens)
                || (check.MaxCostUsd is { } cost && counter.Cost >= cost))
            {
                admission = new GovernanceAdmission(false, i, counter.Counts);
                Array.Clear(found, 0, checks.Count);
                return true;
            }
        }

        for (var i = 0; i < checks.Count; i++)
        {
            var counter = found[i];
            counter.Requests++;
            counter.Tokens += checks[i].ReservedTokens;
            counter.Cost += checks[i].ReservedCostUsd;
        }

        Array.Clear(found, 0, checks.Count);
        admission = GovernanceAdmission.Allowed;
        return true;
    }

    /// <summary>Creates a window that does not exist yet, a budget's seeded from the ledger (outside the lock).</summary>
    private async ValueTask EnsureAsync(string scope, DateTimeOffset start, DateTimeOffset end, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_windows.ContainsKey((scope, start, end)))
            {
                return;
            }
        }

        var seed = new Counter();
        if (GovernanceScopes.LedgerFilter(scope, start, end) is { } filter)
        {
            try
            {
                var totals = await store.SumUsageAsync(filter, cancellationToken).ConfigureAwait(false);
                seed.Cost = totals.CostUsd;
                seed.Tokens = totals.InputTokens + totals.OutputTokens;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The ledger cannot be read: the window starts from what this process charges (fail open, as a
                // budget must not take the gateway down with its store).
            }
        }

        lock (_gate)
        {
            _windows.TryAdd((scope, start, end), seed);
        }
    }

    private void Sweep()
    {
        var now = time.GetUtcNow();
        if (now < _nextSweep)
        {
            return;
        }

        _nextSweep = now + SweepEvery;
        List<(string, DateTimeOffset, DateTimeOffset)>? expired = null;
        foreach (var key in _windows.Keys)
        {
            if (key.End <= now)
            {
                (expired ??= []).Add(key);
            }
        }

        if (expired is not null)
        {
            foreach (var key in expired)
            {
                _windows.Remove(key);
            }

            Array.Clear(_recent); // none may point at a removed window
        }
    }

    private readonly record struct Recent(string Scope, DateTimeOffset Start, DateTimeOffset End, Counter Counter);

    private sealed class Counter
    {
        public long Requests;
        public long Tokens;
        public decimal Cost;

        public GovernanceCounts Counts => new(Requests, Tokens, Cost);
    }
}
