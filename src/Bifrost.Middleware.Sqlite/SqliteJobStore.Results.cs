using System.Text.RegularExpressions;
using Bifrost.Middleware.Sqlite;
using Microsoft.Data.Sqlite;

namespace Bifrost.Middleware;

/// <summary>Streaming reads of stored results: a poll copies the result from the database file (SQLite incremental blob I/O), never from a copy in memory.</summary>
public sealed partial class SqliteJobStore
{
    // The job's columns as GetAsync reads them, but without the result body (read as a blob instead) and, once the job
    // finished, without its payload; then the row id and the result's length.
    private static readonly string OpenResultSql =
        "SELECT " + Regex.Replace(Regex.Replace(Columns, @"\bresult\b", "NULL"), @"\bpayload\b", "CASE WHEN status >= 2 THEN X'' ELSE payload END") +
        ", seq, length(result) FROM bifrost_jobs WHERE id = $id AND NOT (status >= 2 AND expires_at <= $now);";

    /// <inheritdoc />
    /// <remarks>The result is read from the database file in chunks (incremental blob I/O) on a read connection held until the reader is disposed.</remarks>
    public ValueTask<JobResultReader?> OpenResultAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        cancellationToken.ThrowIfCancellationRequested();
        var slot = RentReader();
        var handedOut = false;
        var healthy = false;
        try
        {
            JobRecord job;
            long rowId;
            long? length;
            var command = slot.Command(OpenResultSql);
            Add(command, "$id", id);
            Add(command, "$now", Now());
            using (var rows = command.ExecuteReader())
            {
                if (!rows.Read())
                {
                    healthy = true;
                    return ValueTask.FromResult<JobResultReader?>(null);
                }

                job = Map(rows);
                rowId = rows.GetInt64(rows.FieldCount - 2);
                length = rows.IsDBNull(rows.FieldCount - 1) ? null : rows.GetInt64(rows.FieldCount - 1);
            }

            healthy = true;
            if (!job.IsFinished || length is null)
            {
                return ValueTask.FromResult<JobResultReader?>(new JobResultReader(job, null, null));
            }

            SqliteBlob blob;
            try
            {
                blob = new SqliteBlob(slot.Connection, "bifrost_jobs", "result", rowId, readOnly: true);
            }
            catch (SqliteException)
            {
                return ValueTask.FromResult<JobResultReader?>(null); // expired and deleted in between
            }

            handedOut = true;
            return ValueTask.FromResult<JobResultReader?>(new JobResultReader(job, blob, length, new RentedReader(this, slot)));
        }
        finally
        {
            if (!handedOut)
            {
                ReturnReader(slot, healthy);
            }
        }
    }

    /// <summary>A read-only connection from the pool (or a new one), for a read that outlives one call.</summary>
    private SqliteConnectionSlot RentReader()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _readers.Rent();
    }

    /// <summary>Gives a rented connection back to the pool, or closes it.</summary>
    private void ReturnReader(SqliteConnectionSlot reader, bool healthy) => _readers.Return(reader, healthy);

    private sealed class RentedReader(SqliteJobStore store, SqliteConnectionSlot slot) : IAsyncDisposable
    {
        private int _returned;

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _returned, 1) == 0)
            {
                store.ReturnReader(slot, healthy: true);
            }

            return ValueTask.CompletedTask;
        }
    }
}
