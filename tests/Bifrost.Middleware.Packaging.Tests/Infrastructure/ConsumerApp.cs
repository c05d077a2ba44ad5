using System.Diagnostics;
using System.Security;
using System.Text;
using System.Text.RegularExpressions;

namespace Bifrost.Middleware.Packaging.Tests.Infrastructure;

/// <summary>
/// A throwaway ASP.NET Core app, outside the repo, that takes Bifrost.Middleware as a package from the local feed:
/// its own nuget.config, an empty packages folder of its own, and empty Directory.*.props/targets so that nothing
/// of the repo's (or of any folder above) applies to it.
/// </summary>
public sealed partial class ConsumerApp
{
    private const string ListeningMarker = "consumer-listening:";

    private ConsumerApp(string directory, string packagesDirectory)
    {
        Directory = directory;
        PackagesDirectory = packagesDirectory;
    }

    public string Directory { get; }

    /// <summary>The consumer's own global-packages folder (restore's <c>--packages</c>).</summary>
    public string PackagesDirectory { get; }

    public string DllPath => Path.Combine(Directory, "bin", "Release", "net10.0", "Consumer.dll");

    /// <summary>Writes the consumer's files under <paramref name="root"/>.</summary>
    /// <param name="root">A temp folder of its own.</param>
    /// <param name="feed">The local folder holding the .nupkg.</param>
    /// <param name="version">The exact package version to reference.</param>
    /// <param name="fallbackPackagesFolder">
    /// A read-only fallback for the package's own dependencies (the machine's global-packages folder), so that
    /// restore does not download again what the repo's restore already has; null to download them.
    /// </param>
    public static ConsumerApp Write(string root, string feed, string version, string? fallbackPackagesFolder)
    {
        var directory = Path.Combine(root, "consumer");
        var packages = Path.Combine(root, "consumer-packages");
        System.IO.Directory.CreateDirectory(directory);
        System.IO.Directory.CreateDirectory(packages);

        WriteIsolation(directory, feed, packages, fallbackPackagesFolder);

        File.WriteAllText(Path.Combine(directory, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk.Web">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <!-- a vulnerability advisory published later must not turn this test red -->
                <NuGetAudit>false</NuGetAudit>
                <InvariantGlobalization>true</InvariantGlobalization>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Bifrost.Middleware" Version="[{version}]" />
              </ItemGroup>
            </Project>
            """);

        File.WriteAllText(Path.Combine(directory, "Program.cs"), $$"""
            using Bifrost.Middleware;

            var builder = WebApplication.CreateBuilder(args);
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddBifrost(options =>
            {
                options.DefaultProvider = "local";
                options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"] };
            });

            var app = builder.Build();
            app.MapBifrost("/openai");
            await app.StartAsync();
            Console.WriteLine("{{ListeningMarker}} " + app.Urls.First());
            await app.WaitForShutdownAsync();
            """);

        return new ConsumerApp(directory, packages);
    }

    /// <summary>
    /// Makes <paramref name="directory"/> a place for projects that take packages from <paramref name="feed"/> as a user
    /// would: empty Directory.* files (nothing of the repo's applies) and a nuget.config with the local feed and
    /// <paramref name="packages"/> as the global-packages folder (<paramref name="fallbackPackagesFolder"/> read-only beside it).
    /// </summary>
    public static void WriteIsolation(string directory, string feed, string packages, string? fallbackPackagesFolder)
    {
        // Stop MSBuild's upward search for these files here.
        foreach (var name in (string[])["Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "Directory.Packages.targets"])
        {
            File.WriteAllText(Path.Combine(directory, name), "<Project />\n");
        }

        // The local feed is added to the sources configured for this machine (user/machine NuGet.Config, e.g. nuget.org),
        // which remain available for the package's dependencies.
        var fallback = fallbackPackagesFolder is null
            ? string.Empty
            : $"""
                <fallbackPackageFolders>
                  <add key="machine-global-packages" value="{SecurityElement.Escape(fallbackPackagesFolder)}" />
                </fallbackPackageFolders>
              """;
        File.WriteAllText(Path.Combine(directory, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="bifrost-local-feed" value="{SecurityElement.Escape(feed)}" />
              </packageSources>
            {fallback}
              <config>
                <add key="globalPackagesFolder" value="{SecurityElement.Escape(packages)}" />
              </config>
            </configuration>
            """);
    }

    public Task<ProcessResult> RestoreAsync(CancellationToken cancellationToken) =>
        ChildProcess.DotnetAsync(Directory, ["restore", "--packages", PackagesDirectory, "-nodeReuse:false"], TimeSpan.FromMinutes(3), cancellationToken, OwnPackages);

    public Task<ProcessResult> BuildAsync(CancellationToken cancellationToken) =>
        ChildProcess.DotnetAsync(Directory, ["build", "-c", "Release", "--no-restore", "-p:UseSharedCompilation=false", "-nodeReuse:false"], TimeSpan.FromMinutes(3), cancellationToken, OwnPackages);

    /// <summary>NUGET_PACKAGES (which would win over nuget.config) set to the consumer's own packages folder.</summary>
    private Dictionary<string, string?> OwnPackages => new() { ["NUGET_PACKAGES"] = PackagesDirectory };

    /// <summary>Starts the built app on a free loopback port (chosen by the server: port 0) and waits until it listens.</summary>
    public async Task<RunningConsumer> StartAsync(CancellationToken cancellationToken)
    {
        var info = ChildProcess.StartInfo("dotnet", Directory, [DllPath, "--urls", "http://127.0.0.1:0"]);
        var output = new StringBuilder();
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            ChildProcess.Append(output, e.Data);
            if (e.Data is { } line && ListeningLine().Match(line) is { Success: true } match)
            {
                listening.TrySetResult(new Uri(match.Groups[1].Value));
            }
        };
        process.ErrorDataReceived += (_, e) => ChildProcess.Append(output, e.Data);
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("The consumer app exited before it listened."));
        process.Start();
        var running = new RunningConsumer(process, output);
        try
        {
            process.StandardInput.Close();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var address = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
            running.Address = address;
            return running;
        }
        catch (Exception e)
        {
            running.Dispose();
            throw new InvalidOperationException($"The consumer app did not start ({e.Message}):\n{ProcessResult.Tail(running.Output)}", e);
        }
    }

    [GeneratedRegex(@"^consumer-listening:\s*(http://\S+)")]
    private static partial Regex ListeningLine();
}

/// <summary>The consumer app's process; disposing it kills it (by its id, with its children).</summary>
public sealed class RunningConsumer(Process process, StringBuilder output) : IDisposable
{
    public int ProcessId { get; } = process.Id;

    public Uri Address { get; internal set; } = null!;

    public string Output => ChildProcess.Snapshot(output);

    public void Dispose()
    {
        ChildProcess.Kill(process);
        process.Dispose();
    }
}
