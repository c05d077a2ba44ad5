using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>
/// Budgets through HTTP on a fake clock: a scripted provider answers 4 prompt + 6 completion tokens, priced at $1 per
/// token (<c>Bifrost:Pricing</c>), so every call costs exactly $10.00. Key, team, customer and provider-config budgets
/// (402 <c>budget_exceeded</c>), resets, streams, seeding from the ledger, and the usage records.
/// </summary>
public sealed class BudgetTests
{
    internal const string KeyA = "sk-bf-budget-a";
    internal const string KeyB = "sk-bf-budget-b";
    internal const string KeyC = "sk-bf-budget-c";
    private const string Chat = "/openai/v1/chat/completions";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static string Body(string model = "acme/m1", bool stream = false, string? fallbacks = null) =>
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hello"}]{{(fallbacks is null ? "" : ",\"fallbacks\":" + fallbacks)}}{{(stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "")}}}""";

    internal static ChatCompletionResponse Priced(ProviderContext context)
    {
        var reply = Replies.Text(context, "ok");
        reply.Usage = new ChatUsage { PromptTokens = 4, CompletionTokens = 6, TotalTokens = 10 };
        return reply;
    }

    internal static async IAsyncEnumerable<ChatCompletionChunk> PricedStream(ProviderContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var chunk in Replies.Stream(context, ["o", "k"], cancellationToken))
        {
            yield return chunk;
        }

        var usage = Replies.Chunk(context, new ChatDelta(), null);
        usage.Choices.Clear();
        usage.Usage = new ChatUsage { PromptTokens = 4, CompletionTokens = 6, TotalTokens = 10 };
        yield return usage;
    }

    /// <summary>$1 per input and output token for acme/m1 and other/m1: a call is $10.</summary>
    internal static void Price(BifrostOptions options)
    {
        options.Pricing["acme/m1"] = new ModelPriceOptions { InputPerMillion = 1_000_000, OutputPerMillion = 1_000_000 };
        options.Pricing["other/m1"] = new ModelPriceOptions { InputPerMillion = 1_000_000, OutputPerMillion = 1_000_000 };
    }

    private sealed class Setup
    {
        public FakeTimeProvider Time { get; } = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture)); // a Thursday

        public ScriptedAdapter Acme { get; } = new() { OnChat = (c, _, _) => Task.FromResult(Priced(c)), OnStream = (c, _, ct) => PricedStream(c, ct) };

        public ScriptedAdapter Other { get; } = new() { OnChat = (c, _, _) => Task.FromResult(Priced(c)), OnStream = (c, _, ct) => PricedStream(c, ct) };

        public Task<GatewayHost> StartAsync(Action<GovernanceOptions> configure, GovernanceMode mode = GovernanceMode.Required, IGovernanceStore? store = null) =>
            GatewayHost.StartAsync(
                options =>
                {
                    options.Governance.Mode = mode;
                    Price(options);
                    configure(options.Governance);
                },
                b => b.AddProvider("acme", _ => Acme).AddProvider("other", _ => Other),
                s =>
                {
                    s.AddSingleton<TimeProvider>(Time);
                    if (store is not null)
                    {
                        s.AddSingleton(store);
                    }
                });
    }

    private static async Task<HttpResponseMessage> PostAsync(GatewayHost host, string? key, string? body = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Chat) { Content = new StringContent(body ?? Body(), Encoding.UTF8, "application/json") };
        if (key is not null)
        {
            request.Headers.TryAddWithoutValidation("x-bf-vk", key);
        }

        return await host.Client.SendAsync(request, Ct);
    }

    private static async Task OkAsync(GatewayHost host, string key, string? body = null)
    {
        using var response = await PostAsync(host, key, body);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
    }

    internal static void AssertBudgetExceeded(JsonElement json, string message, string scope)
    {
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(402, json.GetProperty("status_code").GetInt32());
        var error = json.GetProperty("error");
        Assert.Equal("budget_exceeded", error.GetProperty("type").GetString());
        Assert.Equal("budget_exceeded", error.GetProperty("code").GetString());
        Assert.Equal(message, error.GetProperty("message").GetString());
        Assert.Equal(scope, error.GetProperty("param").GetString());
    }

    private static async Task ExpectBudgetExceededAsync(GatewayHost host, string key, string message, string scope, string? body = null)
    {
        using var response = await PostAsync(host, key, body);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        AssertBudgetExceeded(json, message, scope);
        Assert.Equal("chat_completion", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task A_key_is_refused_with_402_once_its_spend_reaches_its_budget_and_nothing_reaches_the_provider()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(g =>
        {
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 25, Reset = "1d" } });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "b", Value = KeyB });
        });

        for (var i = 0; i < 3; i++)
        {
            await OkAsync(host, KeyA); // 0, 10, 20 < 25: admitted
        }

        await ExpectBudgetExceededAsync(host, KeyA, "Virtual key 'a' spent $30.00 of its $25.00 budget per 1d.", "budget:vk:a");
        Assert.Equal(3, setup.Acme.Calls.Count);
        await OkAsync(host, KeyB);
        Assert.Equal(4, setup.Acme.Calls.Count);
    }

    [Fact]
    public async Task A_team_budget_and_a_customer_budget_refuse_every_key_of_theirs()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(g =>
        {
            g.Teams.Add(new GovernanceGroupOptions { Id = "research", Budget = new() { MaxUsd = 15, Reset = "1M" } });
            g.Customers.Add(new GovernanceGroupOptions { Id = "acme-corp", Budget = new() { MaxUsd = 5 } });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Team = "research", Budget = new() { MaxUsd = 1000 } });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "b", Value = KeyB, Team = "research" });
            g.VirtualKeys.Add(new VirtualKeyOptions { Id = "c", Value = KeyC, Customer = "acme-corp" });
        });

        await OkAsync(host, KeyA);
        await OkAsync(host, KeyB);
        await ExpectBudgetExceededAsync(host, KeyA, "Team 'research' spent $20.00 of its $15.00 budget per 1M.", "budget:team:research");
        await ExpectBudgetExceededAsync(host, KeyB, "Team 'research' spent $20.00 of its $15.00 budget per 1M.", "budget:team:research");

        await OkAsync(host, KeyC);
        await ExpectBudgetExceededAsync(host, KeyC, "Customer 'acme-corp' spent $10.00 of its $5.00 lifetime budget.", "budget:customer:acme-corp");
        Assert.Equal(3, setup.Acme.Calls.Count);

        // A lifetime budget never resets; a monthly one resets on the 1st.
        setup.Time.Advance(TimeSpan.FromDays(31));
        await OkAsync(host, KeyA);
        await ExpectBudgetExceededAsync(host, KeyC, "Customer 'acme-corp' spent $10.00 of its $5.00 lifetime budget.", "budget:customer:acme-corp");
    }

    [Fact]
    public async Task A_provider_config_budget_skips_its_provider_for_fallbacks_and_its_request_limit_answers_429()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(g => g.VirtualKeys.Add(new VirtualKeyOptions
        {
            Id = "a",
            Value = KeyA,
            Providers =
            {
                ["acme"] = new VirtualKeyProviderOptions { Budget = new() { MaxUsd = 5, Reset = "1h" } },
                ["other"] = new VirtualKeyProviderOptions { RateLimits = new() { Requests = 1, Period = "1h" } },
            },
        }));

        await OkAsync(host, KeyA); // acme: $10 of $5

        using (var fellBack = await PostAsync(host, KeyA, Body(fallbacks: """["other/m1"]""")))
        {
            var json = await GatewayHost.ReadJsonAsync(fellBack);
            Assert.Equal(HttpStatusCode.OK, fellBack.StatusCode);
            Assert.Equal("other", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        }

        Assert.Single(setup.Acme.Calls);
        Assert.Single(setup.Other.Calls);

        using (var refused = await PostAsync(host, KeyA))
        {
            var json = await GatewayHost.ReadJsonAsync(refused);
            Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
            AssertBudgetExceeded(json, "Provider config 'acme' of virtual key 'a' spent $10.00 of its $5.00 budget per 1h.", "budget:vk:a:provider:acme");
            Assert.Equal("acme", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        }

        using (var limited = await PostAsync(host, KeyA, Body("other/m1")))
        {
            var json = await GatewayHost.ReadJsonAsync(limited);
            Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
            Assert.Equal("request_limit_exceeded", json.GetProperty("error").GetProperty("code").GetString());
            Assert.Equal("Provider config 'other' of virtual key 'a' made 1 of its 1 requests per 01:00:00.", json.GetProperty("error").GetProperty("message").GetString());
            Assert.Equal(TimeSpan.FromHours(1), limited.Headers.RetryAfter?.Delta);
        }

        Assert.Single(setup.Acme.Calls);
        Assert.Single(setup.Other.Calls);

        setup.Time.Advance(TimeSpan.FromHours(1));
        await OkAsync(host, KeyA);
        Assert.Equal(2, setup.Acme.Calls.Count);
    }

    [Theory]
    [InlineData(false, 7)] // epoch-anchored weeks start on Thursday (2026-01-01): the window ends on the 8th
    [InlineData(true, 4)] // calendar weeks start on Monday: the window ends on Monday the 5th
    public async Task A_weekly_budget_resets_at_the_end_of_its_window(bool calendarAligned, int daysUntilReset)
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 5, Reset = "1w", CalendarAligned = calendarAligned } }));

        await OkAsync(host, KeyA);
        await ExpectBudgetExceededAsync(host, KeyA, "Virtual key 'a' spent $10.00 of its $5.00 budget per 1w.", "budget:vk:a");
        setup.Time.Advance(TimeSpan.FromDays(daysUntilReset) - TimeSpan.FromSeconds(1));
        await ExpectBudgetExceededAsync(host, KeyA, "Virtual key 'a' spent $10.00 of its $5.00 budget per 1w.", "budget:vk:a");
        setup.Time.Advance(TimeSpan.FromSeconds(1));
        await OkAsync(host, KeyA);
        Assert.Equal(2, setup.Acme.Calls.Count);
    }

    [Fact]
    public async Task A_daily_budget_resets_at_utc_midnight()
    {
        var setup = new Setup();
        setup.Time.Advance(TimeSpan.FromHours(23));
        await using var host = await setup.StartAsync(g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 5, Reset = "1d" } }));

        await OkAsync(host, KeyA);
        await ExpectBudgetExceededAsync(host, KeyA, "Virtual key 'a' spent $10.00 of its $5.00 budget per 1d.", "budget:vk:a");
        setup.Time.Advance(TimeSpan.FromHours(1));
        await OkAsync(host, KeyA);
    }

    [Fact]
    public async Task A_stream_that_crosses_the_budget_is_settled_with_its_real_usage()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 15 } }));

        await OkAsync(host, KeyA); // $10
        using (var stream = await PostAsync(host, KeyA, Body(stream: true))) // 10 < 15: admitted, reports $10 more
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            var text = await stream.Content.ReadAsStringAsync(Ct);
            Assert.Contains("\"cost\":10", text, StringComparison.Ordinal);
            Assert.Contains("data: [DONE]", text, StringComparison.Ordinal);
        }

        await ExpectBudgetExceededAsync(host, KeyA, "Virtual key 'a' spent $20.00 of its $15.00 lifetime budget.", "budget:vk:a");
        var counters = host.Services.GetRequiredService<IGovernanceCounterStore>();
        var counts = await counters.GetCountsAsync("budget:vk:a", DateTimeOffset.MinValue, DateTimeOffset.MaxValue, Ct);
        Assert.Equal(20m, counts.CostUsd); // the real usage: the reservations were given back
        Assert.Equal(20, counts.Tokens);
        Assert.Equal(2, counts.Requests);
    }

    [Fact]
    public async Task A_stream_that_fails_before_reporting_usage_gives_its_reservation_back()
    {
        var setup = new Setup();
        setup.Acme.OnStream = (_, _, _) => Replies.Failing(BifrostException.Gateway(400, "invalid_request_error", "boom", "boom"));
        await using var host = await setup.StartAsync(g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 15 } }));

        using (var stream = await PostAsync(host, KeyA, Body(stream: true)))
        {
            Assert.NotEqual(HttpStatusCode.OK, stream.StatusCode);
        }

        var counts = await host.Services.GetRequiredService<IGovernanceCounterStore>().GetCountsAsync("budget:vk:a", DateTimeOffset.MinValue, DateTimeOffset.MaxValue, Ct);
        Assert.Equal(0m, counts.CostUsd);
        Assert.Equal(0, counts.Tokens);
        Assert.Equal(1, counts.Requests);
    }

    [Fact]
    public async Task A_stream_cut_by_the_caller_before_its_usage_gives_its_reservation_back_and_frees_its_slot()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 15 }, RateLimits = new() { Concurrent = 1 } }));
        var client = host.Services.GetRequiredService<IBifrostClient>();
        GovernanceCaller.Current = new GovernanceCaller("a", host.Services.GetRequiredService<VirtualKeyStore>().FindById("a"));
        try
        {
            var request = new ChatCompletionRequest { Model = "acme/m1", Messages = [ChatCompletionMessage.FromText("user", "hello")] };
            await foreach (var chunk in client.ChatCompletionStreamAsync(request, Ct))
            {
                Assert.NotNull(chunk);
                break; // the caller goes away after the first chunk
            }
        }
        finally
        {
            GovernanceCaller.Current = null;
        }

        var counts = await host.Services.GetRequiredService<IGovernanceCounterStore>().GetCountsAsync("budget:vk:a", DateTimeOffset.MinValue, DateTimeOffset.MaxValue, Ct);
        Assert.Equal(new GovernanceCounts(1, 0, 0m), counts);
        await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        var record = Assert.Single(await host.Services.GetRequiredService<IGovernanceStore>().ListUsageAsync(new UsageQuery { VirtualKeyId = "a" }, Ct));
        Assert.Equal(499, record.Status);
        Assert.Equal("stream", record.Source);
        Assert.Equal(0m, record.CostUsd);

        await OkAsync(host, KeyA); // the concurrent slot was freed
    }

    [Fact]
    public async Task An_embeddings_call_in_flight_holds_its_input_estimate_and_is_settled_with_its_real_usage()
    {
        var setup = new Setup();
        var embeddings = new HeldEmbeddings();
        await using var host = await GatewayHost.StartAsync(
            options =>
            {
                options.Governance.Mode = GovernanceMode.Required;
                options.Pricing["emb/e1"] = new ModelPriceOptions { InputPerMillion = 1_000_000 };
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 1_000 } });
            },
            b => b.AddProvider("emb", _ => embeddings),
            s => s.AddSingleton<TimeProvider>(setup.Time));
        var counters = host.Services.GetRequiredService<IGovernanceCounterStore>();

        // 40 + 24 UTF-8 bytes of input: an estimate of 16 tokens, $16 at $1 per token, held while the call is in flight.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/embeddings")
        {
            Content = new StringContent("""{"model":"emb/e1","input":["0123456789012345678901234567890123456789","abcdefghijklmnopqrstuvwx"]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("x-bf-vk", KeyA);
        var call = host.Client.SendAsync(request, Ct);
        await embeddings.Started.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(new GovernanceCounts(1, 16, 16m), await counters.GetCountsAsync("budget:vk:a", DateTimeOffset.MinValue, DateTimeOffset.MaxValue, Ct));

        embeddings.Release.SetResult();
        using var response = await call;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new GovernanceCounts(1, 9, 9m), await counters.GetCountsAsync("budget:vk:a", DateTimeOffset.MinValue, DateTimeOffset.MaxValue, Ct)); // the provider reported 9
    }

    /// <summary>Answers embeddings (9 prompt tokens) once released.</summary>
    private sealed class HeldEmbeddings : ScriptedAdapter, IProviderAdapter
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task<EmbeddingResponse> IProviderAdapter.EmbeddingsAsync(ProviderContext context, EmbeddingRequest request, CancellationToken cancellationToken)
        {
            Started.TrySetResult();
            await Release.Task.WaitAsync(cancellationToken);
            return new EmbeddingResponse
            {
                Model = context.Model,
                Data = [.. Enumerable.Range(0, request.Input!.Count).Select(i => new EmbeddingData { Index = i, Embedding = new EmbeddingVector([0.5f, 0.5f]) })],
                Usage = new EmbeddingUsage { PromptTokens = 9, TotalTokens = 9 },
            };
        }
    }

    [Fact]
    public async Task A_new_host_over_the_same_store_still_refuses_an_exhausted_budget()
    {
        var store = new InMemoryGovernanceStore(TimeProvider.System);
        void Configure(GovernanceOptions g) => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 5, Reset = "1M" } });

        var first = new Setup();
        await using (var host = await first.StartAsync(Configure, store: store))
        {
            await OkAsync(host, KeyA);
            await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        }

        var second = new Setup();
        await using (var host = await second.StartAsync(Configure, store: store))
        {
            await ExpectBudgetExceededAsync(host, KeyA, "Virtual key 'a' spent $10.00 of its $5.00 budget per 1M.", "budget:vk:a");
            Assert.Empty(second.Acme.Calls);
        }
    }

    [Fact]
    public async Task Sync_and_stream_calls_are_recorded_in_the_ledger_with_key_team_tokens_cost_and_source_and_calls_without_a_key_too()
    {
        var setup = new Setup();
        await using var host = await setup.StartAsync(
            g =>
            {
                g.Teams.Add(new GovernanceGroupOptions { Id = "research" });
                g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Team = "research" });
            },
            GovernanceMode.Optional);

        await OkAsync(host, KeyA);
        setup.Time.Advance(TimeSpan.FromSeconds(1));
        using (var stream = await PostAsync(host, KeyA, Body(stream: true)))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            await stream.Content.ReadAsStringAsync(Ct);
        }

        setup.Time.Advance(TimeSpan.FromSeconds(1));
        using (var anonymous = await PostAsync(host, null, Body("other/m1")))
        {
            Assert.Equal(HttpStatusCode.OK, anonymous.StatusCode);
        }

        await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        var records = await host.Services.GetRequiredService<IGovernanceStore>().ListUsageAsync(new UsageQuery(), Ct);
        Assert.Equal(3, records.Count);
        var (none, streamed, sync) = (records[0], records[1], records[2]);

        Assert.Equal("a", sync.VirtualKeyId);
        Assert.Equal("research", sync.Team);
        Assert.Null(sync.Customer);
        Assert.Equal("acme", sync.Provider);
        Assert.Equal("m1", sync.Model);
        Assert.Equal("chat_completion", sync.Operation);
        Assert.Equal("sync", sync.Source);
        Assert.Equal(4, sync.InputTokens);
        Assert.Equal(6, sync.OutputTokens);
        Assert.Equal(10m, sync.CostUsd);
        Assert.Equal(200, sync.Status);
        Assert.Equal("chatcmpl-test", sync.RequestId);

        Assert.Equal("a", streamed.VirtualKeyId);
        Assert.Equal("chat_completion_stream", streamed.Operation);
        Assert.Equal("stream", streamed.Source);
        Assert.Equal(4, streamed.InputTokens);
        Assert.Equal(6, streamed.OutputTokens);
        Assert.Equal(10m, streamed.CostUsd);

        Assert.Null(none.VirtualKeyId);
        Assert.Equal("other", none.Provider);
        Assert.Equal("sync", none.Source);
        Assert.Equal(10m, none.CostUsd);

        var totals = await host.Services.GetRequiredService<IGovernanceStore>().SumUsageAsync(new UsageQuery { VirtualKeyId = "a" }, Ct);
        Assert.Equal(20m, totals.CostUsd);
    }

    [Fact]
    public async Task An_unpriced_model_is_recorded_with_an_unknown_cost_and_a_failure_with_its_status()
    {
        var setup = new Setup();
        setup.Other.OnChat = (_, _, _) => throw BifrostException.Gateway(400, "invalid_request_error", "bad", "bad");
        await using var host = await setup.StartAsync(g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA }));

        await OkAsync(host, KeyA, Body("acme/unpriced"));
        using (var failed = await PostAsync(host, KeyA, Body("other/m1")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, failed.StatusCode);
        }

        await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        var records = await host.Services.GetRequiredService<IGovernanceStore>().ListUsageAsync(new UsageQuery { VirtualKeyId = "a" }, Ct);
        Assert.Equal(2, records.Count);
        var unpriced = Assert.Single(records, r => r.Model == "unpriced");
        Assert.Null(unpriced.CostUsd);
        Assert.Equal(4, unpriced.InputTokens);
        var failure = Assert.Single(records, r => r.Status == 400);
        Assert.Equal("other", failure.Provider);
        Assert.Equal(0m, failure.CostUsd);
    }

    [Theory]
    [InlineData(0.0, "1d", "MaxUsd must be positive")]
    [InlineData(5.0, "1x", "Reset '1x' is not a period")]
    [InlineData(5.0, "0d", "Reset '0d' is not a period")]
    public void Bad_budgets_fail_at_start(double maxUsd, string reset, string expected)
    {
        var options = new GovernanceOptions();
        options.Teams.Add(new GovernanceGroupOptions { Id = "t", Budget = new() { MaxUsd = (decimal)maxUsd, Reset = reset } });
        options.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Team = "t", Providers = { ["acme"] = new() { Budget = new() { MaxUsd = (decimal)maxUsd, Reset = reset } } } });
        var builder = new ValidateOptionsResultBuilder();
        GovernanceValidation.Validate(options, builder);
        var result = builder.Build();
        Assert.True(result.Failed);
        Assert.Equal(2, result.Failures!.Count());
        Assert.Contains(result.Failures!, f => f.Contains("Governance:Teams:0:Budget:", StringComparison.Ordinal) && f.Contains(expected, StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("Governance:VirtualKeys:0:Providers:acme:Budget:", StringComparison.Ordinal) && f.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("1m", "2026-03-15T10:07:30Z", "2026-03-15T10:07:00Z", "2026-03-15T10:08:00Z")]
    [InlineData("6h", "2026-03-15T10:07:30Z", "2026-03-15T06:00:00Z", "2026-03-15T12:00:00Z")]
    [InlineData("1d", "2026-03-15T10:07:30Z", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z")]
    [InlineData("2d", "2026-03-15T10:07:30Z", "2026-03-14T00:00:00Z", "2026-03-16T00:00:00Z")] // 2-day windows counted from 1970-01-01
    [InlineData("1w", "2026-03-15T10:07:30Z", "2026-03-12T00:00:00Z", "2026-03-19T00:00:00Z")]
    [InlineData("1M", "2026-03-15T10:07:30Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")]
    [InlineData("3M", "2026-03-15T10:07:30Z", "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")]
    [InlineData("1Y", "2026-03-15T10:07:30Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")]
    public void Budget_windows_are_the_same_for_every_instance(string reset, string now, string start, string end)
    {
        Assert.True(GovernancePeriod.TryParse(reset, out var period));
        var window = period.WindowAt(DateTimeOffset.Parse(now, System.Globalization.CultureInfo.InvariantCulture), calendarAligned: false);
        Assert.Equal(DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture), window.Start);
        Assert.Equal(DateTimeOffset.Parse(end, System.Globalization.CultureInfo.InvariantCulture), window.End);
    }

    [Fact]
    public void Calendar_aligned_weeks_start_on_monday_and_no_reset_is_a_lifetime_window()
    {
        Assert.True(GovernancePeriod.TryParse("1w", out var week));
        var (start, end) = week.WindowAt(new DateTimeOffset(2026, 3, 15, 10, 0, 0, TimeSpan.Zero), calendarAligned: true); // a Sunday
        Assert.Equal(new DateTimeOffset(2026, 3, 9, 0, 0, 0, TimeSpan.Zero), start);
        Assert.Equal(DayOfWeek.Monday, start.DayOfWeek);
        Assert.Equal(start.AddDays(7), end);

        Assert.True(GovernancePeriod.TryParse(null, out var lifetime));
        Assert.Equal((DateTimeOffset.MinValue, DateTimeOffset.MaxValue), lifetime.WindowAt(DateTimeOffset.UnixEpoch, false));
        Assert.False(GovernancePeriod.TryParse("1s", out _));
        Assert.False(GovernancePeriod.TryParse("M", out _));
    }
}
