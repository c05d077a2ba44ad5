using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Amazon.Runtime;
using Amazon.Runtime.Internal.Auth;

namespace Bifrost.Middleware.Bedrock;

/// <summary>
/// AWS Signature Version 4 for an <see cref="HttpRequestMessage"/>
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html): adds <c>X-Amz-Date</c> (and
/// <c>X-Amz-Security-Token</c> for temporary credentials), builds the canonical request — the path's segments URI-encoded
/// once more (every service but S3: the model id's <c>%3A</c> is signed as <c>%253A</c>), the query sorted and encoded,
/// the signed headers (<c>host</c>, <c>content-type</c>, <c>content-length</c> and every <c>x-amz-*</c>) lower-cased,
/// trimmed and sorted, the payload's SHA-256 — and sets <c>Authorization</c> from AWSSDK.Core's
/// <see cref="AWS4Signer.ComputeSignature(ImmutableCredentials, string, DateTime, string, string, string)"/> (key derivation
/// and string to sign). AWSSDK.Core's own request signing needs the SDK's request type, not an HttpRequestMessage.
/// </summary>
internal static class SigV4Signer
{
    /// <summary>Signs <paramref name="request"/> in place (replacing an earlier signature) and returns the canonical request.</summary>
    public static async Task<string> SignAsync(HttpRequestMessage request, ImmutableCredentials credentials, string region, string service, DateTimeOffset time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(credentials);
        // S3: a payload hash the sender declared in x-amz-content-sha256 is signed as it is, without reading (buffering) the body.
        if (IsS3(service) && DeclaredPayloadHash(request) is { } declared)
        {
            return SignHashed(request, declared, credentials, region, service, time);
        }

        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        return Sign(request, body, credentials, region, service, time);
    }

    /// <summary>Signs <paramref name="request"/> whose body is <paramref name="body"/>; returns the canonical request.</summary>
    public static string Sign(HttpRequestMessage request, ReadOnlySpan<byte> body, ImmutableCredentials credentials, string region, string service, DateTimeOffset time) =>
        SignHashed(request, Convert.ToHexStringLower(SHA256.HashData(body)), credentials, region, service, time);

    /// <summary>
    /// Signs <paramref name="request"/> whose body's SHA-256 is <paramref name="payloadHash"/> (hex). For S3 (service
    /// <c>s3</c>, https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html) the hash is also sent as
    /// <c>x-amz-content-sha256</c> (S3 requires it) and the path is signed as sent, not encoded again.
    /// </summary>
    public static string SignHashed(HttpRequestMessage request, string payloadHash, ImmutableCredentials credentials, string region, string service, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(credentials);
        var uri = request.RequestUri ?? throw new InvalidOperationException("The request has no URI.");
        var s3 = IsS3(service);
        if (s3)
        {
            request.Headers.Remove("x-amz-content-sha256");
            request.Headers.TryAddWithoutValidation("x-amz-content-sha256", payloadHash);
        }

        var signedAt = time.UtcDateTime;
        request.Headers.Authorization = null;
        request.Headers.Remove("X-Amz-Date");
        request.Headers.Remove("X-Amz-Security-Token");
        request.Headers.TryAddWithoutValidation("X-Amz-Date", signedAt.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture));
        if (credentials.UseToken)
        {
            request.Headers.TryAddWithoutValidation("X-Amz-Security-Token", credentials.Token);
        }

        request.Headers.Host ??= uri.IsDefaultPort ? uri.IdnHost : $"{uri.IdnHost}:{uri.Port.ToString(CultureInfo.InvariantCulture)}";
        var headers = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, values) in request.Headers)
        {
            var lower = name.ToLowerInvariant();
            if (lower == "host" || lower.StartsWith("x-amz-", StringComparison.Ordinal))
            {
                headers[lower] = Value(values);
            }
        }

        if (request.Content is { } content)
        {
            if (content.Headers.ContentType is { } type)
            {
                headers["content-type"] = Collapse(type.ToString());
            }

            if (content.Headers.ContentLength is { } length)
            {
                headers["content-length"] = length.ToString(CultureInfo.InvariantCulture);
            }
        }

        var signedHeaders = string.Join(';', headers.Keys);
        var canonical = new StringBuilder()
            .Append(request.Method.Method).Append('\n')
            .Append(s3 ? (string.IsNullOrEmpty(uri.AbsolutePath) ? "/" : uri.AbsolutePath) : CanonicalPath(uri.AbsolutePath)).Append('\n')
            .Append(CanonicalQuery(uri.Query)).Append('\n');
        foreach (var (name, value) in headers)
        {
            canonical.Append(name).Append(':').Append(value).Append('\n');
        }

        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(payloadHash);
        var canonicalRequest = canonical.ToString();
        var result = AWS4Signer.ComputeSignature(credentials, region, signedAt, service, signedHeaders, canonicalRequest);
        request.Headers.TryAddWithoutValidation("Authorization", result.ForAuthorizationHeader);
        return canonicalRequest;
    }

    /// <summary>Whether requests of <paramref name="service"/> are signed the S3 way (path not encoded again, <c>x-amz-content-sha256</c>).</summary>
    internal static bool IsS3(string service) => string.Equals(service, "s3", StringComparison.Ordinal);

    private static string? DeclaredPayloadHash(HttpRequestMessage request) =>
        request.Headers.TryGetValues("x-amz-content-sha256", out var values) && values.FirstOrDefault() is { Length: 64 } hash && hash.All(char.IsAsciiHexDigitLower) ? hash : null;

    /// <summary>The path as sent (already percent-encoded), each segment encoded once more; empty is <c>/</c>.</summary>
    internal static string CanonicalPath(string path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return "/";
        }

        return string.Join('/', path.Split('/').Select(Encode));
    }

    /// <summary>The query's parameters, each name and value decoded then RFC 3986-encoded, sorted by name then value.</summary>
    internal static string CanonicalQuery(string query)
    {
        if (string.IsNullOrEmpty(query) || query == "?")
        {
            return string.Empty;
        }

        var pairs = new List<(string Name, string Value)>();
        foreach (var part in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            var name = equals < 0 ? part : part[..equals];
            var value = equals < 0 ? string.Empty : part[(equals + 1)..];
            pairs.Add((Encode(Uri.UnescapeDataString(name)), Encode(Uri.UnescapeDataString(value))));
        }

        pairs.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name) is var c and not 0 ? c : string.CompareOrdinal(a.Value, b.Value));
        return string.Join('&', pairs.Select(static p => p.Name + "=" + p.Value));
    }

    /// <summary>RFC 3986 encoding: everything but A-Z a-z 0-9 - _ . ~ as upper-case %XX of its UTF-8 bytes.</summary>
    private static string Encode(string value) => Uri.EscapeDataString(value);

    private static string Value(IEnumerable<string> values) => string.Join(',', values.Select(Collapse));

    private static string Collapse(string value)
    {
        var trimmed = value.Trim();
        if (!trimmed.Contains("  ", StringComparison.Ordinal))
        {
            return trimmed;
        }

        var builder = new StringBuilder(trimmed.Length);
        foreach (var c in trimmed)
        {
            if (c != ' ' || builder.Length == 0 || builder[^1] != ' ')
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }

}
