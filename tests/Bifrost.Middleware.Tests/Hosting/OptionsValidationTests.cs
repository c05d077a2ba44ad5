using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Hosting;

/// <summary>A wrong setting stops the host at start with a message naming the setting.</summary>
public sealed class OptionsValidationTests
{
    public static TheoryData<string, string, string> Cases() => new()
    {
        { "DefaultProvider names no provider", "default-missing", "Bifrost:DefaultProvider 'missing'" },
        { "openai provider without BaseUrl", "openai-no-baseurl", "Bifrost:Providers:openai:BaseUrl is required" },
        { "relative BaseUrl", "openai-relative-baseurl", "Bifrost:Providers:openai:BaseUrl '/v1'" },
        { "non-http BaseUrl", "openai-ftp-baseurl", "Bifrost:Providers:openai:BaseUrl 'ftp://example.com/v1'" },
        { "unknown Type", "unknown-type", "Bifrost:Providers:mystery:Type 'grpc' is unknown" },
        { "key with empty value", "empty-key", "Bifrost:Providers:openai:Keys:0:Value is required" },
        { "negative weight", "negative-weight", "Bifrost:Providers:openai:Keys:1:Weight" },
        { "all weights zero", "zero-weights", "Bifrost:Providers:openai:Keys: at least one key needs a weight above 0" },
        { "RetryMaxDelay below RetryBaseDelay", "retry-delays", "Bifrost:Providers:local:RetryMaxDelay" },
        { "Jobs:RetryMaxDelay below Jobs:RetryBaseDelay", "job-retry-delays", "Bifrost:Jobs:RetryMaxDelay" },
        { "MaxRetries out of range", "max-retries", "MaxRetries" },
        { "MaxRequestBodySize too small", "body-size", "MaxRequestBodySize" },
        { "provider name with a slash", "slash-name", "Provider name 'a/b' is invalid" },
        { "MaxRunDuration of zero", "run-duration", "MaxRunDuration" },
        { "MaxRunningPerOwner of zero", "running-per-owner", "MaxRunningPerOwner" },
        { "MaxQueuedJobsPerOwner of zero", "queued-per-owner", "MaxQueuedJobsPerOwner" },
        { "MaxStoredBytesPerOwner of zero", "bytes-per-owner", "MaxStoredBytesPerOwner" },
    };

    private static void Apply(string setup, BifrostOptions options)
    {
        ProviderOptions OpenAI(string? baseUrl = "https://api.example.com/v1") => options.Providers["openai"] = new ProviderOptions { Type = "openai", BaseUrl = baseUrl };
        switch (setup)
        {
            case "default-missing":
                options.DefaultProvider = "missing";
                break;
            case "openai-no-baseurl":
                OpenAI(null);
                break;
            case "openai-relative-baseurl":
                OpenAI("/v1");
                break;
            case "openai-ftp-baseurl":
                OpenAI("ftp://example.com/v1");
                break;
            case "unknown-type":
                options.Providers["mystery"] = new ProviderOptions { Type = "grpc" };
                break;
            case "empty-key":
                OpenAI().Keys.Add(new ProviderKeyOptions { Value = " " });
                break;
            case "negative-weight":
                OpenAI().Keys.Add(new ProviderKeyOptions { Value = "sk-1" });
                options.Providers["openai"].Keys.Add(new ProviderKeyOptions { Value = "sk-2", Weight = -1 });
                break;
            case "zero-weights":
                OpenAI().Keys.Add(new ProviderKeyOptions { Value = "sk-1", Weight = 0 });
                break;
            case "job-retry-delays":
                options.Jobs.RetryBaseDelay = TimeSpan.FromMinutes(10);
                break;
            case "retry-delays":
                options.Providers["local"].RetryBaseDelay = TimeSpan.FromSeconds(5);
                options.Providers["local"].RetryMaxDelay = TimeSpan.FromSeconds(1);
                break;
            case "max-retries":
                options.Providers["local"].MaxRetries = 99;
                break;
            case "body-size":
                options.MaxRequestBodySize = 10;
                break;
            case "slash-name":
                options.Providers["a/b"] = new ProviderOptions { Type = "local" };
                break;
            case "run-duration":
                options.Jobs.MaxRunDuration = TimeSpan.Zero;
                break;
            case "running-per-owner":
                options.Jobs.MaxRunningPerOwner = 0;
                break;
            case "queued-per-owner":
                options.Jobs.MaxQueuedJobsPerOwner = 0;
                break;
            case "bytes-per-owner":
                options.Jobs.MaxStoredBytesPerOwner = 0;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(setup));
        }
    }

    private static WebApplication Build(string setup)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            Apply(setup, options);
        });
        return builder.Build();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Starting_a_host_with_a_bad_setting_throws_naming_it(string because, string setup, string expected)
    {
        await using var app = Build(setup);

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(TestContext.Current.CancellationToken));

        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{because}: '{ex.Message}' should contain '{expected}'");
        Assert.Equal(typeof(BifrostOptions), ex.OptionsType);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_host_that_maps_Bifrost_with_a_bad_setting_fails_before_serving(string because, string setup, string expected)
    {
        await using var app = Build(setup);

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            app.MapBifrost();
            await app.StartAsync(TestContext.Current.CancellationToken);
        });

        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{because}: '{ex.Message}' should contain '{expected}'");
    }

    [Fact]
    public async Task Every_bad_setting_is_reported_at_once()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "missing";
            options.Providers["openai"] = new ProviderOptions { BaseUrl = "relative/v1" };
        });
        await using var app = builder.Build();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(TestContext.Current.CancellationToken));

        Assert.Contains("Bifrost:DefaultProvider", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Bifrost:Providers:openai:BaseUrl", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_provider_registered_with_AddProvider_needs_no_Type_or_BaseUrl_and_may_be_the_default()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options => options.DefaultProvider = "acme")
            .AddProvider<Infrastructure.CapturingAdapter>("acme")
            .ConfigureProvider("acme", p => p.Models.Add("m"));
        await using var app = builder.Build();
        app.MapBifrost();

        await app.StartAsync(TestContext.Current.CancellationToken);
        await app.StopAsync(TestContext.Current.CancellationToken);
    }
}
