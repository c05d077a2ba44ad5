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

    private ConsumerApp(string directory, string packagesDirectory, string name = "Consumer")
    {
        Directory = directory;
        PackagesDirectory = packagesDirectory;
        Name = name;
    }

    /// <summary>The project's name (its .csproj and its dll).</summary>
    public string Name { get; }

    public string Directory { get; }

    /// <summary>The consumer's own global-packages folder (restore's <c>--packages</c>).</summary>
    public string PackagesDirectory { get; }

    public string DllPath => Path.Combine(Directory, "bin", "Release", "net10.0", Name + ".dll");

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
        var consumer = WriteProject(root, "Consumer", feed, fallbackPackagesFolder, ProjectFile("Microsoft.NET.Sdk.Web", new Dictionary<string, string> { ["Bifrost.Middleware"] = version }, treatWarningsAsErrors: true), new Dictionary<string, string>());
        var directory = consumer.Directory;
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

        return consumer;
    }

    /// <summary>
    /// Writes a project of its own under <paramref name="root"/>/<paramref name="name"/>: the project file, the
    /// <paramref name="files"/> (relative path → content), a nuget.config with the local feed and a packages folder of its
    /// own, and empty Directory.*.props/targets so that nothing of the repo's (or of any folder above) applies to it.
    /// </summary>
    /// <param name="root">A temp folder of its own.</param>
    /// <param name="name">The project's name (folder, .csproj, dll).</param>
    /// <param name="feed">The local folder holding the .nupkg files.</param>
    /// <param name="fallbackPackagesFolder">
    /// A read-only fallback for the packages' own dependencies (the machine's global-packages folder), so that restore
    /// does not download again what the repo's restore already has; null to download them.
    /// </param>
    /// <param name="projectFile">The .csproj's content (see <see cref="ProjectFile"/>).</param>
    /// <param name="files">The other files, by path relative to the project folder.</param>
    public static ConsumerApp WriteProject(string root, string name, string feed, string? fallbackPackagesFolder, string projectFile, IReadOnlyDictionary<string, string> files)
    {
        var directory = Path.Combine(root, name.ToLowerInvariant());
        var packages = Path.Combine(root, name.ToLowerInvariant() + "-packages");
        System.IO.Directory.CreateDirectory(directory);
        System.IO.Directory.CreateDirectory(packages);

        WriteIsolation(directory, feed, packages, fallbackPackagesFolder);

        File.WriteAllText(Path.Combine(directory, name + ".csproj"), projectFile);
        foreach (var (path, content) in files)
        {
            var full = Path.Combine(directory, path);
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, content);
        }

        return new ConsumerApp(directory, packages, name);
    }

    /// <summary>
    /// A project file as <c>dotnet new web</c> (<paramref name="sdk"/> <c>Microsoft.NET.Sdk.Web</c>) or <c>dotnet new
    /// console</c> (<c>Microsoft.NET.Sdk</c>, an exe) writes it, with <paramref name="packages"/> (id → exact version) as
    /// <c>dotnet add package</c> adds them. NuGet audit is off: an advisory published later must not turn a test red.
    /// </summary>
    public static string ProjectFile(string sdk, IReadOnlyDictionary<string, string> packages, bool treatWarningsAsErrors = false)
    {
        var exe = sdk == "Microsoft.NET.Sdk" ? "\n    <OutputType>Exe</OutputType>" : string.Empty;
        var warnings = treatWarningsAsErrors ? "\n    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>\n    <InvariantGlobalization>true</InvariantGlobalization>" : string.Empty;
        var references = string.Concat(packages.Select(p => $"\n    <PackageReference Include=\"{SecurityElement.Escape(p.Key)}\" Version=\"[{SecurityElement.Escape(p.Value)}]\" />"));
        return $"""
            <Project Sdk="{sdk}">
              <PropertyGroup>{exe}
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>{warnings}
                <NuGetAudit>false</NuGetAudit>
              </PropertyGroup>
              <ItemGroup>{references}
              </ItemGroup>
            </Project>
            """ + "\n";
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

    /// <summary>Starts the built app on a free loopback port (chosen by the server: port 0) and waits until it prints that it listens.</summary>
    public async Task<RunningConsumer> StartAsync(CancellationToken cancellationToken)
    {
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = Launch(["--urls", "http://127.0.0.1:0"], line =>
        {
            if (ListeningLine().Match(line) is { Success: true } match)
            {
                listening.TrySetResult(new Uri(match.Groups[1].Value));
            }
        }, () => listening.TrySetException(new InvalidOperationException("The consumer app exited before it listened.")));
        try
        {
            running.Address = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
            return running;
        }
        catch (Exception e)
        {
            running.Dispose();
            throw new InvalidOperationException($"The consumer app did not start ({e.Message}):\n{ProcessResult.Tail(running.Output)}", e);
        }
    }

    /// <summary>
    /// Starts the built app as a user runs an app whose Program.cs prints nothing of its own: on a free loopback port
    /// (given with <c>--urls</c>), ready once the port accepts connections.
    /// </summary>
    public async Task<RunningConsumer> StartOnFreePortAsync(CancellationToken cancellationToken)
    {
        var port = FreeLoopbackPort();
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = Launch(["--urls", $"http://127.0.0.1:{port}"], static _ => { }, () => exited.TrySetResult());
        running.Address = new Uri($"http://127.0.0.1:{port}");
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(TimeSpan.FromSeconds(60));
            while (true)
            {
                if (exited.Task.IsCompleted)
                {
                    throw new InvalidOperationException("The app exited before it listened.");
                }

                using var probe = new System.Net.Sockets.TcpClient();
                try
                {
                    await probe.ConnectAsync(System.Net.IPAddress.Loopback, port, deadline.Token);
                    return running;
                }
                catch (System.Net.Sockets.SocketException)
                {
                    await Task.Delay(200, deadline.Token);
                }
            }
        }
        catch (Exception e)
        {
            running.Dispose();
            throw new InvalidOperationException($"The app did not start ({e.Message}):\n{ProcessResult.Tail(running.Output)}", e);
        }
    }

    /// <summary>Runs the built program to its end (a console app), with <paramref name="arguments"/>.</summary>
    public Task<ProcessResult> RunAsync(IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancellationToken) =>
        ChildProcess.DotnetAsync(Directory, [DllPath, .. arguments], timeout, cancellationToken);

    /// <summary>Starts <c>dotnet {DllPath} {arguments}</c> with its output captured; each stdout line also goes to <paramref name="onLine"/>.</summary>
    private RunningConsumer Launch(IEnumerable<string> arguments, Action<string> onLine, Action onExit)
    {
        var info = ChildProcess.StartInfo("dotnet", Directory, [DllPath, .. arguments]);
        var output = new StringBuilder();
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            ChildProcess.Append(output, e.Data);
            if (e.Data is { } line)
            {
                onLine(line);
            }
        };
        process.ErrorDataReceived += (_, e) => ChildProcess.Append(output, e.Data);
        process.Exited += (_, _) => onExit();
        process.Start();
        var running = new RunningConsumer(process, output);
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return running;
    }

    /// <summary>The global-packages folder of this machine (NUGET_PACKAGES or NuGet.Config or ~/.nuget/packages), or null.</summary>
    public static async Task<string?> MachineGlobalPackagesFolderAsync(CancellationToken cancellationToken)
    {
        var result = await ChildProcess.DotnetAsync(Path.GetTempPath(), ["nuget", "locals", "global-packages", "--list"], TimeSpan.FromMinutes(1), cancellationToken);
        var match = Regex.Match(result.Output, @"global-packages:\s*(\S.*?)\s*$", RegexOptions.Multiline);
        return result.ExitCode == 0 && match.Success && System.IO.Directory.Exists(match.Groups[1].Value) ? match.Groups[1].Value : null;
    }

    /// <summary>A loopback port nothing listens on (bound, read, released).</summary>
    private static int FreeLoopbackPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
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
