using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Bifrost.Middleware.RequestLog;
using Microsoft.Playwright;

namespace Bifrost.Middleware.Tests.Dashboard;

/// <summary>
/// The dashboard in a real browser: Debian's Chromium (<c>/usr/bin/chromium</c>, installed by <c>.ci/run</c>) driven by
/// Playwright against the gateway on Kestrel (loopback). Loads each page, makes calls through the gateway, and checks
/// that the numbers and rows appear and update; no JavaScript error in the console; screenshots saved under
/// <c>TestResults/dashboard</c>. Without Chromium the test fails in CI (<c>CI=true</c>) and is skipped elsewhere.
/// </summary>
public sealed class DashboardBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_overview_and_providers_pages_show_the_calls_as_they_happen_without_console_errors()
    {
        if (!File.Exists(Chromium))
        {
            Assert.False(string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase), $"{Chromium} is missing: .ci/run installs Debian's chromium.");
            Assert.Skip($"{Chromium} is not installed (apt-get install chromium).");
        }

        await using var app = await StartAsync();
        var baseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync();
        var problems = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type is "error" or "warning")
            {
                problems.Add($"{message.Type}: {message.Text} ({message.Location})");
            }
        };
        page.PageError += (_, error) => problems.Add("page error: " + error);

        // The prefix without its slash is sent to the page's own address, whose relative links then resolve.
        var response = await page.GotoAsync(baseUrl + "/bifrost");
        Assert.Equal(200, response!.Status);
        Assert.EndsWith("/bifrost/", page.Url, StringComparison.Ordinal);
        await Assertions.Expect(page.GetByTestId("requests-total")).ToHaveTextAsync("0");
        await Assertions.Expect(page.GetByTestId("status")).ToContainTextAsync("updated");
        await Screenshot(page, "overview-empty");

        for (var i = 0; i < 5; i++)
        {
            using var ok = await PostAsync(http, """{"model":"local/echo","messages":[{"role":"user","content":"one two three"}]}""");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using (var failed = await PostAsync(http, """{"model":"local/echo","metadata":{"local_status":"400"},"messages":[{"role":"user","content":"x"}]}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, failed.StatusCode);
        }

        // The page polls every 2 s: the numbers arrive without a reload.
        await Assertions.Expect(page.GetByTestId("requests-total")).ToHaveTextAsync("6", new() { Timeout = 15_000 });
        await Assertions.Expect(page.GetByTestId("error-rate")).ToHaveTextAsync("16.7 %");
        await Assertions.Expect(page.GetByTestId("latency")).ToContainTextAsync(" ms");
        await Assertions.Expect(page.GetByTestId("tokens")).Not.ToHaveTextAsync("0 / 0");
        var model = page.GetByTestId("models").Locator("tbody tr");
        await Assertions.Expect(model).ToHaveCountAsync(1);
        await Assertions.Expect(model.Locator("[data-cell=model]")).ToHaveTextAsync("echo");
        await Assertions.Expect(model.Locator("[data-cell=requests]")).ToHaveTextAsync("6");
        await Assertions.Expect(model.Locator("[data-cell=errors]")).ToHaveTextAsync("1");
        Assert.True(await page.Locator("#chart-requests polyline[data-series=requests]").CountAsync() == 1);
        await Screenshot(page, "overview-after-calls");

        // Five more: the total moves on while the page stays open.
        for (var i = 0; i < 5; i++)
        {
            using var ok = await PostAsync(http, """{"model":"local/echo","messages":[{"role":"user","content":"again"}]}""");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        await Assertions.Expect(page.GetByTestId("requests-total")).ToHaveTextAsync("11", new() { Timeout = 15_000 });

        // The request log page: the newest calls, filtered, and one call's details.
        await page.GetByRole(AriaRole.Link, new() { Name = "Requests" }).ClickAsync();
        var requests = page.GetByTestId("requests").Locator("tbody tr");
        await Assertions.Expect(requests).ToHaveCountAsync(11);
        await Assertions.Expect(requests.First.Locator("[data-cell=provider]")).ToHaveTextAsync("local");
        await Assertions.Expect(requests.First.Locator("[data-cell=source]")).ToHaveTextAsync("sync");
        await page.GetByTestId("filter-status").SelectOptionAsync("4xx");
        await Assertions.Expect(requests).ToHaveCountAsync(1);
        await Assertions.Expect(requests.First.Locator("[data-cell=status]")).ToContainTextAsync("400");
        await requests.First.ClickAsync();
        await Assertions.Expect(page.GetByTestId("request-detail")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#request-detail [data-field=status]")).ToHaveTextAsync("400");
        await Assertions.Expect(page.Locator("#request-detail [data-field=operation]")).ToHaveTextAsync("chat_completion");
        await Assertions.Expect(page.Locator("#request-detail [data-field=error_code]")).Not.ToBeEmptyAsync();
        await Screenshot(page, "requests");
        await page.GetByTestId("filter-status").SelectOptionAsync(string.Empty);
        await Assertions.Expect(requests).ToHaveCountAsync(11);

        await page.GetByRole(AriaRole.Link, new() { Name = "Providers" }).ClickAsync();
        var provider = page.GetByTestId("providers").Locator("tbody tr");
        await Assertions.Expect(provider).ToHaveCountAsync(1);
        await Assertions.Expect(provider.Locator("[data-cell=provider]")).ToHaveTextAsync("local");
        await Assertions.Expect(provider.Locator("[data-cell=requests]")).ToHaveTextAsync("11");
        await Assertions.Expect(provider.Locator("[data-cell=errors]")).ToHaveTextAsync("1");
        await Assertions.Expect(provider.Locator("[data-cell=attempts]")).ToHaveTextAsync("10 / 0 / 0 / 1");
        await Assertions.Expect(provider.Locator("[data-cell=last-errors]")).ToContainTextAsync("(echo)");
        await Assertions.Expect(page.Locator("#page-overview")).ToBeHiddenAsync();
        await Screenshot(page, "providers");

        Assert.Empty(problems);
    }

    [Fact]
    public async Task The_jobs_page_shows_batches_advancing_and_cancels_one_only_after_a_confirmation()
    {
        if (!File.Exists(Chromium))
        {
            Assert.False(string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase), $"{Chromium} is missing: .ci/run installs Debian's chromium.");
            Assert.Skip($"{Chromium} is not installed (apt-get install chromium).");
        }

        using var files = new TempDirectory();
        await using var app = await StartAsync(configure: o =>
        {
            o.Files.Directory = files.Path;
            o.Jobs.PollInterval = TimeSpan.FromMilliseconds(50);
            o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(50);
            o.Batches.Concurrency = 1; // one line at a time: the progress is slow enough to watch
        });
        var baseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };
        const int SlowLines = 80;
        // 80 lines of 0.8 s each, one at a time: about a minute of runway, so the batch is still running when the page cancels
        // it even on a busy machine (the browser's start and the page's waits take tens of seconds there).
        var slow = await CreateBatchAsync(http, Enumerable.Range(1, SlowLines).Select(i => BatchLines.Chat($"slow-{i:D2}", metadata: [("local_delay_ms", "800")])));

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync();
        var problems = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type is "error" or "warning")
            {
                problems.Add($"{message.Type}: {message.Text} ({message.Location})");
            }
        };
        page.PageError += (_, error) => problems.Add("page error: " + error);
        var dialogs = new List<string>();
        var accept = false;
        page.Dialog += async (_, dialog) =>
        {
            dialogs.Add(dialog.Type + ": " + dialog.Message);
            if (accept)
            {
                await dialog.AcceptAsync();
            }
            else
            {
                await dialog.DismissAsync();
            }
        };

        var response = await page.GotoAsync(baseUrl + "/bifrost/#jobs");
        Assert.Equal(200, response!.Status);
        await Assertions.Expect(page.Locator("#page-jobs")).ToBeVisibleAsync();
        var row = page.GetByTestId("batches").Locator($"tbody tr[data-id='{slow}']");
        await Assertions.Expect(row).ToHaveCountAsync(1, new() { Timeout = 15_000 });
        await Assertions.Expect(row.Locator("[data-cell=status]")).ToHaveTextAsync("in_progress", new() { Timeout = 15_000 });
        await Assertions.Expect(row.Locator("[data-cell=endpoint]")).ToHaveTextAsync("/v1/chat/completions");
        await Assertions.Expect(row.Locator("progress")).ToHaveAttributeAsync("max", SlowLines.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // The page polls: the counts and the bar move on without a reload.
        var progress = row.Locator("[data-cell=progress]");
        await Assertions.Expect(progress).ToHaveTextAsync(new Regex($"^[1-9][0-9]* / {SlowLines}$"), new() { Timeout = 15_000 });
        var before = await progress.TextContentAsync();
        await Assertions.Expect(progress).Not.ToHaveTextAsync(before!, new() { Timeout = 15_000 });
        var after = int.Parse((await progress.TextContentAsync())!.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(after > int.Parse(before!.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture), $"{before} → {after}");
        Assert.True(int.Parse((await row.Locator("progress").GetAttributeAsync("value"))!, System.Globalization.CultureInfo.InvariantCulture) >= 1);
        await Screenshot(page, "jobs-running");

        // Cancel asks first: dismissed, nothing happens.
        var cancel = page.GetByTestId("cancel-" + slow);
        await cancel.ClickAsync();
        Assert.Single(dialogs);
        Assert.StartsWith("confirm: Cancel batch " + slow + "?", dialogs[0], StringComparison.Ordinal);
        await Task.Delay(2000, Ct); // a poll or more
        await Assertions.Expect(row.Locator("[data-cell=status]")).ToHaveTextAsync("in_progress");
        Assert.Equal("in_progress", (await BatchAsync(http, slow)).GetProperty("status").GetString());

        // Accepted: cancelling, then cancelled, with the lines that ran kept; the button goes.
        accept = true;
        await cancel.ClickAsync();
        await Assertions.Expect(row.Locator("[data-cell=status]")).ToHaveTextAsync(new Regex("^cancel(ling|led)$"), new() { Timeout = 15_000 });
        await Assertions.Expect(row.Locator("[data-cell=status]")).ToHaveTextAsync("cancelled", new() { Timeout = 15_000 });
        await Assertions.Expect(page.GetByTestId("cancel-" + slow)).ToHaveCountAsync(0);
        await Assertions.Expect(page.GetByTestId("jobs-message")).ToHaveTextAsync("cancel requested for " + slow);
        Assert.Equal(2, dialogs.Count);
        var cancelled = await BatchAsync(http, slow);
        Assert.Equal("cancelled", cancelled.GetProperty("status").GetString());
        var completed = cancelled.GetProperty("request_counts").GetProperty("completed").GetInt32();
        Assert.InRange(completed, 1, SlowLines - 1);
        await Assertions.Expect(progress).ToHaveTextAsync($"{completed} / {SlowLines}");

        // A small batch runs to the end and shows its full counts; an async job shows in its own table.
        var small = await CreateBatchAsync(http, [BatchLines.Chat("s-1"), BatchLines.Chat("s-2"), BatchLines.Chat("s-3", metadata: [("local_status", "400")])]);
        var smallRow = page.GetByTestId("batches").Locator($"tbody tr[data-id='{small}']");
        await Assertions.Expect(smallRow.Locator("[data-cell=status]")).ToHaveTextAsync("completed", new() { Timeout = 15_000 });
        await Assertions.Expect(smallRow.Locator("[data-cell=progress]")).ToHaveTextAsync("3 / 3 (1 failed)");
        await Assertions.Expect(smallRow.Locator("progress")).ToHaveAttributeAsync("value", "3");
        await Assertions.Expect(smallRow.Locator("button")).ToHaveCountAsync(0);
        await Assertions.Expect(page.GetByTestId("batches").Locator("tbody tr").First).ToHaveAttributeAsync("data-id", small); // newest first
        using (var submit = await http.PostAsync("/openai/v1/async/chat/completions", new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"later"}]}""", Encoding.UTF8, "application/json"), Ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, submit.StatusCode);
            var job = JsonDocument.Parse(await submit.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("id").GetString()!;
            var jobRow = page.GetByTestId("async-jobs").Locator($"tbody tr[data-id='{job}']");
            await Assertions.Expect(jobRow.Locator("[data-cell=status]")).ToHaveTextAsync("completed", new() { Timeout = 15_000 });
            await Assertions.Expect(jobRow.Locator("[data-cell=kind]")).ToHaveTextAsync("chat_completion");
        }

        await Assertions.Expect(page.GetByTestId("jobs-status")).ToHaveTextAsync("2 batches, 1 async jobs shown");
        await Screenshot(page, "jobs");
        Assert.Empty(problems);
    }

    [Fact]
    public async Task The_dashboard_answers_only_local_requests_unless_the_host_authorizes_it_and_never_shows_a_key()
    {
        await using var app = await StartAsync();
        var baseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };

        using var page = await http.GetAsync("/bifrost/", Ct);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        Assert.Contains("script-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        using var script = await http.GetAsync("/bifrost/app.js", Ct);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType!.MediaType);
        Assert.DoesNotContain("http://", (await script.Content.ReadAsStringAsync(Ct)).Replace("http://www.w3.org/2000/svg", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal); // no CDN

        using (await PostAsync(http, """{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}"""))
        {
        }

        var overview = await (await http.GetAsync("/bifrost/api/overview", Ct)).Content.ReadAsStringAsync(Ct);
        Assert.Contains("\"requests\":1", overview, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-local-dashboard-secret", overview, StringComparison.Ordinal);
        await app.Services.GetRequiredService<IBifrostRequestLog>().FlushAsync(Ct);
        using var log = await http.GetAsync("/bifrost/api/requests?limit=10", Ct);
        var logText = await log.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, log.StatusCode);
        Assert.Contains("\"provider\":\"local\"", logText, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-local-dashboard-secret", logText, StringComparison.Ordinal);
        using var badFilter = await http.GetAsync("/bifrost/api/requests?status=6xx", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, badFilter.StatusCode);

        // A request from another machine (here: a forwarded address, as a reverse proxy's middleware would set it) is refused.
        await using var remote = await StartAsync(remoteAddress: IPAddress.Parse("203.0.113.7"));
        var remoteUrl = remote.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var remoteHttp = new HttpClient { BaseAddress = new Uri(remoteUrl) };
        foreach (var path in (string[])["/bifrost/api/overview", "/bifrost/api/requests", "/bifrost/api/jobs", "/bifrost/"])
        {
            using var refused = await remoteHttp.GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Contains("dashboard_local_only", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        using (var cancel = new HttpRequestMessage(HttpMethod.Post, "/bifrost/api/jobs/any-job/cancel"))
        {
            cancel.Headers.Add("X-Bifrost-Dashboard", "1");
            using var refused = await remoteHttp.SendAsync(cancel, Ct);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Contains("dashboard_local_only", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }
    }

    private static async Task<WebApplication> StartAsync(IPAddress? remoteAddress = null, Action<BifrostOptions>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Keys = [new ProviderKeyOptions { Id = "k1", Value = "sk-local-dashboard-secret" }] };
            configure?.Invoke(options);
        });
        var app = builder.Build();
        if (remoteAddress is not null)
        {
            app.Use((context, next) =>
            {
                context.Connection.RemoteIpAddress = remoteAddress;
                return next(context);
            });
        }

        app.MapBifrost();
        app.MapBifrostDashboard();
        await app.StartAsync(Ct);
        return app;
    }

    /// <summary>Uploads the lines and creates a chat-completions batch of them; returns its id.</summary>
    private static async Task<string> CreateBatchAsync(HttpClient http, IEnumerable<string> lines)
    {
        using var upload = await http.PostAsync("/openai/v1/files", FileBatchHost.Multipart(BatchLines.Jsonl(lines), "batch"), Ct);
        Assert.Equal(HttpStatusCode.OK, upload.StatusCode);
        var file = JsonDocument.Parse(await upload.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("id").GetString();
        using var create = await http.PostAsync("/openai/v1/batches", new StringContent($$"""{"input_file_id":"{{file}}","endpoint":"/v1/chat/completions","completion_window":"24h"}""", Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.OK, create.StatusCode);
        return JsonDocument.Parse(await create.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> BatchAsync(HttpClient http, string id)
    {
        using var response = await http.GetAsync("/openai/v1/batches/" + id, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.Clone();
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, string json) =>
        http.PostAsync("/openai/v1/chat/completions", new StringContent(json, Encoding.UTF8, "application/json"), Ct);

    private static async Task Screenshot(IPage page, string name)
    {
        var directory = Path.Combine(AppContext.BaseDirectory, "TestResults", "dashboard");
        Directory.CreateDirectory(directory);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory, name + ".png"), FullPage = true });
        Assert.True(new FileInfo(Path.Combine(directory, name + ".png")).Length > 1000);
    }
}
