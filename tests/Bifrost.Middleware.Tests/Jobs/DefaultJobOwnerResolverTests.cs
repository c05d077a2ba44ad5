using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Features.Authentication;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>
/// The default owner of jobs, batches and request-log entries. Owner ids are stored with jobs and batches, so they must
/// stay what they were: <c>key:</c> + the lower-case hex SHA-256 of the trimmed credential, <c>user:</c> + that of the
/// authentication type, a newline and the user id. Resolving must not create a principal on a host without authentication.
/// </summary>
public sealed class DefaultJobOwnerResolverTests
{
    private static string Expected(string prefix, string value) =>
        prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)));

    private static DefaultHttpContext Request(string? authorization = null, string? apiKey = null, string? azureKey = null)
    {
        var context = new DefaultHttpContext();
        if (authorization is not null)
        {
            context.Request.Headers.Authorization = authorization;
        }

        if (apiKey is not null)
        {
            context.Request.Headers["x-api-key"] = apiKey;
        }

        if (azureKey is not null)
        {
            context.Request.Headers["api-key"] = azureKey;
        }

        return context;
    }

    [Fact]
    public void A_credential_header_gives_the_hash_of_the_trimmed_value_in_each_header_form()
    {
        var resolver = new DefaultJobOwnerResolver();

        Assert.Equal(Expected("key:", "Bearer sk-one"), resolver.ResolveOwner(Request(authorization: "  Bearer sk-one ")));
        Assert.Equal(Expected("key:", "sk-ant-two"), resolver.ResolveOwner(Request(apiKey: "sk-ant-two")));
        Assert.Equal(Expected("key:", "azure-three"), resolver.ResolveOwner(Request(azureKey: "azure-three")));
        Assert.Equal(DefaultJobOwnerResolver.Anonymous, resolver.ResolveOwner(Request()));
    }

    [Fact]
    public void Repeated_and_alternating_credentials_on_one_thread_keep_their_own_owner()
    {
        var resolver = new DefaultJobOwnerResolver();
        var credentials = new[] { "Bearer a", "Bearer a", "Bearer b", "Bearer a", "Bearer " + new string('x', 2000), "Bearer b" };

        foreach (var credential in credentials)
        {
            Assert.Equal(Expected("key:", credential), resolver.ResolveOwner(Request(authorization: credential)));
        }
    }

    [Fact]
    public async Task Concurrent_callers_each_get_their_own_owner()
    {
        var resolver = new DefaultJobOwnerResolver();
        var tasks = Enumerable.Range(0, 8).Select(worker => Task.Run(() =>
        {
            for (var i = 0; i < 2000; i++)
            {
                var credential = $"Bearer caller-{(worker + i) % 5}";
                Assert.Equal(Expected("key:", credential), resolver.ResolveOwner(Request(authorization: credential)));
            }
        }));

        await Task.WhenAll(tasks);
    }

    [Fact]
    public void An_authenticated_user_owns_by_authentication_type_and_subject()
    {
        var context = Request(authorization: "Bearer ignored-when-authenticated");
        context.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim("sub", "user-42")], "Bearer"));

        Assert.Equal(Expected("user:", "Bearer\nuser-42"), new DefaultJobOwnerResolver().ResolveOwner(context));
    }

    [Fact]
    public void Without_authentication_no_principal_is_created()
    {
        var context = Request(authorization: "Bearer sk-one");

        new DefaultJobOwnerResolver().ResolveOwner(context);

        Assert.Null(context.Features.Get<IHttpAuthenticationFeature>());
    }
}
