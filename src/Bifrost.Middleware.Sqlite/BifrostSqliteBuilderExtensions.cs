using Bifrost.Middleware;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.RequestLog;
using Bifrost.Middleware.Sqlite;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the SQLite job store, governance store and request log.</summary>
public static class BifrostSqliteBuilderExtensions
{
    /// <summary>
    /// Keeps the gateway's jobs (async inference, batches) in a SQLite database file, so they survive restarts and
    /// crashes: replaces the default in-memory <see cref="IJobStore"/>. Files (batch input and output) stay in the
    /// durable file-system store (<c>Bifrost:Files:Directory</c>).
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="connectionStringOrPath">
    /// A file path such as <c>App_Data/bifrost/jobs.db</c>, or a Microsoft.Data.Sqlite connection string
    /// (<c>Data Source=...</c>). A relative path is resolved against the host's content root (else the app's base
    /// directory); the directory is created when missing.
    /// </param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UseSqliteJobStore(this IBifrostBuilder builder, string connectionStringOrPath)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionStringOrPath);

        // Fails here, at registration, for an in-memory or read-only database rather than at the first job.
        _ = SqliteJobStore.Normalize(connectionStringOrPath, baseDirectory: null);

        var services = builder.Services;
        services.RemoveAll<SqliteJobStore>();
        services.AddSingleton(sp =>
        {
            var root = sp.GetService<IHostEnvironment>()?.ContentRootPath ?? AppContext.BaseDirectory;
            var connectionString = SqliteJobStore.Normalize(connectionStringOrPath, root).ToString();
            return new SqliteJobStore(connectionString, sp.GetService<TimeProvider>() ?? TimeProvider.System, sp.GetService<ILogger<SqliteJobStore>>());
        });

        // Replace whatever is registered (AddBifrost's in-memory default uses TryAdd, so a later AddBifrost keeps this one).
        services.RemoveAll<IJobStore>();
        services.AddSingleton<IJobStore>(static sp => sp.GetRequiredService<SqliteJobStore>());
        return builder;
    }

    /// <summary>
    /// Keeps governance's data in a SQLite database file, so it survives restarts: the virtual keys, teams and customers
    /// created through the admin API, and the usage ledger (one record per settled request, written in the background).
    /// Replaces the default in-memory governance store. For one instance; several instances share limits and keys
    /// through PostgreSQL instead.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="connectionStringOrPath">
    /// A file path such as <c>App_Data/bifrost/governance.db</c> (the job store's file may be used too), or a
    /// Microsoft.Data.Sqlite connection string (<c>Data Source=...</c>). A relative path is resolved against the host's
    /// content root (else the app's base directory); the directory is created when missing.
    /// </param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UseSqliteGovernanceStore(this IBifrostBuilder builder, string connectionStringOrPath)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionStringOrPath);

        // Fails here, at registration, for an in-memory or read-only database.
        _ = SqliteJobStore.Normalize(connectionStringOrPath, baseDirectory: null);

        var services = builder.Services;
        services.RemoveAll<SqliteGovernanceStore>();
        services.AddSingleton(sp =>
        {
            var root = sp.GetService<IHostEnvironment>()?.ContentRootPath ?? AppContext.BaseDirectory;
            var connectionString = SqliteJobStore.Normalize(connectionStringOrPath, root).ToString();
            return new SqliteGovernanceStore(connectionString, sp.GetService<TimeProvider>() ?? TimeProvider.System, sp.GetService<ILogger<SqliteGovernanceStore>>());
        });

        // Replace whatever is registered (AddBifrost's in-memory default uses TryAdd, so a later AddBifrost keeps this one).
        services.RemoveAll<IGovernanceStore>();
        services.AddSingleton<IGovernanceStore>(static sp => sp.GetRequiredService<SqliteGovernanceStore>());
        return builder;
    }

    /// <summary>
    /// Keeps the request log in a SQLite database file, so it survives restarts: replaces the default in-memory ring
    /// buffer. Retention still applies (<c>Bifrost:RequestLog:Retention</c> by age, <c>MaxEntries</c> by count, swept every
    /// minute). For one instance.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="connectionStringOrPath">
    /// A file path such as <c>App_Data/bifrost/requests.db</c> (the job or governance store's file may be used too), or a
    /// Microsoft.Data.Sqlite connection string (<c>Data Source=...</c>). A relative path is resolved against the host's
    /// content root (else the app's base directory); the directory is created when missing.
    /// </param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UseSqliteRequestLog(this IBifrostBuilder builder, string connectionStringOrPath)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionStringOrPath);

        // Fails here, at registration, for an in-memory or read-only database.
        _ = SqliteJobStore.Normalize(connectionStringOrPath, baseDirectory: null);

        var services = builder.Services;
        services.RemoveAll<SqliteRequestLogStore>();
        services.AddSingleton(sp =>
        {
            var root = sp.GetService<IHostEnvironment>()?.ContentRootPath ?? AppContext.BaseDirectory;
            var connectionString = SqliteJobStore.Normalize(connectionStringOrPath, root).ToString();
            return new SqliteRequestLogStore(connectionString, sp.GetService<TimeProvider>() ?? TimeProvider.System, sp.GetService<ILogger<SqliteRequestLogStore>>());
        });

        // Replace whatever is registered (AddBifrost's in-memory default uses TryAdd, so a later AddBifrost keeps this one).
        services.RemoveAll<IRequestLogStore>();
        services.AddSingleton<IRequestLogStore>(static sp => sp.GetRequiredService<SqliteRequestLogStore>());
        return builder;
    }
}
