using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
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
    public void Core_nuspec_declares_aspnetcore_as_framework_reference_and_only_its_justified_package_dependencies()
    {
        using var zip = ZipFile.OpenRead(package.NupkgPath);
        var metadata = Nuspec(zip);

        var frameworkGroup = Assert.Single(Element(metadata, "frameworkReferences").Elements(), e => e.Name.LocalName == "group");
        Assert.Equal(Tfm, (string?)frameworkGroup.Attribute("targetFramework"));
        Assert.Contains("Microsoft.AspNetCore.App", frameworkGroup.Elements().Select(e => (string?)e.Attribute("name")));

        // README "Dependencies of the core package" justifies each one; Microsoft.Extensions.Http.Resilience (and its Polly,
        // telemetry and compliance packages) is gone: the per-attempt timeout is the core's own.
        var dependencies = Dependencies(metadata);
        string[] expected = ["Microsoft.Extensions.AI", "Microsoft.Extensions.AI.Abstractions", "Microsoft.Extensions.Caching.Hybrid", "Microsoft.Extensions.VectorData.Abstractions", "Microsoft.ML.Tokenizers", "Microsoft.ML.Tokenizers.Data.Cl100kBase", "Microsoft.ML.Tokenizers.Data.O200kBase", "System.IO.Hashing"];
        Assert.Equal(expected, dependencies.Keys.Order(StringComparer.Ordinal));
        foreach (var id in expected)
        {
            Assert.Equal(CentralVersion(id), dependencies[id]);
        }

        var readme = File.ReadAllText(Path.Combine(package.RepoRoot, "README.md"));
        Assert.All(expected, id => Assert.Contains($"| `{id}` |", readme, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_package_has_its_own_description_readme_icon_release_notes_and_repository_commit()
    {
        Assert.Contains(PackedLibrary.PackageId, package.PackageIds);
        var icon = File.ReadAllBytes(Path.Combine(package.RepoRoot, "eng", "icon.png"));
        var size = PngSize(icon);
        Assert.True(size is not null, "eng/icon.png is not a PNG");
        Assert.Equal(size.Value.Width, size.Value.Height);
        Assert.InRange(size.Value.Width, 64, 512);
        var changelog = File.ReadAllText(Path.Combine(package.RepoRoot, "CHANGELOG.md"));
        Assert.Contains("## Unreleased", changelog, StringComparison.Ordinal);
        var descriptions = new Dictionary<string, string>(StringComparer.Ordinal);

        Assert.Multiple(package.PackageIds.Select(id => (Action)(() =>
        {
            using var zip = ZipFile.OpenRead(package.NupkgPathOf(id));
            var metadata = Nuspec(zip);
            Assert.Equal(id, Value(metadata, "id"));
            Assert.Equal(package.Version, Value(metadata, "version"));
            var description = Value(metadata, "description");
            // the core says what it is; every other package says what it adds to it
            Assert.True(id == PackedLibrary.PackageId || description.Contains("Bifrost.Middleware", StringComparison.Ordinal), $"{id}: {description}");
            lock (descriptions)
            {
                Assert.True(descriptions.TryAdd(description, id), $"{id} has the description of {descriptions.GetValueOrDefault(description)}");
            }

            Assert.Equal("Apache-2.0", Element(metadata, "license").Value);
            Assert.False(string.IsNullOrWhiteSpace(Value(metadata, "authors")));

            // its own README (src/<id>/README.md), not the repository's
            Assert.Equal("README.md", Value(metadata, "readme"));
            var ownReadme = Path.Combine(package.RepoRoot, "src", id, "README.md");
            Assert.True(File.Exists(ownReadme), $"{id} has no README.md of its own");
            Assert.Equal(File.ReadAllText(ownReadme).ReplaceLineEndings(), ReadEntry(zip, "README.md").ReplaceLineEndings());
            Assert.StartsWith($"# {id}", ReadEntry(zip, "README.md"), StringComparison.Ordinal);

            Assert.Equal("icon.png", Value(metadata, "icon"));
            Assert.Equal(icon, ReadBytes(zip, "icon.png"));
            Assert.Equal($"{Value(metadata, "projectUrl")}/blob/main/CHANGELOG.md", Regex.Match(Value(metadata, "releaseNotes"), @"https://\S+").Value);

            var repository = Element(metadata, "repository");
            Assert.Equal("git", (string?)repository.Attribute("type"));
            Assert.StartsWith("https://", (string?)repository.Attribute("url") ?? string.Empty, StringComparison.Ordinal);
            Assert.Matches("^[0-9a-f]{40}$", (string?)repository.Attribute("commit") ?? string.Empty);

            var entries = zip.Entries.Select(e => e.FullName).ToList();
            Assert.Contains($"lib/{Tfm}/{id}.dll", entries);
            Assert.Contains($"lib/{Tfm}/{id}.xml", entries);
            Assert.DoesNotContain(entries, e => e.EndsWith(".pdb", StringComparison.OrdinalIgnoreCase));

            // Packages of this repository depend on each other at exactly this version.
            Assert.All(Dependencies(metadata).Where(d => d.Key.StartsWith("Bifrost.", StringComparison.Ordinal)), d => Assert.Equal(package.Version, d.Value));
        })).ToArray());
    }

    [Fact]
    public void Every_package_has_a_symbol_package_with_a_deterministic_source_linked_pdb()
    {
        Assert.Multiple(package.PackageIds.Select(id => (Action)(() =>
        {
            using var zip = ZipFile.OpenRead(package.NupkgPathOf(id));
            var commit = (string)Element(Nuspec(zip), "repository").Attribute("commit")!;
            var snupkg = Path.ChangeExtension(package.NupkgPathOf(id), ".snupkg");
            Assert.True(File.Exists(snupkg), $"missing {snupkg}");
            using var symbols = ZipFile.OpenRead(snupkg);

            // The dll was built deterministically (its debug directory has the Reproducible entry) and names this PDB.
            using var pe = new PEReader(new MemoryStream(ReadBytes(zip, $"lib/{Tfm}/{id}.dll")));
            var debug = pe.ReadDebugDirectory();
            Assert.Contains(debug, e => e.Type == DebugDirectoryEntryType.Reproducible);
            Assert.Single(debug, e => e.Type == DebugDirectoryEntryType.CodeView);

            using var pdb = MetadataReaderProvider.FromPortablePdbStream(new MemoryStream(ReadBytes(symbols, $"lib/{Tfm}/{id}.pdb")));
            var reader = pdb.GetMetadataReader();
            // Source paths are normalized (/_/), so the build is the same wherever it ran.
            var documents = reader.Documents.Select(d => reader.GetString(reader.GetDocument(d).Name)).ToList();
            Assert.Contains(documents, d => d.StartsWith($"/_/src/{id}/", StringComparison.Ordinal));
            Assert.DoesNotContain(documents, d => d.StartsWith(package.RepoRoot, StringComparison.Ordinal));

            // Source Link: every source of the repository maps to its raw URL at the commit the nuspec names.
            var sourceLink = reader.GetCustomDebugInformation(EntityHandle.ModuleDefinition)
                .Select(reader.GetCustomDebugInformation)
                .Single(c => reader.GetGuid(c.Kind) == SourceLinkKind);
            using var json = JsonDocument.Parse(reader.GetBlobBytes(sourceLink.Value));
            var map = json.RootElement.GetProperty("documents").EnumerateObject().Single();
            Assert.Equal("/_/*", map.Name);
            Assert.Equal($"https://raw.githubusercontent.com/bifrost-middleware/bifrost-middleware/{commit}/*", map.Value.GetString());
        })).ToArray());
    }

    [Fact]
    public void No_package_but_a_test_framework_specific_one_depends_on_a_test_framework()
    {
        string[] frameworks = ["xunit", "nunit", "mstest", "Microsoft.NET.Test.Sdk", "Microsoft.Testing."];
        Assert.Multiple(package.PackageIds.Where(id => !id.EndsWith(".XunitV3", StringComparison.Ordinal)).Select(id => (Action)(() =>
        {
            using var zip = ZipFile.OpenRead(package.NupkgPathOf(id));
            var dependencies = Dependencies(Nuspec(zip)).Keys;
            Assert.DoesNotContain(dependencies, d => frameworks.Any(f => d.StartsWith(f, StringComparison.OrdinalIgnoreCase)));
        })).ToArray());
    }

    [Fact]
    public async Task Consumer_app_restores_the_package_from_a_local_folder_and_serves_chat_completions()
    {
        var ct = TestContext.Current.CancellationToken;
        var output = TestContext.Current.TestOutputHelper;
        var consumer = ConsumerApp.Write(package.WorkRoot.FullName, package.FeedDirectory, package.Version, await ConsumerApp.MachineGlobalPackagesFolderAsync(ct));

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

    private string CentralVersion(string id) => PackedLibrary.CentralVersion(package.RepoRoot, id);

    /// <summary>The Source Link custom debug information of a portable PDB.</summary>
    private static readonly Guid SourceLinkKind = new("CC110556-A091-4D38-9FEC-25AB9A351A6A");

    /// <summary>The net10.0 group's dependencies: id → version.</summary>
    private static Dictionary<string, string?> Dependencies(XElement metadata)
    {
        var group = Assert.Single(Element(metadata, "dependencies").Elements(), e => e.Name.LocalName == "group");
        Assert.Equal(Tfm, (string?)group.Attribute("targetFramework"));
        return group.Elements().ToDictionary(e => (string)e.Attribute("id")!, e => (string?)e.Attribute("version"));
    }

    /// <summary>Width and height from a PNG's IHDR chunk, or null if it is no PNG.</summary>
    private static (int Width, int Height)? PngSize(byte[] png) =>
        png.Length > 24 && png.AsSpan(0, 8).SequenceEqual((byte[])[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A])
            ? (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)))
            : null;

    private static byte[] ReadBytes(ZipArchive zip, string name)
    {
        using var stream = zip.GetEntry(name)?.Open() ?? throw new InvalidOperationException($"no {name} in the package");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

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
