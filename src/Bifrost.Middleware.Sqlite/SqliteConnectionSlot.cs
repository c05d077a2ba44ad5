using Microsoft.Data.Sqlite;

namespace Bifrost.Middleware.Sqlite;

/// <summary>
/// One open connection with its commands kept (prepared once, rebound per call). Not thread-safe: the writer slot is
/// guarded by the store's write lock, reader slots are rented by one caller at a time.
/// </summary>
internal sealed class SqliteConnectionSlot : IDisposable
{
    private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal);

    private SqliteConnectionSlot(SqliteConnection connection)
    {
        Connection = connection;
    }

    public SqliteConnection Connection { get; }

    /// <summary>Opens a connection and applies the per-connection settings.</summary>
    /// <param name="connectionString">The normalized connection string (pooling off: the store keeps its own connections).</param>
    /// <param name="busyTimeoutMs">How long a statement waits for another connection's write lock before failing.</param>
    /// <param name="readOnly">A reader connection: <c>query_only</c>, so a bug cannot write through it.</param>
    public static SqliteConnectionSlot Open(string connectionString, int busyTimeoutMs, bool readOnly)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            connection.Open();
            var slot = new SqliteConnectionSlot(connection);
            slot.Execute($"PRAGMA busy_timeout = {busyTimeoutMs};");
            if (readOnly)
            {
                slot.Execute("PRAGMA query_only = 1;");
            }

            return slot;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>The command for <paramref name="sql"/>, its parameters cleared.</summary>
    public SqliteCommand Command(string sql)
    {
        if (!_commands.TryGetValue(sql, out var command))
        {
            command = Connection.CreateCommand();
#pragma warning disable CA2100 // the SQL is one of the store's constants, never user input
            command.CommandText = sql;
#pragma warning restore CA2100
            _commands[sql] = command;
        }

        command.Parameters.Clear();
        return command;
    }

    /// <summary>
    /// The command for <paramref name="sql"/> with its parameters (<paramref name="parameters"/>, in order) created once
    /// and kept: callers set <c>Parameters[i].Value</c> for each execution, with no allocation per parameter.
    /// </summary>
    public SqliteCommand Prepared(string sql, string[] parameters)
    {
        if (!_prepared.TryGetValue(sql, out var command))
        {
            command = Connection.CreateCommand();
#pragma warning disable CA2100 // the SQL is one of the store's constants, never user input
            command.CommandText = sql;
#pragma warning restore CA2100
            foreach (var name in parameters)
            {
                command.Parameters.Add(new SqliteParameter { ParameterName = name, Value = DBNull.Value });
            }

            _prepared[sql] = command;
        }

        return command;
    }

    public int Execute(string sql) => Command(sql).ExecuteNonQuery();

    public object? Scalar(string sql) => Command(sql).ExecuteScalar();

    public void Dispose()
    {
        foreach (var command in _commands.Values.Concat(_prepared.Values))
        {
            command.Dispose();
        }

        _commands.Clear();
        _prepared.Clear();
        Connection.Dispose();
    }
}
