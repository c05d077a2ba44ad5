using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;

namespace Bifrost.Middleware.Sqlite.Tests.Infrastructure;

/// <summary>
/// The sample host (<c>samples/Bifrost.Sample</c>) as a real child process: <c>dotnet Bifrost.Sample.dll --urls
/// http://127.0.0.1:PORT</c>, configured by environment variables, killed (SIGKILL, by its PID) on demand and always on
/// dispose.
/// </summary>
internal sealed class SampleHostProcess : IAsyncDisposable
{
    private static readonly SemaphoreSlim BuildLock = new(1, 1);
    private static string? s_builtDll;
    private readonly Process _process;
    private readonly StringBuilder _output;

    private SampleHostProcess(Process process, StringBuilder output, int port)
    {
        _process = process;
        _output = output;
        Port = port;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/openai/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public int Port { get; }

    public int ProcessId => _process.Id;

    /// <summary>A client whose base address is the gateway's mount point (<c>/openai/</c>).</summary>
    public HttpClient Client { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>What the host printed so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.Length <= 8000 ? _output.ToString() : "...\n" + _output.ToString()[^8000..];
            }
        }
    }

    /// <summary>The repository root: the first directory above the test assembly that holds Bifrost.Middleware.sln.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Builds the sample if its output is missing (normally the solution build, or this project's reference, made it).</summary>
    public static async Task<string> EnsureBuiltAsync(CancellationToken cancellationToken)
    {
        if (Environment.GetEnvironmentVariable("BIFROST_SAMPLE_DLL") is { Length: > 0 } chosen)
        {
            return chosen; // e.g. another build of the sample, to compare measurements
        }

        await BuildLock.WaitAsync(cancellationToken);
        try
        {
            if (s_builtDll is not null)
            {
                return s_builtDll;
            }

            var configuration = typeof(SampleHostProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "Configuration")?.Value ?? "Debug";
            var project = Path.Combine(RepoRoot, "samples", "Bifrost.Sample", "Bifrost.Sample.csproj");
            var dll = Path.Combine(RepoRoot, "samples", "Bifrost.Sample", "bin", configuration, "net10.0", "Bifrost.Sample.dll");
            if (!File.Exists(dll))
            {
                var info = Start("dotnet", RepoRoot, ["build", project, "-c", configuration, "-nologo", "-v", "q"], new Dictionary<string, string>
                {
                    ["MSBUILDDISABLENODEREUSE"] = "1",
                    ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0",
                });
                var output = new StringBuilder();
                using var build = Process.Start(info) ?? throw new InvalidOperationException("dotnet build did not start");
                build.OutputDataReceived += (_, e) => Append(output, e.Data);
                build.ErrorDataReceived += (_, e) => Append(output, e.Data);
                build.BeginOutputReadLine();
                build.BeginErrorReadLine();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromMinutes(5));
                try
                {
                    await build.WaitForExitAsync(timeout.Token);
                }
                finally
                {
                    Kill(build);
                }

                if (build.ExitCode != 0 || !File.Exists(dll))
                {
                    throw new InvalidOperationException($"Building the sample failed ({build.ExitCode}):\n{output}");
                }
            }

            return s_builtDll = dll;
        }
        finally
        {
            BuildLock.Release();
        }
    }

    /// <summary>Starts the host on a free loopback port with <paramref name="settings"/> as environment variables and waits until <c>/health</c> answers.</summary>
    public static async Task<SampleHostProcess> StartAsync(IReadOnlyDictionary<string, string> settings, CancellationToken cancellationToken)
    {
        var dll = await EnsureBuiltAsync(cancellationToken);
        var port = FreePort();
        var environment = new Dictionary<string, string>(settings)
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
        };

        // The working directory (the content root of `dotnet app.dll`) is the build output: appsettings.json is there.
        var info = Start("dotnet", Path.GetDirectoryName(dll)!, [dll, "--urls", $"http://127.0.0.1:{port}"], environment);
        var output = new StringBuilder();
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var host = new SampleHostProcess(process, output, port);
        try
        {
            await host.WaitHealthyAsync(TimeSpan.FromSeconds(45), cancellationToken);
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <summary><c>kill -9</c>: no shutdown hooks, no lease handed back, nothing flushed.</summary>
    public void KillHard()
    {
        Kill(_process);
    }

    public async ValueTask DisposeAsync()
    {
        Kill(_process);
        Client.Dispose();
        _process.Dispose();
        await Task.CompletedTask;
    }

    private async Task WaitHealthyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The sample host exited with {_process.ExitCode} before it answered:\n{Output}");
            }

            try
            {
                using var response = await probe.GetAsync(new Uri($"http://127.0.0.1:{Port}/health"), cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }

            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"The sample host did not answer /health within {timeout.TotalSeconds:F0}s:\n{Output}");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private static ProcessStartInfo Start(string fileName, string workingDirectory, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // The test platform's and MSBuild's variables are not for the child; neither are URL settings (--urls decides).
        foreach (var key in info.Environment.Keys.ToList())
        {
            if (key.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("TESTINGPLATFORM", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("Bifrost__", StringComparison.OrdinalIgnoreCase)
                || key.Equals("ASPNETCORE_URLS", StringComparison.OrdinalIgnoreCase)
                || key.Equals("DOTNET_URLS", StringComparison.OrdinalIgnoreCase)
                || key.Equals("URLS", StringComparison.OrdinalIgnoreCase))
            {
                info.Environment.Remove(key);
            }
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        return info;
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already gone
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    private static string FindRepoRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Bifrost.Middleware.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"Bifrost.Middleware.sln not found above {AppContext.BaseDirectory}.");
    }
}
