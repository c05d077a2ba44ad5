// A minimal host: the gateway mounted at /openai, configured entirely from configuration
// (appsettings.json, environment variables such as Bifrost__Providers__openai__BaseUrl, command line).
var builder = WebApplication.CreateBuilder(args);

var bifrost = builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));

// Several instances sharing jobs, batches and files: set Bifrost:PostgreSql:ConnectionString (e.g. the environment
// variable Bifrost__PostgreSql__ConnectionString; Schema, UseForFiles, FileChunkSize and Listen may be set beside it).
// Without it the default stores stay.
var postgres = builder.Configuration.GetSection("Bifrost:PostgreSql");
if (!string.IsNullOrWhiteSpace(postgres["ConnectionString"]))
{
    bifrost.UsePostgreSqlJobStore(options => postgres.Bind(options));
}

var app = builder.Build();

app.MapGet("/", () => Results.Text(
    "Bifrost sample host. Try: curl -s localhost:5050/openai/v1/chat/completions -H 'Content-Type: application/json' " +
    "-d '{\"model\":\"local/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}'\n"));
app.MapGet("/health", () => Results.Ok("ok"));
app.MapBifrost("/openai");

app.Run();

/// <summary>The sample's entry point (public for WebApplicationFactory-style tests).</summary>
public partial class Program;
