#pragma warning disable xUnit1051 // the README snippet runs as a user writes it, without the test's cancellation token
namespace Bifrost.Middleware.Compatibility.Tests;

/// <summary>
/// README "Call it in-process (IBifrostClient)": the <c>bifrost-client</c> snippet runs here as written (between the
/// markers), and a second test checks README still holds exactly this code.
/// </summary>
public sealed class InProcessClientTests
{
    private const string SnippetName = "bifrost-client";

    [Fact]
    public async Task The_README_bifrost_client_snippet_runs_against_the_gateway()
    {
        await using var host = await SdkHost.StartAsync();
        var app = host.App;
        var output = new StringWriter();
        var console = Console.Out;
        Console.SetOut(output);
        try
        {
            // <bifrost-client>
            var bifrost = app.Services.GetRequiredService<IBifrostClient>();

            // a chat completion: one line for a prompt ...
            ChatCompletionResponse answer = await bifrost.ChatCompletionAsync("local/echo", "Hello, gateway!");
            Console.WriteLine(answer.Choices[0].Message!.Content);

            // ... or a request for a conversation (every OpenAI field is a property)
            var request = new ChatCompletionRequest("local/echo",
                ChatCompletionMessage.System("You are terse."),
                ChatCompletionMessage.User("Hello again!"))
            {
                Temperature = 0.2,
                MaxCompletionTokens = 100,
            };
            answer = await bifrost.ChatCompletionAsync(request);
            Console.WriteLine($"{answer.Choices[0].Message!.Content} ({answer.Usage?.TotalTokens} tokens, {answer.ExtraFields?.Provider})");

            // a stream
            await foreach (ChatCompletionChunk chunk in bifrost.ChatCompletionStreamAsync("local/echo", "Stream this, please"))
            {
                Console.Write(chunk.Choices.FirstOrDefault()?.Delta.Content);
            }

            Console.WriteLine();

            // embeddings, one vector per text
            EmbeddingResponse embeddings = await bifrost.EmbeddingsAsync("local/echo", ["first text", "second text"]);
            float[] vector = embeddings.Data[0].Embedding.ToFloats();
            Console.WriteLine($"{embeddings.Data.Count} vectors of {vector.Length} dimensions");
            // </bifrost-client>
        }
        finally
        {
            Console.SetOut(console);
        }

        Assert.Equal(
            ["Hello, gateway!", "Hello again! (16 tokens, local)", "Stream this, please", "2 vectors of 256 dimensions"],
            output.ToString().ReplaceLineEndings("\n").TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void README_holds_exactly_the_code_that_runs_here()
    {
        var root = RepoRoot();
        var readme = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");
        var fence = $"<!-- snippet: {SnippetName} -->\n```csharp\n";
        var start = readme.IndexOf(fence, StringComparison.Ordinal);
        Assert.True(start >= 0, $"README.md has no `<!-- snippet: {SnippetName} -->` csharp block");
        start += fence.Length;
        var snippet = readme[start..readme.IndexOf("\n```", start - 1, StringComparison.Ordinal)];

        var source = File.ReadAllLines(Path.Combine(root, "tests", "Bifrost.Middleware.Compatibility.Tests", "InProcessClientTests.cs"));
        var from = Array.FindIndex(source, l => l.Trim() == $"// <{SnippetName}>") + 1;
        var to = Array.FindIndex(source, l => l.Trim() == $"// </{SnippetName}>");
        var lines = source[from..to];
        var indent = lines.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        var code = string.Join("\n", lines.Select(l => l.Length >= indent ? l[indent..] : l.Trim()));

        Assert.Equal(code, snippet);
    }

    private static string RepoRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Bifrost.Middleware.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("Bifrost.Middleware.sln not found above " + AppContext.BaseDirectory);
    }
}
