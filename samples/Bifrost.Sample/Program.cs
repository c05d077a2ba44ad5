using Bifrost.Middleware;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

// A minimal host: the gateway mounted at /openai, configured entirely from configuration
// (appsettings.json, environment variables such as Bifrost__Providers__openai__BaseUrl, command line).
var builder = WebApplication.CreateBuilder(args);

// Jobs (async inference, batches) live in a SQLite file so they survive restarts and crashes; files (batch input and
// output) in the file-system store. Both default to App_Data/bifrost under the content root
// (Bifrost:Sqlite:Path and Bifrost:Files:Directory move them).
var bifrost = builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"))
    .UseSqliteJobStore(builder.Configuration["Bifrost:Sqlite:Path"] is { Length: > 0 } path ? path : "App_Data/bifrost/jobs.db");

// The request log (the dashboard's Requests page at /bifrost/#requests) keeps the last 10,000 calls in memory;
// Bifrost:Sqlite:RequestLogPath keeps it in a SQLite file instead (retention by age and count: Bifrost:RequestLog).
if (builder.Configuration["Bifrost:Sqlite:RequestLogPath"] is { Length: > 0 } requestLogPath)
{
    bifrost.UseSqliteRequestLog(requestLogPath);
}

// Several instances sharing jobs, batches and files: set Bifrost:PostgreSql:ConnectionString (e.g. the environment
// variable Bifrost__PostgreSql__ConnectionString; Schema, UseForFiles, FileChunkSize and Listen may be set beside it).
// It replaces the SQLite job store and the file-system file store, and keeps governance (budgets, rate limits, keys
// created through the admin API, the usage ledger) and the request log in the same database, shared by all instances.
var postgres = builder.Configuration.GetSection("Bifrost:PostgreSql");
if (!string.IsNullOrWhiteSpace(postgres["ConnectionString"]))
{
    bifrost.UsePostgreSqlJobStore(options => postgres.Bind(options))
        .UsePostgreSqlGovernanceStore(options => postgres.Bind(options))
        .UsePostgreSqlRequestLog(options => postgres.Bind(options));
}

// Providers that need only a type and a key (Gemini, Cohere, and the named OpenAI-compatible presets: "Type": "groq" and
// a key is a whole provider): one for each whose key is in the environment (for local servers: whose base URL is),
// unless the configuration already names a provider so.
// With none of these variables set, the sample serves local/echo (and openai/... when OPENAI_API_KEY is set) as before.
(string Type, string Variable, bool Local)[] presets =
[
    ("gemini", "GEMINI_API_KEY", false), ("cohere", "COHERE_API_KEY", false),
    ("groq", "GROQ_API_KEY", false), ("mistral", "MISTRAL_API_KEY", false), ("xai", "XAI_API_KEY", false),
    ("deepseek", "DEEPSEEK_API_KEY", false), ("openrouter", "OPENROUTER_API_KEY", false), ("together", "TOGETHER_API_KEY", false),
    ("fireworks", "FIREWORKS_API_KEY", false), ("cerebras", "CEREBRAS_API_KEY", false), ("perplexity", "PERPLEXITY_API_KEY", false),
    ("ollama", "OLLAMA_BASE_URL", true), ("vllm", "VLLM_BASE_URL", true), ("lmstudio", "LMSTUDIO_BASE_URL", true),
];
builder.Services.Configure<BifrostOptions>(options =>
{
    foreach (var (type, variable, local) in presets)
    {
        if (string.IsNullOrWhiteSpace(builder.Configuration[variable]) || options.Providers.ContainsKey(type))
        {
            continue;
        }

        options.Providers[type] = local
            ? new ProviderOptions { Type = type, BaseUrl = builder.Configuration[variable] }
            : new ProviderOptions { Type = type, Keys = [new ProviderKeyOptions { Value = "env:" + variable }] };
    }

    // Azure OpenAI with a key: AZURE_OPENAI_ENDPOINT (https://{resource}.openai.azure.com) and AZURE_OPENAI_API_KEY; the
    // v1 API, deployments named like the models. (Entra ID instead of a key: the Bifrost.Middleware.Azure package.)
    if (builder.Configuration["AZURE_OPENAI_ENDPOINT"] is { Length: > 0 } azureEndpoint
        && !string.IsNullOrWhiteSpace(builder.Configuration["AZURE_OPENAI_API_KEY"]) && !options.Providers.ContainsKey("azure"))
    {
        options.Providers["azure"] = new ProviderOptions { Type = "azure", BaseUrl = azureEndpoint, Keys = [new ProviderKeyOptions { Value = "env:AZURE_OPENAI_API_KEY" }] };
    }

    // Amazon Bedrock with a Bedrock API key: AWS_BEARER_TOKEN_BEDROCK and AWS_REGION (IAM credentials and SigV4 instead:
    // the Bifrost.Middleware.Bedrock package, UseBedrockSigV4).
    if (builder.Configuration["AWS_REGION"] is { Length: > 0 } awsRegion
        && !string.IsNullOrWhiteSpace(builder.Configuration["AWS_BEARER_TOKEN_BEDROCK"]) && !options.Providers.ContainsKey("bedrock"))
    {
        options.Providers["bedrock"] = new ProviderOptions { Type = "bedrock", Region = awsRegion, Keys = [new ProviderKeyOptions { Value = "env:AWS_BEARER_TOKEN_BEDROCK" }] };
    }

    // Vertex AI with an access token: GOOGLE_CLOUD_PROJECT, VERTEX_ACCESS_TOKEN (e.g. $(gcloud auth print-access-token), valid
    // for an hour) and optionally GOOGLE_CLOUD_LOCATION (default us-central1). Application Default Credentials or a service
    // account instead: the Bifrost.Middleware.Google package, UseGoogleCredentials.
    if (builder.Configuration["GOOGLE_CLOUD_PROJECT"] is { Length: > 0 } gcpProject
        && !string.IsNullOrWhiteSpace(builder.Configuration["VERTEX_ACCESS_TOKEN"]) && !options.Providers.ContainsKey("vertex"))
    {
        options.Providers["vertex"] = new ProviderOptions
        {
            Type = "vertex",
            ProjectId = gcpProject,
            Region = builder.Configuration["GOOGLE_CLOUD_LOCATION"] is { Length: > 0 } location ? location : null,
            Keys = [new ProviderKeyOptions { Value = "env:VERTEX_ACCESS_TOKEN" }],
        };
    }
});

// Observability: the gateway emits traces (ActivitySource "Bifrost.Middleware") and metrics (meter "Bifrost.Middleware")
// through System.Diagnostics only; the host picks the exporters. Here: a Prometheus scrape endpoint at /metrics, and OTLP
// (traces and metrics) when OTEL_EXPORTER_OTLP_ENDPOINT is set (e.g. http://localhost:4317 for a collector or Aspire's
// dashboard). Traces are collected only then: spans nobody exports would cost every request for nothing.
var telemetry = builder.Services.AddOpenTelemetry()
    .ConfigureResource(resource => resource.AddService("bifrost-sample"))
    .WithMetrics(metrics => metrics
        .AddMeter("Bifrost.Middleware")
        .AddAspNetCoreInstrumentation()
        .AddPrometheusExporter());
// Sample:Tracing:HostInstrumentation=false keeps only the gateway's spans (no ASP.NET Core / HttpClient spans).
if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
{
    var hostSpans = builder.Configuration.GetValue("Sample:Tracing:HostInstrumentation", defaultValue: true);
    telemetry.WithTracing(tracing =>
        {
            tracing.AddSource("Bifrost.Middleware");
            if (hostSpans)
            {
                tracing.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation();
            }
        })
        .UseOtlpExporter();
}

// Health: the gateway's checks (job store reachable, job workers alive, file store writable) in the host's own endpoint.
builder.Services.AddHealthChecks().AddBifrost();

var app = builder.Build();

app.MapGet("/", (Microsoft.Extensions.Options.IOptions<BifrostOptions> options) => Results.Text(
    "Bifrost sample host. Try: curl -s localhost:5050/openai/v1/chat/completions -H 'Content-Type: application/json' " +
    "-d '{\"model\":\"local/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}'\n" +
    "Providers: " + string.Join(", ", options.Value.Providers.Keys.Order(StringComparer.Ordinal)) + "\n" +
    "Azure OpenAI-shaped: curl -s 'localhost:5050/openai/openai/deployments/chat/chat/completions?api-version=2024-10-21' " +
    "-H 'Content-Type: application/json' -d '{\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}'\n" +
    "Dashboard: http://localhost:5050/bifrost/ · metrics: /metrics · health: /health\n"));
app.MapHealthChecks("/health");
app.MapPrometheusScrapingEndpoint("/metrics");
app.MapBifrost("/openai");

// Azure OpenAI-compatible routes (/openai/openai/deployments/{deployment}/...): an AzureOpenAIClient with the endpoint
// http://localhost:5050/openai works unchanged; the deployments map to models in Bifrost:AzureInbound:Deployments.
app.MapBifrostAzure("/openai");
// Anthropic's Messages API (an Anthropic SDK or tool with base URL http://localhost:5050/anthropic works unchanged):
//   curl -s localhost:5050/anthropic/v1/messages -H 'Content-Type: application/json' \
//     -d '{"model":"local/echo","max_tokens":64,"messages":[{"role":"user","content":"Hello!"}]}'
app.MapBifrostAnthropic("/anthropic");

// The dashboard (http://localhost:5050/bifrost/): answers local requests only, as this sample has no authentication.
app.MapBifrostDashboard("/bifrost");

// The governance admin API (virtual keys, teams, customers, usage) is not mapped here: this sample has no
// authentication, and the admin API must never be open. In a host with authentication, map it behind a policy:
//   builder.Services.AddAuthorization(o => o.AddPolicy("admin", p => p.RequireRole("bifrost-admin")));
//   app.MapBifrostAdmin("/bifrost/admin").RequireAuthorization("admin");

app.Run();

/// <summary>The sample's entry point (public for WebApplicationFactory-style tests).</summary>
public partial class Program;
