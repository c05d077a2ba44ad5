using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Governance;

/// <summary>A virtual key as the gateway holds it: its id, its rules and the SHA-256 of its secret (never the plaintext).</summary>
internal sealed class VirtualKey
{
    private readonly Glob[] _modelPatterns;
    private readonly FrozenSet<string>? _providers;
    private readonly FrozenDictionary<string, FrozenSet<string>> _providerKeys;

    public VirtualKey(VirtualKeyOptions options, string hash)
    {
        Id = options.Id!;
        Name = options.Name;
        Hash = hash;
        Active = options.Active;
        ExpiresAt = options.ExpiresAt;
        Team = options.Team;
        Customer = options.Customer;
        RateLimits = KeyRateLimits.From(options.RateLimits);
        Budget = options.Budget;
        Providers = options.Providers.Where(static p => p.Value is not null).ToFrozenDictionary(static p => p.Key, static p => p.Value, StringComparer.OrdinalIgnoreCase);
        _modelPatterns = [.. options.AllowedModels.Select(static pattern => new Glob(pattern))];
        _providers = options.AllowedProviders.Count == 0 ? null : options.AllowedProviders.ToFrozenSet(StringComparer.OrdinalIgnoreCase);
        _providerKeys = options.ProviderKeys.ToFrozenDictionary(static p => p.Key, static p => p.Value.ToFrozenSet(StringComparer.Ordinal), StringComparer.OrdinalIgnoreCase);
    }

    public string Id { get; }

    public string? Name { get; }

    /// <summary>Lower-case hex SHA-256 of the secret.</summary>
    public string Hash { get; }

    public bool Active { get; }

    public DateTimeOffset? ExpiresAt { get; }

    public string? Team { get; }

    public string? Customer { get; }

    /// <summary>The key's rate limits, or null when it has none.</summary>
    public KeyRateLimits? RateLimits { get; }

    /// <summary>The key's budget, or null.</summary>
    public GovernanceBudgetOptions? Budget { get; }

    /// <summary>The key's per-provider budgets and limits (Bifrost's provider configs), by provider name.</summary>
    public FrozenDictionary<string, VirtualKeyProviderOptions> Providers { get; }

    /// <summary>The owner of the jobs, files and batches this key creates.</summary>
    public string Owner => GovernanceCaller.OwnerPrefix + Id;

    public bool AllowsProvider(string provider) => _providers is null || _providers.Contains(provider);

    /// <summary>Whether <c>provider/model</c> matches one of the key's model patterns (any model when it has none).</summary>
    public bool AllowsModel(string provider, string model)
    {
        if (_modelPatterns.Length == 0)
        {
            return true;
        }

        // provider/model, built on the stack (a pattern's '*' may span the slash: model names can hold one too).
        var length = provider.Length + 1 + model.Length;
        var buffer = length <= 256 ? stackalloc char[length] : new char[length];
        provider.CopyTo(buffer);
        buffer[provider.Length] = '/';
        model.CopyTo(buffer[(provider.Length + 1)..]);
        foreach (var pattern in _modelPatterns)
        {
            if (pattern.IsMatch(buffer))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The ids of <paramref name="provider"/>'s keys this virtual key may use, or null for all.</summary>
    public IReadOnlySet<string>? ProviderKeysFor(string provider) => _providerKeys.Count != 0 && _providerKeys.TryGetValue(provider, out var ids) ? ids : null;

    public static string HashOf(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
}

/// <summary>A team or a customer as the gateway holds it.</summary>
internal sealed record GovernanceGroup(string Id, string? Name, GovernanceBudgetOptions? Budget);

/// <summary><c>*</c> globs over <c>provider/model</c> (case-insensitive; <c>*</c> matches any run of characters).</summary>
internal sealed class Glob
{
    private static readonly System.Buffers.SearchValues<char> Invalid = System.Buffers.SearchValues.Create("?[]{} \t");

    private readonly string _pattern;
    private readonly string[]? _parts; // split at '*', or null when the pattern has none (an exact name)

    /// <summary>A pattern split once at its <c>*</c>s, to be matched call after call without allocating.</summary>
    public Glob(string pattern)
    {
        _pattern = pattern;
        _parts = pattern.Contains('*', StringComparison.Ordinal) ? pattern.Split('*') : null;
    }

    /// <summary>A valid pattern: <c>*</c>, or <c>provider/model</c> where either part may hold <c>*</c>; no other wildcard characters.</summary>
    public static bool IsValid(string? pattern) =>
        !string.IsNullOrWhiteSpace(pattern)
        && pattern.AsSpan().IndexOfAny(Invalid) < 0
        && (pattern == "*" || (pattern.IndexOf('/', StringComparison.Ordinal) is > 0 and var slash && slash < pattern.Length - 1));

    public static bool IsMatch(string pattern, string value) => new Glob(pattern).IsMatch(value);

    /// <summary>Whether <paramref name="value"/> matches, ignoring case; <c>*</c> matches any run of characters.</summary>
    public bool IsMatch(ReadOnlySpan<char> value)
    {
        if (_parts is not { } parts)
        {
            return value.Equals(_pattern, StringComparison.OrdinalIgnoreCase);
        }

        if (value.Length < _pattern.Length - (parts.Length - 1) || !value.StartsWith(parts[0], StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var span = value[parts[0].Length..];
        for (var i = 1; i < parts.Length - 1; i++)
        {
            var at = span.IndexOf(parts[i], StringComparison.OrdinalIgnoreCase);
            if (at < 0)
            {
                return false;
            }

            span = span[(at + parts[i].Length)..];
        }

        return span.EndsWith(parts[^1], StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>
/// The virtual keys, teams and customers the gateway knows: those of configuration and those of the
/// <see cref="IGovernanceStore"/> (created through the admin API), held as one immutable snapshot swapped atomically
/// when the store's revision moves (<see cref="GovernanceSnapshotRefresher"/>). An id in configuration wins over the
/// store. The lookups read the current snapshot without a lock.
/// </summary>
internal sealed class VirtualKeyStore
{
    private readonly KeySnapshot _configured;
    private readonly (VirtualKeyOptions Key, string? Hash)[] _configuredKeys;
    private volatile KeySnapshot _snapshot;

    public VirtualKeyStore(IOptions<BifrostOptions> options, TimeProvider time)
    {
        Time = time;
        var governance = options.Value.Governance ?? new GovernanceOptions();
        Mode = governance.Mode;
        ConfiguredKeys = [.. governance.VirtualKeys.Where(static k => k?.Id is not null)];
        ConfiguredTeams = [.. governance.Teams.Where(static g => g?.Id is not null)];
        ConfiguredCustomers = [.. governance.Customers.Where(static g => g?.Id is not null)];
        _configuredKeys = [.. ConfiguredKeys.Select(static key => (key, ConfiguredHash(key)))];
        _configured = KeySnapshot.Build(-1, _configuredKeys, ConfiguredTeams, ConfiguredCustomers);
        _snapshot = _configured;
    }

    /// <summary>The configured keys (read-only through the admin API).</summary>
    public IReadOnlyList<VirtualKeyOptions> ConfiguredKeys { get; }

    /// <summary>The configured teams.</summary>
    public IReadOnlyList<GovernanceGroupOptions> ConfiguredTeams { get; }

    /// <summary>The configured customers.</summary>
    public IReadOnlyList<GovernanceGroupOptions> ConfiguredCustomers { get; }

    /// <summary>The store revision the current snapshot was built from (-1: configuration only).</summary>
    public long Revision => _snapshot.Revision;

    /// <summary>Whether an id of this kind comes from configuration (the admin API may not create or change it).</summary>
    public bool IsConfigured(GovernanceEntityKind kind, string id) => kind switch
    {
        GovernanceEntityKind.VirtualKey => _configured.ById.ContainsKey(id),
        GovernanceEntityKind.Team => _configured.Teams.ContainsKey(id),
        _ => _configured.Customers.ContainsKey(id),
    };

    /// <summary>
    /// Replaces the snapshot with configuration plus the store's keys (given with the hash of their secret), teams and
    /// customers, as of store revision <paramref name="revision"/>. Store entries whose id is configured are ignored.
    /// </summary>
    public void Apply(long revision, IEnumerable<(VirtualKeyOptions Key, string Hash)> keys, IEnumerable<GovernanceGroupOptions> teams, IEnumerable<GovernanceGroupOptions> customers) =>
        _snapshot = KeySnapshot.Build(
            revision,
            _configuredKeys.Concat(keys.Where(k => !_configured.ById.ContainsKey(k.Key.Id!)).Select(static k => (k.Key, (string?)k.Hash))),
            ConfiguredTeams.Concat(teams),
            ConfiguredCustomers.Concat(customers));

    private static string? ConfiguredHash(VirtualKeyOptions key) =>
        key.ValueHash is { Length: > 0 } given ? given.Trim().ToLowerInvariant() : GovernanceValidation.Secret(key.Value) is { } secret ? VirtualKey.HashOf(secret) : null;

    /// <summary>A team by id, or null.</summary>
    public GovernanceGroup? FindTeam(string id) => _snapshot.Teams.GetValueOrDefault(id);

    /// <summary>A customer by id, or null.</summary>
    public GovernanceGroup? FindCustomer(string id) => _snapshot.Customers.GetValueOrDefault(id);

    /// <summary>One immutable generation of the keys, teams and customers (first of an id or hash wins: configuration first).</summary>
    private sealed class KeySnapshot(long revision, FrozenDictionary<string, VirtualKey> byHash, FrozenDictionary<string, VirtualKey> byId, FrozenDictionary<string, GovernanceGroup> teams, FrozenDictionary<string, GovernanceGroup> customers)
    {
        public long Revision { get; } = revision;

        public FrozenDictionary<string, VirtualKey> ByHash { get; } = byHash;

        public FrozenDictionary<string, VirtualKey> ById { get; } = byId;

        public FrozenDictionary<string, GovernanceGroup> Teams { get; } = teams;

        public FrozenDictionary<string, GovernanceGroup> Customers { get; } = customers;

        public static KeySnapshot Build(long revision, IEnumerable<(VirtualKeyOptions Key, string? Hash)> keys, IEnumerable<GovernanceGroupOptions> teams, IEnumerable<GovernanceGroupOptions> customers)
        {
            var built = keys.Where(static k => k.Hash is not null).Select(static k => new VirtualKey(k.Key, k.Hash!)).ToList();
            return new(
                revision,
                built.DistinctBy(static k => k.Hash).ToFrozenDictionary(static k => k.Hash, StringComparer.Ordinal),
                built.DistinctBy(static k => k.Id).ToFrozenDictionary(static k => k.Id, StringComparer.Ordinal),
                Groups(teams),
                Groups(customers));
        }

        private static FrozenDictionary<string, GovernanceGroup> Groups(IEnumerable<GovernanceGroupOptions> groups) =>
            groups.Where(static g => g?.Id is not null)
                .DistinctBy(static g => g.Id)
                .ToFrozenDictionary(static g => g.Id!, static g => new GovernanceGroup(g.Id!, g.Name, g.Budget), StringComparer.Ordinal);
    }

    public GovernanceMode Mode { get; }

    public TimeProvider Time { get; }

    [ThreadStatic]
    private static IncrementalHash? t_sha256;

    public VirtualKey? FindBySecret(string secret)
    {
        // The SHA-256 and its hex form on the stack, looked up by span: no allocation per request for a presented key.
        var byteCount = Encoding.UTF8.GetMaxByteCount(secret.Length);
        if (byteCount > 512)
        {
            return _snapshot.ByHash.GetValueOrDefault(VirtualKey.HashOf(secret));
        }

        Span<byte> utf8 = stackalloc byte[byteCount];
        var length = Encoding.UTF8.GetBytes(secret, utf8);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];

        // One hash object per thread, reset by each use: the one-shot SHA256.HashData sets up and frees an OpenSSL digest
        // context per call, which costs more than hashing a key (≈ 0.75 against ≈ 0.4 µs here).
        var sha256 = t_sha256 ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha256.AppendData(utf8[..length]);
        sha256.GetHashAndReset(hash);
        Span<char> hex = stackalloc char[SHA256.HashSizeInBytes * 2];
        Convert.TryToHexStringLower(hash, hex, out _);
        return _snapshot.ByHash.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(hex, out var key) ? key : null;
    }

    public VirtualKey? FindById(string id) => _snapshot.ById.GetValueOrDefault(id);

    /// <summary>Throws the 401 of a key that may not be used now (inactive or expired).</summary>
    public void CheckUsable(VirtualKey key)
    {
        if (!key.Active)
        {
            throw GovernanceErrors.Unauthorized("virtual_key_blocked", "virtual_key_inactive", $"Virtual key '{key.Id}' is inactive.");
        }

        if (key.ExpiresAt is { } expires && Time.GetUtcNow() >= expires)
        {
            throw GovernanceErrors.Unauthorized("virtual_key_blocked", "virtual_key_expired", $"Virtual key '{key.Id}' expired at {expires:O}.");
        }
    }
}

/// <summary>The errors of governance.</summary>
internal static class GovernanceErrors
{
    // error.type is Bifrost's governance decision (virtual_key_not_found, virtual_key_blocked, model_blocked,
    // provider_blocked), so clients written for Bifrost recognise it; error.code is finer (inactive vs expired).

    /// <summary>A 401 (Bifrost answers these with 403; issue 14 asks 401 so a client can tell "who are you" from "not allowed").</summary>
    public static BifrostException Unauthorized(string type, string code, string message) =>
        BifrostException.Gateway(401, type, code, message);

    public static BifrostException Forbidden(string type, string code, string message, string? param) =>
        BifrostException.Gateway(403, type, code, message, param);

    /// <summary>The 503 when the governance counter store cannot admit a call (it is unreachable or failed).</summary>
    public static BifrostException Unavailable() =>
        BifrostException.Gateway(503, "governance_unavailable", "governance_store_unavailable", "The governance store is unavailable; the call was not sent. Retry later.");
}

/// <summary>
/// The caller of the current call, as the endpoint resolved it from the virtual-key headers (or the job worker from the
/// job's owner): carried to the pipeline in an <see cref="AsyncLocal{T}"/>, so the pipeline never sees the HttpContext.
/// A null <see cref="Key"/> with an id means the key was removed since the job was stored.
/// </summary>
internal sealed record GovernanceCaller(string KeyId, VirtualKey? Key)
{
    public const string OwnerPrefix = "vk:";

    private static readonly AsyncLocal<GovernanceCaller?> CurrentCaller = new();

    private static readonly object ItemsKey = new();

    public static GovernanceCaller? Current
    {
        get => CurrentCaller.Value;
        set => CurrentCaller.Value = value;
    }

    /// <summary>
    /// The owner of what this request creates or reads: its virtual key (<c>vk:&lt;id&gt;</c>) when it presented one —
    /// whatever <see cref="IJobOwnerResolver"/> is registered, so a job always runs under the key that created it —
    /// else the resolver's answer.
    /// </summary>
    public static string OwnerOf(HttpContext context) =>
        Of(context) is { } caller ? OwnerPrefix + caller.KeyId : context.RequestServices.GetRequiredService<IJobOwnerResolver>().ResolveOwner(context);

    /// <summary>The caller the endpoint resolved for this request, if any.</summary>
    public static GovernanceCaller? Of(HttpContext context) => context.Items.TryGetValue(ItemsKey, out var value) ? value as GovernanceCaller : null;

    /// <summary>
    /// Reads the virtual key of a request (<c>x-bf-vk</c>, else an <c>sk-bf-</c> value of <c>Authorization: Bearer</c>,
    /// <c>x-api-key</c>, <c>api-key</c>), refuses a missing (Required mode), unknown, inactive or expired one with 401, and
    /// makes it the current caller.
    /// </summary>
    public static void Authenticate(HttpContext context, VirtualKeyStore store)
    {
        Current = null; // never a caller left over in the flow: only what this request presents
        var secret = Presented(context.Request.Headers);
        if (secret is null)
        {
            if (store.Mode == GovernanceMode.Required)
            {
                throw GovernanceErrors.Unauthorized("virtual_key_required", "virtual_key_required", "A virtual key is required: send it as x-bf-vk, or as 'Authorization: Bearer sk-bf-...'.");
            }

            return;
        }

        var key = store.FindBySecret(secret) ?? throw GovernanceErrors.Unauthorized("virtual_key_not_found", "virtual_key_invalid", "The virtual key is not valid.");
        store.CheckUsable(key);
        var caller = new GovernanceCaller(key.Id, key);
        context.Items[ItemsKey] = caller;
        Current = caller;
    }

    /// <summary>The caller of a job from its owner (<c>vk:&lt;id&gt;</c>), or null for jobs not created with a virtual key.</summary>
    public static GovernanceCaller? FromOwner(string owner, VirtualKeyStore store) =>
        owner.StartsWith(OwnerPrefix, StringComparison.Ordinal) && owner[OwnerPrefix.Length..] is var id ? new GovernanceCaller(id, store.FindById(id)) : null;

    private static string? Presented(IHeaderDictionary headers)
    {
        if (headers.TryGetValue("x-bf-vk", out var vk) && !string.IsNullOrWhiteSpace(vk.ToString()))
        {
            return vk.ToString().Trim();
        }

        var authorization = headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && authorization[7..].Trim() is var bearer && IsVirtualKey(bearer))
        {
            return bearer;
        }

        foreach (var name in (ReadOnlySpan<string>)["x-api-key", "api-key"])
        {
            if (headers[name].ToString().Trim() is var value && IsVirtualKey(value))
            {
                return value;
            }
        }

        return null;
    }

    private static bool IsVirtualKey(string value) => value.StartsWith(GovernanceValidation.Prefix, StringComparison.Ordinal);
}
