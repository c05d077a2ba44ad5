using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Providers.Local;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpenAI;
using OpenAI.Chat;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>Virtual keys and the governance layer, through HTTP: modes, headers, refusals (and that the provider was not called), ownership.</summary>
public sealed class GovernanceTests
{
    private const string KeyA = "sk-bf-team-a-0001";
    private const string KeyB = "sk-bf-team-b-0002";
    private const string Chat = "/openai/v1/chat/completions";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Body(string model, string? fallbacks = null, bool stream = false) =>
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hello"}]{{(fallbacks is null ? "" : ",\"fallbacks\":" + fallbacks)}}{{(stream ? ",\"stream\":true" : "")}}}""";

    /// <summary>Providers <c>local</c> and <c>other</c>, both counting their calls; keys A (local/* only) and B (anything).</summary>
    private sealed class Setup
    {
        public CountingAdapter? Local;
        public CountingAdapter? Other;

        public int Calls => (Local?.Calls ?? 0) + (Other?.Calls ?? 0);

        public Task<GatewayHost> StartAsync(GovernanceMode mode, Action<GovernanceOptions>? configure = null, Action<IServiceCollection>? services = null) =>
            GatewayHost.StartAsync(
                options =>
                {
                    options.Governance.Mode = mode;
                    options.Governance.Teams.Add(new GovernanceGroupOptions { Id = "research" });
                    options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, AllowedModels = ["local/*"], Team = "research" });
                    options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "b", Value = KeyB });
                    configure?.Invoke(options.Governance);
                },
                b => b.AddProvider("local", sp => Local = new CountingAdapter(sp.GetRequiredService<LocalProviderAdapter>()))
                      .AddProvider("other", sp => Other = new CountingAdapter(sp.GetRequiredService<LocalProviderAdapter>())),
                services);
    }

    private static async Task<HttpResponseMessage> SendAsync(GatewayHost host, HttpMethod method, string path, string? body, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await host.Client.SendAsync(request, Ct);
    }

    private static async Task<JsonElement> ExpectErrorAsync(HttpResponseMessage response, HttpStatusCode status, string code, string requestType = "chat_completion")
    {
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal(status, response.StatusCode);
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal((int)status, json.GetProperty("status_code").GetInt32());
        Assert.Equal(code, json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(BifrostType(code), json.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(requestType, json.GetProperty("extra_fields").GetProperty("request_type").GetString());
        return json;
    }

    /// <summary>Bifrost's governance decision, carried as <c>error.type</c>.</summary>
    private static string BifrostType(string code) => code switch
    {
        "virtual_key_invalid" => "virtual_key_not_found",
        "virtual_key_inactive" or "virtual_key_expired" => "virtual_key_blocked",
        "model_not_allowed" => "model_blocked",
        "provider_not_allowed" => "provider_blocked",
        "provider_key_not_allowed" => "permission_error",
        _ => code,
    };

    [Fact]
    public async Task Mode_off_is_the_default_the_layer_is_absent_and_keys_are_not_read()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(GovernanceMode.Off);

        Assert.DoesNotContain("governance", host.Services.GetRequiredService<GatewayPipeline>().Layers);
        using var unknown = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo"), ("x-bf-vk", "sk-bf-unknown"));
        Assert.Equal(HttpStatusCode.OK, unknown.StatusCode);
        Assert.Equal(GovernanceMode.Off, new BifrostOptions().Governance.Mode);
    }

    [Fact]
    public async Task Required_mode_refuses_a_call_without_a_key_with_401_and_never_calls_the_provider()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(GovernanceMode.Required);

        Assert.Contains("governance", host.Services.GetRequiredService<GatewayPipeline>().Layers);
        using var none = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo"));
        await ExpectErrorAsync(none, HttpStatusCode.Unauthorized, "virtual_key_required");
        using var hostCredential = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo"), ("Authorization", "Bearer app-caller-key"));
        await ExpectErrorAsync(hostCredential, HttpStatusCode.Unauthorized, "virtual_key_required");
        using var models = await SendAsync(host, HttpMethod.Get, "/openai/v1/models", null);
        Assert.Equal(HttpStatusCode.Unauthorized, models.StatusCode);
        using var files = await SendAsync(host, HttpMethod.Get, "/openai/v1/files", null);
        Assert.Equal(HttpStatusCode.Unauthorized, files.StatusCode);
        Assert.Equal(0, setup.Calls);
    }

    [Theory]
    [InlineData("x-bf-vk", KeyA)]
    [InlineData("Authorization", "Bearer " + KeyA)]
    [InlineData("x-api-key", KeyA)]
    [InlineData("api-key", KeyA)]
    public async Task Each_header_form_carries_the_key(string header, string value)
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(GovernanceMode.Required);

        using var allowed = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo"), (header, value));
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal(1, setup.Calls);

        // The same key's rules apply whichever header carried it: key A may not use other/*.
        using var refused = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo"), (header, value));
        await ExpectErrorAsync(refused, HttpStatusCode.Forbidden, "model_not_allowed");
        Assert.Equal(1, setup.Calls);
    }

    [Fact]
    public async Task Optional_mode_lets_calls_without_a_key_and_host_credentials_through_but_refuses_an_unknown_virtual_key()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(GovernanceMode.Optional);

        using var none = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo"));
        Assert.Equal(HttpStatusCode.OK, none.StatusCode);
        using var hostKey = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo"), ("Authorization", "Bearer my-app-key"));
        Assert.Equal(HttpStatusCode.OK, hostKey.StatusCode);
        Assert.Equal(2, setup.Calls);

        using var unknownBearer = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo"), ("Authorization", "Bearer sk-bf-nobody"));
        await ExpectErrorAsync(unknownBearer, HttpStatusCode.Unauthorized, "virtual_key_invalid");
        using var unknownVk = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo"), ("x-bf-vk", "whatever"));
        await ExpectErrorAsync(unknownVk, HttpStatusCode.Unauthorized, "virtual_key_invalid");
        Assert.Equal(2, setup.Calls);
    }

    [Fact]
    public async Task Inactive_and_expired_keys_are_refused_with_401_expiry_on_the_injected_clock()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var setup = new Setup();
        await using var host = await setup.StartAsync(
            GovernanceMode.Required,
            g =>
            {
                g.VirtualKeys.Add(new VirtualKeyOptions { Id = "off", Value = "sk-bf-inactive", Active = false });
                g.VirtualKeys.Add(new VirtualKeyOptions { Id = "soon", Value = "sk-bf-expiring", ExpiresAt = time.GetUtcNow().AddHours(1) });
            },
            s => s.AddSingleton<TimeProvider>(time));

        using var inactive = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo"), ("x-bf-vk", "sk-bf-inactive"));
        await ExpectErrorAsync(inactive, HttpStatusCode.Unauthorized, "virtual_key_inactive");
        using var before = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo"), ("x-bf-vk", "sk-bf-expiring"));
        Assert.Equal(HttpStatusCode.OK, before.StatusCode);

        time.Advance(TimeSpan.FromHours(1));
        using var after = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo"), ("x-bf-vk", "sk-bf-expiring"));
        await ExpectErrorAsync(after, HttpStatusCode.Unauthorized, "virtual_key_expired");
        Assert.Equal(1, setup.Calls);
    }

    [Theory]
    [InlineData("openai/gpt-4o*", "openai/gpt-4o-mini", true)]
    [InlineData("openai/gpt-4o*", "openai/gpt-4.1", false)]
    [InlineData("local/*", "local/echo", true)]
    [InlineData("local/*", "other/echo", false)]
    [InlineData("*", "anything/at-all", true)]
    [InlineData("other/echo", "OTHER/echo", true)]
    [InlineData("*/echo", "other/echo", true)]
    [InlineData("*/echo", "other/echo2", false)]
    [InlineData("openai/gpt*4o*mini", "openai/gpt-4o-mini", true)]
    [InlineData("openai/gpt*mini*4o", "openai/gpt-4o-mini", false)]
    [InlineData("openrouter/*", "openrouter/openai/gpt-4o", true)]
    [InlineData("ab/c*c/ab", "ab/c/ab", false)]
    [InlineData("ab/c*c/ab", "ab/cc/ab", true)]
    public void Model_globs(string pattern, string model, bool match)
    {
        Assert.True(Middleware.Governance.Glob.IsValid(pattern));
        Assert.Equal(match, Middleware.Governance.Glob.IsMatch(pattern, model));
    }

    [Fact]
    public async Task Provider_and_model_refusals_are_403_with_the_parameter_and_the_provider_is_not_called()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(
            GovernanceMode.Optional,
            g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "p", Value = "sk-bf-providers", AllowedProviders = ["local"] }));

        using var provider = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo"), ("x-bf-vk", "sk-bf-providers"));
        var json = await ExpectErrorAsync(provider, HttpStatusCode.Forbidden, "provider_not_allowed");
        Assert.Equal("model", json.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal("other", json.GetProperty("extra_fields").GetProperty("provider").GetString());

        // As Bifrost: targets the key may not use are skipped (never called), the others tried in order.
        using var fallback = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo", """["other/echo","local/echo2"]"""), ("x-bf-vk", KeyA));
        Assert.Equal(HttpStatusCode.OK, fallback.StatusCode);
        Assert.Equal(0, setup.Other!.Calls);
        Assert.Equal(1, setup.Local!.Calls);

        using var primaryRefused = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo", """["local/echo2"]"""), ("x-bf-vk", KeyA));
        json = await GatewayHost.ReadJsonAsync(primaryRefused);
        Assert.Equal(HttpStatusCode.OK, primaryRefused.StatusCode);
        Assert.Equal("local", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(0, setup.Other.Calls);
        Assert.Equal(2, setup.Local.Calls);

        // None left: the first refusal (the primary's) is the answer.
        using var noneLeft = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo", """["other/echo2"]"""), ("x-bf-vk", KeyA));
        json = await ExpectErrorAsync(noneLeft, HttpStatusCode.Forbidden, "model_not_allowed");
        Assert.Equal("model", json.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal(0, setup.Other.Calls);
        Assert.Equal(2, setup.Local.Calls);
    }

    [Fact]
    public async Task A_stream_is_refused_before_it_starts_in_the_json_error_shape()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(GovernanceMode.Required);

        using var refused = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo", stream: true), ("x-bf-vk", KeyA));
        Assert.Equal("application/json", refused.Content.Headers.ContentType?.MediaType);
        await ExpectErrorAsync(refused, HttpStatusCode.Forbidden, "model_not_allowed", "chat_completion_stream");
        using var allowed = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo", stream: true), ("x-bf-vk", KeyA));
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal("text/event-stream", allowed.Content.Headers.ContentType?.MediaType);
        Assert.Equal(1, setup.Calls);
    }

    [Fact]
    public async Task An_async_job_runs_under_its_key_and_is_refused_like_a_sync_call_and_only_its_key_sees_it()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(GovernanceMode.Required);

        async Task<JsonElement> FinishedAsync(string id, string key)
        {
            for (var i = 0; i < 400; i++)
            {
                using var poll = await SendAsync(host, HttpMethod.Get, "/openai/v1/async/chat/completions/" + id, null, ("x-bf-vk", key));
                var envelope = await GatewayHost.ReadJsonAsync(poll);
                if (poll.StatusCode == HttpStatusCode.OK)
                {
                    return envelope;
                }

                Assert.Equal(HttpStatusCode.Accepted, poll.StatusCode);
                await Task.Delay(25, Ct);
            }

            throw new TimeoutException("The job did not finish.");
        }

        using var refusedSubmit = await SendAsync(host, HttpMethod.Post, "/openai/v1/async/chat/completions", Body("other/echo"), ("x-bf-vk", KeyA));
        Assert.Equal(HttpStatusCode.Accepted, refusedSubmit.StatusCode);
        var refusedId = (await GatewayHost.ReadJsonAsync(refusedSubmit)).GetProperty("id").GetString()!;
        var refused = await FinishedAsync(refusedId, KeyA);
        Assert.Equal("model_not_allowed", refused.GetProperty("error").GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(0, setup.Calls);

        using var allowedSubmit = await SendAsync(host, HttpMethod.Post, Chat, Body("local/echo"), ("x-bf-vk", KeyA), ("x-bf-async", "true"));
        Assert.Equal(HttpStatusCode.OK, allowedSubmit.StatusCode);
        var allowedId = (await GatewayHost.ReadJsonAsync(allowedSubmit)).GetProperty("id").GetString()!;
        var allowed = await FinishedAsync(allowedId, KeyA);
        Assert.Equal("completed", allowed.GetProperty("status").GetString());
        Assert.Equal(1, setup.Calls);

        using var otherKey = await SendAsync(host, HttpMethod.Get, "/openai/v1/async/chat/completions/" + allowedId, null, ("x-bf-vk", KeyB));
        Assert.Equal(HttpStatusCode.NotFound, otherKey.StatusCode);
    }

    private sealed class TenantOwner : IJobOwnerResolver
    {
        public string ResolveOwner(HttpContext context) => "tenant:one";
    }

    [Fact]
    public async Task With_a_host_owner_resolver_a_key_still_owns_its_jobs_and_they_run_under_its_rules()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(GovernanceMode.Optional, services: s => s.AddSingleton<IJobOwnerResolver, TenantOwner>());

        using var submit = await SendAsync(host, HttpMethod.Post, "/openai/v1/async/chat/completions", Body("other/echo"), ("x-bf-vk", KeyA));
        Assert.Equal(HttpStatusCode.Accepted, submit.StatusCode);
        var id = (await GatewayHost.ReadJsonAsync(submit)).GetProperty("id").GetString()!;
        using var tenant = await SendAsync(host, HttpMethod.Get, "/openai/v1/async/chat/completions/" + id, null);
        Assert.Equal(HttpStatusCode.NotFound, tenant.StatusCode);

        JsonElement envelope = default;
        for (var i = 0; i < 400; i++)
        {
            using var poll = await SendAsync(host, HttpMethod.Get, "/openai/v1/async/chat/completions/" + id, null, ("x-bf-vk", KeyA));
            envelope = await GatewayHost.ReadJsonAsync(poll);
            if (poll.StatusCode == HttpStatusCode.OK)
            {
                break;
            }

            await Task.Delay(25, Ct);
        }

        Assert.Equal("model_not_allowed", envelope.GetProperty("error").GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(0, setup.Calls);
    }

    [Fact]
    public async Task Batch_lines_are_refused_or_allowed_like_sync_and_files_and_batches_of_one_key_are_invisible_to_another()
    {
        CountingAdapter? other = null;
        await using var host = await FileBatchHost.StartAsync(
            options =>
            {
                options.Governance.Mode = GovernanceMode.Required;
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, AllowedModels = ["local/*"] });
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "b", Value = KeyB });
            },
            b => b.AddProvider("other", sp => other = new CountingAdapter(sp.GetRequiredService<LocalProviderAdapter>())));

        var file = await host.UploadOkAsync(BatchLines.Jsonl([BatchLines.Chat("ok", model: "local/echo"), BatchLines.Chat("no", model: "other/echo")]), auth: KeyA);
        var fileId = file.GetProperty("id").GetString()!;
        using var hidden = await host.GetAsync(FileBatchHost.FilesPath + "/" + fileId, auth: KeyB);
        Assert.Equal(HttpStatusCode.NotFound, hidden.StatusCode);
        using var anonymous = await host.GetAsync(FileBatchHost.FilesPath + "/" + fileId);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        var batch = await host.CreateBatchAsync(fileId, auth: KeyA);
        var batchId = batch.GetProperty("id").GetString()!;
        using var hiddenBatch = await host.GetAsync(FileBatchHost.BatchesPath + "/" + batchId, auth: KeyB);
        Assert.Equal(HttpStatusCode.NotFound, hiddenBatch.StatusCode);

        var done = await host.WaitForEndAsync(batchId, auth: KeyA);
        var (output, errors) = await host.ResultsAsync(done, auth: KeyA);
        Assert.Equal("ok", BatchLines.CustomId(Assert.Single(output)));
        var error = Assert.Single(errors);
        Assert.Equal("no", BatchLines.CustomId(error));
        Assert.Equal(403, error.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("model_not_allowed", error.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(0, other?.Calls ?? 0);
    }

    [Fact]
    public async Task ValueHash_and_env_values_work_and_the_plaintext_is_not_kept()
    {
        var variable = "BIFROST_TEST_VK_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "sk-bf-from-env");
        try
        {
            var setup = new Setup();
            var hash = Convert.ToHexStringLower(SHA256.HashData("sk-bf-hashed"u8));
            await using var host = await setup.StartAsync(
                GovernanceMode.Required,
                g =>
                {
                    g.VirtualKeys.Add(new VirtualKeyOptions { Id = "h", ValueHash = hash.ToUpperInvariant() });
                    g.VirtualKeys.Add(new VirtualKeyOptions { Id = "e", Value = "env:" + variable });
                });

            using var hashed = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo"), ("Authorization", "Bearer sk-bf-hashed"));
            Assert.Equal(HttpStatusCode.OK, hashed.StatusCode);
            using var fromEnv = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo"), ("x-bf-vk", "sk-bf-from-env"));
            Assert.Equal(HttpStatusCode.OK, fromEnv.StatusCode);
            using var literal = await SendAsync(host, HttpMethod.Post, Chat, Body("other/echo"), ("x-bf-vk", "env:" + variable));
            Assert.Equal(HttpStatusCode.Unauthorized, literal.StatusCode);

            var store = host.Services.GetRequiredService<Middleware.Governance.VirtualKeyStore>();
            Assert.Equal(hash, store.FindById("h")!.Hash);
            Assert.Null(store.FindBySecret("sk-bf-hashed-not"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public async Task A_key_restricted_to_some_provider_keys_uses_only_them()
    {
        var adapter = new ScriptedAdapter();
        await using var host = await GatewayHost.StartAsync(
            options =>
            {
                options.Providers["scripted"] = new ProviderOptions { Keys = [new ProviderKeyOptions { Id = "k1", Value = "upstream-1" }, new ProviderKeyOptions { Id = "k2", Value = "upstream-2" }] };
                options.Governance.Mode = GovernanceMode.Optional;
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "r", Value = "sk-bf-restricted", ProviderKeys = new Dictionary<string, IList<string>> { ["scripted"] = ["k2"] } });
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "n", Value = "sk-bf-none", ProviderKeys = new Dictionary<string, IList<string>> { ["scripted"] = ["k9"] } });
            },
            b => b.AddProvider("scripted", _ => adapter));

        for (var i = 0; i < 10; i++)
        {
            using var response = await SendAsync(host, HttpMethod.Post, Chat, Body("scripted/m"), ("x-bf-vk", "sk-bf-restricted"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.All(adapter.Calls, c => Assert.Equal("upstream-2", c.Context.ApiKey));
        using var none = await SendAsync(host, HttpMethod.Post, Chat, Body("scripted/m"), ("x-bf-vk", "sk-bf-none"));
        await ExpectErrorAsync(none, HttpStatusCode.Forbidden, "provider_key_not_allowed");
        Assert.Equal(10, adapter.Calls.Count);
    }

    [Fact]
    public async Task The_official_OpenAI_sdk_sends_the_key_as_its_api_key()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(GovernanceMode.Required);
        ChatClient Client(string key, string model) => new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(host.Server.CreateClient()),
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetChatClient(model);

        var answer = await Client(KeyA, "local/echo").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct);
        Assert.NotEmpty(answer.Value.Content);
        var forbidden = await Assert.ThrowsAsync<ClientResultException>(() => Client(KeyA, "other/echo").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));
        Assert.Equal(403, forbidden.Status);
        var unauthorized = await Assert.ThrowsAsync<ClientResultException>(() => Client("sk-bf-wrong", "local/echo").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));
        Assert.Equal(401, unauthorized.Status);
        Assert.Equal(1, setup.Calls);
    }

    [Fact]
    public async Task The_configuration_is_validated_at_start_with_messages_naming_each_fault()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(options =>
        {
            var g = options.Governance;
            g.Mode = GovernanceMode.Required;
            g.Teams.Add(new GovernanceGroupOptions { Id = "t" });
            g.Customers.Add(new GovernanceGroupOptions { Id = "c" });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "dup", Value = "sk-bf-one" });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "dup", Value = "sk-bf-one" });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "noprefix", Value = "plain-secret" });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "both", Value = "sk-bf-x", ValueHash = new string('a', 64) });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "badhash", ValueHash = "xyz" });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "owners", Value = "sk-bf-owners", Team = "t", Customer = "c" });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "ghost", Value = "sk-bf-ghost", Team = "nope" });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "glob", Value = "sk-bf-glob", AllowedModels = ["gpt-4o?"] });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "env", Value = "env:BIFROST_TEST_SURELY_UNSET_VARIABLE" });
        }));

        Assert.Contains("Bifrost:Governance:VirtualKeys:1:Id 'dup' is used by another virtual key.", ex.Message);
        Assert.Contains("Bifrost:Governance:VirtualKeys:1: its value is the same as virtual key 'dup''s.", ex.Message);
        Assert.Contains("Bifrost:Governance:VirtualKeys:2:Value must start with 'sk-bf-'", ex.Message);
        Assert.Contains("Bifrost:Governance:VirtualKeys:3: set exactly one of Value", ex.Message);
        Assert.Contains("Bifrost:Governance:VirtualKeys:4:ValueHash must be the SHA-256", ex.Message);
        Assert.Contains("Bifrost:Governance:VirtualKeys:5: set Team or Customer, not both.", ex.Message);
        Assert.Contains("Bifrost:Governance:VirtualKeys:6:Team 'nope' is not in Bifrost:Governance:Teams.", ex.Message);
        Assert.Contains("Bifrost:Governance:VirtualKeys:7:AllowedModels:0 'gpt-4o?' is not a valid model pattern", ex.Message);
        Assert.Contains("Bifrost:Governance:VirtualKeys:8:Value reads the environment variable 'BIFROST_TEST_SURELY_UNSET_VARIABLE', which is not set.", ex.Message);
    }

    [Fact]
    public async Task The_issue_example_configuration_binds_without_unknown_keys()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        var sink = new LogSink();
        builder.Logging.AddProvider(sink);
        builder.Configuration.AddJsonStream(new MemoryStream("""
            { "Bifrost": {
                "DefaultProvider": "local", "Providers": { "local": { "Type": "local" } },
                "Governance": {
                  "Mode": "Required",
                  "VirtualKeys": [
                    { "Id": "team-a", "Value": "sk-bf-team-a-0001", "AllowedModels": [ "local/*", "openai/gpt-4o-mini" ],
                      "Budget": { "MaxUsd": 5.0, "Reset": "1d" },
                      "RateLimits": { "Requests": 60, "Tokens": 100000, "Period": "1m", "Concurrent": 8 },
                      "Team": "research" } ],
                  "Teams": [ { "Id": "research", "Budget": { "MaxUsd": 100, "Reset": "1M" } } ]
                } } }
            """u8.ToArray()));
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));
        await using var app = builder.Build();
        app.MapBifrost();
        await app.StartAsync(Ct);
        var client = app.GetTestServer().CreateClient();

        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(Body("local/echo"), Encoding.UTF8, "application/json") };
        request.Headers.Add("x-bf-vk", "sk-bf-team-a-0001");
        using var response = await client.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(sink.Messages(40)); // the unknown-configuration-key warning
        var key = app.Services.GetRequiredService<IOptions<BifrostOptions>>().Value.Governance.VirtualKeys[0];
        Assert.Equal(5.0m, key.Budget!.MaxUsd);
        Assert.Equal(8, key.RateLimits!.Concurrent);
        await app.StopAsync(Ct);
    }
}
