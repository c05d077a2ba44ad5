using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.RequestLog;

/// <summary>The request log's registrations (called by <c>AddBifrost</c>): the in-memory store unless another is registered, the writer, the query service.</summary>
internal static class RequestLogServices
{
    public static void Add(IServiceCollection services)
    {
        services.TryAddSingleton<IRequestLogStore>(static sp => new InMemoryRequestLogStore(sp.GetRequiredService<IOptions<BifrostOptions>>().Value.RequestLog.MaxEntries));
        services.TryAddSingleton(static sp => new RequestLogWriter(
            sp.GetRequiredService<IRequestLogStore>(),
            sp.GetRequiredService<IOptions<BifrostOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<RequestLogWriter>>(),
            sp.GetService<IRequestLogRedactor>()));
        services.TryAddSingleton<IBifrostRequestLog, BifrostRequestLog>();
        if (!services.Any(static d => d.ServiceType == typeof(Gateway.GatewayLayer) && ReferenceEquals(d.ImplementationInstance, RequestLogLayer.Registration)))
        {
            services.AddSingleton(RequestLogLayer.Registration);
            services.AddHostedService(static sp => sp.GetRequiredService<RequestLogWriter>());
        }
    }
}
