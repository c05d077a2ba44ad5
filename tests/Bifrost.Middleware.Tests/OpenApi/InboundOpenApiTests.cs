using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Tests.OpenApi;

/// <summary>
/// The Anthropic-compatible (<c>MapBifrostAnthropic</c>) and Azure OpenAI-compatible (<c>MapBifrostAzure</c>) inbound
/// routes appear in the host's OpenAPI document (Microsoft.AspNetCore.OpenApi) with their request, response and error shapes.
/// </summary>
public sealed class InboundOpenApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_Anthropic_routes_are_described_once_with_Anthropics_request_message_and_error_shapes()
    {
        await using var app = await StartAsync();
        using var document = await DocumentAsync(app);
        var paths = document.RootElement.GetProperty("paths");

        var messages = paths.GetProperty("/anthropic/v1/messages").GetProperty("post");
        Assert.Equal("bifrost_anthropic_post_v1_messages", messages.GetProperty("operationId").GetString());
        Assert.Equal("Bifrost Anthropic", messages.GetProperty("tags")[0].GetString());
        var request = Resolve(document, messages.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties");
        foreach (var name in new[] { "model", "max_tokens", "messages", "system", "stop_sequences", "tool_choice", "thinking" })
        {
            Assert.True(request.TryGetProperty(name, out _), name + " in " + request);
        }

        var ok = messages.GetProperty("responses").GetProperty("200").GetProperty("content");
        Assert.Equal(["application/json", "text/event-stream"], ok.EnumerateObject().Select(c => c.Name).Order(StringComparer.Ordinal));
        var message = Resolve(document, ok.GetProperty("application/json").GetProperty("schema")).GetProperty("properties");
        Assert.True(message.TryGetProperty("stop_reason", out _), message.ToString());
        Assert.True(message.TryGetProperty("content", out _));
        Assert.False(message.TryGetProperty("extra_fields", out _));
        foreach (var status in new[] { "400", "401", "404", "413", "429", "500", "502", "504", "529" })
        {
            var error = Resolve(document, messages.GetProperty("responses").GetProperty(status).GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties");
            Assert.True(error.TryGetProperty("type", out _), status);
            Assert.True(error.TryGetProperty("error", out _), status);
            Assert.False(error.TryGetProperty("is_bifrost_error", out _), status);
        }

        var count = paths.GetProperty("/anthropic/v1/messages/count_tokens").GetProperty("post");
        Assert.Equal("bifrost_anthropic_post_v1_messages_count_tokens", count.GetProperty("operationId").GetString());
        var counted = Resolve(document, count.GetProperty("responses").GetProperty("200").GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties");
        Assert.True(counted.TryGetProperty("input_tokens", out _), counted.ToString());

        // Once each: not the unversioned copies, not the unknown-route catch-all.
        Assert.Equal(["/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens"], paths.EnumerateObject().Select(p => p.Name).Where(p => p.StartsWith("/anthropic", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        Assert.Single(paths.GetProperty("/anthropic/v1/messages").EnumerateObject());
    }

    [Fact]
    public async Task The_Azure_deployment_routes_are_described_with_the_deployment_parameter_and_the_operations_shapes()
    {
        await using var app = await StartAsync();
        using var document = await DocumentAsync(app);
        var paths = document.RootElement.GetProperty("paths");

        var chat = paths.GetProperty("/azure/openai/deployments/{deployment}/chat/completions").GetProperty("post");
        Assert.Equal("bifrost_azure_openai_deployments_deployment_post_chat_completions", chat.GetProperty("operationId").GetString());
        Assert.StartsWith("Azure OpenAI-compatible", chat.GetProperty("summary").GetString(), StringComparison.Ordinal);
        var parameters = chat.GetProperty("parameters").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!);
        Assert.Equal(["api-version", "deployment"], parameters.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("path", parameters["deployment"].GetProperty("in").GetString());
        AssertApiVersion(parameters["api-version"], required: false);
        var request = Resolve(document, chat.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties");
        Assert.True(request.TryGetProperty("messages", out _));
        Assert.True(chat.GetProperty("responses").GetProperty("200").GetProperty("content").TryGetProperty("text/event-stream", out _));
        var error = Resolve(document, chat.GetProperty("responses").GetProperty("400").GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties");
        Assert.True(error.TryGetProperty("is_bifrost_error", out _));

        var embeddings = paths.GetProperty("/azure/openai/deployments/{deployment}/embeddings").GetProperty("post");
        Assert.True(Resolve(document, embeddings.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema")).GetProperty("properties").TryGetProperty("input", out _));
        var transcription = paths.GetProperty("/azure/openai/deployments/{deployment}/audio/transcriptions").GetProperty("post");
        Assert.True(transcription.GetProperty("requestBody").GetProperty("content").TryGetProperty("multipart/form-data", out _));

        // Every deployment route describes api-version (issue 17, media), optional by default.
        var azurePaths = paths.EnumerateObject().Where(p => p.Name.StartsWith("/azure/openai/deployments/", StringComparison.Ordinal)).ToList();
        Assert.Contains(azurePaths, p => p.Name.EndsWith("/images/edits", StringComparison.Ordinal));
        Assert.Contains(azurePaths, p => p.Name.EndsWith("/images/variations", StringComparison.Ordinal));
        foreach (var path in azurePaths)
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                var query = Assert.Single(operation.Value.GetProperty("parameters").EnumerateArray(), p => p.GetProperty("in").GetString() == "query");
                Assert.Equal("api-version", query.GetProperty("name").GetString());
                AssertApiVersion(query, required: false);
            }
        }

        // The provider-in-the-path form is the same contract: not described a second time.
        Assert.DoesNotContain(paths.EnumerateObject(), p => p.Name.Contains("{provider}", StringComparison.Ordinal));
        var ids = paths.EnumerateObject().SelectMany(p => p.Value.EnumerateObject()).Select(o => o.Value.GetProperty("operationId").GetString()).ToList();
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task With_RequireApiVersion_the_api_version_query_is_described_as_required_on_every_deployment_route()
    {
        await using var app = await StartAsync(requireApiVersion: true);
        using var document = await DocumentAsync(app);
        var described = 0;
        foreach (var path in document.RootElement.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/azure/openai/deployments/", StringComparison.Ordinal)))
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                var query = Assert.Single(operation.Value.GetProperty("parameters").EnumerateArray(), p => p.GetProperty("in").GetString() == "query");
                AssertApiVersion(query, required: true);
                Assert.Contains("api-version query is required", operation.Value.GetProperty("description").GetString(), StringComparison.Ordinal);
                described++;
            }
        }

        Assert.True(described >= 9, $"{described} Azure operations described");
    }

    private static void AssertApiVersion(JsonElement parameter, bool required)
    {
        Assert.Equal("api-version", parameter.GetProperty("name").GetString());
        Assert.Equal("query", parameter.GetProperty("in").GetString());
        Assert.Equal(required, parameter.TryGetProperty("required", out var value) && value.GetBoolean());
        Assert.Equal("string", parameter.GetProperty("schema").GetProperty("type").GetString());
        var text = parameter.GetProperty("description").GetString()!;
        Assert.Contains("2024-10-21", text, StringComparison.Ordinal);
        Assert.Contains("RequireApiVersion", text, StringComparison.Ordinal);
    }

    private static async Task<WebApplication> StartAsync(bool requireApiVersion = false)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddOpenApi();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            options.AzureInbound.RequireApiVersion = requireApiVersion;
        });
        var app = builder.Build();
        app.MapBifrost("/openai");
        app.MapBifrostAnthropic();
        app.MapBifrostAzure("/azure");
        app.MapOpenApi();
        await app.StartAsync(Ct);
        return app;
    }

    private static async Task<JsonDocument> DocumentAsync(WebApplication app)
    {
        using var client = app.GetTestClient();
        using var response = await client.GetAsync("/openapi/v1.json", Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text);
    }

    private static JsonElement Resolve(JsonDocument document, JsonElement schema) =>
        schema.TryGetProperty("$ref", out var reference)
            ? document.RootElement.GetProperty("components").GetProperty("schemas").GetProperty(reference.GetString()!["#/components/schemas/".Length..])
            : schema;
}
