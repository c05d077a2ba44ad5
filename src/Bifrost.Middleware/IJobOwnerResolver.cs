using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Features.Authentication;

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

    // The last credential this thread hashed and its owner id: a caller's requests mostly carry the same header, and the
    // hash (SHA-256 and a hex string) is most of this resolver's cost, paid on every request the request log records.
    // One entry per thread, so a credential is kept no longer or wider than the thread's next request with another.
    [ThreadStatic]
    private static LastKey? last;

    public string ResolveOwner(HttpContext context)
    {
        if (Governance.GovernanceCaller.Of(context) is { } caller)
        {
            return Governance.GovernanceCaller.OwnerPrefix + caller.KeyId; // a virtual key owns what it creates
        }

        // The authentication feature, not HttpContext.User: without authentication that getter creates an empty principal.
        if (context.Features.Get<IHttpAuthenticationFeature>()?.User is { Identity.IsAuthenticated: true } user)
        {
            var id = user.FindFirst("sub")?.Value ?? user.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? user.Identity!.Name;
            if (!string.IsNullOrEmpty(id))
            {
                return Hash("user:", (user.Identity!.AuthenticationType ?? string.Empty) + "\n" + id);
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

        if (string.IsNullOrEmpty(credential))
        {
            return Anonymous;
        }

        if (last is { } cached && string.Equals(cached.Credential, credential, StringComparison.Ordinal))
        {
            return cached.Owner;
        }

        var owner = Hash("key:", credential.AsSpan().Trim());
        last = new LastKey(credential, owner);
        return owner;
    }

    /// <summary><paramref name="prefix"/> + the lower-case hex SHA-256 of <paramref name="value"/>'s UTF-8, in one allocation.</summary>
    private static string Hash(string prefix, ReadOnlySpan<char> value)
    {
        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        byte[]? rented = null;
        var bytes = max <= 512 ? stackalloc byte[512] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(max));
        var length = 0;
        try
        {
            length = Encoding.UTF8.GetBytes(value, bytes);
            Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(bytes[..length], hash);
            Span<char> hex = stackalloc char[2 * SHA256.HashSizeInBytes];
            Convert.TryToHexStringLower(hash, hex, out _);
            return string.Concat(prefix.AsSpan(), hex);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes[..length]); // it held a credential
            if (rented is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private sealed record LastKey(string Credential, string Owner);
}
