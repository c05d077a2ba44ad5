using System.Diagnostics.CodeAnalysis;
using Bifrost.Middleware;
using Bifrost.Middleware.Endpoints.Anthropic;
using Bifrost.Middleware.Hosting;
using Bifrost.Middleware.Operations;
using Bifrost.Middleware.Providers.Anthropic;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Anthropic-compatible (Messages API) endpoints on the host's routing.</summary>
public static class BifrostAnthropicEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps Anthropic's Messages API under <paramref name="prefix"/>, each route both with and without <c>/v1</c>:
    /// <c>POST v1/messages</c> (JSON, or Anthropic's SSE event sequence with <c>"stream": true</c>) and
    /// <c>POST v1/messages/count_tokens</c>, in Anthropic's own request, response and error shapes, so an Anthropic
    /// client with its base URL set to <c>http://host/anthropic</c> works unchanged. A request runs through the gateway
    /// with the same <c>provider/model</c> routing, default provider, fallbacks, governance, telemetry and request log as
    /// <c>MapBifrost</c>'s routes: sent as written to an <c>anthropic</c> provider and to Claude models on <c>vertex</c>
    /// (<c>:rawPredict</c>) and <c>bedrock</c> (InvokeModel) (native passthrough), converted through chat for any other
    /// model. Errors answer <c>{"type":"error","error":{"type","message"}}</c> with Anthropic's statuses and types. The
    /// caller's <c>anthropic-beta</c> and <c>anthropic-version</c> headers are forwarded on the native path (and kept by
    /// <c>x-bf-async</c> jobs) and ignored when converted; <c>x-api-key</c> is read as a virtual key when it carries an
    /// <c>sk-bf-</c> value and governance is on, and never forwarded (provider keys are the gateway's own).
    /// </summary>
    /// <param name="endpoints">The route builder (the <c>WebApplication</c>).</param>
    /// <param name="prefix">The route prefix. Default <c>/anthropic</c>.</param>
    /// <returns>A builder for conventions that apply to these endpoints (<c>RequireAuthorization</c>, <c>RequireRateLimiting</c>, ...).</returns>
    /// <exception cref="InvalidOperationException"><c>AddBifrost</c> was not called.</exception>
    public static IEndpointConventionBuilder MapBifrostAnthropic(this IEndpointRouteBuilder endpoints, [StringSyntax("Route")] string prefix = "/anthropic")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        if (endpoints.ServiceProvider.GetService<BifrostMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'builder.Services.AddBifrost(...)' before calling 'MapBifrostAnthropic'.");
        }

        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<BifrostOptions>>().Value;
        var keys = endpoints.ServiceProvider.GetRequiredService<Bifrost.Middleware.Governance.VirtualKeyStore>();
        var sourcesBefore = endpoints.DataSources.Count;
        var group = endpoints.MapGroup(prefix).WithMetadata(BifrostEndpointMetadata.Instance);
        var bodyLimit = new RequestSizeLimitAttribute(options.MaxRequestBodySize);
        foreach (var version in (ReadOnlySpan<string>)["/v1", string.Empty])
        {
            var messages = group.MapPost($"{version}/messages", AnthropicEndpoints.Guard(keys, AnthropicEndpoints.MessagesAsync))
                .WithMetadata(bodyLimit).WithDisplayName($"Bifrost Anthropic messages ({(version.Length == 0 ? "no version" : version)})");
            var countTokens = group.MapPost($"{version}/messages/count_tokens", AnthropicEndpoints.Guard(keys, AnthropicEndpoints.CountTokensAsync))
                .WithMetadata(bodyLimit).WithDisplayName($"Bifrost Anthropic count_tokens ({(version.Length == 0 ? "no version" : version)})");
            if (version.Length == 0)
            {
                messages.ExcludeFromDescription();
                countTokens.ExcludeFromDescription();
            }
            else
            {
                // OpenAPI (the /v1 copies): Anthropic's request, message and error shapes.
                OpenApiMetadata.Describe(messages, prefix, AnthropicOperations.Messages, AnthropicEndpoints.MessagesRoute, typeof(AnthropicErrorResponse), AnthropicEndpoints.OpenApiFooter);
                OpenApiMetadata.Describe(countTokens, prefix, AnthropicOperations.CountTokens, AnthropicEndpoints.CountTokensRoute, typeof(AnthropicErrorResponse), AnthropicEndpoints.OpenApiFooter);
                messages.WithMetadata(new BifrostHeaderMetadata(AnthropicEndpoints.AcceptedHeaders));
                countTokens.WithMetadata(new BifrostHeaderMetadata([.. AnthropicEndpoints.AcceptedHeaders.Where(static h => !h.StartsWith("x-bf-async", StringComparison.Ordinal))]));
            }
        }

        group.Map("/{**path}", AnthropicEndpoints.Guard(keys, AnthropicEndpoints.UnknownRouteAsync)).WithDisplayName("Bifrost Anthropic unknown route").ExcludeFromDescription();

        var checkedSources = endpoints.ServiceProvider.GetRequiredService<BifrostEndpointSources>();
        foreach (var source in endpoints.DataSources.Skip(sourcesBefore))
        {
            checkedSources.Add(source);
        }

        return group;
    }
}
