using System.Globalization;
using Bifrost.Middleware.Providers.Local;
using Bifrost.Middleware.Testing;

namespace Bifrost.Middleware.Tests.Conformance;

/// <summary>The built-in local provider against the adapter conformance suite (scripted through request metadata).</summary>
public sealed class LocalAdapterConformanceTests : ProviderAdapterConformanceTests<IProviderAdapter>
{
    protected override ValueTask<IProviderAdapter> CreateAdapterAsync() => ValueTask.FromResult<IProviderAdapter>(new LocalProviderAdapter(TimeProvider.System));

    protected override ProviderContext CreateContext() => new("local", new ProviderOptions { Type = "local" }, "echo", null);

    protected override ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request)
    {
        var metadata = request.Metadata ??= new Dictionary<string, string>();
        metadata["local_reply"] = script.Reply;
        if (script.FailWithStatus is { } status)
        {
            metadata["local_status"] = status.ToString(CultureInfo.InvariantCulture);
        }

        if (script.RetryAfter is { } retryAfter)
        {
            metadata["local_retry_after"] = retryAfter.TotalSeconds.ToString(CultureInfo.InvariantCulture);
        }

        if (script.ResponseDelay > TimeSpan.Zero)
        {
            metadata["local_delay_ms"] = ((int)script.ResponseDelay.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        }

        if (script.ChunkDelay > TimeSpan.Zero)
        {
            metadata["local_chunk_delay_ms"] = ((int)script.ChunkDelay.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        }

        return ValueTask.FromResult(true);
    }
}
