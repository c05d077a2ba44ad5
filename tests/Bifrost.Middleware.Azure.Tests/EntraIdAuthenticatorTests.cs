using Azure.Identity;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Bifrost.Middleware.Azure.Tests;

/// <summary>The token cache of <see cref="EntraIdAuthenticator"/>: reuse, refresh before expiry, one shared refresh, refresh after a 401.</summary>
public sealed class EntraIdAuthenticatorTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_token_is_reused_until_five_minutes_before_it_expires_then_replaced()
    {
        var credential = new FakeTokenCredential(_time);
        using var authenticator = Create(credential);

        Assert.Equal("token-1", await AuthorizeAsync(authenticator));
        _time.Advance(TimeSpan.FromMinutes(54));
        Assert.Equal("token-1", await AuthorizeAsync(authenticator));
        Assert.Equal(1, credential.Calls);

        _time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1)); // 4m59s left
        Assert.Equal("token-2", await AuthorizeAsync(authenticator));
        Assert.Equal("token-2", await AuthorizeAsync(authenticator));
        Assert.Equal(2, credential.Calls);
        Assert.All(credential.Scopes, s => Assert.Equal(["https://cognitiveservices.azure.com/.default"], s));
    }

    [Fact]
    public async Task Concurrent_requests_share_one_refresh()
    {
        var credential = new FakeTokenCredential(_time) { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        using var authenticator = Create(credential);

        var requests = Enumerable.Range(0, 16).Select(_ => AuthorizeAsync(authenticator)).ToList();
        await Task.Delay(50, Ct);
        credential.Gate.SetResult();
        var tokens = await Task.WhenAll(requests);

        Assert.Equal(1, credential.Calls);
        Assert.All(tokens, t => Assert.Equal("token-1", t));
    }

    [Fact]
    public async Task A_401_replaces_the_refused_token_once_but_not_a_token_already_replaced()
    {
        var credential = new FakeTokenCredential(_time);
        using var authenticator = Create(credential);
        Assert.Equal("token-1", await AuthorizeAsync(authenticator));

        Assert.Equal("token-2", await AuthorizeAsync(authenticator, refused: "token-1"));
        Assert.Equal("token-2", await AuthorizeAsync(authenticator, refused: "token-1")); // a second request refused with the old token
        Assert.Equal(2, credential.Calls);
    }

    [Fact]
    public async Task The_scope_and_margin_are_configurable_and_the_api_key_header_is_removed()
    {
        var credential = new FakeTokenCredential(_time) { Lifetime = TimeSpan.FromMinutes(30) };
        using var authenticator = new EntraIdAuthenticator(credential, new AzureEntraIdOptions { Scope = "https://ai.azure.com/.default", RefreshBeforeExpiry = TimeSpan.FromMinutes(20) }, _time, NullLogger<EntraIdAuthenticator>.Instance);
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://res.openai.azure.com/openai/v1/chat/completions");
        request.Headers.TryAddWithoutValidation("api-key", "a-key");

        await authenticator.AuthenticateAsync(request, Context(), Ct);
        _time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));
        await AuthorizeAsync(authenticator);

        Assert.False(request.Headers.Contains("api-key"));
        Assert.Equal("Bearer token-1", request.Headers.Authorization!.ToString());
        Assert.Equal(["https://ai.azure.com/.default"], credential.Scopes[0]);
        Assert.Equal(2, credential.Calls);
    }

    [Fact]
    public async Task A_failed_early_refresh_keeps_the_current_token_until_it_expires()
    {
        var credential = new FakeTokenCredential(_time);
        using var authenticator = Create(credential);
        Assert.Equal("token-1", await AuthorizeAsync(authenticator));

        credential.Failure = new CredentialUnavailableException("no managed identity endpoint");
        _time.Advance(TimeSpan.FromMinutes(57));
        Assert.Equal("token-1", await AuthorizeAsync(authenticator));

        _time.Advance(TimeSpan.FromMinutes(4));
        await Assert.ThrowsAsync<CredentialUnavailableException>(() => AuthorizeAsync(authenticator));
    }

    private EntraIdAuthenticator Create(FakeTokenCredential credential) =>
        new(credential, new AzureEntraIdOptions(), _time, NullLogger<EntraIdAuthenticator>.Instance);

    private static UpstreamAuthContext Context(bool unauthorized = false) =>
        new(new ProviderContext("azure", new ProviderOptions { Type = "azure" }, "gpt-4o", null), unauthorized);

    private static async Task<string> AuthorizeAsync(EntraIdAuthenticator authenticator, string? refused = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://res.openai.azure.com/openai/v1/chat/completions");
        if (refused is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", refused);
        }

        await authenticator.AuthenticateAsync(request, Context(refused is not null), Ct);
        Assert.Equal("Bearer", request.Headers.Authorization!.Scheme);
        return request.Headers.Authorization.Parameter!;
    }
}
