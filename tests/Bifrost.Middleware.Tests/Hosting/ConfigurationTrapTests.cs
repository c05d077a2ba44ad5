using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Tests.Hosting;

/// <summary>
/// Configuration that would start silently and misbehave is reported at start, one warning each: keys that bind to no
/// setting, an empty or missing section, no provider at all. A model served whole by the catch-all default provider is
/// logged once per prefix. The README's "another OpenAI-compatible server" recipe works as written.
/// </summary>
public sealed class ConfigurationTrapTests
{
    private const int UnknownKey = 40;
    private const int EmptySection = 41;
    private const int NoProvider = 42;
    private const int ServedWhole = 44;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Each_misspelt_key_is_one_warning_naming_its_path()
    {
        var logs = new LogSink();
        await using var app = await StartAsync(logs, new Dictionary<string, string?>
        {
            ["Bifrost:DefaultProvider"] = "local",
            ["Bifrost:Providers:local:Type"] = "local",
            ["Bifrost:Provider:openai:BaseUrl"] = "https://api.openai.com/v1",  // Provider (not Providers): the whole subtree, once
            ["Bifrost:Provider:openai:Models:0"] = "gpt-4o-mini",
            ["Bifrost:Providers:local:Modles:0"] = "echo",
            ["Bifrost:Providers:local:Keys:0:Value"] = "k",
            ["Bifrost:Providers:local:Keys:0:Wieght"] = "2",
            ["Bifrost:Providers:local:Headers:X-Anything"] = "a header name is a dictionary key, never unknown",
            ["Bifrost:Jobs:Wokers"] = "2",
            ["Bifrost:Jobs:Workers:Count"] = "2",                               // a value with a sub-key
        });

        var warnings = logs.Messages(UnknownKey);
        Assert.Equal(5, warnings.Count);
        foreach (var (path, closest) in new[]
        {
            ("Bifrost:Provider", "'Bifrost:Providers'"),
            ("Bifrost:Providers:local:Modles", "'Bifrost:Providers:local:Models'"),
            ("Bifrost:Providers:local:Keys:0:Wieght", "'Bifrost:Providers:local:Keys:0:Weight'"),
            ("Bifrost:Jobs:Wokers", "'Bifrost:Jobs:Workers'"),
            ("Bifrost:Jobs:Workers:Count", "none"),
        })
        {
            Assert.Single(warnings, w => w.Contains($"'{path}' matches no Bifrost setting", StringComparison.Ordinal) && w.Contains($"closest setting: {closest};", StringComparison.Ordinal));
        }

        Assert.All(logs.Entries.Where(static e => e.EventId == UnknownKey), static e => Assert.Equal(LogLevel.Warning, e.Level));
        Assert.Empty(logs.Messages(NoProvider));
    }

    [Theory]
    [InlineData("samples", "Bifrost.Sample", "appsettings.json")]
    [InlineData("tests", "Bifrost.Middleware.ReadmeApp", "appsettings.json")]
    public async Task The_shipped_configurations_raise_no_warning(params string[] file)
    {
        var logs = new LogSink();
        var builder = Builder(logs);
        builder.Configuration.AddJsonFile(Repository.PathOf(file), optional: false);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            // every other setting of the configuration reference, spelt as documented
            ["Bifrost:MaxRequestBodySize"] = "1048576",
            ["Bifrost:Providers:local:Keys:0:Value"] = "k",
            ["Bifrost:Providers:local:Keys:0:Weight"] = "1",
            ["Bifrost:Providers:local:Keys:0:Models:0"] = "echo",
            ["Bifrost:Providers:local:AuthHeader"] = "api-key",
            ["Bifrost:Providers:local:Timeout"] = "00:01:00",
            ["Bifrost:Providers:local:NativeBatches"] = "false",
            ["Bifrost:Providers:local:NativeResponses"] = "false",
            ["Bifrost:Providers:local:DefaultMaxTokens"] = "100",
            ["Bifrost:Jobs:MaxRunningPerOwner"] = "2",
            ["Bifrost:Files:MaxBatchLines"] = "10",
            ["Bifrost:Batches:Concurrency"] = "2",
            ["Bifrost:Sqlite:Path"] = "jobs.db",                      // the store packages' documented sections
            ["Bifrost:PostgreSql:ConnectionString"] = "Host=db",
        });
        await using var app = await StartAsync(builder);

        Assert.Empty(logs.Messages(UnknownKey));
        Assert.Empty(logs.Messages(EmptySection));
        Assert.Empty(logs.Messages(NoProvider));
    }

    [Fact]
    public async Task A_missing_Bifrost_section_is_a_warning_and_so_is_having_no_provider()
    {
        var logs = new LogSink();
        var builder = Builder(logs);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Bifrots:DefaultProvider"] = "local" });
        await using var app = await StartAsync(builder);

        Assert.Contains("'Bifrost'", Assert.Single(logs.Messages(EmptySection)), StringComparison.Ordinal);
        Assert.Single(logs.Messages(NoProvider));
    }

    [Fact]
    public async Task No_provider_is_a_warning_whichever_AddBifrost_is_used_and_an_added_provider_counts()
    {
        static void NoProviders(BifrostOptions options)
        {
            options.DefaultProvider = null;
            options.Providers.Clear();
        }

        var withoutProvider = new LogSink();
        await using (var host = await GatewayHost.StartAsync(NoProviders, services: s => s.AddSingleton<ILoggerProvider>(withoutProvider)))
        {
            Assert.Single(withoutProvider.Messages(NoProvider));
        }

        var withAdded = new LogSink();
        await using (var host = await GatewayHost.StartAsync(NoProviders, bifrost: b => b.AddProvider<CapturingAdapter>("acme"), services: s => s.AddSingleton<ILoggerProvider>(withAdded)))
        {
            Assert.Empty(withAdded.Messages(NoProvider));
        }
    }

    [Fact]
    public async Task A_model_served_whole_by_the_catch_all_default_is_logged_once_per_prefix_with_the_provider()
    {
        var logs = new LogSink();
        await using var host = await GatewayHost.StartAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        foreach (var model in new[] { "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-8B", "qwen/Qwen2.5", "local/echo", "echo" })
        {
            using var response = await host.PostJsonAsync("/openai/v1/chat/completions", $$"""{"model":"{{model}}","messages":[{"role":"user","content":"x"}]}""", Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var logged = logs.Entries.Where(static e => e.EventId == ServedWhole).ToList();
        Assert.Equal(2, logged.Count);
        Assert.All(logged, static e => Assert.Equal(LogLevel.Information, e.Level));
        Assert.Single(logged, static e => e.Message.Contains("'meta-llama'", StringComparison.Ordinal) && e.Message.Contains("'local'", StringComparison.Ordinal));
        Assert.Single(logged, static e => e.Message.Contains("'qwen'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_READMEs_other_server_recipe_works_as_written_with_the_samples_configuration()
    {
        // README: Bifrost__Providers__ollama__BaseUrl=http://localhost:11434/v1 dotnet run --project samples/Bifrost.Sample,
        // then "ollama/<model>". A fake OpenAI-compatible server stands in for Ollama.
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        var builder = Builder(new LogSink());
        builder.Configuration.AddJsonFile(Repository.PathOf("samples", "Bifrost.Sample", "appsettings.json"), optional: false);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Bifrost:Providers:ollama:BaseUrl"] = upstream.BaseUrl });
        await using var app = await StartAsync(builder);
        using var client = app.GetTestClient();

        using var response = await client.PostAsync("/openai/v1/chat/completions", new StringContent("""{"model":"ollama/llama3.2","messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = Assert.Single(upstream.Requests);
        Assert.Equal("llama3.2", sent.Body!.Value.GetProperty("model").GetString());

        // Why the old one-liner (re-pointing the sample's "openai" provider) failed: that provider lists its Models.
        using var listed = await client.PostAsync("/openai/v1/chat/completions", new StringContent("""{"model":"openai/llama3.2","messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, listed.StatusCode);
        using var error = JsonDocument.Parse(await listed.Content.ReadAsStringAsync(Ct));
        Assert.Equal("model_not_found", error.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    private static WebApplicationBuilder Builder(LogSink logs)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<ILoggerProvider>(logs);
        return builder;
    }

    private static Task<WebApplication> StartAsync(LogSink logs, Dictionary<string, string?> settings)
    {
        var builder = Builder(logs);
        builder.Configuration.AddInMemoryCollection(settings);
        return StartAsync(builder);
    }

    private static async Task<WebApplication> StartAsync(WebApplicationBuilder builder)
    {
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));
        var app = builder.Build();
        app.MapBifrost();
        await app.StartAsync(Ct);
        return app;
    }
}
