using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Tests.Hosting;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Time.Testing;
using OpenAI;
using OpenAI.Chat;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>The admin API (<c>MapBifrostAdmin</c>) through HTTP: every route and status, secrets shown once, keys that work (and stop working) at once, the refresh across instances.</summary>
public sealed class AdminApiTests
{
    private const string Admin = "/bifrost/admin";
    private const string Chat = "/openai/v1/chat/completions";
    private const string ConfiguredSecret = "sk-bf-configured-0001";
    private const string ChatBody = """{"model":"local/echo","messages":[{"role":"user","content":"hello"}]}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A host with the gateway at /openai and the admin API at /bifrost/admin (optionally behind authorization), a configured key "cfg" and team "research".</summary>
    private sealed class Host : IAsyncDisposable
    {
        private Host(WebApplication app)
        {
            App = app;
            Client = app.GetTestClient();
        }

        public WebApplication App { get; }

        public HttpClient Client { get; }

        public IServiceProvider Services => App.Services;

        public static async Task<Host> StartAsync(
            GovernanceMode mode = GovernanceMode.Required,
            IGovernanceStore? store = null,
            TimeProvider? time = null,
            bool mapAdmin = true,
            bool requireAuthorization = false,
            Action<GovernanceOptions>? configure = null,
            LogSink? logs = null)
        {
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
            builder.WebHost.UseTestServer();
            builder.Logging.ClearProviders();
            if (logs is not null)
            {
                builder.Services.AddSingleton<ILoggerProvider>(logs);
            }

            if (requireAuthorization)
            {
                builder.Services.AddAuthentication(MapBifrostTests.TestAuthHandler.SchemeName)
                    .AddScheme<AuthenticationSchemeOptions, MapBifrostTests.TestAuthHandler>(MapBifrostTests.TestAuthHandler.SchemeName, null);
                builder.Services.AddAuthorization(o => o.AddPolicy("admin", p => p.RequireAuthenticatedUser()));
            }

            builder.Services.AddBifrost(options =>
            {
                options.DefaultProvider = "local";
                options.Providers["local"] = new ProviderOptions { Type = "local" };
                options.Governance.Mode = mode;
                options.Governance.Teams.Add(new GovernanceGroupOptions { Id = "research" });
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "cfg", Name = "configured", Value = ConfiguredSecret, Team = "research" });
                configure?.Invoke(options.Governance);
            });
            if (store is not null)
            {
                builder.Services.AddSingleton(store);
            }

            if (time is not null)
            {
                builder.Services.AddSingleton(time);
            }

            var app = builder.Build();
            if (requireAuthorization)
            {
                app.UseAuthentication();
                app.UseAuthorization();
            }

            app.MapBifrost("/openai");
            if (mapAdmin)
            {
                var admin = app.MapBifrostAdmin();
                if (requireAuthorization)
                {
                    admin.RequireAuthorization("admin");
                }
            }

            await app.StartAsync(Ct);
            return new Host(app);
        }

        public async Task<(HttpStatusCode Status, JsonElement Json, HttpResponseMessage Response)> SendAsync(string method, string path, string? body = null, params (string Name, string Value)[] headers)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }

            foreach (var (name, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }

            var response = await Client.SendAsync(request, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            var json = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
            return (response.StatusCode, json, response);
        }

        public async Task<HttpStatusCode> ChatAsync(string? key)
        {
            var (status, _, response) = await SendAsync("POST", Chat, ChatBody, key is null ? [] : [("x-bf-vk", key)]);
            response.Dispose();
            return status;
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await App.StopAsync(Ct);
            await App.DisposeAsync();
        }
    }

    private static void AssertError(HttpStatusCode expected, (HttpStatusCode Status, JsonElement Json, HttpResponseMessage Response) answer, string code, string? param = null)
    {
        Assert.Equal(expected, answer.Status);
        Assert.True(answer.Json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal((int)expected, answer.Json.GetProperty("status_code").GetInt32());
        Assert.Equal(code, answer.Json.GetProperty("error").GetProperty("code").GetString());
        if (param is not null)
        {
            Assert.Equal(param, answer.Json.GetProperty("error").GetProperty("param").GetString());
        }
    }

    private static async Task<(string Id, string Secret)> CreateKeyAsync(Host host, string body = """{"name":"app"}""")
    {
        var created = await host.SendAsync("POST", Admin + "/virtual-keys", body);
        Assert.Equal(HttpStatusCode.Created, created.Status);
        return (created.Json.GetProperty("id").GetString()!, created.Json.GetProperty("value").GetString()!);
    }

    [Fact]
    public async Task A_created_key_shows_its_secret_once_is_stored_only_as_a_hash_and_works_at_once()
    {
        await using var host = await Host.StartAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await host.ChatAsync(null));

        var created = await host.SendAsync("POST", Admin + "/virtual-keys", """{"id":"app-1","name":"App one","allowed_models":["local/*"],"rate_limits":{"requests":100,"period":"1m"}}""");
        Assert.Equal(HttpStatusCode.Created, created.Status);
        var secret = created.Json.GetProperty("value").GetString()!;
        Assert.StartsWith("sk-bf-", secret, StringComparison.Ordinal);
        Assert.Equal(6 + 43, secret.Length); // 32 random bytes in base64url, no padding
        Assert.Equal("virtual_key", created.Json.GetProperty("object").GetString());
        Assert.Equal("app-1", created.Json.GetProperty("id").GetString());
        Assert.Equal("store", created.Json.GetProperty("source").GetString());
        Assert.Equal(1, created.Json.GetProperty("version").GetInt64());
        Assert.Equal("App one", created.Json.GetProperty("name").GetString());
        Assert.True(created.Json.GetProperty("active").GetBoolean());
        Assert.Equal(100, created.Json.GetProperty("rate_limits").GetProperty("requests").GetInt64());
        Assert.False(created.Json.TryGetProperty("value_hash", out _));

        // Works at once on this instance (no refresh interval to wait for).
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(secret));

        // Never again: not in get, not in list, not in the store's document (only its SHA-256 is).
        var got = await host.SendAsync("GET", Admin + "/virtual-keys/app-1");
        Assert.Equal(HttpStatusCode.OK, got.Status);
        Assert.False(got.Json.TryGetProperty("value", out _));
        Assert.False(got.Json.TryGetProperty("value_hash", out _));
        Assert.DoesNotContain(secret, got.Json.GetRawText(), StringComparison.Ordinal);
        var list = await host.SendAsync("GET", Admin + "/virtual-keys");
        Assert.Equal(HttpStatusCode.OK, list.Status);
        Assert.DoesNotContain(secret, list.Json.GetRawText(), StringComparison.Ordinal);
        Assert.Contains(list.Json.GetProperty("data").EnumerateArray(), k => k.GetProperty("id").GetString() == "app-1" && !k.TryGetProperty("value", out _));

        var entity = await host.Services.GetRequiredService<IGovernanceStore>().GetEntityAsync(GovernanceEntityKind.VirtualKey, "app-1", Ct);
        var document = Encoding.UTF8.GetString(entity!.Definition.Span);
        Assert.DoesNotContain(secret, document, StringComparison.Ordinal);
        using var stored = JsonDocument.Parse(document);
        Assert.False(stored.RootElement.TryGetProperty("value", out _));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret))), stored.RootElement.GetProperty("value_hash").GetString());

    }

    [Fact]
    public async Task The_official_OpenAI_sdk_uses_a_created_key_and_is_refused_once_it_is_rotated()
    {
        await using var host = await Host.StartAsync();
        var (id, secret) = await CreateKeyAsync(host);
        ChatClient Client(string key) => new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.App.GetTestServer().BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(host.App.GetTestServer().CreateClient()),
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetChatClient("local/echo");

        var answer = await Client(secret).CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct);
        Assert.NotEmpty(answer.Value.Content);
        var rotated = await host.SendAsync("POST", $"{Admin}/virtual-keys/{id}/rotate");
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => Client(secret).CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));
        Assert.Equal(401, refused.Status);
        var again = await Client(rotated.Json.GetProperty("value").GetString()!).CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct);
        Assert.NotEmpty(again.Value.Content);
    }

    [Fact]
    public async Task Generated_ids_and_secrets_are_distinct()
    {
        await using var host = await Host.StartAsync();
        var first = await CreateKeyAsync(host, "{}");
        var second = await CreateKeyAsync(host, "{}");
        Assert.StartsWith("vk-", first.Id, StringComparison.Ordinal);
        Assert.NotEqual(first.Id, second.Id);
        Assert.NotEqual(first.Secret, second.Secret);
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(second.Secret));
    }

    [Fact]
    public async Task Rotate_answers_a_new_secret_once_and_the_old_one_stops_working_at_once()
    {
        await using var host = await Host.StartAsync();
        var (id, old) = await CreateKeyAsync(host);
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(old));

        var rotated = await host.SendAsync("POST", $"{Admin}/virtual-keys/{id}/rotate");
        Assert.Equal(HttpStatusCode.OK, rotated.Status);
        var fresh = rotated.Json.GetProperty("value").GetString()!;
        Assert.NotEqual(old, fresh);
        Assert.Equal(2, rotated.Json.GetProperty("version").GetInt64());

        Assert.Equal(HttpStatusCode.Unauthorized, await host.ChatAsync(old));
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(fresh));
        var got = await host.SendAsync("GET", $"{Admin}/virtual-keys/{id}");
        Assert.False(got.Json.TryGetProperty("value", out _));

        AssertError(HttpStatusCode.NotFound, await host.SendAsync("POST", $"{Admin}/virtual-keys/missing/rotate"), "virtual_key_not_found");
    }

    [Fact]
    public async Task Deactivate_answers_401_virtual_key_inactive_and_activate_restores_it()
    {
        await using var host = await Host.StartAsync();
        var (id, secret) = await CreateKeyAsync(host);

        var deactivated = await host.SendAsync("POST", $"{Admin}/virtual-keys/{id}/deactivate");
        Assert.Equal(HttpStatusCode.OK, deactivated.Status);
        Assert.False(deactivated.Json.GetProperty("active").GetBoolean());
        var refused = await host.SendAsync("POST", Chat, ChatBody, ("x-bf-vk", secret));
        AssertError(HttpStatusCode.Unauthorized, refused, "virtual_key_inactive");

        var activated = await host.SendAsync("POST", $"{Admin}/virtual-keys/{id}/activate");
        Assert.Equal(HttpStatusCode.OK, activated.Status);
        Assert.True(activated.Json.GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(secret));
    }

    [Fact]
    public async Task Delete_answers_204_then_the_key_is_unknown_everywhere()
    {
        await using var host = await Host.StartAsync();
        var (id, secret) = await CreateKeyAsync(host);

        var deleted = await host.SendAsync("DELETE", $"{Admin}/virtual-keys/{id}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        AssertError(HttpStatusCode.Unauthorized, await host.SendAsync("POST", Chat, ChatBody, ("x-bf-vk", secret)), "virtual_key_invalid");
        AssertError(HttpStatusCode.NotFound, await host.SendAsync("GET", $"{Admin}/virtual-keys/{id}"), "virtual_key_not_found", "id");
        AssertError(HttpStatusCode.NotFound, await host.SendAsync("DELETE", $"{Admin}/virtual-keys/{id}"), "virtual_key_not_found");
        AssertError(HttpStatusCode.NotFound, await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"name":"x"}"""), "virtual_key_not_found");
    }

    [Fact]
    public async Task Update_merges_the_patch_checks_the_version_and_applies_at_once()
    {
        await using var host = await Host.StartAsync();
        var (id, secret) = await CreateKeyAsync(host, """{"name":"app","allowed_models":["local/*"],"budget":{"max_usd":5,"reset":"1d"}}""");

        var updated = await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"version":1,"allowed_models":["other/*"],"budget":{"max_usd":7}}""");
        Assert.Equal(HttpStatusCode.OK, updated.Status);
        Assert.Equal(2, updated.Json.GetProperty("version").GetInt64());
        Assert.Equal("app", updated.Json.GetProperty("name").GetString());
        Assert.Equal("other/*", updated.Json.GetProperty("allowed_models")[0].GetString());
        Assert.Equal(7m, updated.Json.GetProperty("budget").GetProperty("max_usd").GetDecimal());
        Assert.Equal("1d", updated.Json.GetProperty("budget").GetProperty("reset").GetString()); // merged, not replaced
        Assert.False(updated.Json.TryGetProperty("value", out _));
        Assert.Equal(HttpStatusCode.Forbidden, await host.ChatAsync(secret)); // local/echo no longer allowed, at once

        // null removes a field (JSON merge patch).
        var removed = await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"budget":null}""");
        Assert.Equal(HttpStatusCode.OK, removed.Status);
        Assert.False(removed.Json.TryGetProperty("budget", out _));

        // A stale version, in the body or If-Match: 409, nothing changes.
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"version":1,"name":"stale"}"""), "version_conflict", "version");
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"name":"stale"}""", ("If-Match", "\"2\"")), "version_conflict");
        var withIfMatch = await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"name":"fresh"}""", ("If-Match", "\"3\""));
        Assert.Equal(HttpStatusCode.OK, withIfMatch.Status);
        Assert.Equal("fresh", withIfMatch.Json.GetProperty("name").GetString());

        AssertError(HttpStatusCode.BadRequest, await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"id":"other"}"""), "invalid_value", "id");
        AssertError(HttpStatusCode.BadRequest, await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"value_hash":"00"}"""), "unsupported_parameter", "value_hash");
        AssertError(HttpStatusCode.BadRequest, await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"version":"one"}"""), "invalid_type", "version");
        AssertError(HttpStatusCode.BadRequest, await host.SendAsync("PATCH", $"{Admin}/virtual-keys/{id}", """{"rate_limits":{"requests":0,"period":"1m"}}"""), "invalid_value", "rate_limits.requests");
    }

    [Theory]
    [InlineData("""{"team":"nope"}""", "team_not_found", "team")]
    [InlineData("""{"customer":"nope"}""", "customer_not_found", "customer")]
    [InlineData("""{"team":"research","customer":"acme"}""", "invalid_value", "customer")]
    [InlineData("""{"rate_limits":{"requests":10}}""", "invalid_value", "rate_limits.period")]
    [InlineData("""{"rate_limits":{"requests":10,"period":"soon"}}""", "invalid_value", "rate_limits.period")]
    [InlineData("""{"allowed_models":["local/*","bad model"]}""", "invalid_value", "allowed_models[1]")]
    [InlineData("""{"value":"sk-bf-mine"}""", "unsupported_parameter", "value")]
    [InlineData("""{"value_hash":"ab"}""", "unsupported_parameter", "value_hash")]
    [InlineData("""{"allowed_model":["local/*"]}""", "invalid_json", null)]
    [InlineData("""{"active":"yes"}""", "invalid_json", "active")]
    [InlineData("""{"id":"has space"}""", "invalid_value", "id")]
    [InlineData("""{"allowed_models":null,"allowed_providers":["local",null]}""", "invalid_value", "allowed_providers[1]")]
    [InlineData("""{"provider_keys":{"openai":null}}""", "invalid_value", "provider_keys.openai")]
    [InlineData("""{"provider_keys":{"openai":[""]}}""", "invalid_value", "provider_keys.openai")]
    [InlineData("""{"expires_at":"tomorrow"}""", "invalid_json", "expires_at")]
    [InlineData("""{"rate_limits":{"requests":1e40,"period":"1m"}}""", "invalid_json", "rate_limits.requests")]
    [InlineData("""[1,2]""", "invalid_json", null)]
    [InlineData("""{"name":""", "invalid_json", null)]
    public async Task Invalid_keys_are_answered_400_naming_the_field_and_nothing_is_stored(string body, string code, string? param)
    {
        await using var host = await Host.StartAsync();
        var answer = await host.SendAsync("POST", Admin + "/virtual-keys", body);
        AssertError(HttpStatusCode.BadRequest, answer, code, param);
        Assert.Empty(await host.Services.GetRequiredService<IGovernanceStore>().ListEntitiesAsync(Ct));
    }

    [Fact]
    public async Task Configured_keys_and_teams_are_listed_read_only_and_their_ids_cannot_be_taken()
    {
        await using var host = await Host.StartAsync();

        var list = await host.SendAsync("GET", Admin + "/virtual-keys");
        var cfg = Assert.Single(list.Json.GetProperty("data").EnumerateArray(), k => k.GetProperty("id").GetString() == "cfg");
        Assert.Equal("configuration", cfg.GetProperty("source").GetString());
        Assert.Equal("research", cfg.GetProperty("team").GetString());
        Assert.False(cfg.TryGetProperty("value", out _));
        Assert.DoesNotContain(ConfiguredSecret, list.Json.GetRawText(), StringComparison.Ordinal);
        var got = await host.SendAsync("GET", Admin + "/virtual-keys/cfg");
        Assert.Equal(HttpStatusCode.OK, got.Status);
        Assert.Equal("configuration", got.Json.GetProperty("source").GetString());

        AssertError(HttpStatusCode.Conflict, await host.SendAsync("POST", Admin + "/virtual-keys", """{"id":"cfg"}"""), "configured_read_only", "id");
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("PATCH", Admin + "/virtual-keys/cfg", """{"name":"x"}"""), "configured_read_only");
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("DELETE", Admin + "/virtual-keys/cfg"), "configured_read_only");
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("POST", Admin + "/virtual-keys/cfg/rotate"), "configured_read_only");
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("POST", Admin + "/virtual-keys/cfg/deactivate"), "configured_read_only");
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("POST", Admin + "/teams", """{"id":"research"}"""), "configured_read_only");
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("DELETE", Admin + "/teams/research"), "configured_read_only");
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(ConfiguredSecret));

        // A key may join a configured team.
        var joined = await host.SendAsync("POST", Admin + "/virtual-keys", """{"team":"research"}""");
        Assert.Equal(HttpStatusCode.Created, joined.Status);

        // Same id twice in the store: 409.
        Assert.Equal(HttpStatusCode.Created, (await host.SendAsync("POST", Admin + "/virtual-keys", """{"id":"twice"}""")).Status);
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("POST", Admin + "/virtual-keys", """{"id":"twice"}"""), "virtual_key_exists", "id");
    }

    [Theory]
    [InlineData("teams", "team", "team")]
    [InlineData("customers", "customer", "customer")]
    public async Task Teams_and_customers_have_the_same_crud_and_stay_while_a_key_belongs_to_them(string route, string kind, string field)
    {
        await using var host = await Host.StartAsync();

        var created = await host.SendAsync("POST", $"{Admin}/{route}", """{"id":"g1","name":"Group one","budget":{"max_usd":50,"reset":"1M"}}""");
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal(kind, created.Json.GetProperty("object").GetString());
        Assert.Equal(50m, created.Json.GetProperty("budget").GetProperty("max_usd").GetDecimal());
        Assert.False(created.Json.TryGetProperty("value", out _));
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("POST", $"{Admin}/{route}", """{"id":"g1"}"""), $"{kind}_exists");
        AssertError(HttpStatusCode.BadRequest, await host.SendAsync("POST", $"{Admin}/{route}", """{"id":"g2","budgets":{}}"""), "invalid_json");

        var got = await host.SendAsync("GET", $"{Admin}/{route}/g1");
        Assert.Equal("Group one", got.Json.GetProperty("name").GetString());
        var patched = await host.SendAsync("PATCH", $"{Admin}/{route}/g1", """{"name":"Renamed"}""");
        Assert.Equal(HttpStatusCode.OK, patched.Status);
        Assert.Equal("Renamed", patched.Json.GetProperty("name").GetString());
        Assert.Equal(2, patched.Json.GetProperty("version").GetInt64());
        var list = await host.SendAsync("GET", $"{Admin}/{route}");
        Assert.Contains(list.Json.GetProperty("data").EnumerateArray(), g => g.GetProperty("id").GetString() == "g1" && g.GetProperty("source").GetString() == "store");

        // A key joins it; the snapshot knows the group (what budgets read).
        var (keyId, secret) = await CreateKeyAsync(host, $$"""{"{{field}}":"g1"}""");
        var keys = host.Services.GetRequiredService<VirtualKeyStore>();
        Assert.NotNull(field == "team" ? keys.FindTeam("g1") : keys.FindCustomer("g1"));
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(secret));
        AssertError(HttpStatusCode.Conflict, await host.SendAsync("DELETE", $"{Admin}/{route}/g1"), $"{kind}_in_use", "id");

        Assert.Equal(HttpStatusCode.NoContent, (await host.SendAsync("DELETE", $"{Admin}/virtual-keys/{keyId}")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await host.SendAsync("DELETE", $"{Admin}/{route}/g1")).Status);
        Assert.Null(field == "team" ? keys.FindTeam("g1") : keys.FindCustomer("g1"));
        AssertError(HttpStatusCode.NotFound, await host.SendAsync("GET", $"{Admin}/{route}/g1"), $"{kind}_not_found");
        AssertError(HttpStatusCode.BadRequest, await host.SendAsync("POST", Admin + "/virtual-keys", $$"""{"{{field}}":"g1"}"""), $"{field}_not_found", field);
    }

    [Fact]
    public async Task Usage_answers_the_ledger_totals_and_pages_of_the_latest_records()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-03-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var host = await Host.StartAsync(time: time);
        var (id, _) = await CreateKeyAsync(host);
        var start = time.GetUtcNow();
        UsageRecord Record(int minute, decimal? cost, string key) => new()
        {
            Time = start.AddMinutes(minute), VirtualKeyId = key, Provider = "local", Model = "echo", Operation = "chat_completion", Source = "sync",
            InputTokens = 10, OutputTokens = 5, CostUsd = cost, Status = 200, Duration = TimeSpan.FromMilliseconds(12), RequestId = $"r{minute}",
        };
        await host.Services.GetRequiredService<IGovernanceStore>().AppendUsageAsync([Record(1, 0.5m, id), Record(2, 0.25m, id), Record(3, null, id), Record(4, 9m, "someone-else")], Ct);

        var all = await host.SendAsync("GET", $"{Admin}/virtual-keys/{id}/usage");
        Assert.Equal(HttpStatusCode.OK, all.Status);
        var totals = all.Json.GetProperty("totals");
        Assert.Equal(3, totals.GetProperty("requests").GetInt64());
        Assert.Equal(30, totals.GetProperty("input_tokens").GetInt64());
        Assert.Equal(15, totals.GetProperty("output_tokens").GetInt64());
        Assert.Equal(0.75m, totals.GetProperty("cost_usd").GetDecimal());
        Assert.Equal(1, totals.GetProperty("unknown_cost_requests").GetInt64());
        Assert.Equal(new string?[] { "r3", "r2", "r1" }, all.Json.GetProperty("data").EnumerateArray().Select(r => r.GetProperty("request_id").GetString()).ToArray());
        Assert.False(all.Json.GetProperty("has_more").GetBoolean());

        // A window (from inclusive, to exclusive) and pages of one, newest first.
        var from = Uri.EscapeDataString(start.AddMinutes(2).ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        var page = await host.SendAsync("GET", $"{Admin}/virtual-keys/{id}/usage?from={from}&limit=1");
        Assert.Equal(2, page.Json.GetProperty("totals").GetProperty("requests").GetInt64());
        Assert.Equal("r3", Assert.Single(page.Json.GetProperty("data").EnumerateArray()).GetProperty("request_id").GetString());
        Assert.True(page.Json.GetProperty("has_more").GetBoolean());
        var next = page.Json.GetProperty("next_before").GetString()!; // sent unescaped, as a hand-written URL would: its '+' arrives as a space
        var second = await host.SendAsync("GET", $"{Admin}/virtual-keys/{id}/usage?from={from}&limit=1&before={next}");
        Assert.Equal("r2", Assert.Single(second.Json.GetProperty("data").EnumerateArray()).GetProperty("request_id").GetString());
        Assert.False(second.Json.GetProperty("has_more").GetBoolean());

        // A configured key has usage too; unknown keys and bad parameters do not.
        Assert.Equal(HttpStatusCode.OK, (await host.SendAsync("GET", $"{Admin}/virtual-keys/cfg/usage")).Status);
        AssertError(HttpStatusCode.NotFound, await host.SendAsync("GET", $"{Admin}/virtual-keys/missing/usage"), "virtual_key_not_found");
        AssertError(HttpStatusCode.BadRequest, await host.SendAsync("GET", $"{Admin}/virtual-keys/{id}/usage?from=yesterday"), "invalid_value", "from");
        AssertError(HttpStatusCode.BadRequest, await host.SendAsync("GET", $"{Admin}/virtual-keys/{id}/usage?limit=0"), "invalid_value", "limit");
        AssertError(HttpStatusCode.BadRequest, await host.SendAsync("GET", $"{Admin}/virtual-keys/{id}/usage?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"), "invalid_value", "from");
    }

    [Fact]
    public async Task A_second_instance_over_the_same_store_sees_changes_after_the_refresh_interval()
    {
        var store = new InMemoryGovernanceStore(TimeProvider.System);
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-03-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var first = await Host.StartAsync(store: store);
        await using var second = await Host.StartAsync(store: store, time: time, mapAdmin: false, configure: g => g.RefreshInterval = TimeSpan.FromSeconds(5));

        var (id, secret) = await CreateKeyAsync(first);
        Assert.Equal(HttpStatusCode.OK, await first.ChatAsync(secret));
        Assert.Equal(HttpStatusCode.Unauthorized, await second.ChatAsync(secret)); // not yet: before the interval

        // Each step of the fake clock is one refresh interval (the refresh loop may start its timer a moment after the host).
        await WaitUntilAsync(time, async () => await second.ChatAsync(secret) == HttpStatusCode.OK);

        // Deactivation reaches it the same way.
        Assert.Equal(HttpStatusCode.OK, (await first.SendAsync("POST", $"{Admin}/virtual-keys/{id}/deactivate")).Status);
        Assert.Equal(HttpStatusCode.OK, await second.ChatAsync(secret));
        await WaitUntilAsync(time, async () => await second.ChatAsync(secret) == HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Keys_in_the_store_are_loaded_at_start()
    {
        var store = new InMemoryGovernanceStore(TimeProvider.System);
        await using (var first = await Host.StartAsync(store: store))
        {
            var (_, secret) = await CreateKeyAsync(first);
            await using var restarted = await Host.StartAsync(store: store, mapAdmin: false, configure: g => g.RefreshInterval = TimeSpan.FromDays(1));
            Assert.Equal(HttpStatusCode.OK, await restarted.ChatAsync(secret));
        }
    }

    [Fact]
    public async Task A_bad_document_in_the_store_is_skipped_and_every_other_key_still_loads()
    {
        var store = new InMemoryGovernanceStore(TimeProvider.System);
        Assert.True(await store.CreateEntityAsync(new GovernanceEntity { Kind = GovernanceEntityKind.VirtualKey, Id = "broken", Definition = Encoding.UTF8.GetBytes("""{"value_hash":"x"}""") }, Ct));
        Assert.True(await store.CreateEntityAsync(new GovernanceEntity { Kind = GovernanceEntityKind.VirtualKey, Id = "nulls", Definition = Encoding.UTF8.GetBytes("{\"value_hash\":\"" + new string('a', 64) + "\",\"allowed_models\":null}") }, Ct));
        Assert.True(await store.CreateEntityAsync(new GovernanceEntity { Kind = GovernanceEntityKind.Team, Id = "garbled", Definition = Encoding.UTF8.GetBytes("{not json") }, Ct));
        var logs = new LogSink();
        await using var host = await Host.StartAsync(store: store, logs: logs);

        Assert.Equal(3, logs.Messages(801).Count); // each named once, at the load at start
        Assert.Null(host.Services.GetRequiredService<VirtualKeyStore>().FindById("nulls"));
        var (_, secret) = await CreateKeyAsync(host);
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(secret));
    }

    private static async Task WaitUntilAsync(FakeTimeProvider time, Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            time.Advance(TimeSpan.FromSeconds(5));
            await Task.Delay(20, Ct);
            if (await condition())
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, "The condition did not become true within 10 s.");
        }
    }

    [Fact]
    public async Task Not_mapped_the_admin_routes_do_not_exist()
    {
        await using var host = await Host.StartAsync(mapAdmin: false);
        using var response = await host.Client.GetAsync(Admin + "/virtual-keys", Ct);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        using var create = await host.Client.PostAsync(Admin + "/virtual-keys", new StringContent("{}", Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.NotFound, create.StatusCode);
        Assert.Empty(await host.Services.GetRequiredService<IGovernanceStore>().ListEntitiesAsync(Ct));
    }

    [Fact]
    public async Task Mapped_with_RequireAuthorization_an_anonymous_caller_gets_401_and_an_authenticated_one_is_served()
    {
        var logs = new LogSink();
        await using var host = await Host.StartAsync(requireAuthorization: true, logs: logs);

        foreach (var (method, path) in new[] { ("GET", "/virtual-keys"), ("POST", "/virtual-keys"), ("GET", "/virtual-keys/cfg"), ("POST", "/virtual-keys/cfg/rotate"), ("GET", "/teams"), ("GET", "/nowhere") })
        {
            var anonymous = await host.SendAsync(method, Admin + path, method == "POST" ? "{}" : null);
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.Status);
        }

        Assert.Empty(await host.Services.GetRequiredService<IGovernanceStore>().ListEntitiesAsync(Ct));
        var allowed = await host.SendAsync("POST", Admin + "/virtual-keys", "{}", (MapBifrostTests.TestAuthHandler.Header, "ops"));
        Assert.Equal(HttpStatusCode.Created, allowed.Status);
        Assert.Empty(logs.Messages(45));
    }

    [Fact]
    public async Task Mapped_without_authorization_a_warning_is_logged_at_start()
    {
        var logs = new LogSink();
        await using var host = await Host.StartAsync(logs: logs);
        var warning = Assert.Single(logs.Messages(45));
        Assert.Contains("/bifrost/admin", warning, StringComparison.Ordinal);
        Assert.Contains("RequireAuthorization", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_admin_routes_are_404_in_the_Bifrost_shape_and_the_admin_api_works_with_governance_off()
    {
        await using var host = await Host.StartAsync(mode: GovernanceMode.Off);
        AssertError(HttpStatusCode.NotFound, await host.SendAsync("GET", Admin + "/nowhere"), "unknown_url");
        AssertError(HttpStatusCode.NotFound, await host.SendAsync("POST", Admin + "/virtual-keys/x/explode"), "unknown_url");
        foreach (var (method, path, allow) in new[] { ("PUT", "/virtual-keys/x", "GET, PATCH, DELETE"), ("DELETE", "/teams", "GET, POST"), ("GET", "/virtual-keys/x/rotate", "POST"), ("POST", "/virtual-keys/x/usage", "GET") })
        {
            var wrongMethod = await host.SendAsync(method, Admin + path);
            AssertError(HttpStatusCode.MethodNotAllowed, wrongMethod, "method_not_allowed");
            Assert.Equal(allow, wrongMethod.Response.Content.Headers.Allow.Count == 0 ? string.Join(", ", wrongMethod.Response.Headers.GetValues("Allow")) : string.Join(", ", wrongMethod.Response.Content.Headers.Allow));
        }


        // Keys can be prepared while governance is off; requests are not checked.
        var (_, secret) = await CreateKeyAsync(host);
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(null));
        Assert.Equal(HttpStatusCode.OK, await host.ChatAsync(secret));
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("2.00:00:00")]
    public async Task RefreshInterval_is_validated_at_start(string interval)
    {
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => Host.StartAsync(configure: g => g.RefreshInterval = TimeSpan.Parse(interval, System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Contains("RefreshInterval", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Admin_RequireAuthorization_in_a_host_without_authorization_services_does_not_start()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options => options.Governance.Mode = GovernanceMode.Required);
        await using var app = builder.Build();
        app.MapBifrostAdmin().RequireAuthorization("admin");

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync(Ct));
        Assert.Contains("AddAuthorization()", ex.Message, StringComparison.Ordinal);
        Assert.Contains("MapBifrostAdmin", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MapBifrostAdmin_without_AddBifrost_throws_a_clear_InvalidOperationException()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        using var app = builder.Build();
        var ex = Assert.Throws<InvalidOperationException>(() => app.MapBifrostAdmin());
        Assert.Contains("AddBifrost", ex.Message, StringComparison.Ordinal);
    }
}
