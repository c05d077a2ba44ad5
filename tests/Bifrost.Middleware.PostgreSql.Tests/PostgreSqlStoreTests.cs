using System.Text;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>What the conformance suite does not cover: migrations, registration, the LISTEN/NOTIFY doorbell and its reconnects.</summary>
public sealed class PostgreSqlStoreTests : IAsyncDisposable
{
    private readonly string _schema = PostgresTestDatabase.NewSchema();
    private NpgsqlDataSource? _dataSource;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private NpgsqlDataSource DataSource => _dataSource ??= PostgresTestDatabase.CreateDataSource();

    [Fact]
    public async Task Instances_starting_together_migrate_the_schema_once()
    {
        // Six instances, each with its own connections, start at once against an empty schema.
        var sources = Enumerable.Range(0, 6).Select(_ => PostgresTestDatabase.CreateDataSource()).ToList();
        try
        {
            await Task.WhenAll(sources.Select(source => new PostgreSqlJobStore(source, _schema, TimeProvider.System).InitializeAsync(Ct)));
        }
        finally
        {
            foreach (var source in sources)
            {
                await source.DisposeAsync();
            }
        }

        await new PostgreSqlFileStore(DataSource, _schema, TimeProvider.System).InitializeAsync(Ct);

        await using var command = DataSource.CreateCommand($"SELECT count(*), max(version) FROM \"{_schema}\".bifrost_migrations");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        Assert.Equal(PostgreSqlSchema.LatestVersion, reader.GetInt64(0));
        Assert.Equal(PostgreSqlSchema.LatestVersion, reader.GetInt32(1));
    }

    [Fact]
    public async Task A_store_used_before_initialization_creates_its_schema()
    {
        var store = new PostgreSqlJobStore(DataSource, _schema, TimeProvider.System);
        Assert.Equal(0, await store.CountUnfinishedAsync(Ct));
        await store.EnqueueAsync(new NewJob { Id = "j1", Kind = "chat_completion", Owner = "o", Payload = "{}"u8.ToArray(), ResultTtl = TimeSpan.FromMinutes(1) }, Ct);
        Assert.Equal(1, await store.CountUnfinishedAsync(Ct));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await store.EnqueueAsync(new NewJob { Id = "j1", Kind = "chat_completion", Owner = "o", Payload = "{}"u8.ToArray(), ResultTtl = TimeSpan.FromMinutes(1) }, Ct));
        Assert.Contains("already exists", error.Message);
    }

    [Fact]
    public void Registration_replaces_the_job_and_file_stores()
    {
        // Needs no server: nothing connects until a store is used or the host starts.
        const string connectionString = "Host=127.0.0.1;Port=1;Username=nobody;Database=none";
        var services = new ServiceCollection();
        services.AddBifrost().UsePostgreSqlJobStore(o =>
        {
            o.ConnectionString = connectionString;
            o.Schema = _schema;
        });
        using (var provider = services.BuildServiceProvider())
        {
            Assert.IsType<PostgreSqlJobStore>(provider.GetRequiredService<IJobStore>());
            Assert.IsType<PostgreSqlFileStore>(provider.GetRequiredService<IFileStore>());
            Assert.Equal(_schema, ((PostgreSqlJobStore)provider.GetRequiredService<IJobStore>()).Schema);
        }

        var jobsOnly = new ServiceCollection();
        jobsOnly.AddBifrost(o => o.Files.Directory = Path.GetTempPath()).UsePostgreSqlJobStore(connectionString, useForFiles: false);
        using (var provider = jobsOnly.BuildServiceProvider())
        {
            Assert.IsType<PostgreSqlJobStore>(provider.GetRequiredService<IJobStore>());
            Assert.IsType<FileSystemFileStore>(provider.GetRequiredService<IFileStore>());
        }

        Assert.Throws<ArgumentException>(() => new ServiceCollection().AddBifrost().UsePostgreSqlJobStore(o => { o.ConnectionString = connectionString; o.Schema = "Bad-Name"; }));
        Assert.Throws<ArgumentException>(() => new ServiceCollection().AddBifrost().UsePostgreSqlJobStore(" "));
    }

    [Theory]
    [InlineData("bifrost", true)]
    [InlineData("_tenant_42", true)]
    [InlineData("Bifrost", false)]
    [InlineData("bad-name", false)]
    [InlineData("x\"; DROP TABLE jobs; --", false)]
    [InlineData("", false)]
    [InlineData("a_schema_name_that_is_far_too_long_for_a_channel", false)]
    public void Schema_names_are_checked(string schema, bool valid)
    {
        var options = new PostgreSqlStoreOptions { ConnectionString = "Host=x", Schema = schema };
        if (valid)
        {
            options.Validate();
            Assert.Equal("bifrost_jobs_" + schema, PostgreSqlSchema.Channel(schema));
        }
        else
        {
            Assert.Throws<ArgumentException>(options.Validate);
        }
    }

    [Fact]
    public void Options_need_a_connection_string_and_a_sane_chunk_size()
    {
        Assert.Throws<ArgumentException>(new PostgreSqlStoreOptions().Validate);
        Assert.Throws<ArgumentException>(new PostgreSqlStoreOptions { ConnectionString = "Host=x", FileChunkSize = 1000 }.Validate);
        new PostgreSqlStoreOptions { ConnectionString = "Host=x" }.Validate();
    }

    [Fact]
    public async Task Enqueue_and_release_on_another_instance_ring_this_instances_doorbell_even_after_a_reconnect()
    {
        var applicationName = "bifrost-listener-" + Guid.NewGuid().ToString("N")[..8];
        var listenerConnection = new NpgsqlConnectionStringBuilder(PostgresTestDatabase.Require()) { ApplicationName = applicationName }.ConnectionString;
        await using var resources = new PostgreSqlStoreResources(new PostgreSqlStoreOptions { ConnectionString = listenerConnection, Schema = _schema }, null);
        var doorbell = new CountingDoorbell();
        using var listener = new PostgreSqlJobListener(resources, doorbell, TimeProvider.System, NullLogger<PostgreSqlJobListener>.Instance);
        var other = new PostgreSqlJobStore(DataSource, _schema, TimeProvider.System);
        await other.InitializeAsync(Ct);

        await listener.StartAsync(Ct);
        await WaitForAsync(() => listener.Connections == 1, "the listener to connect");
        var before = doorbell.Rings;
        await other.EnqueueAsync(Job("j1"), Ct);
        await WaitForAsync(() => doorbell.Rings > before, "a ring after an enqueue on another instance");

        // The server drops the listening connection: the listener reconnects (and rings once, for what it may have missed).
        await using (var kill = DataSource.CreateCommand("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = @name"))
        {
            kill.Parameters.AddWithValue("name", applicationName);
            await kill.ExecuteNonQueryAsync(Ct);
        }

        await WaitForAsync(() => listener.Connections == 2, "the listener to reconnect");
        var lease = await other.TryClaimAsync("w", TimeSpan.FromMinutes(1), Ct);
        before = doorbell.Rings;
        Assert.True(await other.ReleaseAsync(lease!, null, countAttempt: false, Ct));
        await WaitForAsync(() => doorbell.Rings > before, "a ring after a release on another instance");

        await listener.StopAsync(Ct);
    }

    [Fact]
    public async Task The_listener_leaves_out_the_rings_of_its_own_instances_store_and_rings_for_another_instances()
    {
        await using var resources = new PostgreSqlStoreResources(new PostgreSqlStoreOptions { ConnectionString = PostgresTestDatabase.Require(), Schema = _schema }, null);
        var own = new PostgreSqlJobStore(resources.DataSource, _schema, TimeProvider.System);
        var other = new PostgreSqlJobStore(DataSource, _schema, TimeProvider.System);
        await own.InitializeAsync(Ct);
        var doorbell = new CountingDoorbell();
        using var listener = new PostgreSqlJobListener(resources, doorbell, TimeProvider.System, NullLogger<PostgreSqlJobListener>.Instance, jobs: own);
        await listener.StartAsync(Ct);
        await WaitForAsync(() => listener.Connections == 1 && doorbell.Rings == 1, "the listener to connect (and ring once)");

        // This instance stored a job: its gateway rang its workers already, the NOTIFY coming back rings nobody.
        await own.EnqueueAsync(Job("mine"), Ct);
        await WaitForAsync(() => listener.OwnRingsSkipped >= 1, "the listener to hear its own store's ring");
        Assert.Equal(1, doorbell.Rings);

        await other.EnqueueAsync(Job("theirs"), Ct);
        await WaitForAsync(() => doorbell.Rings == 2, "a ring after an enqueue on another instance");
        await listener.StopAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await PostgresTestDatabase.DropSchemaAsync(_dataSource, _schema);
            await _dataSource.DisposeAsync();
        }
    }

    private static NewJob Job(string id) => new() { Id = id, Kind = "chat_completion", Owner = "o", Payload = Encoding.UTF8.GetBytes("{}"), ResultTtl = TimeSpan.FromMinutes(1) };

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, $"Timed out waiting for {what}.");
            await Task.Delay(20, Ct);
        }
    }

    private sealed class CountingDoorbell : IJobDoorbell
    {
        private int _rings;

        public int Rings => Volatile.Read(ref _rings);

        public void Ring() => Interlocked.Increment(ref _rings);
    }
}
