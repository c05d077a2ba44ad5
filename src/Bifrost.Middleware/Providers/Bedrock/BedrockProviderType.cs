using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>
/// Type <c>bedrock</c>: Amazon Bedrock Runtime's Converse API (<see cref="BedrockAdapter"/>). <c>Region</c> is required unless
/// BaseUrl is set; credentials are a Bedrock API key in <c>Keys</c>, or an <see cref="IUpstreamAuthenticator"/> registered
/// for the provider (SigV4: <c>UseBedrockSigV4</c> of package Bifrost.Middleware.Bedrock).
/// </summary>
internal sealed class BedrockProviderType : IProviderType
{
    public const string TypeName = "bedrock";

    public string Name => TypeName;

    /// <summary>Only an explicit <c>Type</c> selects it: a provider merely named <c>bedrock</c> stays <c>openai</c>, as before this type existed.</summary>
    public bool ImpliedByProviderName => false;

    /// <summary>A Bedrock provider needs a key or an authenticator: nothing else can sign its requests.</summary>
    public string? CredentialsRequired =>
        "a Bedrock API key in Keys (sent as Authorization: Bearer), or SigV4 signing with builder.UseBedrockSigV4(\"<provider>\") from package Bifrost.Middleware.Bedrock";

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredService<BedrockAdapter>();

    public void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors)
    {
        ProviderTypeChecks.HttpBaseUrl(prefix, options, errors);
        if (string.IsNullOrWhiteSpace(options.Region))
        {
            if (string.IsNullOrWhiteSpace(options.BaseUrl))
            {
                errors.AddError($"{prefix}:Region is required for a Bedrock provider (e.g. us-east-1), unless BaseUrl is set.");
            }
        }
        else if (!IsRegion(options.Region.Trim()))
        {
            errors.AddError($"{prefix}:Region '{options.Region}' is not an AWS region name (e.g. us-east-1).");
        }

        // Bedrock native batches (bbatch)
        if (options.BedrockBatch is { } batch)
        {
            ValidateBatch(prefix + ":BedrockBatch", batch, errors);
        }
    }

    // --- Bedrock native batches (bbatch) ---
    private static void ValidateBatch(string prefix, BedrockBatchOptions batch, ValidateOptionsResultBuilder errors)
    {
        if (string.IsNullOrWhiteSpace(batch.S3Uri))
        {
            errors.AddError($"{prefix}:S3Uri is required (s3://bucket or s3://bucket/prefix: where batch input and output go).");
        }
        else if (!BedrockS3Location.TryParse(batch.S3Uri, out _))
        {
            errors.AddError($"{prefix}:S3Uri '{batch.S3Uri}' is not an S3 location: use s3://bucket or s3://bucket/prefix (a bucket name of 3-63 lower-case letters, digits, dots and hyphens).");
        }

        if (string.IsNullOrWhiteSpace(batch.RoleArn))
        {
            errors.AddError($"{prefix}:RoleArn is required (the ARN of the service role Bedrock batch jobs run as, arn:aws:iam::<account>:role/<name>).");
        }
        else if (!IsRoleArn(batch.RoleArn.Trim()))
        {
            errors.AddError($"{prefix}:RoleArn '{batch.RoleArn}' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>).");
        }

        foreach (var (name, url) in new[] { ("S3Endpoint", batch.S3Endpoint), ("ControlPlaneUrl", batch.ControlPlaneUrl) })
        {
            if (url is not null && !(Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp) && string.IsNullOrEmpty(uri.Query)))
            {
                errors.AddError($"{prefix}:{name} '{url}' is not an absolute http(s) URL.");
            }
        }

        if (batch.MinimumRecords < 1)
        {
            errors.AddError($"{prefix}:MinimumRecords must be at least 1 (Bedrock's default quota is 100).");
        }
    }

    /// <summary><c>arn:{partition}:iam::{12-digit account}:role/{path/name}</c>.</summary>
    private static bool IsRoleArn(string arn)
    {
        var parts = arn.Split(':', 6);
        return parts.Length == 6 && parts[0] == "arn" && parts[1].StartsWith("aws", StringComparison.Ordinal) && parts[2] == "iam" && parts[3].Length == 0
            && parts[4].Length == 12 && parts[4].All(char.IsAsciiDigit) && parts[5].StartsWith("role/", StringComparison.Ordinal) && parts[5].Length > 5;
    }

    private static bool IsRegion(string region) =>
        region.Length is > 0 and <= 64 && region.All(static c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-') && region[0] != '-' && region[^1] != '-';
}
