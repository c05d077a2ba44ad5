using System.ComponentModel.DataAnnotations;

namespace Bifrost.Middleware.RequestLog;

/// <summary>Options of the request log (<c>Bifrost:RequestLog</c>).</summary>
public sealed class RequestLogOptions
{
    /// <summary>Whether every gateway call is recorded. Default true (in memory unless another store is registered).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Entries kept at most: the in-memory ring's size, and the count retention of other stores. Default 10,000.</summary>
    [Range(1, 100_000_000)]
    public int MaxEntries { get; set; } = 10_000;

    /// <summary>How long entries are kept. Default 7 days.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// Whether the request and response JSON are stored with each entry, after the registered
    /// <see cref="IRequestLogRedactor"/>: a whole answer as it went out; a stream as the answer it assembles to (chat: the
    /// <c>chat.completion</c> with the text, tool calls, finish reason and usage; Responses: the final <c>response</c>;
    /// other operations: the chunks as a JSON array), marked with <c>bifrost_capture</c> (whether it completed, whether
    /// it was truncated at <see cref="MaxStreamContentLength"/>). Default false: prompts and answers are not logged.
    /// </summary>
    public bool CaptureContent { get; set; }

    /// <summary>
    /// With <see cref="CaptureContent"/>: the most characters of a stream's content kept per entry (text, tool calls, or
    /// chunks); what exceeds it is dropped and the entry marked <c>"truncated": true</c>. Default 65,536.
    /// </summary>
    [Range(1, 100_000_000)]
    public int MaxStreamContentLength { get; set; } = 65_536;
}
