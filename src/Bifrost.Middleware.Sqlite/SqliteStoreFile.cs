using System.Globalization;

namespace Bifrost.Middleware.Sqlite;

/// <summary>
/// Opens a store's database file the way the governance and request-log stores share it: the path normalized as the job
/// store does, its directory created, WAL journal, the schema migrated (<see cref="SqliteSchema"/>), one group-committing
/// writer and a pool of readers.
/// </summary>
internal static class SqliteStoreFile
{
    /// <param name="connectionStringOrPath">A file path or a SQLite connection string.</param>
    /// <param name="time">The clock the migrations are recorded with.</param>
    /// <param name="migrated">Called with the path and the versions when migrations ran.</param>
    /// <param name="opened">Called with the path, the schema version and the journal mode.</param>
    public static (string Path, SqliteWriter Writer, SqliteReaderPool Readers) Open(string connectionStringOrPath, TimeProvider time, Action<string, int, int> migrated, Action<string, int, string> opened)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionStringOrPath);
        ArgumentNullException.ThrowIfNull(time);
        var builder = SqliteJobStore.Normalize(connectionStringOrPath, baseDirectory: null);
        var path = builder.DataSource;
        var busyTimeoutMs = (int)Math.Clamp(builder.DefaultTimeout * 1000L, 1000, int.MaxValue);
        var connectionString = builder.ToString();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);

        var connection = SqliteConnectionSlot.Open(connectionString, busyTimeoutMs, readOnly: false);
        SqliteWriter writer;
        try
        {
            var journal = Convert.ToString(connection.Scalar("PRAGMA journal_mode = WAL;"), CultureInfo.InvariantCulture) ?? "unknown";
            var (from, to) = SqliteSchema.Migrate(connection.Connection, time.GetUtcNow().ToUnixTimeMilliseconds());
            if (from != to)
            {
                migrated(path, from, to);
            }

            opened(path, to, journal);
            writer = new SqliteWriter(connection, SqliteDurability.Acknowledged, SqliteWriterMode.GroupCommit);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        return (path, writer, new SqliteReaderPool(connectionString, busyTimeoutMs));
    }
}
