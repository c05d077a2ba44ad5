using System.Diagnostics;

namespace Bifrost.Middleware.Providers.Http;

/// <summary>
/// Whether an upstream call is made inside the current <see cref="Activity"/> (<see cref="TelemetryOptions.UpstreamTraceContext"/>).
/// </summary>
/// <remarks>
/// In .NET, <c>SocketsHttpHandler</c> puts its <c>DiagnosticsHandler</c> in front of every request when its
/// <c>ActivityHeadersPropagator</c> is set (the default): that handler starts a child <see cref="Activity"/> whenever
/// <see cref="Activity.Current"/> is not null or something listens to the ActivitySource or the DiagnosticListener of
/// HttpClient, and the propagator writes the current activity's <c>traceparent</c>. ASP.NET Core creates an
/// <see cref="Activity"/> for every request whenever logging is on, recorded or not; so without this policy a gateway pays a
/// child <see cref="Activity"/> and a header per upstream call for a trace nobody records. Under
/// <see cref="UpstreamTraceContext.Auto"/> the call runs with <see cref="Activity.Current"/> cleared (for the handlers below
/// this one only) unless the current activity is recorded, has a remote parent, or HttpClient's instrumentation has a listener.
/// </remarks>
internal static class UpstreamTraceContextPolicy
{
    private const string HttpSourceName = "System.Net.Http";
    private const string HttpDiagnosticListenerName = "HttpHandlerDiagnosticListener";

    private static ActivitySource? s_httpSource;
    private static DiagnosticListener? s_httpDiagnostics;
    private static int s_watching;

    /// <summary>Whether something listens to HttpClient's ActivitySource or DiagnosticListener (found once they exist).</summary>
    public static bool HttpClientListened =>
        s_httpSource?.HasListeners() == true || s_httpDiagnostics?.IsEnabled() == true;

    /// <summary>Whether a call under <paramref name="mode"/> should run outside <paramref name="current"/>.</summary>
    public static bool Detach(UpstreamTraceContext mode, Activity current) =>
        mode != UpstreamTraceContext.Always && !current.Recorded && !CameWithTraceContext(current) && !HttpClientListened;

    /// <summary>
    /// Whether the activity continues a trace from outside the process: a remote parent (an ActivitySource's activity), or a
    /// parent id without an in-process parent (ASP.NET Core's own activity for the client's <c>traceparent</c>).
    /// </summary>
    private static bool CameWithTraceContext(Activity current) =>
        current.HasRemoteParent || (current.Parent is null && current.ParentId is not null);

    /// <summary>
    /// Starts watching for HttpClient's ActivitySource and DiagnosticListener (once per process): an
    /// <see cref="ActivityListener"/> that only notes the source and listens to nothing, and an observer of
    /// <see cref="DiagnosticListener.AllListeners"/>. Both are told about sources created before and after.
    /// </summary>
    public static void EnsureWatching()
    {
        if (Interlocked.Exchange(ref s_watching, 1) != 0)
        {
            return;
        }

        ActivitySource.AddActivityListener(new ActivityListener
        {
            ShouldListenTo = static source =>
            {
                if (source.Name == HttpSourceName)
                {
                    s_httpSource = source;
                }

                return false;
            },
        });
        DiagnosticListener.AllListeners.Subscribe(new ListenerObserver());
    }

    private sealed class ListenerObserver : IObserver<DiagnosticListener>
    {
        public void OnNext(DiagnosticListener value)
        {
            if (value.Name == HttpDiagnosticListenerName)
            {
                s_httpDiagnostics = value;
            }
        }

        public void OnCompleted()
        {
        }

        public void OnError(Exception error)
        {
        }
    }
}
