using System.Data;
using System.Text.RegularExpressions;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>Streaming reads of stored results: a poll copies the result from the connection (sequential access), never from a copy in memory.</summary>
public sealed partial class PostgreSqlJobStore
{
    private string? _openResultSql;

    // The result's length and body follow the job's columns.
    private static readonly int LengthOrdinal = Columns.Split(',').Length;

    // The job's columns as GetAsync reads them, but without the result body in the record and, once the job finished,
    // without its payload; then the result's length and the result itself, read last as a stream.
    private string OpenResultSql => _openResultSql ??=
        "SELECT " + Regex.Replace(Regex.Replace(Columns, @"\bresult\b", "NULL::bytea"), @"\bpayload\b", "CASE WHEN status >= 2 THEN '\\x'::bytea ELSE payload END") +
        $", octet_length(result), result FROM {PostgreSqlSchema.Quote(Schema)}.jobs WHERE id = @id AND {NotExpired}";

    /// <inheritdoc />
    /// <remarks>The result is read from the connection as it arrives (<see cref="CommandBehavior.SequentialAccess"/>), on a connection held until the reader is disposed.</remarks>
    public async ValueTask<JobResultReader?> OpenResultAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        await _initializer.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        NpgsqlCommand? command = null;
        NpgsqlDataReader? reader = null;
        try
        {
            command = new NpgsqlCommand(OpenResultSql, connection);
            Add(command, "id", id);
            Add(command, "now", Now());
            reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess | CommandBehavior.SingleRow, cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                await DisposeAllAsync(reader, command, connection).ConfigureAwait(false);
                return null;
            }

            var job = Read(reader);
            var length = await reader.IsDBNullAsync(LengthOrdinal, cancellationToken).ConfigureAwait(false) ? (long?)null : reader.GetInt32(LengthOrdinal);
            if (!job.IsFinished || length is null)
            {
                await DisposeAllAsync(reader, command, connection).ConfigureAwait(false);
                return new JobResultReader(job, null, null);
            }

            var stream = await reader.GetStreamAsync(LengthOrdinal + 1, cancellationToken).ConfigureAwait(false);
            return new JobResultReader(job, stream, length, new Held(reader, command, connection));
        }
        catch
        {
            await DisposeAllAsync(reader, command, connection).ConfigureAwait(false);
            throw;
        }
    }

    private static async ValueTask DisposeAllAsync(NpgsqlDataReader? reader, NpgsqlCommand? command, NpgsqlConnection connection)
    {
        if (reader is not null)
        {
            await reader.DisposeAsync().ConfigureAwait(false);
        }

        if (command is not null)
        {
            await command.DisposeAsync().ConfigureAwait(false);
        }

        await connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The reader, command and connection a result stream reads from, disposed with it.</summary>
    private sealed class Held(NpgsqlDataReader reader, NpgsqlCommand command, NpgsqlConnection connection) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => DisposeAllAsync(reader, command, connection);
    }
}
