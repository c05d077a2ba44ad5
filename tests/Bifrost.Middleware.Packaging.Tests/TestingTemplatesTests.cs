using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Bifrost.Middleware.Packaging.Tests.Infrastructure;

namespace Bifrost.Middleware.Packaging.Tests;

/// <summary>
/// README's "Testing your app", as a user follows it, from the packed packages: a <c>dotnet new web</c> app made of the
/// README snippets <c>program</c> and <c>appsettings</c>, a test project made by (a) <c>dotnet new xunit</c> (xunit 2, as
/// the SDK ships the template) and (b) an xunit.v3 project (xunit.v3 + xunit.runner.visualstudio +
/// Microsoft.NET.Test.Sdk, as <c>dotnet new xunit3</c> makes it), the packages added by the commands of snippet
/// <c>testing-packages</c>, the test file of snippet <c>testing-example</c> dropped in verbatim, and <c>dotnet test</c>.
/// </summary>
public sealed partial class TestingTemplatesTests(PackedLibrary package)
{
    private static readonly TimeSpan Step = TimeSpan.FromMinutes(5);

    [Fact]
    public Task README_example_passes_in_a_dotnet_new_xunit_project() => RunReadmeExampleAsync("xunit2", WriteXunit2ProjectAsync);

    [Fact]
    public Task README_example_passes_in_an_xunit_v3_project() => RunReadmeExampleAsync("xunit3", WriteXunitV3ProjectAsync);

    [Fact]
    public void The_testing_package_depends_on_no_test_framework_and_the_suites_package_names_xunit_v3()
    {
        var testing = Manifest("Bifrost.Middleware.Testing", out var testingReadme);
        Assert.DoesNotContain(Dependencies(testing), id => id.StartsWith("xunit", StringComparison.OrdinalIgnoreCase)
            || id.StartsWith("NUnit", StringComparison.OrdinalIgnoreCase) || id.StartsWith("MSTest", StringComparison.OrdinalIgnoreCase)
            || id.Equals("Microsoft.NET.Test.Sdk", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("Microsoft.AspNetCore.TestHost", Dependencies(testing));
        Assert.StartsWith("# Bifrost.Middleware.Testing\n", testingReadme.ReplaceLineEndings("\n"), StringComparison.Ordinal); // its own readme, about testing

        var suites = Manifest("Bifrost.Middleware.Testing.XunitV3", out var suitesReadme);
        Assert.Contains("xunit.v3.extensibility.core", Dependencies(suites));
        Assert.StartsWith("# Bifrost.Middleware.Testing.XunitV3\n", suitesReadme.ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    /// <summary>The nuspec of package <paramref name="id"/> and the text of its readme.</summary>
    private XElement Manifest(string id, out string readme)
    {
        using var zip = ZipFile.OpenRead(package.NupkgPathOf(id));
        XElement nuspec;
        using (var stream = zip.GetEntry(id + ".nuspec")!.Open())
        {
            nuspec = XDocument.Load(stream).Root!;
        }

        var readmeName = nuspec.Descendants().Single(e => e.Name.LocalName == "readme").Value;
        using var reader = new StreamReader(zip.GetEntry(readmeName)!.Open());
        readme = reader.ReadToEnd();
        return nuspec;
    }

    private static List<string> Dependencies(XElement nuspec) =>
        [.. nuspec.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => (string)e.Attribute("id")!)];

    private async Task RunReadmeExampleAsync(string name, Func<string, CancellationToken, Task> writeTestProject)
    {
        var ct = TestContext.Current.CancellationToken;
        var readme = Path.Combine(package.RepoRoot, "README.md");
        var root = Directory.CreateDirectory(Path.Combine(package.WorkRoot.FullName, "testing-" + name)).FullName;
        var packages = Path.Combine(root, "packages");
        ConsumerApp.WriteIsolation(root, package.FeedDirectory, packages, MachinePackages());

        // The app: `dotnet new web`, its Program.cs and appsettings.json replaced by README's, the package added.
        var app = Path.Combine(root, "MyApp");
        (await ChildProcess.DotnetAsync(root, ["new", "web", "-o", "MyApp", "--no-restore"], Step, ct)).EnsureSuccess();
        File.WriteAllText(Path.Combine(app, "Program.cs"), ReadmeSnippets.Get(readme, "program"));
        File.WriteAllText(Path.Combine(app, "appsettings.json"), ReadmeSnippets.Get(readme, "appsettings"));
        (await ChildProcess.DotnetAsync(app, ["add", "package", PackedLibrary.PackageId, "--version", package.Version, "--no-restore"], Step, ct)).EnsureSuccess();

        // The test project, referencing the app, with README's packages and README's test file only.
        var tests = Path.Combine(root, "MyApp.Tests");
        Directory.CreateDirectory(tests);
        await writeTestProject(tests, ct);
        (await ChildProcess.DotnetAsync(tests, ["add", "reference", "../MyApp/MyApp.csproj"], Step, ct)).EnsureSuccess();
        foreach (var command in Commands(ReadmeSnippets.Get(readme, "testing-packages")))
        {
            (await ChildProcess.DotnetAsync(tests, WithLocalVersion(command), Step, ct)).EnsureSuccess();
        }

        File.WriteAllText(Path.Combine(tests, "ChatTests.cs"), ReadmeSnippets.Get(readme, "testing-example"));

        var environment = new Dictionary<string, string?> { ["NUGET_PACKAGES"] = packages };
        (await ChildProcess.DotnetAsync(tests, ["restore", "--packages", packages, "-nodeReuse:false"], Step, ct, environment)).EnsureSuccess();
        var test = await ChildProcess.DotnetAsync(tests, ["test", "--no-restore", "-p:UseSharedCompilation=false", "-nodeReuse:false"], Step, ct, environment);

        test.EnsureSuccess();
        Assert.Matches(PassedOne(), test.Output);
        Assert.True(Directory.Exists(Path.Combine(packages, "bifrost.middleware.testing", package.Version)), "Bifrost.Middleware.Testing did not come from the local feed.");
    }

    /// <summary>The SDK's own xunit template (xunit 2.9, xunit.runner.visualstudio, Microsoft.NET.Test.Sdk), its sample test removed.</summary>
    private static async Task WriteXunit2ProjectAsync(string directory, CancellationToken ct)
    {
        (await ChildProcess.DotnetAsync(Path.GetDirectoryName(directory)!, ["new", "xunit", "-o", Path.GetFileName(directory), "--no-restore"], Step, ct)).EnsureSuccess();
        var project = File.ReadAllText(Path.Combine(directory, "MyApp.Tests.csproj"));
        Assert.Contains("Include=\"xunit\" Version=\"2.", project); // this is the xunit 2 template
        File.Delete(Path.Combine(directory, "UnitTest1.cs"));
    }

    /// <summary>An xunit.v3 project as <c>dotnet new xunit3</c> (xunit.v3.templates) makes it, run by <c>dotnet test</c> on VSTest.</summary>
    private static Task WriteXunitV3ProjectAsync(string directory, CancellationToken ct)
    {
        File.WriteAllText(Path.Combine(directory, "MyApp.Tests.csproj"), """
            <Project Sdk="Microsoft.NET.Sdk">

              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <OutputType>Exe</OutputType>
                <IsPackable>false</IsPackable>
              </PropertyGroup>

              <ItemGroup>
                <PackageReference Include="Microsoft.NET.Test.Sdk" Version="17.14.1" />
                <PackageReference Include="xunit.v3" Version="3.2.2" />
                <PackageReference Include="xunit.runner.visualstudio" Version="3.1.5" />
              </ItemGroup>

              <ItemGroup>
                <Using Include="Xunit" />
              </ItemGroup>

            </Project>
            """);
        return Task.CompletedTask;
    }

    /// <summary>The machine's global-packages folder (a read-only fallback for restores: nothing downloaded twice), or null.</summary>
    private static string? MachinePackages()
    {
        var folder = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Directory.Exists(folder) ? folder : null;
    }

    /// <summary>The <c>dotnet ...</c> commands of a shell snippet, as argument lists (comments and blank lines dropped).</summary>
    private static IEnumerable<string[]> Commands(string shell)
    {
        foreach (var raw in shell.Split('\n'))
        {
            var line = raw.Split('#')[0].Trim();
            if (line.Length == 0)
            {
                continue;
            }

            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(words[0] == "dotnet", $"README's testing-packages runs something other than dotnet: {line}");
            yield return words[1..];
        }
    }

    /// <summary>
    /// A <c>dotnet add package</c> of one of ours gets the packed (prerelease) version, which a plain add would not pick;
    /// every add skips its restore (one restore follows, into the test's own packages folder).
    /// </summary>
    private string[] WithLocalVersion(string[] command)
    {
        var ours = command is ["add", "package", var id, ..] && id.StartsWith(PackedLibrary.PackageId, StringComparison.Ordinal);
        Assert.False(ours && command.Contains("--version"), "README pins a version of a Bifrost package.");
        return ours ? [.. command, "--version", package.Version, "--no-restore"] : [.. command, "--no-restore"];
    }

    /// <summary>VSTest's summary of a run with one test, passed (<c>Passed!  - Failed: 0, Passed: 1, Skipped: 0, Total: 1</c>).</summary>
    [GeneratedRegex(@"Passed!\s+-\s+Failed:\s+0,\s+Passed:\s+1,\s+Skipped:\s+0,\s+Total:\s+1\b")]
    private static partial Regex PassedOne();
}
