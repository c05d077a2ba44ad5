using Bifrost.Middleware.Providers.Gemini;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>Google's error bodies (https://ai.google.dev/gemini-api/docs/troubleshooting) → Bifrost errors, statuses, retry hints; the key never in an error.</summary>
public sealed class GeminiErrorTests : GeminiTestBase
{
    private ServiceProvider _services = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
        Adapter = _services.GetRequiredService<GeminiAdapter>();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await base.DisposeAsync();
    }

    private static ChatCompletionRequest Hello => Chat("""{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}""");

    [Fact]
    public async Task An_invalid_key_answered_400_API_KEY_INVALID_is_a_401_without_the_key()
    {
        const string wrongKey = "AIza-WRONG-secret-value";

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(key: wrongKey), Hello, Ct));

        Assert.Equal(401, error.StatusCode);
        Assert.False(error.IsRetryable);
        Assert.Equal("authentication_error", error.Error.Error.Type);
        Assert.Equal("API_KEY_INVALID", error.Error.Error.Code);
        Assert.Equal("API key not valid. Please pass a valid API key.", error.Error.Error.Message);
        Assert.Equal(wrongKey, Assert.Single(Upstream.Requests).Headers["x-goog-api-key"]);
        Assert.DoesNotContain(wrongKey, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(wrongKey, System.Text.Json.JsonSerializer.Serialize(error.Error, Bifrost.Middleware.Serialization.BifrostJson.Context.BifrostError), StringComparison.Ordinal);
        Assert.DoesNotContain("key=", Assert.Single(Upstream.Requests).Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rate_limit_with_RetryInfo_is_a_retryable_429_with_the_delay()
    {
        Upstream.Failures.Enqueue(new FakeGeminiUpstream.Failure(429, "Resource has been exhausted (e.g. check quota).", "RATE_LIMIT_EXCEEDED", TimeSpan.FromSeconds(12.5)));

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(), Hello, Ct));

        Assert.Equal(429, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal(TimeSpan.FromSeconds(12.5), error.RetryAfter);
        Assert.Equal("rate_limit_error", error.Error.Error.Type);
        Assert.Equal("RATE_LIMIT_EXCEEDED", error.Error.Error.Code);
        Assert.Equal("Resource has been exhausted (e.g. check quota).", error.Error.Error.Message);
    }

    [Theory]
    [InlineData(500, "INTERNAL", true)]
    [InlineData(503, "UNAVAILABLE", true)]
    [InlineData(504, "DEADLINE_EXCEEDED", true)]
    [InlineData(400, "INVALID_ARGUMENT", false)]
    [InlineData(403, "PERMISSION_DENIED", false)]
    [InlineData(404, "NOT_FOUND", false)]
    public async Task Statuses_pass_through_with_Google_status_as_the_code(int status, string code, bool retryable)
    {
        Upstream.Failures.Enqueue(new FakeGeminiUpstream.Failure(status, "The model is overloaded."));

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(), Hello, Ct));

        Assert.Equal(status, error.StatusCode);
        Assert.Equal(retryable, error.IsRetryable);
        Assert.Equal(code, error.Error.Error.Code);
        Assert.Equal(GeminiResponseTranslator.TypeOf(status), error.Error.Error.Type);
        Assert.Equal("The model is overloaded.", error.Error.Error.Message);
        Assert.Null(error.RetryAfter);
    }

    [Fact]
    public async Task An_error_body_that_is_not_Googles_shape_passes_its_status_and_text()
    {
        await using var proxy = await NotJsonUpstream.StartAsync();

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(configure: o => o.BaseUrl = proxy.BaseUrl), Hello, Ct));

        Assert.Equal(502, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal("<html>Bad Gateway</html>", error.Error.Error.Message);
        Assert.Equal("api_error", error.Error.Error.Type);
    }

    /// <summary>A proxy in front of Gemini that answers 502 with an HTML page.</summary>
    private sealed class NotJsonUpstream : IAsyncDisposable
    {
        private WebApplication _app = null!;

        public string BaseUrl { get; private set; } = string.Empty;

        public static async Task<NotJsonUpstream> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            app.Run(async context =>
            {
                context.Response.StatusCode = 502;
                context.Response.ContentType = "text/html";
                await context.Response.WriteAsync("<html>Bad Gateway</html>");
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
            return new NotJsonUpstream { _app = app, BaseUrl = address + "/v1beta" };
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    [Theory]
    [InlineData("30s", 30.0)]
    [InlineData("12.5s", 12.5)]
    [InlineData("0s", 0.0)]
    public void Retry_delays_parse_as_protobuf_durations(string value, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), GeminiResponseTranslator.ParseDuration(value));

    [Theory]
    [InlineData("30")]
    [InlineData("s")]
    [InlineData("-1s")]
    [InlineData("abc")]
    public void Bad_retry_delays_are_ignored(string value) => Assert.Null(GeminiResponseTranslator.ParseDuration(value));
}
