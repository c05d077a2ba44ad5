using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Packaging.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using OpenAI;

namespace Bifrost.Middleware.Tests.Hosting;

/// <summary>
/// README "Add it to your app" runs as pasted: tests/Bifrost.Middleware.ReadmeApp is a <c>dotnet new web</c> app whose
/// Program.cs and appsettings.json are the README's <c>program</c> and <c>appsettings</c> snippets, byte for byte; it
/// starts with no provider key in the environment, refuses callers without a key of its own, and answers the README's
/// OpenAI SDK example.
/// </summary>
public sealed class ReadmeAppTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Readme => Repository.PathOf("README.md");

    [Theory]
    [InlineData("program", "Program.cs")]
    [InlineData("appsettings", "appsettings.json")]
    public void The_README_snippet_is_the_test_apps_file(string snippet, string file)
    {
        var documented = ReadmeSnippets.Get(Readme, snippet);
        var compiled = File.ReadAllText(Repository.PathOf("tests", "Bifrost.Middleware.ReadmeApp", file)).ReplaceLineEndings("\n");
        Assert.Equal(compiled, documented);
    }

    [Fact]
    public void The_README_client_calls_the_apps_address_with_a_caller_key_of_its_configuration()
    {
        var client = ReadmeSnippets.Get(Readme, "openai-client");
        using var settings = JsonDocument.Parse(ReadmeSnippets.Get(Readme, "appsettings"));
        var keys = settings.RootElement.GetProperty("CallerKeys").EnumerateObject().Select(static p => p.Value.GetString()!).ToList();
        Assert.Contains(keys, key => client.Contains($"ApiKeyCredential(\"{key}\")", StringComparison.Ordinal));
        Assert.Contains("new Uri(\"http://localhost:5000/openai/v1\")", client, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_README_client_example_gets_the_echo_with_a_caller_key()
    {
        await using var factory = App(out var logs);

        // The README's openai-client statements; only the transport is added, to reach the in-memory server (and global::,
        // as this file's namespace has an OpenAI of its own).
        var client = new global::OpenAI.OpenAIClient(
            new System.ClientModel.ApiKeyCredential("dev-key-change-me"),
            new global::OpenAI.OpenAIClientOptions { Endpoint = new Uri("http://localhost:5000/openai/v1"), Transport = new HttpClientPipelineTransport(factory.CreateClient()) });
        var chat = client.GetChatClient("local/echo");
        var answer = await chat.CompleteChatAsync(["Hello, gateway!"], cancellationToken: Ct);
        Assert.Equal("Hello, gateway!", answer.Value.Content[0].Text);

        // It started without the provider key: the missing variable is a warning, not a failure.
        Assert.Contains(logs.Messages(1), message => message.Contains("BIFROST_README_TEST_UNSET", StringComparison.Ordinal));
        Assert.Empty(logs.Messages(40));
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("Authorization", "Bearer wrong-key")]
    [InlineData("api-key", "wrong-key")]
    [InlineData("Authorization", "Basic ZGV2LWtleS1jaGFuZ2UtbWU6")]
    public async Task A_caller_without_a_configured_key_gets_an_OpenAI_shaped_401(string? header, string? value)
    {
        await using var factory = App(out _);
        using var http = factory.CreateClient();
        using var request = ChatRequest();
        if (header is not null)
        {
            request.Headers.TryAddWithoutValidation(header, value);
        }

        using var response = await http.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal("invalid_api_key", json.RootElement.GetProperty("error").GetProperty("code").GetString());

        var sdk = new OpenAIClient(new ApiKeyCredential("wrong-key"), new OpenAIClientOptions { Endpoint = new Uri("http://localhost/openai/v1"), Transport = new HttpClientPipelineTransport(factory.CreateClient()) });
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => sdk.GetChatClient("local/echo").CompleteChatAsync(["hi"], cancellationToken: Ct));
        Assert.Equal(401, refused.Status);
    }

    [Theory]
    [InlineData("Authorization", "Bearer dev-key-change-me")]
    [InlineData("api-key", "dev-key-change-me")]
    public async Task Either_header_carries_the_caller_key(string header, string value)
    {
        await using var factory = App(out _);
        using var http = factory.CreateClient();
        using var request = ChatRequest();
        request.Headers.TryAddWithoutValidation(header, value);

        using var response = await http.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static HttpRequestMessage ChatRequest() => new(HttpMethod.Post, "/openai/v1/chat/completions")
    {
        Content = new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json"),
    };

    /// <summary>The README app, its OPENAI_API_KEY reference pointed at a variable no environment sets (the README's "starts with no API keys").</summary>
    private static WebApplicationFactory<Program> App(out LogSink logs)
    {
        var sink = logs = new LogSink();
        return new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseSetting("Bifrost:Providers:openai:Keys:0:Value", "env:BIFROST_README_TEST_UNSET");
            web.ConfigureServices(services => services.AddSingleton<ILoggerProvider>(sink));
        });
    }
}
