using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.RequestLog;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using static Bifrost.Middleware.Tests.Governance.BudgetTests;

namespace Bifrost.Middleware.Tests.RequestLog;

/// <summary>The request log through the admin API (<c>GET requests</c>, <c>GET requests/{id}</c>), and calls governance refuses recorded with their key.</summary>
public sealed class RequestLogAdminTests
{
    private const string Admin = "/bifrost/admin";
    private const string Chat = "/openai/v1/chat/completions";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<WebApplication> StartAsync(Action<BifrostOptions>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        var acme = new ScriptedAdapter { OnChat = (c, _, _) => Task.FromResult(Priced(c)) };
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            options.Governance.Mode = GovernanceMode.Optional;
            options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "a", Value = KeyA, Budget = new() { MaxUsd = 15 } });
            Price(options);
            configure?.Invoke(options);
        }).AddProvider("acme", _ => acme);
        var app = builder.Build();
        app.MapBifrost("/openai");
        app.MapBifrostAdmin();
        await app.StartAsync(Ct);
        return app;
    }

    private static async Task<HttpResponseMessage> ChatAsync(HttpClient client, string model, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Chat)
        {
            Content = new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hello"}]}""", Encoding.UTF8, "application/json"),
        };
        if (key is not null)
        {
            request.Headers.Add("x-bf-vk", key);
        }

        return await client.SendAsync(request, Ct);
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient client, string path, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await client.GetAsync(path, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(expected == response.StatusCode, $"{path}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    [Fact]
    public async Task Requests_are_listed_filtered_paged_and_read_by_id()
    {
        await using var app = await StartAsync();
        var client = app.GetTestClient();
        foreach (var (model, key) in new[] { ("acme/m1", null), ("local/echo", null), ("acme/m1", KeyA), ("local/echo", null), ("acme/m1", null) })
        {
            using var response = await ChatAsync(client, model, key);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await app.Services.GetRequiredService<IBifrostRequestLog>().FlushAsync(Ct);

        // Pages of two, by the cursor: every entry once, newest first.
        var ids = new List<string>();
        var times = new List<DateTimeOffset>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await GetJsonAsync(client, $"{Admin}/requests?limit=2" + (cursor is null ? string.Empty : "&cursor=" + Uri.EscapeDataString(cursor)));
            pages++;
            Assert.Equal("list", page.GetProperty("object").GetString());
            foreach (var entry in page.GetProperty("data").EnumerateArray())
            {
                ids.Add(entry.GetProperty("id").GetString()!);
                times.Add(entry.GetProperty("time").GetDateTimeOffset());
            }

            cursor = page.GetProperty("has_more").GetBoolean() ? page.GetProperty("next_cursor").GetString() : null;
            Assert.Equal(cursor is null, page.GetProperty("next_cursor").ValueKind == JsonValueKind.Null);
        }
        while (cursor is not null);

        Assert.Equal(3, pages);
        Assert.Equal(5, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(times.OrderByDescending(t => t), times);

        Assert.Equal(2, (await GetJsonAsync(client, $"{Admin}/requests?provider=local")).GetProperty("data").GetArrayLength());
        Assert.Equal(3, (await GetJsonAsync(client, $"{Admin}/requests?provider=ACME&model=m1&status=2xx&source=sync&operation=chat_completion")).GetProperty("data").GetArrayLength());
        Assert.Equal(0, (await GetJsonAsync(client, $"{Admin}/requests?status=4xx")).GetProperty("data").GetArrayLength());
        Assert.Equal(5, (await GetJsonAsync(client, $"{Admin}/requests?status=200&from=2000-01-01T00:00:00Z")).GetProperty("data").GetArrayLength());
        var byKey = (await GetJsonAsync(client, $"{Admin}/requests?virtual_key=a")).GetProperty("data");
        var keyed = Assert.Single(byKey.EnumerateArray());
        Assert.Equal("vk:a", keyed.GetProperty("owner").GetString());
        Assert.Single((await GetJsonAsync(client, $"{Admin}/requests?owner=vk:a")).GetProperty("data").EnumerateArray());

        // One entry by id, snake_case, every field present.
        var id = keyed.GetProperty("id").GetString()!;
        var one = await GetJsonAsync(client, $"{Admin}/requests/{id}");
        Assert.Equal(id, one.GetProperty("id").GetString());
        Assert.Equal("a", one.GetProperty("virtual_key_id").GetString());
        Assert.Equal("chat_completion", one.GetProperty("operation").GetString());
        Assert.Equal("sync", one.GetProperty("source").GetString());
        Assert.Equal("acme", one.GetProperty("provider").GetString());
        Assert.Equal("m1", one.GetProperty("model").GetString());
        Assert.Equal(200, one.GetProperty("status").GetInt32());
        Assert.Equal(4, one.GetProperty("input_tokens").GetInt64());
        Assert.Equal(6, one.GetProperty("output_tokens").GetInt64());
        Assert.Equal(10m, one.GetProperty("cost_usd").GetDecimal());
        Assert.Equal(JsonValueKind.Null, one.GetProperty("time_to_first_chunk_ms").ValueKind);
        Assert.Equal(JsonValueKind.Null, one.GetProperty("request_content").ValueKind);
        Assert.True(one.TryGetProperty("latency_ms", out _));
        Assert.DoesNotContain(KeyA, one.GetRawText(), StringComparison.Ordinal); // never the key's secret

        var missing = await GetJsonAsync(client, $"{Admin}/requests/req_nope", HttpStatusCode.NotFound);
        Assert.Equal("request_not_found", missing.GetProperty("error").GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("status=abc", "status")]
    [InlineData("status=6xx", "status")]
    [InlineData("status=99", "status")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=1001", "limit")]
    [InlineData("limit=ten", "limit")]
    [InlineData("from=yesterday", "from")]
    [InlineData("from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", "from")]
    [InlineData("source=web", "source")]
    [InlineData("cursor=abc", "cursor")]
    [InlineData("cursor=123.", "cursor")]
    public async Task Bad_query_values_are_400_in_the_bifrost_shape(string query, string param)
    {
        await using var app = await StartAsync();
        var error = await GetJsonAsync(app.GetTestClient(), $"{Admin}/requests?{query}", HttpStatusCode.BadRequest);
        Assert.Equal("invalid_value", error.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(param, error.GetProperty("error").GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("POST", "/requests")]
    [InlineData("DELETE", "/requests/req_1")]
    public async Task The_request_log_is_read_only_405_with_allow_get(string method, string path)
    {
        await using var app = await StartAsync();
        using var response = await app.GetTestClient().SendAsync(new HttpRequestMessage(new HttpMethod(method), Admin + path), Ct);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal("GET", string.Join(", ", response.Content.Headers.Allow));
    }

    [Fact]
    public async Task Calls_governance_refuses_are_recorded_with_their_key_status_and_code()
    {
        await using var app = await StartAsync(o => o.Governance.Mode = GovernanceMode.Required);
        var client = app.GetTestClient();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await ChatAsync(client, "acme/m1", KeyA);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.PaymentRequired], statuses); // $10 a call, $15 budget

        var log = app.Services.GetRequiredService<IBifrostRequestLog>();
        await log.FlushAsync(Ct);
        var page = await log.QueryAsync(new RequestLogQuery { VirtualKeyId = "a" }, Ct);
        Assert.Equal(3, page.Entries.Count);
        Assert.Equal([402, 200, 200], page.Entries.Select(e => e.Status));
        var refused = page.Entries[0];
        Assert.Equal("budget_exceeded", refused.ErrorCode);
        Assert.Equal("vk:a", refused.Owner);
        Assert.Null(refused.CostUsd);
        Assert.Equal(2, (await log.QueryAsync(new RequestLogQuery { StatusClass = 2 }, Ct)).Entries.Count);
    }
}
