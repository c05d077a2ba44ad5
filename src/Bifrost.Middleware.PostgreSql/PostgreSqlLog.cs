using Microsoft.Extensions.Logging;

namespace Bifrost.Middleware.PostgreSql;

internal static partial class PostgreSqlLog
{
    [LoggerMessage(600, LogLevel.Information, "PostgreSQL schema {Schema}: migration {Version} ({Description}) applied.")]
    public static partial void Migrated(ILogger logger, string schema, int version, string description);

    [LoggerMessage(601, LogLevel.Warning, "PostgreSQL schema {Schema} is at version {Version}, newer than this code's {Known}; going on (migrations only add).")]
    public static partial void SchemaNewer(ILogger logger, string schema, int version, int known);

    [LoggerMessage(602, LogLevel.Information, "Listening for job notifications on channel {Channel}.")]
    public static partial void Listening(ILogger logger, string channel);

    [LoggerMessage(603, LogLevel.Warning, "The job notification connection failed; reconnecting in {DelayMs} ms (workers keep polling meanwhile).")]
    public static partial void ListenFailed(ILogger logger, long delayMs, Exception exception);

    [LoggerMessage(605, LogLevel.Debug, "NOTIFY on {Channel} failed; other instances find the job at their next poll.")]
    public static partial void NotifyFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(604, LogLevel.Error, "Creating or migrating the PostgreSQL schema {Schema} failed.")]
    public static partial void MigrationFailed(ILogger logger, string schema, Exception exception);

    [LoggerMessage(606, LogLevel.Warning, "Deleting the expired governance counter windows failed; retried at the next run.")]
    public static partial void SweepFailed(ILogger logger, Exception exception);
}
