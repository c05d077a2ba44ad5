using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Governance;

/// <summary>
/// The admin API (<c>MapBifrostAdmin</c>): virtual keys, teams and customers over the <see cref="IGovernanceStore"/>, and a
/// key's usage from the ledger. Configured entries are listed (<c>"source": "configuration"</c>) and read-only. A key's
/// secret is generated here and answered once (create, rotate); the store keeps only its SHA-256. Errors are in the
/// Bifrost shape.
/// </summary>
internal static partial class GovernanceAdminEndpoints
{
    private const int MaxAttempts = 3;
    private const int MaxUsagePage = 1000;

    /// <summary>Maps the routes on <paramref name="group"/> (each wrapped in the Bifrost error guard).</summary>
    public static void Map(RouteGroupBuilder group)
    {
        foreach (var kind in (ReadOnlySpan<GovernanceEntityKind>)[GovernanceEntityKind.VirtualKey, GovernanceEntityKind.Team, GovernanceEntityKind.Customer])
        {
            var k = kind;
            var path = "/" + Route(k);
            Add(group, path, "POST", $"create {Noun(k)}", c => CreateAsync(c, k));
            Add(group, path, "GET", $"list {Noun(k)}s", c => ListAsync(c, k));
            Add(group, path + "/{id}", "GET", $"get {Noun(k)}", c => GetAsync(c, k));
            Add(group, path + "/{id}", "PATCH", $"update {Noun(k)}", c => UpdateAsync(c, k));
            Add(group, path + "/{id}", "DELETE", $"delete {Noun(k)}", c => DeleteAsync(c, k));
        }

        Add(group, "/virtual-keys/{id}/rotate", "POST", "rotate virtual key", RotateAsync);
        Add(group, "/virtual-keys/{id}/deactivate", "POST", "deactivate virtual key", c => SetActiveAsync(c, false));
        Add(group, "/virtual-keys/{id}/activate", "POST", "activate virtual key", c => SetActiveAsync(c, true));
        Add(group, "/virtual-keys/{id}/usage", "GET", "virtual key usage", UsageAsync);
        group.Map("/{**path}", BifrostResults.Guard(null, UnknownRouteAsync)).WithDisplayName("Bifrost admin unknown route").ExcludeFromDescription();
    }

    private static void Add(RouteGroupBuilder group, string pattern, string method, string name, RequestDelegate handler) =>
        group.MapMethods(pattern, [method], BifrostResults.Guard(null, handler)).WithDisplayName("Bifrost admin " + name).ExcludeFromDescription();

    private static string Route(GovernanceEntityKind kind) => kind switch
    {
        GovernanceEntityKind.VirtualKey => "virtual-keys",
        GovernanceEntityKind.Team => "teams",
        _ => "customers",
    };

    private static string Noun(GovernanceEntityKind kind) => kind switch
    {
        GovernanceEntityKind.VirtualKey => "virtual key",
        GovernanceEntityKind.Team => "team",
        _ => "customer",
    };

    private static string Object(GovernanceEntityKind kind) => kind switch
    {
        GovernanceEntityKind.VirtualKey => "virtual_key",
        GovernanceEntityKind.Team => "team",
        _ => "customer",
    };

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex IdPattern();

    private sealed record Services(IGovernanceStore Store, VirtualKeyStore Keys, GovernanceSnapshotRefresher Refresher, TimeProvider Time);

    private static Services Of(HttpContext context)
    {
        var sp = context.RequestServices;
        return new(sp.GetRequiredService<IGovernanceStore>(), sp.GetRequiredService<VirtualKeyStore>(), sp.GetRequiredService<GovernanceSnapshotRefresher>(), sp.GetRequiredService<TimeProvider>());
    }

    private static string IdOf(HttpContext context) => context.Request.RouteValues["id"] as string ?? string.Empty;

    // ---- create ----

    private static async Task CreateAsync(HttpContext context, GovernanceEntityKind kind)
    {
        var s = Of(context);
        var ct = context.RequestAborted;
        var body = await ReadObjectAsync(context).ConfigureAwait(false);
        RejectSecretFields(body);
        string? secret = null;
        byte[] definition;
        string id;
        if (kind == GovernanceEntityKind.VirtualKey)
        {
            var key = Deserialize(body, GovernanceDefinitions.Strict.VirtualKeyOptions);
            id = key.Id ??= NewId("vk");
            CheckId(s, kind, id);
            secret = GovernanceDefinitions.NewSecret();
            key.Value = null;
            key.ValueHash = VirtualKey.HashOf(secret);
            await ValidateKeyAsync(s, key, ct).ConfigureAwait(false);
            definition = GovernanceDefinitions.Write(key, GovernanceDefinitions.Lenient.VirtualKeyOptions);
        }
        else
        {
            var group = Deserialize(body, GovernanceDefinitions.Strict.GovernanceGroupOptions);
            id = group.Id ??= NewId(kind == GovernanceEntityKind.Team ? "team" : "cust");
            CheckId(s, kind, id);
            ValidateGroup(kind, group);
            definition = GovernanceDefinitions.Write(group, GovernanceDefinitions.Lenient.GovernanceGroupOptions);
        }

        var created = await s.Store.CreateEntityAsync(new GovernanceEntity { Kind = kind, Id = id, Definition = definition }, ct).ConfigureAwait(false);
        if (!created)
        {
            throw BifrostErrors.Conflict($"{Object(kind)}_exists", $"A {Noun(kind)} with id '{id}' exists.", "id");
        }

        await s.Refresher.RefreshAsync(ct).ConfigureAwait(false);
        var stored = await s.Store.GetEntityAsync(kind, id, ct).ConfigureAwait(false) ?? throw NotFound(kind, id);
        await WriteAsync(context, Describe(stored, secret), StatusCodes.Status201Created).ConfigureAwait(false);
    }

    private static string NewId(string prefix) => prefix + "-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    private static void CheckId(Services s, GovernanceEntityKind kind, string id)
    {
        if (!IdPattern().IsMatch(id))
        {
            throw BifrostErrors.InvalidValue("id must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit.", "id");
        }

        if (s.Keys.IsConfigured(kind, id))
        {
            throw Configured(kind, id);
        }
    }

    private static BifrostException Configured(GovernanceEntityKind kind, string id) =>
        BifrostErrors.Conflict("configured_read_only", $"The {Noun(kind)} '{id}' comes from configuration (Bifrost:Governance): the admin API cannot create, change or delete it.", "id");

    private static BifrostException NotFound(GovernanceEntityKind kind, string id) =>
        BifrostErrors.NotFound($"{Object(kind)}_not_found", $"No {Noun(kind)} with id '{id}'.", "id");

    // ---- read ----

    private static async Task ListAsync(HttpContext context, GovernanceEntityKind kind)
    {
        var s = Of(context);
        var data = new JsonArray();
        foreach (var node in Configured(s.Keys, kind))
        {
            data.Add(node);
        }

        var entities = await s.Store.ListEntitiesAsync(context.RequestAborted).ConfigureAwait(false);
        foreach (var entity in entities.Where(e => e.Kind == kind && !s.Keys.IsConfigured(kind, e.Id)).OrderBy(static e => e.CreatedAt).ThenBy(static e => e.Id, StringComparer.Ordinal))
        {
            data.Add(Describe(entity, null));
        }

        await WriteAsync(context, new JsonObject { ["object"] = "list", ["data"] = data }).ConfigureAwait(false);
    }

    private static IEnumerable<JsonObject> Configured(VirtualKeyStore keys, GovernanceEntityKind kind) => kind switch
    {
        GovernanceEntityKind.VirtualKey => keys.ConfiguredKeys.Select(static k => DescribeConfigured(GovernanceEntityKind.VirtualKey, k.Id!, JsonSerializer.SerializeToNode(k, GovernanceDefinitions.Lenient.VirtualKeyOptions))),
        GovernanceEntityKind.Team => keys.ConfiguredTeams.Select(static g => DescribeConfigured(GovernanceEntityKind.Team, g.Id!, JsonSerializer.SerializeToNode(g, GovernanceDefinitions.Lenient.GovernanceGroupOptions))),
        _ => keys.ConfiguredCustomers.Select(static g => DescribeConfigured(GovernanceEntityKind.Customer, g.Id!, JsonSerializer.SerializeToNode(g, GovernanceDefinitions.Lenient.GovernanceGroupOptions))),
    };

    private static async Task GetAsync(HttpContext context, GovernanceEntityKind kind)
    {
        var s = Of(context);
        var id = IdOf(context);
        if (s.Keys.IsConfigured(kind, id))
        {
            await WriteAsync(context, Configured(s.Keys, kind).First(n => (string?)n["id"] == id)).ConfigureAwait(false);
            return;
        }

        var entity = await s.Store.GetEntityAsync(kind, id, context.RequestAborted).ConfigureAwait(false) ?? throw NotFound(kind, id);
        await WriteAsync(context, Describe(entity, null)).ConfigureAwait(false);
    }

    /// <summary>The answer for an entity: <c>object</c>, <c>id</c>, <c>source</c>, <c>version</c>, times, then its fields (never <c>value_hash</c>); <c>value</c> only when given (create, rotate).</summary>
    private static JsonObject Describe(GovernanceEntity entity, string? secret)
    {
        var answer = new JsonObject
        {
            ["object"] = Object(entity.Kind),
            ["id"] = entity.Id,
            ["source"] = "store",
            ["version"] = entity.Version,
            ["created_at"] = entity.CreatedAt,
            ["updated_at"] = entity.UpdatedAt,
        };
        if (secret is not null)
        {
            answer["value"] = secret;
        }

        CopyFields(JsonNode.Parse(entity.Definition.Span), answer);
        return answer;
    }

    private static JsonObject DescribeConfigured(GovernanceEntityKind kind, string id, JsonNode? fields)
    {
        var answer = new JsonObject { ["object"] = Object(kind), ["id"] = id, ["source"] = "configuration" };
        CopyFields(fields, answer);
        return answer;
    }

    private static void CopyFields(JsonNode? fields, JsonObject answer)
    {
        if (fields is not JsonObject source)
        {
            return;
        }

        foreach (var (name, value) in source)
        {
            if (name is not ("id" or "value" or "value_hash") && !answer.ContainsKey(name))
            {
                answer[name] = value?.DeepClone();
            }
        }
    }

    // ---- update ----

    private static async Task UpdateAsync(HttpContext context, GovernanceEntityKind kind)
    {
        var s = Of(context);
        var id = IdOf(context);
        if (s.Keys.IsConfigured(kind, id))
        {
            throw Configured(kind, id);
        }

        var patch = await ReadObjectAsync(context).ConfigureAwait(false);
        RejectSecretFields(patch);
        var expected = ExpectedVersion(context, patch);
        if (patch["id"] is { } newId && (newId.GetValueKind() != JsonValueKind.String || (string?)newId != id))
        {
            throw BifrostErrors.InvalidValue("id cannot be changed.", "id");
        }

        var stored = await MutateAsync(context, s, kind, id, expected, async (definition, ct) =>
        {
            var merged = Merge(JsonNode.Parse(definition.Span) as JsonObject ?? [], patch);
            if (kind == GovernanceEntityKind.VirtualKey)
            {
                var key = Deserialize(merged, GovernanceDefinitions.Strict.VirtualKeyOptions);
                key.Id = id;
                key.Value = null;
                await ValidateKeyAsync(s, key, ct).ConfigureAwait(false);
                return GovernanceDefinitions.Write(key, GovernanceDefinitions.Lenient.VirtualKeyOptions);
            }

            var group = Deserialize(merged, GovernanceDefinitions.Strict.GovernanceGroupOptions);
            group.Id = id;
            ValidateGroup(kind, group);
            return GovernanceDefinitions.Write(group, GovernanceDefinitions.Lenient.GovernanceGroupOptions);
        }).ConfigureAwait(false);
        await WriteAsync(context, Describe(stored, null)).ConfigureAwait(false);
    }

    /// <summary>The version the caller read: the body's <c>version</c> or an <c>If-Match</c> header (<c>"3"</c>), else null (last write wins, with retries on a concurrent change).</summary>
    private static long? ExpectedVersion(HttpContext context, JsonObject? body)
    {
        if (body is not null && body.TryGetPropertyValue("version", out var node))
        {
            body.Remove("version");
            if (node is JsonValue value && value.TryGetValue<long>(out var version))
            {
                return version;
            }

            throw BifrostErrors.InvalidType("version must be an integer (the entity's version, as the last read answered it).", "version");
        }

        var ifMatch = context.Request.Headers.IfMatch.ToString().Trim();
        if (ifMatch.Length == 0)
        {
            return null;
        }

        var bare = ifMatch.StartsWith("W/", StringComparison.Ordinal) ? ifMatch[2..] : ifMatch;
        return long.TryParse(bare.Trim('"'), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed)
            ? parsed
            : throw BifrostErrors.InvalidValue("If-Match must hold the entity's version (e.g. \"3\").", "If-Match");
    }

    /// <summary>
    /// Reads the entity, changes its definition and stores it with a compare-and-set: 409 when <paramref name="expected"/>
    /// is not the stored version (or it moved meanwhile); without one, a concurrent change is retried a few times.
    /// </summary>
    private static async Task<GovernanceEntity> MutateAsync(HttpContext context, Services s, GovernanceEntityKind kind, string id, long? expected, Func<ReadOnlyMemory<byte>, CancellationToken, Task<byte[]>> change)
    {
        var ct = context.RequestAborted;
        for (var attempt = 1; ; attempt++)
        {
            var entity = await s.Store.GetEntityAsync(kind, id, ct).ConfigureAwait(false) ?? throw NotFound(kind, id);
            if (expected is { } version && version != entity.Version)
            {
                throw VersionConflict(kind, id, entity.Version);
            }

            var definition = await change(entity.Definition, ct).ConfigureAwait(false);
            var updated = await s.Store.UpdateEntityAsync(new GovernanceEntity { Kind = kind, Id = id, Definition = definition }, entity.Version, ct).ConfigureAwait(false);
            if (updated is not null)
            {
                await s.Refresher.RefreshAsync(ct).ConfigureAwait(false);
                return updated;
            }

            if (expected is not null || attempt >= MaxAttempts)
            {
                throw VersionConflict(kind, id, null);
            }
        }
    }

    private static BifrostException VersionConflict(GovernanceEntityKind kind, string id, long? current) =>
        BifrostErrors.Conflict("version_conflict", current is { } v
            ? $"The {Noun(kind)} '{id}' is at version {v}, not the one given: read it again and retry."
            : $"The {Noun(kind)} '{id}' changed meanwhile: read it again and retry.", "version");

    /// <summary>JSON merge patch (RFC 7396): objects merge, <c>null</c> removes, anything else replaces.</summary>
    private static JsonObject Merge(JsonObject target, JsonObject patch)
    {
        foreach (var (name, value) in patch)
        {
            if (value is null)
            {
                target.Remove(name);
            }
            else if (value is JsonObject inner && target[name] is JsonObject existing)
            {
                Merge(existing, inner);
            }
            else
            {
                target[name] = value.DeepClone();
            }
        }

        return target;
    }

    private static async Task RotateAsync(HttpContext context)
    {
        var s = Of(context);
        var id = IdOf(context);
        if (s.Keys.IsConfigured(GovernanceEntityKind.VirtualKey, id))
        {
            throw Configured(GovernanceEntityKind.VirtualKey, id);
        }

        var secret = GovernanceDefinitions.NewSecret();
        var stored = await MutateAsync(context, s, GovernanceEntityKind.VirtualKey, id, ExpectedVersion(context, null), (definition, _) =>
        {
            var key = Lenient(definition, id);
            key.ValueHash = VirtualKey.HashOf(secret);
            return Task.FromResult(GovernanceDefinitions.Write(key, GovernanceDefinitions.Lenient.VirtualKeyOptions));
        }).ConfigureAwait(false);
        await WriteAsync(context, Describe(stored, secret)).ConfigureAwait(false);
    }

    private static async Task SetActiveAsync(HttpContext context, bool active)
    {
        var s = Of(context);
        var id = IdOf(context);
        if (s.Keys.IsConfigured(GovernanceEntityKind.VirtualKey, id))
        {
            throw Configured(GovernanceEntityKind.VirtualKey, id);
        }

        var stored = await MutateAsync(context, s, GovernanceEntityKind.VirtualKey, id, ExpectedVersion(context, null), (definition, _) =>
        {
            var key = Lenient(definition, id);
            key.Active = active;
            return Task.FromResult(GovernanceDefinitions.Write(key, GovernanceDefinitions.Lenient.VirtualKeyOptions));
        }).ConfigureAwait(false);
        await WriteAsync(context, Describe(stored, null)).ConfigureAwait(false);
    }

    private static VirtualKeyOptions Lenient(ReadOnlyMemory<byte> definition, string id)
    {
        var key = JsonSerializer.Deserialize(definition.Span, GovernanceDefinitions.Lenient.VirtualKeyOptions) ?? new VirtualKeyOptions();
        key.Id = id;
        key.Value = null;
        return key;
    }

    // ---- delete ----

    private static async Task DeleteAsync(HttpContext context, GovernanceEntityKind kind)
    {
        var s = Of(context);
        var id = IdOf(context);
        var ct = context.RequestAborted;
        if (s.Keys.IsConfigured(kind, id))
        {
            throw Configured(kind, id);
        }

        if (kind != GovernanceEntityKind.VirtualKey)
        {
            // A group a stored key still belongs to stays (configured keys can only name configured groups).
            foreach (var entity in await s.Store.ListEntitiesAsync(ct).ConfigureAwait(false))
            {
                if (entity.Kind == GovernanceEntityKind.VirtualKey && Lenient(entity.Definition, entity.Id) is var key
                    && string.Equals(kind == GovernanceEntityKind.Team ? key.Team : key.Customer, id, StringComparison.Ordinal))
                {
                    throw BifrostErrors.Conflict($"{Object(kind)}_in_use", $"The {Noun(kind)} '{id}' still has virtual key '{entity.Id}': move or delete its keys first.", "id");
                }
            }
        }

        if (!await s.Store.DeleteEntityAsync(kind, id, ct).ConfigureAwait(false))
        {
            throw NotFound(kind, id);
        }

        await s.Refresher.RefreshAsync(ct).ConfigureAwait(false);
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    // ---- usage ----

    private static async Task UsageAsync(HttpContext context)
    {
        var s = Of(context);
        var id = IdOf(context);
        var ct = context.RequestAborted;
        if (!s.Keys.IsConfigured(GovernanceEntityKind.VirtualKey, id) && await s.Store.GetEntityAsync(GovernanceEntityKind.VirtualKey, id, ct).ConfigureAwait(false) is null)
        {
            throw NotFound(GovernanceEntityKind.VirtualKey, id);
        }

        var query = context.Request.Query;
        var from = Time(query["from"], "from");
        var to = Time(query["to"], "to");
        var before = Time(query["before"], "before");
        var limit = 100;
        if (query["limit"].ToString() is { Length: > 0 } text && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxUsagePage))
        {
            throw BifrostErrors.InvalidValue($"limit must be an integer from 1 to {MaxUsagePage}.", "limit");
        }

        if (from is not null && to is not null && from >= to)
        {
            throw BifrostErrors.InvalidValue("from must be before to.", "from");
        }

        var totals = await s.Store.SumUsageAsync(new UsageQuery { VirtualKeyId = id, From = from, To = to }, ct).ConfigureAwait(false);
        var records = await s.Store.ListUsageAsync(new UsageQuery { VirtualKeyId = id, From = from, To = to, Before = before, Limit = limit + 1 }, ct).ConfigureAwait(false);
        var data = new JsonArray();
        foreach (var r in records.Take(limit))
        {
            data.Add(new JsonObject
            {
                ["time"] = r.Time,
                ["request_id"] = r.RequestId,
                ["team"] = r.Team,
                ["customer"] = r.Customer,
                ["provider"] = r.Provider,
                ["model"] = r.Model,
                ["operation"] = r.Operation,
                ["source"] = r.Source,
                ["input_tokens"] = r.InputTokens,
                ["output_tokens"] = r.OutputTokens,
                ["cached_input_tokens"] = r.CachedInputTokens,
                ["reasoning_tokens"] = r.ReasoningTokens,
                ["cost_usd"] = r.CostUsd,
                ["status"] = r.Status,
                ["duration_ms"] = (long)r.Duration.TotalMilliseconds,
            });
        }

        var hasMore = records.Count > limit;
        var answer = new JsonObject
        {
            ["object"] = "virtual_key.usage",
            ["id"] = id,
            ["from"] = from,
            ["to"] = to,
            ["totals"] = new JsonObject
            {
                ["requests"] = totals.Requests,
                ["input_tokens"] = totals.InputTokens,
                ["output_tokens"] = totals.OutputTokens,
                ["cached_input_tokens"] = totals.CachedInputTokens,
                ["reasoning_tokens"] = totals.ReasoningTokens,
                ["cost_usd"] = totals.CostUsd,
                ["unknown_cost_requests"] = totals.UnknownCostRequests,
            },
            ["data"] = data,
            ["has_more"] = hasMore,
        };
        if (hasMore)
        {
            answer["next_before"] = records[limit - 1].Time;
        }

        await WriteAsync(context, answer).ConfigureAwait(false);
    }

    private static DateTimeOffset? Time(Microsoft.Extensions.Primitives.StringValues value, string param) =>
        value.ToString() is not { Length: > 0 } text ? null
        : DateTimeOffset.TryParse(text.Replace(' ', '+'), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time) ? time // an unescaped '+' of an offset arrives as a space
        : throw BifrostErrors.InvalidValue($"{param} must be a time in ISO 8601 (2026-01-31T00:00:00Z).", param);

    // ---- helpers ----

    /// <summary>Any other request under the prefix: 405 (with <c>Allow</c>) for a known path with another method, else 404 <c>unknown_url</c>.</summary>
    private static Task UnknownRouteAsync(HttpContext context)
    {
        var path = context.Request.RouteValues.TryGetValue("path", out var value) ? value as string ?? string.Empty : string.Empty;
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var collection = segments.Length > 0 && segments[0].ToLowerInvariant() is "virtual-keys" or "teams" or "customers";
        var allow = segments.Length is 1 or 2 && string.Equals(segments[0], "requests", StringComparison.OrdinalIgnoreCase) ? "GET" // the request log (read-only)
            : !collection ? null : segments.Length switch
        {
            1 => "GET, POST",
            2 => "GET, PATCH, DELETE",
            3 when string.Equals(segments[0], "virtual-keys", StringComparison.OrdinalIgnoreCase) => segments[2].ToLowerInvariant() switch
            {
                "rotate" or "deactivate" or "activate" => "POST",
                "usage" => "GET",
                _ => null,
            },
            _ => null,
        };
        return allow is not null
            ? BifrostResults.MethodNotAllowedAsync(context, allow)
            : BifrostResults.WriteErrorAsync(context, BifrostErrors.NotFound("unknown_url", $"Unknown admin route: {context.Request.Method} {context.Request.Path}."));
    }

    private static Task WriteAsync(HttpContext context, JsonNode answer, int status = StatusCodes.Status200OK) =>
        BifrostResults.WriteJsonAsync(context, answer, BifrostJson.Context.JsonNode, status);

    private static async Task<JsonObject> ReadObjectAsync(HttpContext context) =>
        await BifrostResults.ReadJsonAsync(context, BifrostJson.Context.JsonNode).ConfigureAwait(false) as JsonObject
        ?? throw BifrostErrors.InvalidRequest("invalid_json", "The request body must be a JSON object.");

    private static void RejectSecretFields(JsonObject body)
    {
        foreach (var name in (ReadOnlySpan<string>)["value", "value_hash"])
        {
            if (body.ContainsKey(name))
            {
                throw BifrostErrors.UnsupportedParameter($"'{name}' cannot be set: the gateway generates a key's secret and answers it once (create, rotate).", name);
            }
        }
    }

    private static T Deserialize<T>(JsonObject body, JsonTypeInfo<T> typeInfo)
        where T : class
    {
        try
        {
            return body.Deserialize(typeInfo) ?? throw BifrostErrors.InvalidRequest("invalid_json", "The request body must be a JSON object.");
        }
        catch (JsonException ex)
        {
            throw BifrostException.InvalidJson(ex);
        }
        catch (InvalidOperationException ex)
        {
            throw BifrostErrors.InvalidRequest("invalid_json", $"The request body is not valid for this route: {ex.Message}");
        }
    }

    /// <summary>The team or customer must exist; then the configuration's own rules (<see cref="GovernanceValidation"/>) apply, each failure a 400 naming the field.</summary>
    private static async Task ValidateKeyAsync(Services s, VirtualKeyOptions key, CancellationToken ct)
    {
        // JSON can say null where configuration binding never does: absent lists are empty, null entries are refused.
        key.AllowedModels ??= [];
        key.AllowedProviders ??= [];
        key.ProviderKeys ??= new Dictionary<string, IList<string>>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < key.AllowedProviders.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(key.AllowedProviders[i]))
            {
                throw BifrostErrors.InvalidValue("A provider name cannot be empty.", $"allowed_providers[{i}]");
            }
        }

        foreach (var (provider, ids) in key.ProviderKeys)
        {
            if (ids is null || ids.Any(string.IsNullOrWhiteSpace))
            {
                throw BifrostErrors.InvalidValue($"provider_keys.{provider} must be a list of the provider's key ids.", $"provider_keys.{provider}");
            }
        }

        var options = new GovernanceOptions { VirtualKeys = [key] };
        if (key.Team is { } team && key.Customer is null)
        {
            await RequireGroupAsync(s, GovernanceEntityKind.Team, team, ct).ConfigureAwait(false);
            options.Teams.Add(new GovernanceGroupOptions { Id = team });
        }

        if (key.Customer is { } customer && key.Team is null)
        {
            await RequireGroupAsync(s, GovernanceEntityKind.Customer, customer, ct).ConfigureAwait(false);
            options.Customers.Add(new GovernanceGroupOptions { Id = customer });
        }

        if (key.Team is not null && key.Customer is not null)
        {
            throw BifrostErrors.InvalidValue("Set team or customer, not both.", "customer");
        }

        Validate(options, "Bifrost:Governance:VirtualKeys:0");
    }

    private static async Task RequireGroupAsync(Services s, GovernanceEntityKind kind, string id, CancellationToken ct)
    {
        if (!s.Keys.IsConfigured(kind, id) && await s.Store.GetEntityAsync(kind, id, ct).ConfigureAwait(false) is null)
        {
            var param = kind == GovernanceEntityKind.Team ? "team" : "customer";
            throw BifrostErrors.InvalidRequest($"{param}_not_found", $"{param} '{id}' does not exist: create it first ({Route(kind)}).", param);
        }
    }

    private static void ValidateGroup(GovernanceEntityKind kind, GovernanceGroupOptions group)
    {
        var options = new GovernanceOptions();
        (kind == GovernanceEntityKind.Team ? options.Teams : options.Customers).Add(group);
        Validate(options, kind == GovernanceEntityKind.Team ? "Bifrost:Governance:Teams:0" : "Bifrost:Governance:Customers:0");
    }

    /// <summary>Runs the start-time validation over one entity and answers its first failure as a 400 naming the field (<c>rate_limits.period</c>).</summary>
    private static void Validate(GovernanceOptions options, string prefix)
    {
        var builder = new ValidateOptionsResultBuilder();
        GovernanceValidation.Validate(options, builder);
        if (builder.Build() is not { Failed: true } result)
        {
            return;
        }

        var failure = result.Failures?.FirstOrDefault() ?? result.FailureMessage;
        throw AsBadRequest(failure, prefix);
    }

    /// <summary>"Bifrost:Governance:VirtualKeys:0:RateLimits:Period 'x' is not..." → 400 param <c>rate_limits.period</c>, message "rate_limits.period 'x' is not...".</summary>
    internal static BifrostException AsBadRequest(string failure, string prefix)
    {
        if (!failure.StartsWith(prefix, StringComparison.Ordinal))
        {
            return BifrostErrors.InvalidValue(failure, null);
        }

        var rest = failure[prefix.Length..];
        if (rest.StartsWith(": ", StringComparison.Ordinal) || !rest.StartsWith(':'))
        {
            return BifrostErrors.InvalidValue(rest.TrimStart(':', ' '), null);
        }

        var space = rest.IndexOf(' ', StringComparison.Ordinal);
        var path = space < 0 ? rest[1..] : rest[1..space];
        var param = Param(path);
        return BifrostErrors.InvalidValue(param + (space < 0 ? string.Empty : rest[space..]), param);
    }

    private static string Param(string path)
    {
        var parts = new List<string>();
        foreach (var segment in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out _) && parts.Count > 0)
            {
                parts[^1] += $"[{segment}]";
            }
            else
            {
                parts.Add(JsonNamingPolicy.SnakeCaseLower.ConvertName(segment));
            }
        }

        return string.Join('.', parts);
    }
}
