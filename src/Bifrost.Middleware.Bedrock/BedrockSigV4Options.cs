using Amazon.Runtime;

namespace Bifrost.Middleware.Bedrock;

/// <summary>How <c>UseBedrockSigV4</c> signs a Bedrock provider's requests.</summary>
public sealed class BedrockSigV4Options
{
    /// <summary>
    /// The credentials to sign with. Null (the default): <see cref="Profile"/> if set, else <see cref="AccessKeyId"/> /
    /// <see cref="SecretAccessKey"/> if set, else the AWS SDK's default chain (environment variables, the default or
    /// <c>AWS_PROFILE</c> profile incl. SSO, web identity, ECS/EKS container credentials, the EC2 instance role).
    /// </summary>
    public AWSCredentials? Credentials { get; set; }

    /// <summary>A profile of the shared AWS config and credentials files (<c>~/.aws/config</c>, <c>~/.aws/credentials</c>).</summary>
    public string? Profile { get; set; }

    /// <summary>An access key id, with <see cref="SecretAccessKey"/> (and <see cref="SessionToken"/> for temporary credentials).</summary>
    public string? AccessKeyId { get; set; }

    /// <summary>The secret access key of <see cref="AccessKeyId"/>. Never logged.</summary>
    public string? SecretAccessKey { get; set; }

    /// <summary>The session token of temporary credentials. Never logged.</summary>
    public string? SessionToken { get; set; }

    /// <summary>The region signed for. Null (the default): the provider's <c>Region</c>.</summary>
    public string? Region { get; set; }

    /// <summary>The signing name of the service. Default <c>bedrock</c> (Bedrock Runtime's signing name).</summary>
    public string Service { get; set; } = "bedrock";
}
