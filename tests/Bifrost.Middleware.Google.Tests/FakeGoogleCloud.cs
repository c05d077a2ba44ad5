using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Bifrost.Middleware.Google.Tests;

/// <summary>
/// A fake Google OAuth token endpoint and Vertex AI model endpoint on 127.0.0.1 (Kestrel).
/// <list type="bullet">
/// <item><c>POST /token</c>: the service-account JWT-bearer grant (RFC 7523, https://developers.google.com/identity/protocols/oauth2/service-account#httprest):
/// form <c>grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&amp;assertion={JWT}</c>, the JWT signed RS256 with the
/// key's private key, claims <c>iss</c> (client_email), <c>scope</c>, <c>aud</c>, <c>iat</c>, <c>exp</c>; it is
/// verified with the test key's public key and answered <c>{"access_token","expires_in","token_type":"Bearer"}</c>, or an
/// OAuth error (<c>{"error":"invalid_grant","error_description"}</c>, 400) when <see cref="FailGrants"/> is set.</item>
/// <item><c>POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent</c>
/// (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent):
/// 200 with a GenerateContentResponse when <c>Authorization: Bearer</c> names an issued, unrevoked token, else 401
/// UNAUTHENTICATED in Google's error envelope.</item>
/// <item><c>GET /v1beta1/publishers/{publisher}/models</c>, Model Garden's listing
/// (https://cloud.google.com/vertex-ai/docs/reference/rest/v1beta1/publishers.models/list): one page of
/// <c>{"publisherModels": [{"name": "publishers/{publisher}/models/{id}"}]}</c> (<c>gemini-2.5-flash</c> for google,
/// <c>claude-sonnet-4-5</c> for anthropic), with the same token check.</item>
/// </list>
/// </summary>
public sealed class FakeGoogleCloud : IAsyncDisposable
{
    public const string ClientEmail = "bifrost-test@my-project.iam.gserviceaccount.com";

    private readonly RSA _key = RSA.Create(2048);
    private WebApplication _app = null!;
    private int _issued;

    public string Address { get; private set; } = string.Empty;

    public string TokenUri => Address + "/token";

    /// <summary>The Vertex API root including the version.</summary>
    public string VertexBaseUrl => Address + "/v1";

    /// <summary>The lifetime of issued tokens, in seconds.</summary>
    public int ExpiresInSeconds { get; set; } = 3600;

    /// <summary>When set, grants are refused with 400 invalid_grant.</summary>
    public bool FailGrants { get; set; }

    public ConcurrentQueue<string> IssuedTokens { get; } = new();

    public ConcurrentDictionary<string, bool> RevokedTokens { get; } = new();

    /// <summary>The verified claims of every grant received.</summary>
    public ConcurrentQueue<JsonObject> Grants { get; } = new();

    /// <summary>The Authorization header (and x-goog-user-project) of every Vertex request.</summary>
    public ConcurrentQueue<(string? Authorization, string? QuotaProject)> VertexRequests { get; } = new();

    /// <summary>The Model Garden listing requests: publisher and Authorization header.</summary>
    public ConcurrentQueue<(string Publisher, string? Authorization)> ModelGardenRequests { get; } = new();

    /// <summary>The private key, as a service-account key file holds it (PKCS#8 PEM).</summary>
    public string PrivateKeyPem => _key.ExportPkcs8PrivateKeyPem();

    /// <summary>A service-account key JSON whose token_uri is this fake.</summary>
    public string ServiceAccountJson(string type = "service_account", string? quotaProject = null)
    {
        var json = new JsonObject
        {
            ["type"] = type,
            ["project_id"] = "my-project",
            ["private_key_id"] = "0123456789abcdef",
            ["private_key"] = PrivateKeyPem,
            ["client_email"] = ClientEmail,
            ["client_id"] = "123456789",
            ["auth_uri"] = "https://accounts.google.com/o/oauth2/auth",
            ["token_uri"] = TokenUri,
        };
        if (quotaProject is not null)
        {
            json["quota_project_id"] = quotaProject;
        }

        return json.ToJsonString();
    }

    public static async Task<FakeGoogleCloud> StartAsync()
    {
        var fake = new FakeGoogleCloud();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapPost("/token", (Delegate)fake.TokenAsync);
        app.MapPost("/v1/projects/{project}/locations/{location}/publishers/google/models/{**rest}", (HttpContext context) =>
        {
            var authorization = context.Request.Headers.Authorization.FirstOrDefault();
            fake.VertexRequests.Enqueue((authorization, context.Request.Headers["x-goog-user-project"].FirstOrDefault()));
            var token = authorization is not null && authorization.StartsWith("Bearer ", StringComparison.Ordinal) ? authorization["Bearer ".Length..] : null;
            if (token is null || !fake.IssuedTokens.Contains(token) || fake.RevokedTokens.ContainsKey(token))
            {
                return Results.Json(new JsonObject { ["error"] = new JsonObject { ["code"] = 401, ["message"] = "Request had invalid authentication credentials.", ["status"] = "UNAUTHENTICATED" } }, statusCode: 401);
            }

            return Results.Json(new JsonObject
            {
                ["candidates"] = new JsonArray(new JsonObject { ["content"] = new JsonObject { ["role"] = "model", ["parts"] = new JsonArray(new JsonObject { ["text"] = "hello from vertex" }) }, ["finishReason"] = "STOP", ["index"] = 0 }),
                ["usageMetadata"] = new JsonObject { ["promptTokenCount"] = 3, ["candidatesTokenCount"] = 4, ["totalTokenCount"] = 7 },
            });
        });
        app.MapGet("/v1beta1/publishers/{publisher}/models", (HttpContext context, string publisher) =>
        {
            var authorization = context.Request.Headers.Authorization.FirstOrDefault();
            fake.ModelGardenRequests.Enqueue((publisher, authorization));
            var token = authorization is not null && authorization.StartsWith("Bearer ", StringComparison.Ordinal) ? authorization["Bearer ".Length..] : null;
            if (token is null || !fake.IssuedTokens.Contains(token) || fake.RevokedTokens.ContainsKey(token))
            {
                return Results.Json(new JsonObject { ["error"] = new JsonObject { ["code"] = 401, ["message"] = "Request had invalid authentication credentials.", ["status"] = "UNAUTHENTICATED" } }, statusCode: 401);
            }

            var id = publisher == "anthropic" ? "claude-sonnet-4-5" : "gemini-2.5-flash";
            return Results.Json(new JsonObject { ["publisherModels"] = new JsonArray(new JsonObject { ["name"] = $"publishers/{publisher}/models/{id}", ["launchStage"] = "GA" }) });
        });
        await app.StartAsync();
        fake._app = app;
        fake.Address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return fake;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _key.Dispose();
    }

    private async Task<IResult> TokenAsync(HttpContext context)
    {
        var form = await context.Request.ReadFormAsync();
        if (form["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer" || form["assertion"].ToString().Split('.') is not [var header, var payload, var signature])
        {
            return Results.Json(new JsonObject { ["error"] = "unsupported_grant_type", ["error_description"] = "Invalid grant_type or assertion." }, statusCode: 400);
        }

        var valid = _key.VerifyData(Encoding.ASCII.GetBytes(header + "." + payload), Base64Url(signature), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var head = JsonNode.Parse(Base64Url(header))!.AsObject();
        var claims = JsonNode.Parse(Base64Url(payload))!.AsObject();
        if (FailGrants || !valid || head["alg"]?.GetValue<string>() != "RS256")
        {
            return Results.Json(new JsonObject { ["error"] = "invalid_grant", ["error_description"] = "Invalid JWT Signature." }, statusCode: 400);
        }

        Grants.Enqueue(claims);
        var token = "ya29.fake-" + Interlocked.Increment(ref _issued).ToString(CultureInfo.InvariantCulture);
        IssuedTokens.Enqueue(token);
        return Results.Json(new JsonObject { ["access_token"] = token, ["expires_in"] = ExpiresInSeconds, ["token_type"] = "Bearer" });
    }

    private static byte[] Base64Url(string value)
    {
        var s = value.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s.PadRight(s.Length + ((4 - (s.Length % 4)) % 4), '='));
    }
}
