using System.Collections.Concurrent;

namespace Bifrost.Middleware.Tests.Infrastructure;

/// <summary>Captures the log entries of the <c>Bifrost*</c> categories (event id, level, message, exception); register it with <c>services.AddSingleton&lt;ILoggerProvider&gt;(sink)</c>.</summary>
public sealed class LogSink : ILoggerProvider
{
    public ConcurrentQueue<(int EventId, string Message, Exception? Exception, LogLevel Level)> Entries { get; } = new();

    /// <summary>The messages logged with <paramref name="eventId"/>.</summary>
    public IReadOnlyList<string> Messages(int eventId) => [.. Entries.Where(e => e.EventId == eventId).Select(static e => e.Message)];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (category.StartsWith("Bifrost", StringComparison.Ordinal))
            {
                sink.Entries.Enqueue((eventId.Id, formatter(state, exception), exception, logLevel));
            }
        }
    }
}
