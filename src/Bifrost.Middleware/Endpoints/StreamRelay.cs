using System.Runtime.CompilerServices;
using Bifrost.Middleware.Gateway;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Endpoints;

/// <summary>
/// Issue 18: whether a streamed chat call's chunks may be relayed as the provider's bytes
/// (<see cref="ChatCompletionRequest.RelayChunks"/>): only when every layer between the endpoint and the provider reads
/// no more of a chunk than its id, model, usage and <c>extra_fields</c> — telemetry, the request log and governance,
/// neither capturing content — and the built-in <see cref="IBifrostClient"/> runs the call. A plugin (a post-hook may
/// change a chunk), the response cache (stores and replays the typed chunks), a host's decorator or content capture
/// keep the typed chunks and their serialization. Decided once per gateway pipeline.
/// </summary>
internal static class StreamRelay
{
    private static readonly ConditionalWeakTable<GatewayPipeline, StrongBox<bool>> Decisions = new();

    public static bool IsAllowed(IServiceProvider services)
    {
        var pipeline = services.GetRequiredService<GatewayPipeline>();
        if (!Decisions.TryGetValue(pipeline, out var decision))
        {
            decision = new StrongBox<bool>(Decide(services, pipeline));
            Decisions.AddOrUpdate(pipeline, decision);
        }

        return decision.Value;
    }

    private static bool Decide(IServiceProvider services, GatewayPipeline pipeline)
    {
        if (services.GetService<IBifrostClient>() is not BifrostGateway)
        {
            return false;
        }

        var options = services.GetRequiredService<IOptions<BifrostOptions>>().Value;
        foreach (var layer in pipeline.Layers)
        {
            // The layers' own registration names: a renamed layer stays known here; plugins, the cache or a layer this list
            // does not know keep the typed chunks.
            var plain = layer == TelemetryLayer.Registration.Name ? !Diagnostics.GatewayTracing.CaptureContent(options.Telemetry)
                : layer == RequestLog.RequestLogLayer.Registration.Name ? !options.RequestLog.CaptureContent
                : layer == Governance.GovernanceLayer.Registration.Name;
            if (!plain)
            {
                return false;
            }
        }

        return true;
    }
}
