using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Bifrost.Middleware.Tests.Diagnostics;

/// <summary><c>AddHealthChecks().AddBifrost()</c>: the job store, the job workers and the file store, each a named check with tags.</summary>
public sealed class HealthCheckTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<FileBatchHost> StartAsync(Action<IServiceCollection>? services = null) =>
        FileBatchHost.StartAsync(services: s =>
        {
            s.AddHealthChecks().AddBifrost();
            services?.Invoke(s);
        });

    private static Task<HealthReport> CheckAsync(FileBatchHost host) =>
        host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(Ct);

    [Fact]
    public async Task A_running_gateway_is_healthy_with_three_named_and_tagged_checks()
    {
        await using var host = await StartAsync();

        var report = await CheckAsync(host);

        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.Equal(["bifrost_file_store", "bifrost_job_store", "bifrost_job_workers"], report.Entries.Keys.Order());
        Assert.All(report.Entries.Values, e => Assert.Equal(HealthStatus.Healthy, e.Status));
        Assert.Equal(["bifrost", "ready"], report.Entries["bifrost_job_store"].Tags.Order());
        Assert.Equal(["bifrost", "ready"], report.Entries["bifrost_file_store"].Tags.Order());
        Assert.Equal(["bifrost", "live"], report.Entries["bifrost_job_workers"].Tags.Order());
        Assert.Equal(0L, report.Entries["bifrost_job_store"].Data["unfinished_jobs"]);
        Assert.Equal(0, report.Entries["bifrost_job_workers"].Data["running_jobs"]);

        // The probe leaves nothing behind: no file in the listing, nothing in the directory.
        Assert.Empty(host.StoredFileNames());
    }

    [Fact]
    public async Task A_job_store_that_cannot_be_read_is_unhealthy_with_its_error()
    {
        await using var host = await StartAsync(s => s.AddSingleton<IJobStore>(sp => new UnreadableStore(new InMemoryJobStore(TimeProvider.System))));

        var report = await CheckAsync(host);

        Assert.Equal(HealthStatus.Unhealthy, report.Status);
        var store = report.Entries["bifrost_job_store"];
        Assert.Equal(HealthStatus.Unhealthy, store.Status);
        Assert.Contains("database is down", store.Description, StringComparison.Ordinal);
        Assert.IsType<InvalidOperationException>(store.Exception);
        Assert.Equal(HealthStatus.Healthy, report.Entries["bifrost_file_store"].Status);
        Assert.Equal(HealthStatus.Healthy, report.Entries["bifrost_job_workers"].Status);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // Unix file modes; the gateway's CI runs on Linux
    public async Task A_file_directory_that_cannot_be_written_is_unhealthy()
    {
        await using var host = await StartAsync();
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(host)).Entries["bifrost_file_store"].Status);

        // Read-only for its owner; root writes to a read-only directory anyway, so there the directory is replaced by a
        // plain file of the same name (every write into it then fails, as on a read-only mount).
        File.SetUnixFileMode(host.Directory, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        if (IsWritable(host.Directory))
        {
            File.SetUnixFileMode(host.Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(host.Directory, recursive: true);
            await File.WriteAllTextAsync(host.Directory, "not a directory", Ct);
        }

        try
        {
            var report = await CheckAsync(host);

            Assert.Equal(HealthStatus.Unhealthy, report.Status);
            var files = report.Entries["bifrost_file_store"];
            Assert.Equal(HealthStatus.Unhealthy, files.Status);
            Assert.StartsWith("The file store is not writable", files.Description, StringComparison.Ordinal);
            Assert.NotNull(files.Exception);
            Assert.Equal(HealthStatus.Healthy, report.Entries["bifrost_job_store"].Status);
        }
        finally
        {
            if (File.Exists(host.Directory))
            {
                File.Delete(host.Directory);
                Directory.CreateDirectory(host.Directory);
            }
            else
            {
                File.SetUnixFileMode(host.Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }
    }

    [Fact]
    public async Task Stopped_job_workers_are_unhealthy()
    {
        await using var host = await StartAsync();
        await host.Services.GetRequiredService<JobProcessor>().StopAsync(Ct);

        var workers = (await CheckAsync(host)).Entries["bifrost_job_workers"];

        Assert.Equal(HealthStatus.Unhealthy, workers.Status);
        Assert.Contains("stopped", workers.Description, StringComparison.Ordinal);
    }

    private static bool IsWritable(string directory)
    {
        var probe = Path.Combine(directory, "probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            File.WriteAllText(probe, "x");
            File.Delete(probe);
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private sealed class UnreadableStore(IJobStore inner) : DelegatingJobStore(inner)
    {
        public override ValueTask<long> CountUnfinishedAsync(CancellationToken cancellationToken) =>
            ValueTask.FromException<long>(new InvalidOperationException("database is down"));
    }
}
