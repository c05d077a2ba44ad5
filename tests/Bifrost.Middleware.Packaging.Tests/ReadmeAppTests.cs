using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Bifrost.Middleware.Packaging.Tests.Infrastructure;

namespace Bifrost.Middleware.Packaging.Tests;

/// <summary>
/// README "Add it to your app", as a new user follows it, from the packed packages: a fresh web app whose Program.cs and
/// appsettings.json are the README's <c>program</c> and <c>appsettings</c> snippets verbatim, with the packages the section
/// says to add; it runs; then a console app whose Program.cs is the <c>openai-client</c> snippet verbatim (only
/// <c>http://localhost:5000</c> becomes the app's real address) calls it with the official OpenAI SDK and prints the answer.
/// </summary>
public sealed partial class ReadmeAppTests(PackedLibrary package)
{
    private const string ReadmeAddress = "http://localhost:5000";

    [Fact]
    public async Task The_readme_app_built_from_the_packages_runs_and_answers_the_readme_openai_client()
    {
        var ct = TestContext.Current.CancellationToken;
        var output = TestContext.Current.TestOutputHelper;
        var readmePath = Path.Combine(package.RepoRoot, "README.md");
        var program = ReadmeSnippets.Get(readmePath, "program");
        var appsettings = ReadmeSnippets.Get(readmePath, "appsettings");
        var client = ReadmeSnippets.Get(readmePath, "openai-client");
        Assert.Contains(ReadmeAddress + "/openai/v1", client, StringComparison.Ordinal);
        var prompt = Prompt().Match(client) is { Success: true } match
            ? match.Groups["prompt"].Value
            : throw new InvalidOperationException($"The openai-client snippet sends no CompleteChatAsync(\"...\") text to expect back:\n{client}");

        // The packages the section tells the reader to add: ours for the app (from the local feed, at the packed version),
        // the others (the OpenAI SDK) for the client, at the version this repository tests with.
        var added = AddedPackages(File.ReadAllText(readmePath));
        Assert.Contains(PackedLibrary.PackageId, added);
        Assert.Contains("OpenAI", added);
        var ours = added.Where(id => id.StartsWith("Bifrost.", StringComparison.Ordinal)).ToList();
        Assert.All(ours, id => Assert.Contains(id, package.PackageIds));
        var theirs = added.Except(ours).ToDictionary(id => id, id => PackedLibrary.CentralVersion(package.RepoRoot, id));

        var fallback = await ConsumerApp.MachineGlobalPackagesFolderAsync(ct);
        var root = package.WorkRoot.CreateSubdirectory("readme").FullName;
        var app = ConsumerApp.WriteProject(
            root,
            "MyGateway",
            package.FeedDirectory,
            fallback,
            ConsumerApp.ProjectFile("Microsoft.NET.Sdk.Web", ours.ToDictionary(id => id, _ => package.Version)),
            new Dictionary<string, string> { ["Program.cs"] = program, ["appsettings.json"] = appsettings });
        await BuildAsync(app, output, ct);

        using var running = await app.StartOnFreePortAsync(ct);
        output?.WriteLine($"README app pid {running.ProcessId} at {running.Address}");

        // The auth recipe: a caller without a key of the app's is refused in an OpenAI-shaped error, before the gateway runs.
        using (var http = new HttpClient { BaseAddress = running.Address, Timeout = TimeSpan.FromSeconds(30) })
        using (var anonymous = await http.PostAsync(
            "/openai/v1/chat/completions",
            new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
            ct))
        {
            var body = await anonymous.Content.ReadAsStringAsync(ct);
            Assert.True(anonymous.StatusCode == HttpStatusCode.Unauthorized, $"{(int)anonymous.StatusCode}: {body}\n{running.Output}");
            using var error = JsonDocument.Parse(body);
            Assert.False(string.IsNullOrEmpty(error.RootElement.GetProperty("error").GetProperty("message").GetString()));
        }

        var address = running.Address.GetLeftPart(UriPartial.Authority);
        var caller = ConsumerApp.WriteProject(
            root,
            "ReadmeClient",
            package.FeedDirectory,
            fallback,
            ConsumerApp.ProjectFile("Microsoft.NET.Sdk", theirs),
            new Dictionary<string, string> { ["Program.cs"] = client.Replace(ReadmeAddress, address, StringComparison.Ordinal) });
        await BuildAsync(caller, output, ct);

        var run = await caller.RunAsync([], TimeSpan.FromMinutes(1), ct);
        Assert.True(run.ExitCode == 0, $"the README client exited with {run.ExitCode}:\n{run.Output}\n--- app:\n{ProcessResult.Tail(running.Output)}");
        Assert.Equal(prompt, run.Output.Trim());
    }

    /// <summary>The ids of every <c>dotnet add package ID</c> in README's "Add it to your app" section.</summary>
    private static List<string> AddedPackages(string readme)
    {
        var text = readme.ReplaceLineEndings("\n");
        var start = text.IndexOf("\n## Add it to your app\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "README has no section \"## Add it to your app\"");
        var end = text.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        var section = end < 0 ? text[start..] : text[start..end];
        return AddPackage().Matches(section).Select(m => m.Groups["id"].Value).Distinct(StringComparer.Ordinal).ToList();
    }

    private static async Task BuildAsync(ConsumerApp project, ITestOutputHelper? output, CancellationToken ct)
    {
        var restore = (await project.RestoreAsync(ct)).EnsureSuccess();
        var build = (await project.BuildAsync(ct)).EnsureSuccess();
        output?.WriteLine($"{project.Name}: restore {restore.Elapsed.TotalSeconds:F1}s, build {build.Elapsed.TotalSeconds:F1}s");
    }

    [GeneratedRegex(@"dotnet add package (?<id>[A-Za-z0-9_.-]+)")]
    private static partial Regex AddPackage();

    [GeneratedRegex("""CompleteChatAsync\("(?<prompt>[^"\\]*)"\)""")]
    private static partial Regex Prompt();
}
