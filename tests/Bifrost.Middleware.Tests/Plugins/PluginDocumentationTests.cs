namespace Bifrost.Middleware.Tests.Plugins;

/// <summary>The README's plugin guide shows exactly the example adapter that is compiled and conformance-tested here.</summary>
public sealed class PluginDocumentationTests
{
    [Fact]
    public void The_guide_shows_the_compiled_example_adapter()
    {
        var root = RepositoryRoot();
        var source = File.ReadAllLines(Path.Combine(root, "tests", "Bifrost.Middleware.Tests", "Plugins", "ExampleAdapter.cs"));
        var example = string.Join('\n', source.SkipWhile(l => l.StartsWith("//", StringComparison.Ordinal))).TrimEnd();
        var guide = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");

        Assert.Contains("```csharp\n" + example.ReplaceLineEndings("\n") + "\n```", guide, StringComparison.Ordinal);
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Bifrost.Middleware.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Bifrost.Middleware.sln) was not found above " + AppContext.BaseDirectory);
    }
}
