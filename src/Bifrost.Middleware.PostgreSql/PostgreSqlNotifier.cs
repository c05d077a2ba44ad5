using Microsoft.Extensions.Logging;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql;

/// <summary>
/// Sends <c>NOTIFY</c> on the job queue's channel after a job was stored or released: in a statement of its own, after
/// the job's transaction committed, never inside it. PostgreSQL serializes the commits of transactions that notify (a
/// global lock held through the commit's WAL flush), which would cap enqueues at one flush each. Requests that arrive
/// while a notification is being sent are merged into the next one: a ring means "look at the queue", not "one job".
/// A failure is only logged: the workers poll anyway.
/// </summary>
/// <remarks>
/// A ring's payload is <see cref="Tag"/>, this store's own, so the listener of the same instance can leave it out: the
/// instance that stored the job already rang its own workers (those it could wake), and ringing them again made workers
/// whose owner was at its cap look at the queue for nothing.
/// </remarks>
internal sealed class PostgreSqlNotifier(NpgsqlDataSource dataSource, string channel, ILogger logger)
{
    /// <summary>The payload of this notifier's rings: unique per store instance.</summary>
    public string Tag { get; } = "ring:" + Guid.NewGuid().ToString("N");

    private int _requested;
    private int _running;

    public void Request()
    {
        Volatile.Write(ref _requested, 1);
        if (Interlocked.CompareExchange(ref _running, 1, 0) == 0)
        {
            _ = Task.Run(SendAsync);
        }
    }

    /// <summary>Sends one notification with <paramref name="payload"/> now (not merged); a failure is only logged.</summary>
    public async Task SendAsync(string payload)
    {
        try
        {
            await using var command = dataSource.CreateCommand("SELECT pg_notify(@channel, @payload)");
            command.Parameters.AddWithValue("channel", channel);
            command.Parameters.AddWithValue("payload", payload);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or ObjectDisposedException or InvalidOperationException or TimeoutException)
        {
            PostgreSqlLog.NotifyFailed(logger, channel, ex);
        }
    }

    private async Task SendAsync()
    {
        while (true)
        {
            while (Interlocked.Exchange(ref _requested, 0) == 1)
            {
                try
                {
                    await using var command = dataSource.CreateCommand("SELECT pg_notify(@channel, @payload)");
                    command.Parameters.AddWithValue("channel", channel);
                    command.Parameters.AddWithValue("payload", Tag);
                    await command.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is NpgsqlException or ObjectDisposedException or InvalidOperationException or TimeoutException)
                {
                    PostgreSqlLog.NotifyFailed(logger, channel, ex);
                }
            }

            Volatile.Write(ref _running, 0);

            // A request that came after the last exchange but before the flag was cleared is sent by this loop, unless
            // another one started meanwhile.
            if (Volatile.Read(ref _requested) == 0 || Interlocked.CompareExchange(ref _running, 1, 0) != 0)
            {
                return;
            }
        }
    }
}
