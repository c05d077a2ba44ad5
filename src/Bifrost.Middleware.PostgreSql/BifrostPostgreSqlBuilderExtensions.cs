using Bifrost.Middleware;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.PostgreSql;
using Bifrost.Middleware.RequestLog;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Puts the gateway's jobs (and files) and governance state in PostgreSQL.</summary>
public static class BifrostPostgreSqlBuilderExtensions
{
    /// <summary>
    /// Keeps async jobs and batches (and, with <paramref name="useForFiles"/>, uploaded and batch output files) in
    /// PostgreSQL, shared by every instance using the same database: any instance answers polls, runs queued work and
    /// takes over the jobs of an instance that died. Replaces the registered <see cref="IJobStore"/> (and <see cref="IFileStore"/>).
    /// The schema <c>bifrost</c> is created or migrated when the host starts.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <param name="useForFiles">Whether files are kept in PostgreSQL too (needed when batches may run on another instance than the one that received the upload). Default true.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UsePostgreSqlJobStore(this IBifrostBuilder builder, string connectionString, bool useForFiles = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return builder.UsePostgreSqlJobStore(options =>
        {
            options.ConnectionString = connectionString;
            options.UseForFiles = useForFiles;
        });
    }

    /// <summary>Like <see cref="UsePostgreSqlJobStore(IBifrostBuilder, string, bool)"/>, with all the options (schema, chunk size, listening).</summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="configure">Sets the options; <see cref="PostgreSqlStoreOptions.ConnectionString"/> is required.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UsePostgreSqlJobStore(this IBifrostBuilder builder, Action<PostgreSqlStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new PostgreSqlStoreOptions();
        configure(options);
        options.Validate();

        var services = builder.Services;
        services.RemoveAll<PostgreSqlStoreResources>();
        services.RemoveAll<PostgreSqlJobStore>();
        services.RemoveAll<PostgreSqlFileStore>();
        services.AddSingleton(sp => new PostgreSqlStoreResources(options, sp.GetService<ILoggerFactory>()));
        services.AddSingleton(static sp =>
        {
            var resources = sp.GetRequiredService<PostgreSqlStoreResources>();
            return new PostgreSqlJobStore(resources.DataSource, resources.Options.Schema, sp.GetRequiredService<TimeProvider>(), sp.GetService<ILogger<PostgreSqlJobStore>>());
        });
        services.RemoveAll<IJobStore>();
        services.AddSingleton<IJobStore>(static sp => sp.GetRequiredService<PostgreSqlJobStore>());

        if (options.UseForFiles)
        {
            services.AddSingleton(static sp =>
            {
                var resources = sp.GetRequiredService<PostgreSqlStoreResources>();
                return new PostgreSqlFileStore(resources.DataSource, resources.Options.Schema, sp.GetRequiredService<TimeProvider>(), resources.Options.FileChunkSize, sp.GetService<ILogger<PostgreSqlFileStore>>());
            });
            services.RemoveAll<IFileStore>();
            services.AddSingleton<IFileStore>(static sp => sp.GetRequiredService<PostgreSqlFileStore>());
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgreSqlStartup>());
        if (options.Listen)
        {
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgreSqlJobListener>());
        }

        return builder;
    }

    /// <summary>
    /// Keeps governance in PostgreSQL, shared by every instance using the same database and schema: the virtual keys,
    /// teams and customers created through the admin API, the usage ledger (<see cref="IGovernanceStore"/>), and the
    /// budget and rate-limit windows (<see cref="IGovernanceCounterStore"/>), so several instances enforce one limit
    /// together. Replaces the registered stores. The schema <c>bifrost</c> is created or migrated when the host starts.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UsePostgreSqlGovernanceStore(this IBifrostBuilder builder, string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return builder.UsePostgreSqlGovernanceStore(options => options.ConnectionString = connectionString);
    }

    /// <summary>
    /// Like <see cref="UsePostgreSqlGovernanceStore(IBifrostBuilder, string)"/>, with the options (connection string and
    /// schema; the file and listening options do not apply). With the same connection string and schema as
    /// <c>UsePostgreSqlJobStore</c>, both share one connection pool.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="configure">Sets the options; <see cref="PostgreSqlStoreOptions.ConnectionString"/> is required.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UsePostgreSqlGovernanceStore(this IBifrostBuilder builder, Action<PostgreSqlStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new PostgreSqlStoreOptions();
        configure(options);
        options.Validate();

        var services = builder.Services;
        services.RemoveAll<PostgreSqlGovernanceResources>();
        services.RemoveAll<PostgreSqlGovernanceStore>();
        services.RemoveAll<PostgreSqlGovernanceCounterStore>();
        services.AddSingleton(sp => new PostgreSqlGovernanceResources(options, sp.GetService<PostgreSqlStoreResources>(), sp.GetService<ILoggerFactory>()));
        services.AddSingleton(static sp =>
        {
            var resources = sp.GetRequiredService<PostgreSqlGovernanceResources>();
            return new PostgreSqlGovernanceStore(resources.DataSource, resources.Schema, sp.GetRequiredService<TimeProvider>(), sp.GetService<ILogger<PostgreSqlGovernanceStore>>());
        });
        services.AddSingleton(static sp =>
        {
            var resources = sp.GetRequiredService<PostgreSqlGovernanceResources>();
            return new PostgreSqlGovernanceCounterStore(resources.DataSource, resources.Schema, sp.GetRequiredService<TimeProvider>(), sp.GetService<ILogger<PostgreSqlGovernanceCounterStore>>());
        });
        services.RemoveAll<IGovernanceStore>();
        services.AddSingleton<IGovernanceStore>(static sp => sp.GetRequiredService<PostgreSqlGovernanceStore>());
        services.RemoveAll<IGovernanceCounterStore>();
        services.AddSingleton<IGovernanceCounterStore>(static sp => sp.GetRequiredService<PostgreSqlGovernanceCounterStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgreSqlMigrationStartup<PostgreSqlGovernanceStore>>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgreSqlGovernanceSweeper>());
        return builder;
    }

    /// <summary>
    /// Keeps the request log in PostgreSQL (table <c>request_log</c> of the schema <c>bifrost</c>, created or migrated when
    /// the host starts): durable, and shared by every instance using the same database and schema, so the admin API and
    /// the dashboard of any instance list the calls of all of them. Replaces the registered <see cref="IRequestLogStore"/>
    /// (the in-memory ring by default). Retention applies as for the other stores (<c>Bifrost:RequestLog:Retention</c> by
    /// age, <c>MaxEntries</c> by count, swept every minute by each instance); with several instances the count bound is
    /// approximate: the newest <c>MaxEntries</c> are always kept, and between sweeps the table grows by what all the
    /// instances write in a minute.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UsePostgreSqlRequestLog(this IBifrostBuilder builder, string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return builder.UsePostgreSqlRequestLog(options => options.ConnectionString = connectionString);
    }

    /// <summary>
    /// Like <see cref="UsePostgreSqlRequestLog(IBifrostBuilder, string)"/>, with the options (connection string and schema;
    /// the file and listening options do not apply). With the same connection string as <c>UsePostgreSqlJobStore</c>, both
    /// share one connection pool.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="configure">Sets the options; <see cref="PostgreSqlStoreOptions.ConnectionString"/> is required.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UsePostgreSqlRequestLog(this IBifrostBuilder builder, Action<PostgreSqlStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new PostgreSqlStoreOptions();
        configure(options);
        options.Validate();

        var services = builder.Services;
        services.RemoveAll<PostgreSqlRequestLogResources>();
        services.RemoveAll<PostgreSqlRequestLogStore>();
        services.AddSingleton(sp => new PostgreSqlRequestLogResources(options, sp.GetService<PostgreSqlStoreResources>(), sp.GetService<ILoggerFactory>()));
        services.AddSingleton(static sp =>
        {
            var resources = sp.GetRequiredService<PostgreSqlRequestLogResources>();
            return new PostgreSqlRequestLogStore(resources.DataSource, resources.Schema, sp.GetService<ILogger<PostgreSqlRequestLogStore>>());
        });

        // Replace whatever is registered (AddBifrost's in-memory default uses TryAdd, so a later AddBifrost keeps this one).
        services.RemoveAll<IRequestLogStore>();
        services.AddSingleton<IRequestLogStore>(static sp => sp.GetRequiredService<PostgreSqlRequestLogStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgreSqlMigrationStartup<PostgreSqlRequestLogStore>>());
        return builder;
    }

    /// <summary>
    /// Keeps the semantic cache's vectors (<c>Bifrost:Cache:Semantic</c>) in PostgreSQL with pgvector instead of this
    /// process's memory: the table <c>bifrost.semantic_cache</c> with a <c>vector(<paramref name="dimensions"/>)</c> column
    /// and an HNSW index, shared by every instance using the same database, so a paraphrase answered on one instance is a
    /// hit on all. Created when the host starts (<c>CREATE EXTENSION IF NOT EXISTS vector</c>: the server needs pgvector
    /// installed); expired entries and those past <c>MaxEntries</c> are pruned by each instance once a minute.
    /// </summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <param name="dimensions">The embedding model's dimensions (256 for the local provider's default, 1536 for <c>text-embedding-3-small</c>).</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UsePostgreSqlSemanticCache(this IBifrostBuilder builder, string connectionString, int dimensions)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return builder.UsePostgreSqlSemanticCache(options =>
        {
            options.ConnectionString = connectionString;
            options.Dimensions = dimensions;
        });
    }

    /// <summary>Like <see cref="UsePostgreSqlSemanticCache(IBifrostBuilder, string, int)"/>, with all the options (schema, prune interval).</summary>
    /// <param name="builder">The builder returned by <c>AddBifrost</c>.</param>
    /// <param name="configure">Sets the options; <see cref="PostgreSqlSemanticCacheOptions.ConnectionString"/> and <see cref="PostgreSqlSemanticCacheOptions.Dimensions"/> are required.</param>
    /// <returns>The builder.</returns>
    public static IBifrostBuilder UsePostgreSqlSemanticCache(this IBifrostBuilder builder, Action<PostgreSqlSemanticCacheOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new PostgreSqlSemanticCacheOptions();
        configure(options);
        options.Validate();

        var services = builder.Services;
        services.RemoveAll<PostgreSqlSemanticCacheCollection>();
        services.AddSingleton(sp => new PostgreSqlSemanticCacheCollection(
            options,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<BifrostOptions>>().Value.Cache.Semantic.MaxEntries,
            sp.GetService<ILoggerFactory>()));
        services.RemoveAll<Microsoft.Extensions.VectorData.VectorStoreCollection<string, Bifrost.Middleware.Caching.SemanticCacheEntry>>();
        services.AddSingleton<Microsoft.Extensions.VectorData.VectorStoreCollection<string, Bifrost.Middleware.Caching.SemanticCacheEntry>>(static sp => sp.GetRequiredService<PostgreSqlSemanticCacheCollection>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgreSqlMigrationStartup<PostgreSqlSemanticCacheCollection>>());
        return builder;
    }
}
