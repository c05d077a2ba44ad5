using System.Text;
using Amazon.Runtime;

namespace Bifrost.Middleware.Bedrock.Tests;

/// <summary>
/// The signer against AWS's SigV4 test suite (awslabs/aws-c-auth tests/aws-signing-test-suite/v4/&lt;case&gt;/
/// header-signed-request.txt and context.json: AKIDEXAMPLE, us-east-1, service <c>service</c>, 2015-08-30T12:36:00Z).
/// </summary>
public sealed class SigV4SignerTests
{
    private const string AccessKey = "AKIDEXAMPLE";
    private const string Secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    private const string Token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    private static readonly DateTimeOffset SuiteTime = new(2015, 8, 30, 12, 36, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("GET", "/", "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")] // get-vanilla
    [InlineData("GET", "/./", "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")] // get-slash-dot-slash-normalized
    [InlineData("GET", "/?Param2=value2&Param1=value1", "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")] // get-vanilla-query-order-key-case
    [InlineData("POST", "/", "host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")] // post-vanilla
    public void Suite_requests_get_the_suites_signature(string method, string pathAndQuery, string signedHeaders, string signature)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), "https://example.amazonaws.com" + pathAndQuery);

        SigV4Signer.Sign(request, [], new ImmutableCredentials(AccessKey, Secret, null), "us-east-1", "service", SuiteTime);

        Assert.Equal($"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signedHeaders}, Signature={signature}", Header(request, "Authorization"));
        Assert.Equal("20150830T123600Z", Header(request, "X-Amz-Date"));
        Assert.Null(Header(request, "X-Amz-Security-Token"));
    }

    [Fact]
    public void With_a_session_token_the_token_is_sent_and_signed() // get-vanilla-with-session-token
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "https://example.amazonaws.com/");

        SigV4Signer.Sign(request, [], new ImmutableCredentials(AccessKey, Secret, Token), "us-east-1", "service", SuiteTime);

        Assert.Equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8", Header(request, "Authorization"));
        Assert.Equal(Token, Header(request, "X-Amz-Security-Token"));
    }

    [Fact]
    public async Task A_form_body_signs_its_content_headers_and_payload_hash() // post-x-www-form-urlencoded
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://example.amazonaws.com/") { Content = new ByteArrayContent(Encoding.ASCII.GetBytes("Param1=value1")) };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/x-www-form-urlencoded");
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");

        await SigV4Signer.SignAsync(request, new ImmutableCredentials(AccessKey, Secret, null), "us-east-1", "service", SuiteTime, TestContext.Current.CancellationToken);

        Assert.Equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b", Header(request, "Authorization"));
    }

    [Fact]
    public void The_model_ids_colon_is_encoded_again_in_the_canonical_uri_and_an_old_signature_is_replaced()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer old");
        request.Headers.TryAddWithoutValidation("X-Amz-Date", "20000101T000000Z");

        var canonical = SigV4Signer.Sign(request, "{}"u8, new ImmutableCredentials(AccessKey, Secret, null), "us-east-1", "bedrock", SuiteTime);

        var lines = canonical.Split('\n');
        Assert.Equal("POST", lines[0]);
        Assert.Equal("/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse", lines[1]);
        Assert.Equal("host:bedrock-runtime.us-east-1.amazonaws.com", lines[3]);
        Assert.Equal("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", lines[^1]); // SHA-256 of "{}"
        Assert.Single(request.Headers.GetValues("Authorization"));
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=", Header(request, "Authorization"), StringComparison.Ordinal);
        Assert.Equal("20150830T123600Z", Header(request, "X-Amz-Date"));
    }

    private static string? Header(HttpRequestMessage request, string name) =>
        request.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;
}
