using Microsoft.Extensions.Logging;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>Runs the schema migrations once per store, on first use; a failed attempt (database down) is retried by the next call.</summary>
internal sealed class PostgreSqlInitializer(NpgsqlDataSource dataSource, string schema, ILogger logger)
{
    private readonly Lock _lock = new();
    private Task? _migration;

    public Task EnsureAsync(CancellationToken cancellationToken)
    {
        var migration = Volatile.Read(ref _migration);
        if (migration is { IsCompletedSuccessfully: true })
        {
            return Task.CompletedTask;
        }

        lock (_lock)
        {
            if (_migration is null || _migration.IsFaulted || _migration.IsCanceled)
            {
                // Not tied to the caller's token: a migration, once started, completes (or rolls back) for everyone.
                _migration = MigrateAsync();
            }

            migration = _migration;
        }

        return migration.WaitAsync(cancellationToken);
    }

    private async Task MigrateAsync()
    {
        try
        {
            await PostgreSqlSchema.MigrateAsync(dataSource, schema, logger, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            PostgreSqlLog.MigrationFailed(logger, schema, ex);
            throw;
        }
    }
}
