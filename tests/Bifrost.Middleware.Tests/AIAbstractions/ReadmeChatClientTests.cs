using Bifrost.Middleware.Packaging.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.AIAbstractions;

/// <summary>README's "Use it as an IChatClient" snippet, compiled and run here; a second test keeps README identical to it.</summary>
public sealed class ReadmeChatClientTests
{
    private const string Begin = "// README snippet chat-client: begin";
    private const string End = "// README snippet chat-client: end";

    [Fact]
    public async Task The_README_chat_client_snippet_runs()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Bifrost:Providers:local:Type"] = "local" });

        // README snippet chat-client: begin
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"))
               .AddChatClient("local/echo")       // the default model; ChatOptions.ModelId picks another per call
               .UseFunctionInvocation()           // runs the C# functions the model asks for
               .UseOpenTelemetry();               // gen_ai.* spans and metrics

        var app = builder.Build();
        app.MapGet("/ask", async (string question, IChatClient chat, CancellationToken ct) =>
        {
            var now = AIFunctionFactory.Create(() => DateTimeOffset.UtcNow, "Now", "The current UTC time");
            ChatResponse answer = await chat.GetResponseAsync(question, new ChatOptions { Tools = [now] }, ct);
            return answer.Text;
        });
        // README snippet chat-client: end

        await using (app)
        {
            await app.StartAsync(TestContext.Current.CancellationToken);
            using var client = app.GetTestClient();
            var text = await client.GetStringAsync(new Uri("/ask?question=What%20time%20is%20it%3F", UriKind.Relative), TestContext.Current.CancellationToken);
            Assert.Equal("What time is it?", text); // the local provider echoes
        }
    }

    [Fact]
    public void README_shows_exactly_the_code_this_test_runs()
    {
        var root = RepoRoot();
        var source = File.ReadAllText(Path.Combine(root, "tests", "Bifrost.Middleware.Tests", "AIAbstractions", "ReadmeChatClientTests.cs")).ReplaceLineEndings("\n");
        var start = source.IndexOf("        " + Begin + "\n", StringComparison.Ordinal);
        var end = source.IndexOf("        " + End + "\n", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "the snippet's begin and end markers");
        var tested = Unindent(source[(start + 8 + Begin.Length + 1)..end]);

        Assert.Equal(tested, ReadmeSnippets.Get(Path.Combine(root, "README.md"), "chat-client"));
    }

    /// <summary>The repository root above the test binaries (source paths may be mapped in deterministic builds).</summary>
    private static string RepoRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(directory.FullName, "README.md")) || !Directory.Exists(Path.Combine(directory.FullName, "tests")))
        {
            directory = directory.Parent ?? throw new InvalidOperationException($"No repository root above {AppContext.BaseDirectory}.");
        }

        return directory.FullName;
    }

    private static string Unindent(string code)
    {
        var lines = code.Split('\n');
        var indent = lines.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        return string.Join('\n', lines.Select(l => l.Length >= indent ? l[indent..] : l.TrimStart()));
    }
}
