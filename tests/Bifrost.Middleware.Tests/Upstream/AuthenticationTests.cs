using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>Keys and headers the adapter sends upstream.</summary>
public sealed class AuthenticationTests
{
    [Fact]
    public async Task Configured_key_is_sent_as_a_bearer_token_with_the_custom_headers()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream, p =>
        {
            p.Keys = [new ProviderKeyOptions { Value = "sk-primary" }];
            p.Headers["OpenAI-Organization"] = "org-123";
            p.Headers["X-Custom-Trace"] = "abc";
        });

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = Assert.Single(upstream.Requests);
        Assert.Equal("Bearer sk-primary", received.Header("Authorization"));
        Assert.Equal("org-123", received.Header("OpenAI-Organization"));
        Assert.Equal("abc", received.Header("X-Custom-Trace"));
        Assert.Null(received.Header("api-key"));
    }

    [Fact]
    public async Task Custom_auth_header_carries_the_bare_key_and_no_authorization_header()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream, p =>
        {
            p.Keys = [new ProviderKeyOptions { Value = "azure-key-1" }];
            p.AuthHeader = "api-key";
        });

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = Assert.Single(upstream.Requests);
        Assert.Equal("azure-key-1", received.Header("api-key"));
        Assert.Null(received.Header("Authorization"));
    }

    [Fact]
    public async Task Provider_without_keys_sends_no_credentials_not_even_the_clients()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream, p => p.Keys = []);
        using var request = new HttpRequestMessage(HttpMethod.Post, ChatPath) { Content = new StringContent(Chat(), System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "client-secret");

        using var response = await host.Client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = Assert.Single(upstream.Requests);
        Assert.Null(received.Header("Authorization"));
        Assert.DoesNotContain(received.Headers.Values, static v => v.Contains("client-secret", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Env_key_is_read_from_the_environment_variable()
    {
        var variable = "BIFROST_TEST_KEY_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "sk-from-env");
        try
        {
            await using var upstream = await FakeOpenAIUpstream.StartAsync();
            await using var host = await StartAsync(upstream, p => p.Keys = [new ProviderKeyOptions { Value = "env:" + variable }]);

            using var response = await host.PostChatAsync(Chat());

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("Bearer sk-from-env", Assert.Single(upstream.Requests).Header("Authorization"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public async Task Keys_are_chosen_by_weight_and_a_zero_weight_key_is_never_used()
    {
        const int total = 400;
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream, p => p.Keys =
        [
            new ProviderKeyOptions { Value = "sk-heavy", Weight = 3 },
            new ProviderKeyOptions { Value = "sk-light", Weight = 1 },
            new ProviderKeyOptions { Value = "sk-off", Weight = 0 },
        ]);

        for (var batch = 0; batch < total / 20; batch++)
        {
            var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => host.PostChatAsync(Chat())));
            foreach (var response in responses)
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                response.Dispose();
            }
        }

        var counts = upstream.Requests.GroupBy(static r => r.Header("Authorization")).ToDictionary(static g => g.Key ?? "(none)", static g => g.Count());
        Assert.Equal(total, counts.Values.Sum());
        Assert.False(counts.ContainsKey("Bearer sk-off"));
        Assert.False(counts.ContainsKey("(none)"));

        // Expected 300 : 100 (standard deviation ≈ 8.7); ±60 keeps this from ever flaking while a broken weighting (200 : 200) fails.
        Assert.InRange(counts.GetValueOrDefault("Bearer sk-heavy"), 240, 360);
        Assert.InRange(counts.GetValueOrDefault("Bearer sk-light"), 40, 160);
    }

    [Fact]
    public async Task Keys_restricted_to_models_are_used_only_for_those_models()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartAsync(upstream, p => p.Keys =
        [
            new ProviderKeyOptions { Value = "sk-mini", Models = ["gpt-4o-mini"] },
            new ProviderKeyOptions { Value = "sk-big", Models = ["gpt-4o"] },
        ]);

        for (var i = 0; i < 10; i++)
        {
            using var mini = await host.PostChatAsync(Chat("openai/gpt-4o-mini"));
            using var big = await host.PostChatAsync(Chat("openai/gpt-4o"));
            Assert.Equal(HttpStatusCode.OK, mini.StatusCode);
            Assert.Equal(HttpStatusCode.OK, big.StatusCode);
        }

        Assert.Equal(20, upstream.Requests.Count);
        Assert.All(upstream.Requests, r => Assert.Equal(
            r.Body!.Value.GetProperty("model").GetString() == "gpt-4o-mini" ? "Bearer sk-mini" : "Bearer sk-big",
            r.Header("Authorization")));
    }
}
