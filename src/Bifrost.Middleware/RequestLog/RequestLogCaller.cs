using Bifrost.Middleware.Governance;

namespace Bifrost.Middleware.RequestLog;

/// <summary>
/// Who the current call is for, as far as the request log is concerned: the HTTP endpoint sets it (the owner as
/// <see cref="GovernanceCaller.OwnerOf"/> resolves it, and the request's id), the job worker sets the job's owner. Carried
/// to the pipeline in an <see cref="AsyncLocal{T}"/>, so the pipeline never sees the HttpContext.
/// </summary>
internal sealed record RequestLogCaller(string? Owner, string? RequestId)
{
    private static readonly AsyncLocal<RequestLogCaller?> CurrentCaller = new();

    public static RequestLogCaller? Current
    {
        get => CurrentCaller.Value;
        set => CurrentCaller.Value = value;
    }

    /// <summary>Marks the flow of an HTTP call (only when the request log is on: resolving the owner costs a hash).</summary>
    public static void Enter(HttpContext context)
    {
        if (context.RequestServices.GetService<RequestLogWriter>() is { Enabled: true })
        {
            Current = new RequestLogCaller(GovernanceCaller.OwnerOf(context), context.TraceIdentifier);
        }
    }
}
