using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Bifrost.Middleware.Hosting;

/// <summary>
/// The last resort for a Bifrost route whose request fails in the host's pipeline before the gateway runs (a host that
/// maps <c>MapBifrost(...).RequireAuthorization()</c> with the authorization services but without
/// <c>app.UseAuthorization()</c>: ASP.NET Core's endpoint middleware then throws on every request). Outermost, so the
/// host's own exception handling (developer exception page, <c>UseExceptionHandler</c>) sees the exception first; what
/// none of them handled is logged and answered 500 <c>host_error</c> in the Bifrost shape instead of an empty 500.
/// Other endpoints' exceptions pass through untouched.
/// </summary>
internal sealed class BifrostHostErrorStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(static async (context, nextMiddleware) =>
        {
            try
            {
                await nextMiddleware(context).ConfigureAwait(false);
            }
            catch (Exception ex) when (!context.Response.HasStarted
                && !context.RequestAborted.IsCancellationRequested
                && context.GetEndpoint()?.Metadata.GetMetadata<BifrostEndpointMetadata>() is not null)
            {
                var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Bifrost.Middleware.Hosting");
                HostingLog.HostPipelineFailed(logger, context.Request.Method, context.Request.Path, context.TraceIdentifier, ex);
                var error = BifrostErrors.Internal(
                    "host_error",
                    $"The request failed in the host's pipeline before it reached the gateway (request id {context.TraceIdentifier}); the error is logged under that id.");
                error.Error.EventId = context.TraceIdentifier;
                context.Response.Clear();
                context.Response.Headers[BifrostResults.RequestIdHeader] = context.TraceIdentifier;
                await BifrostResults.WriteErrorAsync(context, error).ConfigureAwait(false);
            }
        });
        next(app);
    };
}
