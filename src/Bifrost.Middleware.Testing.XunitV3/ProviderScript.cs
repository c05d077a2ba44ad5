namespace Bifrost.Middleware.Testing;

/// <summary>
/// How the provider behind an adapter should behave for one conformance test: the reply to give, a failure to answer
/// with, and delays. An adapter under test applies it in
/// <see cref="ProviderAdapterConformanceTests{TAdapter}.ScriptAsync"/> — an HTTP adapter usually tells its fake
/// upstream server; an in-process adapter may read it from the request.
/// </summary>
public sealed class ProviderScript
{
    /// <summary>The assistant's answer text. Default: a short sentence of several words.</summary>
    public string Reply { get; init; } = "The quick brown fox jumps over the lazy dog.";

    /// <summary>When set, the provider fails with this HTTP status instead of answering.</summary>
    public int? FailWithStatus { get; init; }

    /// <summary>The provider's error message when <see cref="FailWithStatus"/> is set.</summary>
    public string FailWithMessage { get; init; } = "Scripted provider failure.";

    /// <summary>The provider's <c>Retry-After</c> with a failure, if any.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>How long the provider waits before it answers (before the response headers, or before a failure).</summary>
    public TimeSpan ResponseDelay { get; init; }

    /// <summary>How long the provider waits between streamed chunks (after the first one).</summary>
    public TimeSpan ChunkDelay { get; init; }
}
