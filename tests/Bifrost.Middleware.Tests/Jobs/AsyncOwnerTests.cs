using System.Net;
using System.Text;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Authentication;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>Jobs belong to their caller: the authenticated user when the host authenticates, else a hash of the credential.</summary>
public sealed class AsyncOwnerTests
{
    [Fact]
    public async Task Authenticated_users_see_only_their_own_jobs_even_with_a_shared_api_key()
    {
        await using var host = await GatewayHost.StartAsync(services: s => s
            .AddAuthentication(TestUserAuthHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, TestUserAuthHandler>(TestUserAuthHandler.SchemeName, null));
        (string, string) sharedKey = ("Authorization", "Bearer sk-team-shared");
        (string, string) alice = ("X-Test-User", "alice");
        (string, string) bob = ("X-Test-User", "bob");

        var aliceJob = await host.SubmitAsync(ChatBody("alice's question"), alice, sharedKey);
        var bobJob = await host.SubmitAsync(ChatBody("bob's question"), bob, sharedKey);

        var (status, aliceResult) = await host.PollUntilFinishedAsync(aliceJob, alice, sharedKey);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("alice's question", aliceResult.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var (bobStatus, bobResult) = await host.PollUntilFinishedAsync(bobJob, bob, sharedKey);
        Assert.Equal(HttpStatusCode.OK, bobStatus);
        Assert.Equal("bob's question", bobResult.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // Each user is 404 on the other's job, on both routes; so is an unauthenticated caller with the same key.
        foreach (var (id, intruder) in new[] { (aliceJob, new[] { bob, sharedKey }), (bobJob, new[] { alice, sharedKey }), (aliceJob, new[] { sharedKey }) })
        {
            using var poll = await host.PollAsync(id, intruder);
            Assert.Equal(HttpStatusCode.NotFound, poll.StatusCode);
            using var envelope = await host.SendAsync(HttpMethod.Get, $"{EnvelopePath}/{id}", null, intruder);
            Assert.Equal(HttpStatusCode.NotFound, envelope.StatusCode);
        }

        // The owner is the user, not the credential: alice reads her job with another key (or none).
        Assert.Equal("completed", (await host.EnvelopeAsync(aliceJob, alice, ("Authorization", "Bearer sk-other"))).GetProperty("status").GetString());
        Assert.Equal("completed", (await host.EnvelopeAsync(aliceJob, alice)).GetProperty("status").GetString());

        var store = host.Services.GetRequiredService<IJobStore>();
        var aliceOwner = (await store.GetAsync(aliceJob, Ct))!.Owner;
        var bobOwner = (await store.GetAsync(bobJob, Ct))!.Owner;
        Assert.NotEqual(aliceOwner, bobOwner);
        Assert.Equal(aliceOwner, (await store.ListAsync(aliceOwner, null, 10, null, Ct)).Single().Owner);
    }

    [Theory]
    [InlineData("Authorization", "Bearer sk-live-SECRET-1234567890")]
    [InlineData("x-api-key", "xk-SECRET-abcdef")]
    [InlineData("api-key", "azure-SECRET-key")]
    public async Task A_credential_is_never_stored_raw_and_still_identifies_its_caller(string header, string key)
    {
        await using var host = await GatewayHost.StartAsync();
        var id = await host.SubmitAsync(ChatBody("keep my key safe"), (header, key));

        var job = await host.Services.GetRequiredService<IJobStore>().GetAsync(id, Ct);
        Assert.NotNull(job);
        Assert.DoesNotContain("SECRET", job.Owner, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("SECRET", Encoding.UTF8.GetString(job.Payload.Span), StringComparison.OrdinalIgnoreCase);
        Assert.NotEqual(host.AnonymousOwner(), job.Owner);

        var (status, _) = await host.PollUntilFinishedAsync(id, (header, key));
        Assert.Equal(HttpStatusCode.OK, status);
        using var otherKey = await host.PollAsync(id, (header, key + "-other"));
        Assert.Equal(HttpStatusCode.NotFound, otherKey.StatusCode);
        using var anonymous = await host.PollAsync(id);
        Assert.Equal(HttpStatusCode.NotFound, anonymous.StatusCode);
    }

    [Fact]
    public async Task A_custom_owner_resolver_from_di_decides_the_owner()
    {
        await using var host = await GatewayHost.StartAsync(services: s => s.AddSingleton<IJobOwnerResolver, TenantResolver>());
        var id = await host.SubmitAsync(ChatBody("tenant job"), ("X-Tenant", "t1"), ("Authorization", "Bearer sk-1"));

        Assert.Equal("tenant:t1", (await host.Services.GetRequiredService<IJobStore>().GetAsync(id, Ct))!.Owner);
        // Another key of the same tenant sees it; another tenant with the same key does not.
        var (status, _) = await host.PollUntilFinishedAsync(id, ("X-Tenant", "t1"), ("Authorization", "Bearer sk-2"));
        Assert.Equal(HttpStatusCode.OK, status);
        using var otherTenant = await host.PollAsync(id, ("X-Tenant", "t2"), ("Authorization", "Bearer sk-1"));
        Assert.Equal(HttpStatusCode.NotFound, otherTenant.StatusCode);
    }

    private sealed class TenantResolver : IJobOwnerResolver
    {
        public string ResolveOwner(Microsoft.AspNetCore.Http.HttpContext context) => "tenant:" + context.Request.Headers["X-Tenant"];
    }
}
