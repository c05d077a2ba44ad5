using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Sqlite.Tests.Infrastructure;

namespace Bifrost.Middleware.Sqlite.Tests;

/// <summary>
/// The sample host as a real process: its OpenTelemetry wiring serves the gateway's metrics at the Prometheus scrape
/// endpoint <c>/metrics</c>, and <c>/health</c> runs the gateway's health checks.
/// </summary>
public sealed class SampleHostObservabilityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Metrics_show_the_gateway_series_after_a_chat_call_and_an_async_job_and_health_is_healthy()
    {
        using var data = new TempDirectory("bifrost-otel");
        var settings = new Dictionary<string, string>
        {
            ["Bifrost__Sqlite__Path"] = Path.Combine(data.Path, "jobs.db"),
            ["Bifrost__Files__Directory"] = Path.Combine(data.Path, "files"),
            ["Bifrost__Jobs__PollInterval"] = "00:00:00.100",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        await using var host = await SampleHostProcess.StartAsync(settings, Ct);
        using var root = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{host.Port}/"), Timeout = TimeSpan.FromSeconds(30) };

        using (var health = await root.GetAsync(new Uri("health", UriKind.Relative), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal("Healthy", await health.Content.ReadAsStringAsync(Ct));
        }

        const string chat = """{"model":"local/echo","messages":[{"role":"user","content":"hello metrics"}]}""";
        using (var response = await host.Client.PostAsync(new Uri("v1/chat/completions", UriKind.Relative), new StringContent(chat, Encoding.UTF8, "application/json"), Ct))
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        }

        string jobId;
        using (var submit = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(chat, Encoding.UTF8, "application/json") })
        {
            submit.Headers.Add("x-bf-async", "true");
            using var response = await host.Client.SendAsync(submit, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
            jobId = JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
        }

        // The scrape is cached for a moment by the exporter, and the job finishes in the background: poll until both show.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string metrics;
        while (true)
        {
            using (var response = await root.GetAsync(new Uri("metrics", UriKind.Relative), Ct))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                metrics = await response.Content.ReadAsStringAsync(Ct);
            }

            // The final status is stored first, then the run leaves the running set and its duration is recorded.
            if (Value(metrics, "bifrost_jobs_finished_total", "bifrost_job_kind=\"chat_completion\"", "bifrost_job_status=\"completed\"") == "1"
                && Value(metrics, "bifrost_job_run_duration_seconds_count", "bifrost_job_kind=\"chat_completion\"", "bifrost_outcome=\"completed\"") == "1"
                && Value(metrics, "bifrost_jobs_running", "bifrost_job_kind=\"chat_completion\"") == "0")
            {
                break;
            }

            Assert.True(DateTime.UtcNow < until, $"job {jobId} never showed as finished, ended and not running; last scrape:\n{metrics}");
            await Task.Delay(200, Ct);
        }

        // The existing GenAI instruments: one synchronous and one async chat call.
        Assert.True(int.Parse(Value(metrics, "gen_ai_client_operation_duration_seconds_count", "gen_ai_provider_name=\"local\"") ?? "0", System.Globalization.CultureInfo.InvariantCulture) >= 2, metrics);
        Assert.Contains("gen_ai_client_operation_duration_seconds_bucket{", metrics, StringComparison.Ordinal);
        Assert.NotNull(Value(metrics, "bifrost_provider_attempts_total", "gen_ai_provider_name=\"local\""));

        // The operational ones.
        Assert.Equal("1", Value(metrics, "bifrost_job_wait_duration_seconds_count", "bifrost_job_kind=\"chat_completion\""));
        Assert.NotNull(Value(metrics, "bifrost_jobs_queued"));

        // ASP.NET Core's own instruments come through the same pipeline.
        Assert.Contains("http_server_request_duration_seconds_bucket{", metrics, StringComparison.Ordinal);
    }

    /// <summary>The value of the first sample of <paramref name="name"/> whose labels contain all <paramref name="labels"/>, or null.</summary>
    private static string? Value(string exposition, string name, params string[] labels)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith('#') || !(line.StartsWith(name + "{", StringComparison.Ordinal) || line.StartsWith(name + " ", StringComparison.Ordinal)))
            {
                continue;
            }

            var end = line.LastIndexOf('}');
            var labelText = end < 0 ? string.Empty : line[..end];
            if (labels.All(l => labelText.Contains(l, StringComparison.Ordinal)))
            {
                return line[(end + 1)..].Trim().Split(' ')[0];
            }
        }

        return null;
    }
}
