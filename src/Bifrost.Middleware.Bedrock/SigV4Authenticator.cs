using System.Net;
using Amazon.Runtime;
using Bifrost.Middleware.Providers;
using Microsoft.Extensions.Logging;

namespace Bifrost.Middleware.Bedrock;

/// <summary>
/// Signs every upstream request of a Bedrock provider with SigV4 (<see cref="SigV4Signer"/>), with credentials the AWS SDK
/// caches and refreshes before they expire; after a 401, or a 403 whose <c>x-amzn-ErrorType</c> says the session token
/// expired or is not recognized (<c>ExpiredTokenException</c>, <c>UnrecognizedClientException</c>: AWS's common errors,
/// https://docs.aws.amazon.com/awsconsolehelpdocs/latest/gsg/common-errors.html), the SDK's cached credentials are cleared
/// and fetched again, and the request is signed anew and sent once more (by the core's upstream client). A
/// Bedrock API key the provider may also have is replaced by the signature. The secret key and session token are never
/// logged nor put in an error message.
/// </summary>
internal sealed partial class SigV4Authenticator(AWSCredentials credentials, BedrockSigV4Options options, TimeProvider time, ILogger<SigV4Authenticator> logger) : IUpstreamAuthenticator
{
    /// <summary>The request option the core's Bedrock adapter sets on requests it wants signed for another service (S3).</summary>
    private static readonly HttpRequestOptionsKey<string> ServiceOption = new("Bifrost.SigV4Service");

    public async ValueTask AuthenticateAsync(HttpRequestMessage request, UpstreamAuthContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var region = options.Region ?? context.Options.Region;
        if (string.IsNullOrWhiteSpace(region))
        {
            throw new InvalidOperationException($"Provider '{context.ProviderName}' has no Region to sign its requests for: set Providers:{context.ProviderName}:Region.");
        }

        if (context.Unauthorized && credentials is RefreshingAWSCredentials refreshing)
        {
            Log.RefreshingAfterUnauthorized(logger, context.ProviderName);
            refreshing.ClearCredentials();
        }

        var current = await credentials.GetCredentialsAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        if (current is null || string.IsNullOrEmpty(current.AccessKey) || string.IsNullOrEmpty(current.SecretKey))
        {
            throw new InvalidOperationException($"Provider '{context.ProviderName}' found no AWS credentials to sign with.");
        }

        await SigV4Signer.SignAsync(request, current, region.Trim(), ServiceOf(request), time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The service a request is signed for: the one the adapter asked for (request option <c>Bifrost.SigV4Service</c>: S3
    /// requests of native batches, whatever their host), <c>s3</c> for an S3 host (<c>{bucket}.s3.{region}.amazonaws.com</c>,
    /// <c>s3.{region}.amazonaws.com</c>), else the configured <see cref="BedrockSigV4Options.Service"/> (<c>bedrock</c>:
    /// Bedrock Runtime and the control plane).
    /// </summary>
    internal string ServiceOf(HttpRequestMessage request)
    {
        if (request.Options.TryGetValue(ServiceOption, out var requested) && !string.IsNullOrWhiteSpace(requested))
        {
            return requested;
        }

        var host = request.RequestUri?.IdnHost ?? string.Empty;
        return host.EndsWith(".amazonaws.com", StringComparison.OrdinalIgnoreCase)
            && (host.StartsWith("s3.", StringComparison.OrdinalIgnoreCase) || host.StartsWith("s3-", StringComparison.OrdinalIgnoreCase) || host.Contains(".s3.", StringComparison.OrdinalIgnoreCase) || host.Contains(".s3-", StringComparison.OrdinalIgnoreCase))
            ? "s3"
            : options.Service;
    }

    // gaps: expired or revoked session credentials are refused with a 403 and the error type in x-amzn-ErrorType
    // ("ExpiredTokenException:http://internal.amazon.com/coral/..."); only credentials the SDK can refresh are worth a
    // second try. A signature mismatch (InvalidSignatureException) is not: the same secret signs the same way again.
    public bool IsCredentialRefused(HttpResponseMessage response)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            return true;
        }

        if (response.StatusCode != HttpStatusCode.Forbidden || credentials is not RefreshingAWSCredentials
            || !response.Headers.TryGetValues("x-amzn-ErrorType", out var values))
        {
            return false;
        }

        var type = values.FirstOrDefault() ?? "";
        var colon = type.IndexOf(':', StringComparison.Ordinal);
        type = (colon < 0 ? type : type[..colon]).Trim();
        return type is "ExpiredTokenException" or "UnrecognizedClientException";
    }

    private static partial class Log
    {
        [LoggerMessage(1081, LogLevel.Information, "Provider '{Provider}' was refused its credentials (a 401, or a 403 for an expired or unrecognized session token): its AWS credentials are fetched again.")]
        public static partial void RefreshingAfterUnauthorized(ILogger logger, string provider);
    }
}
