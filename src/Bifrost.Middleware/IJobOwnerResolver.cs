using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;

namespace Bifrost.Middleware;

/// <summary>
/// Decides who owns an async job or batch submitted over HTTP: only the same owner can read it back.
/// Register your own implementation to use, for example, a tenant id.
/// </summary>
public interface IJobOwnerResolver
{
    /// <summary>Returns a stable owner id for the caller. Must never be a raw credential.</summary>
    /// <param name="context">The request.</param>
    string ResolveOwner(HttpContext context);
}

/// <summary>
/// The default owner: the virtual key (<c>vk:&lt;id&gt;</c>) when governance is on and the request presented one, then the authenticated user (<c>sub</c> / name identifier / name) when the host authenticates,
/// otherwise a SHA-256 hash of the bearer token or API key header, otherwise one shared anonymous owner.
/// </summary>
internal sealed class DefaultJobOwnerResolver : IJobOwnerResolver
{
    internal const string Anonymous = "anonymous";

    public string ResolveOwner(HttpContext context)
    {
        if (Governance.GovernanceCaller.Of(context) is { } caller)
        {
            return Governance.GovernanceCaller.OwnerPrefix + caller.KeyId; // a virtual key owns what it creates
        }

        var user = context.User;
        if (user.Identity?.IsAuthenticated == true)
        {
            var id = user.FindFirst("sub")?.Value ?? user.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? user.Identity.Name;
            if (!string.IsNullOrEmpty(id))
            {
                return "user:" + Hash((user.Identity.AuthenticationType ?? string.Empty) + "\n" + id);
            }
        }

        var headers = context.Request.Headers;
        string? credential = headers.Authorization.ToString();
        if (string.IsNullOrEmpty(credential))
        {
            credential = headers["x-api-key"].ToString();
        }

        if (string.IsNullOrEmpty(credential))
        {
            credential = headers["api-key"].ToString();
        }

        return string.IsNullOrEmpty(credential) ? Anonymous : "key:" + Hash(credential.Trim());
    }

    private static string Hash(string value) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)));
}
