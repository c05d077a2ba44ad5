namespace Bifrost.Middleware.RequestLog;

/// <summary>
/// Where the request log is kept: an in-memory ring buffer by default (the newest <see cref="RequestLogOptions.MaxEntries"/>),
/// SQLite with <c>UseSqliteRequestLog</c>, PostgreSQL (shared by instances) with <c>UsePostgreSqlRequestLog</c>. The gateway
/// appends from a background writer, never on a request's path.
/// </summary>
/// <remarks>
/// <para>Contract every implementation keeps (see <c>RequestLogStoreConformanceTests</c>):</para>
/// <list type="bullet">
/// <item><see cref="AppendAsync"/> stores every entry or throws; entry ids are unique.</item>
/// <item><see cref="QueryAsync"/> lists the entries that match every filter, newest first (<see cref="RequestLogQuery.Compare"/>),
/// at most <see cref="RequestLogQuery.Limit"/>, after the cursor, with <see cref="RequestLogPage.Next"/> set when more match.</item>
/// <item><see cref="PruneAsync"/> removes the entries older than the cut-off and all but the newest <c>maxCount</c>.</item>
/// </list>
/// </remarks>
public interface IRequestLogStore
{
    /// <summary>Stores entries.</summary>
    /// <param name="entries">The entries.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask AppendAsync(IReadOnlyList<RequestLogEntry> entries, CancellationToken cancellationToken);

    /// <summary>Lists one page of the matching entries, newest first.</summary>
    /// <param name="query">Filters, cursor and limit.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<RequestLogPage> QueryAsync(RequestLogQuery query, CancellationToken cancellationToken);

    /// <summary>Reads one entry, or null when it is not (or no longer) stored.</summary>
    /// <param name="id">The entry's id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<RequestLogEntry?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Retention: removes the entries older than <paramref name="olderThan"/>, then all but the newest <paramref name="maxCount"/>.</summary>
    /// <param name="olderThan">The cut-off time.</param>
    /// <param name="maxCount">Entries kept at most.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The number of entries removed.</returns>
    ValueTask<long> PruneAsync(DateTimeOffset olderThan, long maxCount, CancellationToken cancellationToken);
}

/// <summary>Changes (typically: masks) an entry before it is stored, when content is captured (<see cref="RequestLogOptions.CaptureContent"/>).</summary>
public interface IRequestLogRedactor
{
    /// <summary>Returns the entry to store (e.g. <c>entry with { RequestContent = Mask(entry.RequestContent) }</c>), or null to store none.</summary>
    /// <param name="entry">The entry with its content.</param>
    /// <returns>The entry to store, or null to drop it.</returns>
    RequestLogEntry? Redact(RequestLogEntry entry);
}

/// <summary>
/// Reads the request log (registered by <c>AddBifrost</c>): the service behind the admin endpoints
/// (<c>MapBifrostAdmin</c>: <c>GET requests</c>, <c>GET requests/{id}</c>), for a host's own pages and tests.
/// </summary>
public interface IBifrostRequestLog
{
    /// <summary>Lists one page of matching entries, newest first.</summary>
    /// <param name="query">Filters, cursor and limit (1 to <see cref="RequestLogQuery.MaxLimit"/>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<RequestLogPage> QueryAsync(RequestLogQuery query, CancellationToken cancellationToken);

    /// <summary>Reads one entry, or null.</summary>
    /// <param name="id">The entry's id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<RequestLogEntry?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Waits until every call recorded so far is in the store (entries are written in the background, within about 50 ms).</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task FlushAsync(CancellationToken cancellationToken);
}
