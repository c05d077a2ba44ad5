using System.Globalization;

namespace Bifrost.Middleware.Packaging.Tests.Infrastructure;

/// <summary>
/// Runs <c>dotnet pack</c> of every project under src/ once for the test assembly (an assembly fixture): a unique prerelease version (so no NuGet cache
/// can serve an older copy), build output under a temp artifacts folder (the repo's bin/obj are left alone) and the
/// packages in a temp folder that then serves as the consumer's local feed. One for the test assembly
/// (<c>AssemblyFixture</c>): every test class shares the one pack.
/// </summary>
public sealed class PackedLibrary : IAsyncLifetime
{
    public const string PackageId = "Bifrost.Middleware";

    /// <summary>The temp folder holding everything this fixture and the tests make; deleted at the end.</summary>
    public DirectoryInfo WorkRoot { get; } = Directory.CreateTempSubdirectory("bifrost-pack-test-");

    public string RepoRoot { get; } = FindRepoRoot();

    public string Version { get; } = "0.0.0-test." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture);

    /// <summary>The local feed: the folder <c>dotnet pack</c> wrote the .nupkg and .snupkg to.</summary>
    public string FeedDirectory => Path.Combine(WorkRoot.FullName, "feed");

    public string NupkgPath => Path.Combine(FeedDirectory, $"{PackageId}.{Version}.nupkg");

    public string SnupkgPath => Path.Combine(FeedDirectory, $"{PackageId}.{Version}.snupkg");

    public ProcessResult? PackResult { get; private set; }

    /// <summary>The .nupkg of package <paramref name="id"/> (every package of src/ is packed, at <see cref="Version"/>).</summary>
    public string NupkgPathOf(string id) => Path.Combine(FeedDirectory, $"{id}.{Version}.nupkg");

    /// <summary>The ids of the packages packed: every project under src/ (one folder each).</summary>
    public IReadOnlyList<string> PackageIds { get; private set; } = [];

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        var projects = Directory.GetDirectories(Path.Combine(RepoRoot, "src"))
            .Select(dir => Path.Combine(dir, Path.GetFileName(dir) + ".csproj"))
            .Where(File.Exists)
            .Order(StringComparer.Ordinal)
            .ToList();
        PackageIds = projects.Select(Path.GetFileNameWithoutExtension).ToList()!;

        // One solution of the packable projects, packed by one MSBuild run (they build in parallel, the core once).
        var sln = Path.Combine(WorkRoot.FullName, "packages.slnx");
        File.WriteAllText(sln, "<Solution>\n" + string.Concat(projects.Select(p => $"  <Project Path=\"{System.Security.SecurityElement.Escape(p)}\" />\n")) + "</Solution>\n");
        PackResult = (await ChildProcess.DotnetAsync(
            RepoRoot,
            [
                "pack", sln,
                "-c", "Release",
                "-o", FeedDirectory,
                "--artifacts-path", Path.Combine(WorkRoot.FullName, "artifacts"),
                $"-p:Version={Version}",
                // the compiler server would outlive the build (and hold its output pipe)
                "-p:UseSharedCompilation=false",
                "-nodeReuse:false",
            ],
            // generous: the whole solution's test assemblies run in parallel with it on a small machine
            TimeSpan.FromMinutes(15),
            ct)).EnsureSuccess();
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            WorkRoot.Delete(recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp folder
        }
        catch (UnauthorizedAccessException)
        {
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The version Directory.Packages.props (under <paramref name="repoRoot"/>) gives package <paramref name="id"/>.</summary>
    public static string CentralVersion(string repoRoot, string id) =>
        System.Xml.Linq.XDocument.Load(Path.Combine(repoRoot, "Directory.Packages.props"))
            .Descendants("PackageVersion")
            .Where(e => (string?)e.Attribute("Include") == id)
            .Select(e => (string)e.Attribute("Version")!)
            .Single();

    /// <summary>The folder holding Bifrost.Middleware.sln, found by walking up from the test binaries.</summary>
    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bifrost.Middleware.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Bifrost.Middleware.sln not found above {AppContext.BaseDirectory}.");
    }
}
