using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Tests.Dashboard;

/// <summary>
/// The dashboard's overview (<c>GET /bifrost/api/overview</c>, TestServer, a fake clock so every latency falls in the first
/// bucket): after whole answers, a stream and a failed call, the totals, the series, the provider's attempts and last
/// errors and the model's row hold exactly the calls made, their tokens (as the answers reported them) and their cost (at
/// the configured price). One record per call: the figures do not depend on how the gateway's meter is listened to.
/// </summary>
public sealed class DashboardOverviewTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_overview_counts_each_call_once_with_its_tokens_cost_attempts_and_errors()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(
            configure: o => o.Pricing["local/echo"] = new ModelPriceOptions { InputPerMillion = 1_000_000, OutputPerMillion = 2_000_000 },
            services: s => s.AddSingleton<TimeProvider>(clock),
            dashboard: true);

        long input = 0, output = 0;
        foreach (var text in (string[])["one two three", "four five"])
        {
            using var answer = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"local/echo","messages":[{"role":"user","content":"{{text}}"}]}""", Ct);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            var usage = (await GatewayHost.ReadJsonAsync(answer)).GetProperty("usage");
            input += usage.GetProperty("prompt_tokens").GetInt64();
            output += usage.GetProperty("completion_tokens").GetInt64();
        }

        using (var stream = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"six seven eight nine"}]}""", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            var last = Sse.ParseData(await stream.Content.ReadAsStringAsync(Ct)).Where(static d => d != Sse.Done).Select(Sse.Json)
                .Last(static e => e.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object).GetProperty("usage");
            input += last.GetProperty("prompt_tokens").GetInt64();
            output += last.GetProperty("completion_tokens").GetInt64();
        }

        using (var failed = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","metadata":{"local_status":"400"},"messages":[{"role":"user","content":"x"}]}""", Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, failed.StatusCode);
        }

        Assert.True(input > 0 && output > 0);
        using var response = await host.Client.GetAsync("/bifrost/api/overview", Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var overview = JsonDocument.Parse(body).RootElement;

        Assert.Equal(4, overview.GetProperty("requests").GetInt64());
        Assert.Equal(1, overview.GetProperty("errors").GetInt64());
        Assert.Equal(0.25, overview.GetProperty("error_rate").GetDouble());
        Assert.Equal(input, overview.GetProperty("input_tokens").GetInt64());
        Assert.Equal(output, overview.GetProperty("output_tokens").GetInt64());
        var cost = input + (2.0 * output);
        Assert.Equal(cost, overview.GetProperty("cost_usd").GetDouble(), 9);
        Assert.Equal(0.4, overview.GetProperty("requests_per_second").GetDouble());
        Assert.Equal(1, overview.GetProperty("latency_p50_ms").GetDouble()); // the fake clock stood still: the first bucket
        Assert.Equal(1, overview.GetProperty("latency_p99_ms").GetDouble());

        var series = overview.GetProperty("series").EnumerateArray().ToArray();
        Assert.Equal(90, series.Length);
        Assert.Equal(4, series.Sum(static p => p.GetProperty("requests").GetInt64()));
        Assert.Equal(1, series.Sum(static p => p.GetProperty("errors").GetInt64()));
        Assert.Equal(input + output, series.Sum(static p => p.GetProperty("tokens").GetInt64()));
        Assert.Equal(cost, series.Sum(static p => p.GetProperty("cost_usd").GetDouble()), 9);

        var provider = Assert.Single(overview.GetProperty("providers").EnumerateArray().ToArray());
        Assert.Equal("local", provider.GetProperty("name").GetString());
        Assert.Equal(4, provider.GetProperty("requests").GetInt64());
        Assert.Equal(1, provider.GetProperty("errors").GetInt64());
        Assert.Equal(0.75, provider.GetProperty("success_rate").GetDouble());
        var attempts = provider.GetProperty("attempts").EnumerateObject().ToDictionary(static p => p.Name, static p => p.Value.GetInt64());
        Assert.Equal(new Dictionary<string, long> { ["success"] = 3, ["error"] = 1 }, attempts);
        var lastError = Assert.Single(provider.GetProperty("last_errors").EnumerateArray().ToArray());
        Assert.Equal("echo", lastError.GetProperty("model").GetString());
        Assert.False(string.IsNullOrEmpty(lastError.GetProperty("error_type").GetString()));
        Assert.Equal(clock.GetUtcNow(), lastError.GetProperty("time").GetDateTimeOffset());

        var model = Assert.Single(overview.GetProperty("models").EnumerateArray().ToArray());
        Assert.Equal("local", model.GetProperty("provider").GetString());
        Assert.Equal("echo", model.GetProperty("model").GetString());
        Assert.Equal(4, model.GetProperty("requests").GetInt64());
        Assert.Equal(1, model.GetProperty("errors").GetInt64());
        Assert.Equal(input, model.GetProperty("input_tokens").GetInt64());
        Assert.Equal(output, model.GetProperty("output_tokens").GetInt64());
        Assert.Equal(cost, model.GetProperty("cost_usd").GetDouble(), 9);
        Assert.Equal(1, model.GetProperty("p95_ms").GetDouble());
    }

    [Fact]
    public async Task Calls_before_the_dashboard_is_mapped_are_not_counted_and_a_host_without_it_records_nothing()
    {
        await using var host = await GatewayHost.StartAsync();
        using (var answer = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }

        var stats = host.Services.GetRequiredService<Bifrost.Middleware.Dashboard.DashboardStats>();
        Assert.Equal(0, stats.Snapshot().Requests);
    }
}
