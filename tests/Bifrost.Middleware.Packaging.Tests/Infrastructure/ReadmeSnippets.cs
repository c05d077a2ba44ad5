using System.Text.RegularExpressions;

namespace Bifrost.Middleware.Packaging.Tests.Infrastructure;

/// <summary>
/// The code blocks of the repository's README.md that tests run verbatim, so that README and tests cannot drift. A block
/// is named by an HTML comment on the line just before its opening fence:
/// <code>
/// &lt;!-- snippet: program --&gt;
/// ```csharp
/// ...
/// ```
/// </code>
/// The comment is invisible on GitHub and nuget.org; the block renders as any other.
/// </summary>
public static partial class ReadmeSnippets
{
    /// <summary>Every named block of <paramref name="readmePath"/>: name → the code between the fences (no fences).</summary>
    public static IReadOnlyDictionary<string, string> Read(string readmePath)
    {
        var text = File.ReadAllText(readmePath).ReplaceLineEndings("\n");
        var snippets = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match match in Snippet().Matches(text))
        {
            var name = match.Groups["name"].Value;
            if (!snippets.TryAdd(name, match.Groups["code"].Value))
            {
                throw new InvalidOperationException($"{readmePath} names two snippets '{name}'.");
            }
        }

        return snippets;
    }

    /// <summary>The block named <paramref name="name"/> of <paramref name="readmePath"/>; throws, naming the ones there are, when it is missing.</summary>
    public static string Get(string readmePath, string name)
    {
        var snippets = Read(readmePath);
        return snippets.TryGetValue(name, out var code)
            ? code
            : throw new InvalidOperationException($"{readmePath} has no snippet '{name}' (a `<!-- snippet: {name} -->` line before a fenced block); it has: {string.Join(", ", snippets.Keys)}.");
    }

    [GeneratedRegex(@"^<!--\s*snippet:\s*(?<name>[\w.-]+)\s*-->\n```[\w+-]*\n(?<code>.*?)^```$", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex Snippet();
}
