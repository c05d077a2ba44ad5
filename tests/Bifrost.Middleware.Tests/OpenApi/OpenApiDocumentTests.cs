using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Operations;
using Bifrost.Middleware.Tests.Operations;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;
using Bifrost.Middleware.Endpoints;

namespace Bifrost.Middleware.Tests.OpenApi;

/// <summary>
/// A host that generates OpenAPI documents (Microsoft.AspNetCore.OpenApi) gets every Bifrost route described once, at
/// its <c>/v1</c> path, from the operation registry: method, request body and its schema in wire names, success status,
/// error statuses in the Bifrost error shape, SSE on streamable routes, path parameters — and its own types keep the
/// host's naming.
/// </summary>
public sealed class OpenApiDocumentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A host type, serialized with the host's (kebab-case) naming policy.</summary>
    public sealed class HostWidget
    {
        public int WidgetCount { get; set; }

        public string? DisplayName { get; set; }
    }

    private sealed class Host : IAsyncDisposable
    {
        public required WebApplication App { get; init; }

        public required JsonDocument Document { get; init; }

        public JsonElement Paths => Document.RootElement.GetProperty("paths");

        public JsonElement Operation(string path, string method) =>
            Paths.TryGetProperty(path, out var item) && item.TryGetProperty(method.ToLowerInvariant(), out var operation)
                ? operation
                : throw new Xunit.Sdk.XunitException($"{method} {path} is not described; paths: {string.Join(", ", Paths.EnumerateObject().Select(p => p.Name))}");

        /// <summary>The schema, with a <c>$ref</c> to a component resolved.</summary>
        public JsonElement Resolve(JsonElement schema)
        {
            if (schema.TryGetProperty("$ref", out var reference))
            {
                var name = reference.GetString()!["#/components/schemas/".Length..];
                return Document.RootElement.GetProperty("components").GetProperty("schemas").GetProperty(name);
            }

            return schema;
        }

        public async ValueTask DisposeAsync()
        {
            Document.Dispose();
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }

    private static async Task<Host> StartAsync(Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddOpenApi();
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.KebabCaseLower);
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
        });
        services?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapBifrost("/openai");
        app.MapOpenApi();
        app.MapPost("/host/widgets", (HostWidget widget) => widget);
        await app.StartAsync(Ct);
        using var client = app.GetTestClient();
        using var response = await client.GetAsync("/openapi/v1.json", Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return new Host { App = app, Document = JsonDocument.Parse(text) };
    }

    private static IEnumerable<(BifrostOperation Operation, OperationRoute Route)> Routes(Host host) =>
        host.App.Services.GetRequiredService<OperationRegistry>().Operations.SelectMany(o => o.Routes.Select(r => (o, r)));

    [Fact]
    public async Task Every_route_of_the_registry_is_described_once_at_its_v1_path_and_nothing_else_under_the_prefix()
    {
        await using var host = await StartAsync();
        var routes = Routes(host).ToList();
        Assert.True(routes.Count >= 20, routes.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));

        foreach (var (_, route) in routes)
        {
            host.Operation("/openai/v1/" + route.Path, route.Method);
            Assert.False(host.Paths.TryGetProperty("/openai/" + route.Path, out _), "unversioned copy described: " + route.Path);
        }

        // Exactly the registry's routes under the prefix: no unversioned copies, no unknown-route catch-all.
        var described = host.Paths.EnumerateObject()
            .Where(p => p.Name.StartsWith("/openai", StringComparison.Ordinal))
            .SelectMany(p => p.Value.EnumerateObject().Select(m => m.Name.ToUpperInvariant() + " " + p.Name))
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Equal(routes.Select(r => r.Route.Method + " /openai/v1/" + r.Route.Path).Order(StringComparer.Ordinal), described);
        Assert.DoesNotContain(host.Paths.EnumerateObject(), p => p.Name.Contains("path", StringComparison.Ordinal) || p.Name.Contains('*', StringComparison.Ordinal));

        // Operation ids are unique (endpoint names) and every operation is tagged and summarized.
        var operations = host.Paths.EnumerateObject().Where(p => p.Name.StartsWith("/openai", StringComparison.Ordinal)).SelectMany(p => p.Value.EnumerateObject()).Select(m => m.Value).ToList();
        var ids = operations.Select(o => o.GetProperty("operationId").GetString()).ToList();
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.All(operations, o => Assert.StartsWith("Bifrost ", o.GetProperty("tags")[0].GetString(), StringComparison.Ordinal));
        Assert.All(operations, o => Assert.False(string.IsNullOrEmpty(o.GetProperty("summary").GetString())));
        Assert.Equal("bifrost_openai_post_chat_completions", host.Operation("/openai/v1/chat/completions", "POST").GetProperty("operationId").GetString());
        Assert.Equal("Bifrost files", host.Operation("/openai/v1/files", "POST").GetProperty("tags")[0].GetString());
        Assert.Equal("Bifrost batches", host.Operation("/openai/v1/batches", "POST").GetProperty("tags")[0].GetString());
        Assert.Equal("Bifrost inference", host.Operation("/openai/v1/embeddings", "POST").GetProperty("tags")[0].GetString());
    }

    [Fact]
    public async Task Each_route_has_its_body_success_status_error_statuses_and_path_parameters()
    {
        await using var host = await StartAsync();
        foreach (var (operation, route) in Routes(host))
        {
            var described = host.Operation("/openai/v1/" + route.Path, route.Method);
            var where = route.Method + " " + route.Path;

            switch (route.Body)
            {
                case RouteBody.Json:
                    var schema = host.Resolve(described.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema"));
                    Assert.True(schema.TryGetProperty("properties", out _), where);
                    break;
                case RouteBody.Upload:
                    var form = host.Resolve(described.GetProperty("requestBody").GetProperty("content").GetProperty("multipart/form-data").GetProperty("schema"));
                    // Image edits and variations upload an 'image'; the files and audio uploads a 'file'.
                    Assert.True(form.GetProperty("properties").TryGetProperty(route.Path.StartsWith("images/", StringComparison.Ordinal) ? "image" : "file", out _), where);
                    // The files upload takes a purpose; the audio uploads a model.
                    Assert.True(form.GetProperty("properties").TryGetProperty(route.Path == "files" ? "purpose" : "model", out _), where);
                    break;
                default:
                    Assert.False(described.TryGetProperty("requestBody", out _), where);
                    break;
            }

            var responses = described.GetProperty("responses");
            var success = responses.GetProperty(route.SuccessStatus.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(route.ContentTypes.Order(StringComparer.Ordinal), success.GetProperty("content").EnumerateObject().Select(c => c.Name).Order(StringComparer.Ordinal));

            var errors = OpenApiMetadata.ErrorStatuses(route);
            Assert.Contains(500, errors);
            foreach (var status in errors)
            {
                var error = responses.GetProperty(status.ToString(System.Globalization.CultureInfo.InvariantCulture));
                var errorSchema = host.Resolve(error.GetProperty("content").GetProperty("application/json").GetProperty("schema"));
                var properties = errorSchema.GetProperty("properties");
                Assert.True(properties.TryGetProperty("is_bifrost_error", out _), where + " " + status);
                Assert.True(properties.TryGetProperty("extra_fields", out _), where + " " + status);
                Assert.True(properties.TryGetProperty("error", out _), where + " " + status);
            }

            // The described statuses are exactly the success one(s) and the errors.
            var expected = errors.Append(route.SuccessStatus).Concat(route.PendingStatus is { } p ? [p] : []).Select(s => s.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal);
            Assert.Equal(expected, responses.EnumerateObject().Select(r => r.Name).Order(StringComparer.Ordinal));

            var parameters = described.TryGetProperty("parameters", out var list) ? list.EnumerateArray().Where(x => x.GetProperty("in").GetString() == "path").Select(x => x.GetProperty("name").GetString()!).ToList() : [];
            Assert.Equal(BifrostApiDescriptionProvider.RouteParameters(route.Path), parameters);
            Assert.Equal(operation.Tag, described.GetProperty("tags")[0].GetString());
        }
    }

    [Fact]
    public async Task Inference_routes_show_wire_names_202_submits_SSE_and_the_statuses_they_answer()
    {
        await using var host = await StartAsync();

        var chat = host.Operation("/openai/v1/chat/completions", "POST");
        var request = host.Resolve(chat.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties");
        Assert.True(request.TryGetProperty("messages", out _));
        Assert.True(request.TryGetProperty("max_completion_tokens", out _));
        Assert.False(request.TryGetProperty("max-completion-tokens", out _));
        var ok = chat.GetProperty("responses").GetProperty("200").GetProperty("content");
        Assert.True(ok.TryGetProperty("text/event-stream", out _));
        Assert.True(host.Resolve(ok.GetProperty("application/json").GetProperty("schema")).GetProperty("properties").TryGetProperty("extra_fields", out _));
        foreach (var status in new[] { "400", "404", "413", "429", "500", "502", "504" })
        {
            Assert.True(chat.GetProperty("responses").TryGetProperty(status, out _), status);
        }

        // Embeddings do not stream.
        Assert.False(host.Operation("/openai/v1/embeddings", "POST").GetProperty("responses").GetProperty("200").GetProperty("content").TryGetProperty("text/event-stream", out _));

        var submit = host.Operation("/openai/v1/async/chat/completions", "POST");
        Assert.True(submit.GetProperty("responses").TryGetProperty("202", out var accepted));
        Assert.False(submit.GetProperty("responses").TryGetProperty("200", out _));
        Assert.True(submit.GetProperty("responses").TryGetProperty("429", out _));
        Assert.True(host.Resolve(accepted.GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties").TryGetProperty("created_at", out _));

        var job = host.Operation("/openai/v1/async/chat/completions/{job_id}", "GET");
        Assert.True(job.GetProperty("responses").TryGetProperty("200", out _));
        Assert.True(job.GetProperty("responses").TryGetProperty("202", out _));
        Assert.True(job.GetProperty("responses").TryGetProperty("404", out _));

        var poll = host.Operation("/openai/v1/chat/completions", "GET");
        Assert.True(poll.GetProperty("responses").TryGetProperty("405", out _));

        var upload = host.Operation("/openai/v1/files", "POST");
        Assert.True(upload.GetProperty("responses").TryGetProperty("429", out _));
        Assert.True(upload.GetProperty("responses").TryGetProperty("413", out _));
        Assert.True(host.Operation("/openai/v1/batches", "POST").GetProperty("responses").TryGetProperty("429", out _));
        Assert.True(host.Operation("/openai/v1/batches/{batch_id}/cancel", "POST").GetProperty("responses").TryGetProperty("409", out _));
        Assert.False(host.Operation("/openai/v1/models", "GET").GetProperty("responses").TryGetProperty("404", out _));
    }

    [Fact]
    public async Task Host_types_keep_the_hosts_naming_while_wire_types_keep_the_wire_names()
    {
        await using var host = await StartAsync();

        var widget = host.Operation("/host/widgets", "POST");
        var properties = host.Resolve(widget.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties");
        Assert.True(properties.TryGetProperty("widget-count", out _), properties.ToString());
        Assert.True(properties.TryGetProperty("display-name", out _), properties.ToString());

        // The host's own serialization: its types as configured, ours with their wire names (and strict numbers).
        var options = host.App.Services.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions;
        Assert.Equal("""{"widget-count":2,"display-name":"w"}""", JsonSerializer.Serialize(new HostWidget { WidgetCount = 2, DisplayName = "w" }, options));
        var wire = JsonSerializer.Serialize(new ChatCompletionRequest { Model = "m", MaxCompletionTokens = 5 }, options);
        Assert.Contains("\"max_completion_tokens\":5", wire, StringComparison.Ordinal);
        Assert.DoesNotContain("max-completion-tokens", wire, StringComparison.Ordinal);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<ChatCompletionRequest>("""{"max_completion_tokens":"5"}""", options));

        // And the gateway's own answers are unchanged by either.
        using var client = host.App.GetTestClient();
        using var response = await client.PostAsync("/openai/v1/chat/completions", new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json"), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"finish_reason\":\"stop\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_descriptor_only_operation_is_described_too()
    {
        await using var host = await StartAsync(s => s.AddSingleton<BifrostOperation>(DescriptorOnlyOperationTests.Reverse));

        var reverse = host.Operation("/openai/v1/text/reverse", "POST");
        Assert.Equal("Text reversal", reverse.GetProperty("summary").GetString());
        Assert.Equal("bifrost_openai_post_text_reverse", reverse.GetProperty("operationId").GetString());
        var request = host.Resolve(reverse.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties");
        Assert.True(request.TryGetProperty("input", out _));
        var ok = reverse.GetProperty("responses").GetProperty("200").GetProperty("content");
        Assert.True(host.Resolve(ok.GetProperty("application/json").GetProperty("schema")).GetProperty("properties").TryGetProperty("output", out _));
        Assert.False(ok.TryGetProperty("text/event-stream", out _));
        Assert.True(host.Operation("/openai/v1/async/text/reverse", "POST").GetProperty("responses").TryGetProperty("202", out _));
        host.Operation("/openai/v1/async/text/reverse/{job_id}", "GET");
        Assert.False(host.Paths.TryGetProperty("/openai/text/reverse", out _));
    }
}
