using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Tests.Infrastructure;
using OpenAI;
using OpenAI.Chat;
using static Bifrost.Middleware.Tests.Governance.BudgetTests;

namespace Bifrost.Middleware.Tests.Governance;

/// <summary>
/// Async jobs and batch lines are charged, limited and recorded like sync calls (real clock: lifetime budgets and
/// ten-year rate windows); and the official OpenAI SDK sees each governance refusal with its status and code.
/// </summary>
public sealed class BudgetJobTests
{
    private const string Chat = "/openai/v1/chat/completions";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<FileBatchHost> StartAsync(ScriptedAdapter acme, Action<GovernanceOptions> configure) =>
        FileBatchHost.StartAsync(
            options =>
            {
                options.Governance.Mode = GovernanceMode.Required;
                options.Batches.Concurrency = 1; // lines in order: the budget runs out midway
                Price(options);
                configure(options.Governance);
            },
            b => b.AddProvider("acme", _ => acme));

    private static ScriptedAdapter Acme() => new() { OnChat = (c, _, _) => Task.FromResult(Priced(c)) };

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

    /// <summary>Submits an <c>x-bf-async</c> chat and waits for its final envelope.</summary>
    private static async Task<JsonElement> AsyncChatAsync(GatewayHost host, string key)
    {
        using var submit = await SendAsync(host, HttpMethod.Post, Chat, Body(), ("x-bf-vk", key), ("x-bf-async", "true"));
        Assert.Equal(HttpStatusCode.OK, submit.StatusCode);
        var id = (await GatewayHost.ReadJsonAsync(submit)).GetProperty("id").GetString()!;
        for (var i = 0; i < 2400; i++)
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

    [Fact]
    public async Task Async_jobs_are_charged_and_refused_like_sync_calls_and_recorded_as_async()
    {
        var acme = Acme();
        await using var host = await StartAsync(acme, g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 15 } }));

        var first = await AsyncChatAsync(host.Host, KeyA);
        Assert.Equal("completed", first.GetProperty("status").GetString());
        var second = await AsyncChatAsync(host.Host, KeyA); // 10 < 15
        Assert.Equal("completed", second.GetProperty("status").GetString());
        var refused = await AsyncChatAsync(host.Host, KeyA);
        Assert.Equal("failed", refused.GetProperty("status").GetString());
        AssertBudgetExceeded(refused.GetProperty("error"), "Virtual key 'a' spent $20.00 of its $15.00 lifetime budget.", "budget:vk:a");
        Assert.Equal(2, acme.Calls.Count);

        using var sync = await SendAsync(host.Host, HttpMethod.Post, Chat, Body(), ("x-bf-vk", KeyA));
        Assert.Equal(HttpStatusCode.PaymentRequired, sync.StatusCode);

        await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        var records = await host.Services.GetRequiredService<IGovernanceStore>().ListUsageAsync(new UsageQuery { VirtualKeyId = "a" }, Ct);
        Assert.Equal(2, records.Count);
        Assert.All(records, r =>
        {
            Assert.Equal("async", r.Source);
            Assert.Equal(10m, r.CostUsd);
        });
        Assert.Equal(new[] { first.GetProperty("id").GetString(), second.GetProperty("id").GetString() }.Order(StringComparer.Ordinal), records.Select(r => r.RequestId).Order(StringComparer.Ordinal)); // the jobs' ids
    }

    [Fact]
    public async Task A_batch_whose_key_runs_out_of_budget_midway_reports_the_refused_lines_in_its_error_file()
    {
        var acme = Acme();
        await using var host = await StartAsync(acme, g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 25 } }));

        var lines = Enumerable.Range(1, 5).Select(i => BatchLines.Chat("line-" + i, model: "acme/m1")).ToArray();
        var batch = await host.StartBatchAsync(lines, auth: KeyA);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!, auth: KeyA);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        BatchLines.AssertCountsAddUp(done, 5);
        Assert.Equal(3, done.GetProperty("request_counts").GetProperty("completed").GetInt32());
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("failed").GetInt32());

        var (output, errors) = await host.ResultsAsync(done, auth: KeyA);
        Assert.Equal(["line-1", "line-2", "line-3"], output.Select(BatchLines.CustomId).Order(StringComparer.Ordinal));
        Assert.Equal(["line-4", "line-5"], errors.Select(BatchLines.CustomId).Order(StringComparer.Ordinal));
        foreach (var error in errors)
        {
            var response = error.GetProperty("response");
            Assert.Equal(402, response.GetProperty("status_code").GetInt32());
            Assert.Equal("budget_exceeded", response.GetProperty("body").GetProperty("error").GetProperty("code").GetString());
        }

        Assert.Equal(3, acme.Calls.Count);
        await host.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        var records = await host.Services.GetRequiredService<IGovernanceStore>().ListUsageAsync(new UsageQuery { VirtualKeyId = "a" }, Ct);
        Assert.Equal(3, records.Count);
        Assert.All(records, r => Assert.Equal("batch", r.Source));
        Assert.Equal(30m, (await host.Services.GetRequiredService<IGovernanceStore>().SumUsageAsync(new UsageQuery { VirtualKeyId = "a" }, Ct)).CostUsd);
    }

    [Fact]
    public async Task Async_jobs_and_batch_lines_count_toward_the_request_limit()
    {
        var acme = Acme();
        await using var host = await StartAsync(acme, g => g.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, RateLimits = new() { Requests = 2, Period = "3650d" } }));

        Assert.Equal("completed", (await AsyncChatAsync(host.Host, KeyA)).GetProperty("status").GetString());
        var batch = await host.StartBatchAsync([BatchLines.Chat("one", model: "acme/m1"), BatchLines.Chat("two", model: "acme/m1")], auth: KeyA);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!, auth: KeyA);
        BatchLines.AssertCountsAddUp(done, 2);
        var (output, errors) = await host.ResultsAsync(done, auth: KeyA);
        Assert.Equal("one", BatchLines.CustomId(Assert.Single(output)));
        var error = Assert.Single(errors);
        Assert.Equal(429, error.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("request_limit_exceeded", error.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("code").GetString());

        using var sync = await SendAsync(host.Host, HttpMethod.Post, Chat, Body(), ("x-bf-vk", KeyA));
        Assert.Equal(HttpStatusCode.TooManyRequests, sync.StatusCode);
        Assert.NotNull(sync.Headers.RetryAfter?.Delta);
        Assert.Equal(2, acme.Calls.Count);
    }

    [Fact]
    public async Task The_official_OpenAI_sdk_sees_401_403_402_and_429_with_their_codes()
    {
        var acme = Acme();
        await using var host = await GatewayHost.StartAsync(
            options =>
            {
                options.Governance.Mode = GovernanceMode.Required;
                Price(options);
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, AllowedModels = ["acme/*"], Budget = new() { MaxUsd = 5 } });
                options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "b", Value = KeyB, RateLimits = new() { Requests = 1, Period = "3650d" } });
            },
            b => b.AddProvider("acme", _ => acme));
        ChatClient Client(string key, string model) => new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(host.Server.CreateClient()),
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetChatClient(model);

        async Task<(int Status, string? Code)> RefusedAsync(string key, string model)
        {
            var ex = await Assert.ThrowsAsync<ClientResultException>(() => Client(key, model).CompleteChatAsync([new UserChatMessage("hello")], cancellationToken: Ct));
            var raw = ex.GetRawResponse() ?? throw new InvalidOperationException("no response");
            var json = JsonDocument.Parse(raw.Content.ToString()).RootElement;
            Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
            return (ex.Status, json.GetProperty("error").GetProperty("code").GetString());
        }

        Assert.Equal((401, "virtual_key_invalid"), await RefusedAsync("sk-bf-wrong", "acme/m1"));
        Assert.Equal((403, "model_not_allowed"), await RefusedAsync(KeyA, "local/echo"));
        var answer = await Client(KeyA, "acme/m1").CompleteChatAsync([new UserChatMessage("hello")], cancellationToken: Ct);
        Assert.Equal("ok", answer.Value.Content[0].Text);
        Assert.Equal((402, "budget_exceeded"), await RefusedAsync(KeyA, "acme/m1"));
        await Client(KeyB, "acme/m1").CompleteChatAsync([new UserChatMessage("hello")], cancellationToken: Ct);
        Assert.Equal((429, "request_limit_exceeded"), await RefusedAsync(KeyB, "acme/m1"));
        Assert.Equal(2, acme.Calls.Count);
    }
}
