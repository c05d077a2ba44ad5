using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>The <c>vertex</c> provider through the gateway's HTTP endpoints, its start-time checks, and credentials from an authenticator.</summary>
public sealed class VertexEndpointTests : VertexTestBase
{
    private static JsonObject Body(string model, bool stream = false) => new()
    {
        ["model"] = "vertex/" + model,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi Vertex" }),
        ["stream"] = stream,
    };

    [Theory]
    [InlineData("gemini-2.5-flash", "/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent")]
    [InlineData("claude-sonnet-4-5@20250929", "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict")]
    public async Task Chat_completions_reach_Vertex_and_answer_in_the_OpenAI_shape(string model, string path)
    {
        await using var host = await StartHostAsync();

        var (status, text) = await PostAsync(host, "/openai/v1/chat/completions", Body(model));

        Assert.Equal(HttpStatusCode.OK, status);
        var json = JsonDocument.Parse(text).RootElement;
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        Assert.Equal("echo: Hi Vertex", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(21, json.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(path, Assert.Single(Upstream.Requests).Path);
    }

    [Theory]
    [InlineData("gemini-2.5-flash")]
    [InlineData("claude-sonnet-4-5@20250929")]
    public async Task Streamed_chat_completions_are_OpenAI_SSE_ending_with_DONE(string model)
    {
        await using var host = await StartHostAsync();

        var (status, text) = await PostAsync(host, "/openai/v1/chat/completions", Body(model, stream: true));

        Assert.Equal(HttpStatusCode.OK, status);
        var data = text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).ToList();
        Assert.Equal("[DONE]", data[^1]);
        var chunks = data[..^1].Select(d => JsonDocument.Parse(d).RootElement).ToList();
        var content = string.Concat(chunks.Select(c => c.GetProperty("choices").EnumerateArray().Select(ch => ch.GetProperty("delta").TryGetProperty("content", out var v) ? v.GetString() : null).FirstOrDefault()));
        Assert.Equal("echo: Hi Vertex", content);
        Assert.Equal("stop", chunks.Select(c => c.GetProperty("choices").EnumerateArray().Select(ch => ch.TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null).FirstOrDefault()).Last(static r => r is not null));
    }

    [Fact]
    public async Task Without_keys_the_registered_authenticator_supplies_the_token_and_it_is_refreshed_after_a_401()
    {
        var authenticator = new RotatingAuthenticator(["ya29.stale-token", FakeVertexUpstream.Token]);
        Upstream.ValidTokens.TryRemove("ya29.stale-token", out _);
        var logs = new LogSink();
        await using var host = await StartHostAsync(
            o => o.Keys = [],
            s => s.AddSingleton<ILoggerProvider>(logs),
            b => b.AddUpstreamAuthenticator("vertex", _ => authenticator));

        var (status, _) = await PostAsync(host, "/openai/v1/chat/completions", Body("gemini-2.5-flash"));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["Bearer ya29.stale-token", "Bearer " + FakeVertexUpstream.Token], Upstream.Requests.Select(static r => r.Headers["authorization"]));
        Assert.Equal([false, true], authenticator.Calls);
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("ya29.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_refused_token_answers_401_in_the_Bifrost_shape_and_is_in_no_answer_or_log()
    {
        const string token = "ya29.expired-secret-token";
        var logs = new LogSink();
        await using var host = await StartHostAsync(o => o.Keys = [new ProviderKeyOptions { Value = token }], s => s.AddSingleton<ILoggerProvider>(logs));

        var (status, text) = await PostAsync(host, "/openai/v1/chat/completions", Body("gemini-2.5-flash"));

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("authentication_error", JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.DoesNotContain(token, text, StringComparison.Ordinal);
        Assert.NotEmpty(logs.Entries);
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains(token, StringComparison.Ordinal) || (e.Exception?.ToString().Contains(token, StringComparison.Ordinal) ?? false));
    }

    [Theory]
    [InlineData(null, "us-central1", true, "Bifrost:Providers:vertex:ProjectId is required for a Vertex AI provider (the Google Cloud project id, e.g. my-project), unless it uses Vertex AI express mode: Keys with express-mode API keys and AuthHeader 'x-goog-api-key'.")]
    [InlineData("my-project", "us central1", true, "Bifrost:Providers:vertex:Region 'us central1' is not a Vertex AI location")]
    [InlineData("my/project", null, true, "Bifrost:Providers:vertex:ProjectId 'my/project' is not a Google Cloud project id")]
    [InlineData("my-project", null, false, "Bifrost:Providers:vertex has no credentials: it needs Keys (an OAuth access token, e.g. from 'gcloud auth print-access-token'), or Google credentials registered with builder.UseGoogleCredentials(\"vertex\")")]
    public async Task Invalid_options_stop_the_host_with_a_clear_message(string? project, string? region, bool withKey, string message)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options => options.Providers["vertex"] = new ProviderOptions
        {
            Type = "vertex",
            ProjectId = project,
            Region = region,
            Keys = withKey ? [new ProviderKeyOptions { Value = "ya29.secret" }] : [],
        });
        await using var app = builder.Build();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(Ct));

        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("ya29.secret", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_provider_without_keys_starts_when_an_authenticator_is_registered_for_it_under_any_case()
    {
        await using var host = await StartHostAsync(o => o.Keys = [], bifrost: b => b.AddUpstreamAuthenticator("VERTEX", _ => new RotatingAuthenticator([FakeVertexUpstream.Token])));

        var (status, _) = await PostAsync(host, "/openai/v1/chat/completions", Body("gemini-2.5-flash"));

        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task An_express_mode_provider_needs_no_project()
    {
        await using var host = await StartHostAsync(o =>
        {
            o.ProjectId = null;
            o.AuthHeader = "x-goog-api-key";
            o.Keys = [new ProviderKeyOptions { Value = FakeVertexUpstream.ExpressKey }];
        });

        var (status, _) = await PostAsync(host, "/openai/v1/chat/completions", Body("gemini-2.5-flash"));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("/v1/publishers/google/models/gemini-2.5-flash:generateContent", Assert.Single(Upstream.Requests).Path);
    }

    [Fact]
    public async Task A_provider_merely_named_vertex_stays_openai()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options => options.Providers["vertex"] = new ProviderOptions());
        await using var app = builder.Build();

        // an openai provider needs no ProjectId: only the openai type's own rule (a BaseUrl) speaks
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(Ct));
        Assert.DoesNotContain("ProjectId", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Hands out the given tokens in turn (the last one forever), recording whether each call followed a 401.</summary>
    private sealed class RotatingAuthenticator(string[] tokens) : IUpstreamAuthenticator
    {
        private int _next;

        public List<bool> Calls { get; } = [];

        public ValueTask AuthenticateAsync(HttpRequestMessage request, UpstreamAuthContext context, CancellationToken cancellationToken)
        {
            lock (Calls)
            {
                Calls.Add(context.Unauthorized);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens[Math.Min(_next++, tokens.Length - 1)]);
            }

            return ValueTask.CompletedTask;
        }
    }
}
