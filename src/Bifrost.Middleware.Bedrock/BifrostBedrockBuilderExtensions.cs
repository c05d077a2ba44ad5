using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;
using Amazon.Runtime.Credentials;
using Bifrost.Middleware;
using Bifrost.Middleware.Bedrock;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers AWS SigV4 signing for Amazon Bedrock providers.</summary>
public static class BifrostBedrockBuilderExtensions
{
    /// <summary>
    /// Signs every request of provider <paramref name="providerName"/> (type <c>bedrock</c>) with AWS Signature Version 4
    /// (service <c>bedrock</c>, the provider's <c>Region</c>), so the provider needs no <c>Keys</c>. The credentials are
    /// <see cref="BedrockSigV4Options.Credentials"/>, a <see cref="BedrockSigV4Options.Profile"/>, an access key, or by
    /// default the AWS SDK's default chain (environment variables, profiles and SSO, web identity, container and instance
    /// roles), cached and refreshed by the SDK. The identity needs <c>bedrock:InvokeModel</c> (and
    /// <c>bedrock:InvokeModelWithResponseStream</c> for streams) on the models.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="providerName">The provider's name under <c>Bifrost:Providers</c>.</param>
    /// <param name="configure">Chooses the credentials, the region or the signing name.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UseBedrockSigV4(this IBifrostBuilder builder, string providerName, Action<BedrockSigV4Options>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(providerName);
        var options = new BedrockSigV4Options();
        configure?.Invoke(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Service, nameof(configure));
        if (options.Credentials is null && options.Profile is null && (options.AccessKeyId is null) != (options.SecretAccessKey is null))
        {
            throw new ArgumentException("Set both AccessKeyId and SecretAccessKey, or neither.", nameof(configure));
        }

        return builder.AddUpstreamAuthenticator(providerName, services => new SigV4Authenticator(
            Credentials(options),
            options,
            services.GetService<TimeProvider>() ?? TimeProvider.System,
            services.GetRequiredService<ILogger<SigV4Authenticator>>()));
    }

    /// <summary>Signs provider <paramref name="providerName"/>'s requests with <paramref name="credentials"/> (see the other overload).</summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="providerName">The provider's name under <c>Bifrost:Providers</c>.</param>
    /// <param name="credentials">The AWS credentials to sign with (e.g. <c>AssumeRoleAWSCredentials</c>).</param>
    /// <param name="configure">Chooses the region or the signing name.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UseBedrockSigV4(this IBifrostBuilder builder, string providerName, AWSCredentials credentials, Action<BedrockSigV4Options>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        return builder.UseBedrockSigV4(providerName, options =>
        {
            configure?.Invoke(options);
            options.Credentials = credentials;
        });
    }

    private static AWSCredentials Credentials(BedrockSigV4Options options)
    {
        if (options.Credentials is { } credentials)
        {
            return credentials;
        }

        if (!string.IsNullOrWhiteSpace(options.Profile))
        {
            return new CredentialProfileStoreChain().TryGetAWSCredentials(options.Profile, out var profile)
                ? profile
                : throw new InvalidOperationException($"The AWS profile '{options.Profile}' was not found in the shared config and credentials files.");
        }

        if (!string.IsNullOrEmpty(options.AccessKeyId) && !string.IsNullOrEmpty(options.SecretAccessKey))
        {
            return string.IsNullOrEmpty(options.SessionToken)
                ? new BasicAWSCredentials(options.AccessKeyId, options.SecretAccessKey)
                : new SessionAWSCredentials(options.AccessKeyId, options.SecretAccessKey, options.SessionToken);
        }

        return DefaultAWSCredentialsIdentityResolver.GetCredentials();
    }
}
