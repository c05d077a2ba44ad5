using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

var builder = WebApplication.CreateBuilder(args);

// The gateway, configured from appsettings.json's "Bifrost" section (providers, keys, models).
builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));
// Optional: your own provider, e.g. .AddProvider<MyCompanyLlmAdapter>("acme") (see "Writing a provider plugin").

// Callers authenticate with an API key of yours ("Authorization: Bearer <key>" or "api-key: <key>"),
// one of the "CallerKeys" in configuration.
builder.Services.AddAuthentication(ApiKeyHandler.SchemeName)
    .AddScheme<AuthenticationSchemeOptions, ApiKeyHandler>(ApiKeyHandler.SchemeName, null);
builder.Services.AddAuthorization();

var app = builder.Build();

app.MapBifrost("/openai")        // /openai/v1/... and /openai/...
   .RequireAuthorization();      // your auth, rate limits, telemetry apply

app.Run();

/// <summary>Authenticates a caller by an API key listed under "CallerKeys" (caller name: key).</summary>
sealed class ApiKeyHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IConfiguration configuration)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var key = Request.Headers["api-key"].ToString();
        var authorization = Request.Headers.Authorization.ToString();
        if (key.Length == 0 && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            key = authorization["Bearer ".Length..].Trim();
        }

        if (key.Length == 0)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        // Compare hashes in constant time: neither the key nor its length leaks through timing.
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        foreach (var caller in configuration.GetSection("CallerKeys").GetChildren())
        {
            if (caller.Value is { Length: > 0 } allowed
                && CryptographicOperations.FixedTimeEquals(presented, SHA256.HashData(Encoding.UTF8.GetBytes(allowed))))
            {
                var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, caller.Key)], SchemeName);
                return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
            }
        }

        return Task.FromResult(AuthenticateResult.Fail("Unknown API key."));
    }

    // An OpenAI-shaped 401, so that SDKs report it clearly.
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        return Response.WriteAsJsonAsync(new
        {
            error = new { message = "A valid API key is required (Authorization: Bearer <key>, or api-key: <key>).", type = "invalid_request_error", code = "invalid_api_key" },
        });
    }
}

public partial class Program;
