namespace Bifrost.Middleware.RequestLog;

/// <summary>
/// Which request-log entries to list: every filter set must match (strings compared exactly, the provider ignoring
/// case); entries come newest first (<see cref="RequestLogEntry.Time"/>, then <see cref="RequestLogEntry.Id"/>, both
/// descending), <see cref="Limit"/> at a time, the next page after the cursor (<see cref="RequestLogPage.Next"/>).
/// </summary>
public sealed record RequestLogQuery
{
    /// <summary>The largest <see cref="Limit"/>.</summary>
    public const int MaxLimit = 1000;

    /// <summary>Entries at or after this time.</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>Entries before this time.</summary>
    public DateTimeOffset? To { get; init; }

    /// <summary>Only this provider (ignoring case).</summary>
    public string? Provider { get; init; }

    /// <summary>Only this model.</summary>
    public string? Model { get; init; }

    /// <summary>Only this status (e.g. 429).</summary>
    public int? Status { get; init; }

    /// <summary>Only this class of status: 2 for 2xx, 4 for 4xx, 5 for 5xx (1 to 5).</summary>
    public int? StatusClass { get; init; }

    /// <summary>Only this owner (<see cref="RequestLogEntry.Owner"/>).</summary>
    public string? Owner { get; init; }

    /// <summary>Only this virtual key.</summary>
    public string? VirtualKeyId { get; init; }

    /// <summary>Only this operation (<c>chat_completion</c>, ...).</summary>
    public string? Operation { get; init; }

    /// <summary>Only this source (<c>sync</c>, <c>stream</c>, <c>async</c>, <c>batch</c>).</summary>
    public string? Source { get; init; }

    /// <summary>Only entries of this batch.</summary>
    public string? BatchId { get; init; }

    /// <summary>The cursor's time: only entries after (older than) the entry (<see cref="CursorTime"/>, <see cref="CursorId"/>) in listing order.</summary>
    public DateTimeOffset? CursorTime { get; init; }

    /// <summary>The cursor's entry id (with <see cref="CursorTime"/>).</summary>
    public string? CursorId { get; init; }

    /// <summary>Entries per page, 1 to <see cref="MaxLimit"/>. Default 100.</summary>
    public int Limit { get; init; } = 100;

    /// <summary>Whether <paramref name="entry"/> passes every filter of this query (not the cursor).</summary>
    /// <param name="entry">The entry.</param>
    /// <returns>True when it matches.</returns>
    public bool Matches(RequestLogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return (From is not { } from || entry.Time >= from)
            && (To is not { } to || entry.Time < to)
            && (Provider is null || string.Equals(Provider, entry.Provider, StringComparison.OrdinalIgnoreCase))
            && (Model is null || string.Equals(Model, entry.Model, StringComparison.Ordinal))
            && (Status is not { } status || entry.Status == status)
            && (StatusClass is not { } statusClass || entry.Status / 100 == statusClass)
            && (Owner is null || string.Equals(Owner, entry.Owner, StringComparison.Ordinal))
            && (VirtualKeyId is null || string.Equals(VirtualKeyId, entry.VirtualKeyId, StringComparison.Ordinal))
            && (Operation is null || string.Equals(Operation, entry.Operation, StringComparison.Ordinal))
            && (Source is null || string.Equals(Source, entry.Source, StringComparison.Ordinal))
            && (BatchId is null || string.Equals(BatchId, entry.BatchId, StringComparison.Ordinal));
    }

    /// <summary>Whether <paramref name="entry"/> comes after the cursor in listing order (true without a cursor).</summary>
    /// <param name="entry">The entry.</param>
    /// <returns>True when it is past the cursor.</returns>
    public bool IsPastCursor(RequestLogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return CursorTime is not { } time
            || entry.Time < time
            || (entry.Time == time && CursorId is not null && string.CompareOrdinal(entry.Id, CursorId) < 0);
    }

    /// <summary>Listing order: newest first, then by id descending (ordinal).</summary>
    /// <param name="x">One entry.</param>
    /// <param name="y">The other.</param>
    /// <returns>Negative when <paramref name="x"/> is listed first.</returns>
    public static int Compare(RequestLogEntry x, RequestLogEntry y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        var byTime = y.Time.UtcTicks.CompareTo(x.Time.UtcTicks);
        return byTime != 0 ? byTime : string.CompareOrdinal(y.Id, x.Id);
    }
}

/// <summary>One page of request-log entries.</summary>
/// <param name="Entries">The entries, newest first.</param>
/// <param name="Next">The query of the next page (the same filters, the cursor after the last entry), or null when this page is the last.</param>
public sealed record RequestLogPage(IReadOnlyList<RequestLogEntry> Entries, RequestLogQuery? Next)
{
    /// <summary>
    /// A page of at most <paramref name="query"/>'s limit from <paramref name="listed"/> (entries in listing order, one more
    /// than the limit when more exist): for store implementations.
    /// </summary>
    /// <param name="query">The query.</param>
    /// <param name="listed">Up to <see cref="RequestLogQuery.Limit"/> + 1 matching entries, in listing order.</param>
    /// <returns>The page.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The query's <see cref="RequestLogQuery.Limit"/> is below 1.</exception>
    public static RequestLogPage Of(RequestLogQuery query, IReadOnlyList<RequestLogEntry> listed)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(listed);
        ArgumentOutOfRangeException.ThrowIfLessThan(query.Limit, 1, nameof(query));
        if (listed.Count <= query.Limit)
        {
            return new RequestLogPage(listed, null);
        }

        var entries = listed.Take(query.Limit).ToArray();
        var last = entries[^1];
        return new RequestLogPage(entries, query with { CursorTime = last.Time, CursorId = last.Id });
    }
}
