using System.ComponentModel.DataAnnotations;

namespace Bifrost.Middleware;

/// <summary>
/// Options of the gateway, bindable from configuration (conventionally the <c>Bifrost</c> section).
/// Read once at start and validated then: a wrong value stops the host with a message naming it.
/// </summary>
public sealed class BifrostOptions
{
    /// <summary>The provider used for a bare model name (one without <c>provider/</c>). Optional.</summary>
    public string? DefaultProvider { get; set; }

    /// <summary>The providers, by name. The name is the prefix of model strings (<c>openai</c> in <c>openai/gpt-4o-mini</c>).</summary>
    public IDictionary<string, ProviderOptions> Providers { get; set; } = new Dictionary<string, ProviderOptions>(StringComparer.OrdinalIgnoreCase);

    /// <summary>Largest accepted JSON request body on the inference routes, in bytes. Default 32 MiB.</summary>
    [Range(1024, long.MaxValue)]
    public long MaxRequestBodySize { get; set; } = 32 * 1024 * 1024;
}

/// <summary>One provider: which adapter serves it, where it is, its keys and models, timeouts and retries.</summary>
public sealed class ProviderOptions
{
    /// <summary>
    /// The adapter type: <c>openai</c> (any OpenAI-compatible HTTP API) or <c>local</c> (the built-in deterministic provider).
    /// Not needed for a provider registered with <c>AddProvider</c>. When empty, a provider named <c>local</c> is local and every other is <c>openai</c>.
    /// </summary>
    public string? Type { get; set; }

    /// <summary>Base URL of an HTTP provider, including the version segment, e.g. <c>https://api.openai.com/v1</c>.</summary>
    public string? BaseUrl { get; set; }

    /// <summary>API keys; one is picked per attempt by weighted random choice. <c>env:NAME</c> reads the environment variable NAME.</summary>
    [Microsoft.Extensions.Options.ValidateEnumeratedItems]
    public IList<ProviderKeyOptions> Keys { get; set; } = [];

    /// <summary>Models this provider may serve. Empty: any model is passed through.</summary>
    public IList<string> Models { get; set; } = [];

    /// <summary>Extra headers sent with every upstream request (e.g. <c>OpenAI-Organization</c>).</summary>
    public IDictionary<string, string> Headers { get; set; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Header that carries the key. <c>Authorization</c> (the default) sends <c>Bearer &lt;key&gt;</c>;
    /// any other name (e.g. <c>api-key</c> for Azure OpenAI) sends the key as is.
    /// </summary>
    public string AuthHeader { get; set; } = "Authorization";

    /// <summary>Time allowed for one attempt until the response headers arrive (for streams, until the first chunk arrives). Default 10 minutes.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "1.00:00:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Retries after a retryable failure (429, 5xx, timeout, connection failure) before trying the fallbacks. Default 2.</summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>Delay before the first retry; doubled on each next one, with jitter. Default 500 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait before a retry. A provider's <c>Retry-After</c> above it is not waited for: the fallbacks are tried instead. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>An API key of a provider.</summary>
public sealed class ProviderKeyOptions
{
    /// <summary>The key, or <c>env:NAME</c> to read it from the environment variable NAME.</summary>
    public string? Value { get; set; }

    /// <summary>Relative weight in the random choice among keys. Default 1.</summary>
    [Range(0.0, double.MaxValue)]
    public double Weight { get; set; } = 1;

    /// <summary>Models this key may be used for. Empty: all of the provider's models.</summary>
    public IList<string> Models { get; set; } = [];
}
