using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Bifrost.Middleware.Packaging.Tests.Infrastructure;

namespace Bifrost.Middleware.Packaging.Tests;

/// <summary>
/// What a user gets from NuGet: the package built by <c>dotnet pack</c> (metadata, README, XML docs, symbols,
/// dependencies), and an app that restores it from a local folder and serves the gateway.
/// </summary>
public sealed class PackageTests(PackedLibrary package)
{
    private const string Tfm = "net10.0";

    [Fact]
    public void Nupkg_has_readme_xml_docs_license_and_repository_metadata()
    {
        Assert.True(File.Exists(package.NupkgPath), $"missing {package.NupkgPath}; pack wrote: {string.Join(", ", Directory.GetFiles(package.FeedDirectory).Select(Path.GetFileName))}");
        using var zip = ZipFile.OpenRead(package.NupkgPath);
        var entries = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);

        Assert.Contains("README.md", entries);
        Assert.Contains($"lib/{Tfm}/Bifrost.Middleware.dll", entries);
        Assert.Contains($"lib/{Tfm}/Bifrost.Middleware.xml", entries);
        Assert.DoesNotContain(entries, e => e.EndsWith(".pdb", StringComparison.OrdinalIgnoreCase)); // symbols go to the .snupkg

        var readme = ReadEntry(zip, "README.md");
        Assert.Equal(File.ReadAllText(Path.Combine(package.RepoRoot, "src", "Bifrost.Middleware", "README.md")).ReplaceLineEndings(), readme.ReplaceLineEndings());
        Assert.Contains("AddBifrost", readme, StringComparison.Ordinal);

        var docs = XDocument.Parse(ReadEntry(zip, $"lib/{Tfm}/Bifrost.Middleware.xml"));
        var members = docs.Descendants("member").Select(m => (string?)m.Attribute("name")).ToList();
        Assert.Contains(members, m => m?.StartsWith("M:Microsoft.Extensions.DependencyInjection.BifrostServiceCollectionExtensions.AddBifrost", StringComparison.Ordinal) == true);
        Assert.Contains(members, m => m?.StartsWith("M:Microsoft.AspNetCore.Builder.BifrostEndpointRouteBuilderExtensions.MapBifrost", StringComparison.Ordinal) == true);

        var metadata = Nuspec(zip);
        Assert.Equal("Bifrost.Middleware", Value(metadata, "id"));
        Assert.Equal(package.Version, Value(metadata, "version"));
        Assert.Equal("README.md", Value(metadata, "readme"));
        var license = Element(metadata, "license");
        Assert.Equal("expression", (string?)license.Attribute("type"));
        Assert.Equal("Apache-2.0", license.Value);
        Assert.False(string.IsNullOrWhiteSpace(Value(metadata, "description")));
        Assert.False(string.IsNullOrWhiteSpace(Value(metadata, "authors")));
        var tags = Value(metadata, "tags").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("openai", tags);
        Assert.Contains("aspnetcore", tags);
        Assert.StartsWith("https://", Value(metadata, "projectUrl"), StringComparison.Ordinal);
        var repository = Element(metadata, "repository");
        Assert.Equal("git", (string?)repository.Attribute("type"));
        Assert.StartsWith("https://", (string?)repository.Attribute("url") ?? string.Empty, StringComparison.Ordinal);
    }

    [Fact]
    public void Nuspec_declares_aspnetcore_as_framework_reference_and_resilience_as_package_dependency()
    {
        using var zip = ZipFile.OpenRead(package.NupkgPath);
        var metadata = Nuspec(zip);

        var frameworkGroup = Assert.Single(Element(metadata, "frameworkReferences").Elements(), e => e.Name.LocalName == "group");
        Assert.Equal(Tfm, (string?)frameworkGroup.Attribute("targetFramework"));
        Assert.Contains("Microsoft.AspNetCore.App", frameworkGroup.Elements().Select(e => (string?)e.Attribute("name")));

        var dependencyGroup = Assert.Single(Element(metadata, "dependencies").Elements(), e => e.Name.LocalName == "group");
        Assert.Equal(Tfm, (string?)dependencyGroup.Attribute("targetFramework"));
        var dependencies = dependencyGroup.Elements().ToDictionary(e => (string)e.Attribute("id")!, e => (string?)e.Attribute("version"));
        Assert.Equal(CentralVersion("Microsoft.Extensions.Http.Resilience"), dependencies.GetValueOrDefault("Microsoft.Extensions.Http.Resilience"));
        // The shared framework is not a package; test-only packages never leak into the library's dependencies.
        Assert.DoesNotContain(dependencies.Keys, id => id.StartsWith("Microsoft.AspNetCore.", StringComparison.Ordinal) || id.StartsWith("xunit", StringComparison.OrdinalIgnoreCase));

        Assert.True(File.Exists(package.SnupkgPath), $"missing {package.SnupkgPath}");
        using var symbols = ZipFile.OpenRead(package.SnupkgPath);
        Assert.Contains($"lib/{Tfm}/Bifrost.Middleware.pdb", symbols.Entries.Select(e => e.FullName));
    }

    [Fact]
    public async Task Consumer_app_restores_the_package_from_a_local_folder_and_serves_chat_completions()
    {
        var ct = TestContext.Current.CancellationToken;
        var output = TestContext.Current.TestOutputHelper;
        var consumer = ConsumerApp.Write(package.WorkRoot.FullName, package.FeedDirectory, package.Version, await MachineGlobalPackagesFolderAsync(ct));

        var restore = (await consumer.RestoreAsync(ct)).EnsureSuccess();
        output?.WriteLine($"restore: {restore.Elapsed.TotalSeconds:F1}s");
        // It came from the local feed into the consumer's own packages folder, and nowhere else.
        Assert.True(Directory.Exists(Path.Combine(consumer.PackagesDirectory, "bifrost.middleware", package.Version)), restore.Output);

        var build = (await consumer.BuildAsync(ct)).EnsureSuccess();
        output?.WriteLine($"build: {build.Elapsed.TotalSeconds:F1}s");
        Assert.True(File.Exists(Path.Combine(consumer.Directory, "bin", "Release", Tfm, "Bifrost.Middleware.dll")), build.Output);

        using var app = await consumer.StartAsync(ct);
        output?.WriteLine($"consumer pid {app.ProcessId} at {app.Address}");
        using var http = new HttpClient { BaseAddress = app.Address, Timeout = TimeSpan.FromSeconds(30) };

        using var response = await http.PostAsync(
            "/openai/v1/chat/completions",
            new StringContent("""{"model":"local/echo","messages":[{"role":"user","content":"Hello from a packaged gateway"}]}""", Encoding.UTF8, "application/json"),
            ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}\n{app.Output}");
        using var json = JsonDocument.Parse(body);
        Assert.Equal("chat.completion", json.RootElement.GetProperty("object").GetString());
        Assert.Equal("Hello from a packaged gateway", json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("local", json.RootElement.GetProperty("extra_fields").GetProperty("provider").GetString());

        var models = await http.GetFromJsonAsync<JsonElement>("/openai/v1/models", ct);
        Assert.Contains("local/echo", models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
    }

    /// <summary>The global-packages folder of this machine (NUGET_PACKAGES or NuGet.Config or ~/.nuget/packages), or null.</summary>
    private static async Task<string?> MachineGlobalPackagesFolderAsync(CancellationToken cancellationToken)
    {
        var result = await ChildProcess.DotnetAsync(Path.GetTempPath(), ["nuget", "locals", "global-packages", "--list"], TimeSpan.FromMinutes(1), cancellationToken);
        var match = Regex.Match(result.Output, @"global-packages:\s*(\S.*?)\s*$", RegexOptions.Multiline);
        return result.ExitCode == 0 && match.Success && Directory.Exists(match.Groups[1].Value) ? match.Groups[1].Value : null;
    }

    private string CentralVersion(string id) =>
        XDocument.Load(Path.Combine(package.RepoRoot, "Directory.Packages.props"))
            .Descendants("PackageVersion")
            .Where(e => (string?)e.Attribute("Include") == id)
            .Select(e => (string)e.Attribute("Version")!)
            .Single();

    private static XElement Nuspec(ZipArchive zip)
    {
        var entry = Assert.Single(zip.Entries, e => !e.FullName.Contains('/', StringComparison.Ordinal) && e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        using var stream = entry.Open();
        return Element(XDocument.Load(stream).Root!, "metadata");
    }

    private static string ReadEntry(ZipArchive zip, string name)
    {
        using var reader = new StreamReader(zip.GetEntry(name)!.Open());
        return reader.ReadToEnd();
    }

    /// <summary>A child element by local name (the nuspec namespace varies with the features used).</summary>
    private static XElement Element(XElement parent, string name) =>
        parent.Elements().SingleOrDefault(e => e.Name.LocalName == name) ?? throw new InvalidOperationException($"<{parent.Name.LocalName}> has no <{name}>:\n{parent}");

    private static string Value(XElement parent, string name) => Element(parent, name).Value;
}
