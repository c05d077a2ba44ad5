using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests.Infrastructure;

/// <summary>
/// The PostgreSQL server the tests use: <c>BIFROST_TEST_POSTGRES</c> holds its connection string. Without it the tests
/// are skipped (with the reason shown), except under <c>CI=true</c>, where a missing server is a failure.
/// Each test works in a schema of its own, dropped afterwards.
/// </summary>
internal static class PostgresTestDatabase
{
    public const string Variable = "BIFROST_TEST_POSTGRES";

    public static string? ConnectionString => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value ? value : null;

    /// <summary>The connection string, or skips (locally) / fails (in CI) the running test.</summary>
    public static string Require()
    {
        if (ConnectionString is { } connectionString)
        {
            return connectionString;
        }

        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail($"CI=true but {Variable} is not set: the PostgreSQL tests must run in CI (.ci/run starts a server and sets it).");
        }

        Assert.Skip($"No PostgreSQL server: set {Variable} to an Npgsql connection string (e.g. Host=127.0.0.1;Port=5432;Username=postgres;Database=postgres) to run this test. .ci/run starts one.");
        return null!;
    }

    /// <summary>A fresh schema name (the stores create the schema on first use).</summary>
    public static string NewSchema() => "t_" + Guid.NewGuid().ToString("N")[..16];

    public static NpgsqlDataSource CreateDataSource() => NpgsqlDataSource.Create(Require());

    public static async Task DropSchemaAsync(NpgsqlDataSource dataSource, string schema)
    {
        await using var command = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        await command.ExecuteNonQueryAsync();
    }

    public static async Task DropSchemaAsync(string schema)
    {
        if (ConnectionString is null)
        {
            return; // no server: the test itself skipped (or, in CI, failed) through Require(); a second skip from disposal would turn it into a failure
        }

        await using var dataSource = CreateDataSource();
        await DropSchemaAsync(dataSource, schema);
    }
}
