using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;

namespace Bifrost.Middleware.Hosting;

/// <summary>The endpoint data sources <c>MapBifrost</c> added, so the start-time check can build their endpoints (with every convention applied) before the first request.</summary>
internal sealed class BifrostEndpointSources
{
    private readonly List<EndpointDataSource> _sources = [];
    private readonly List<EndpointDataSource> _adminSources = [];

    public void Add(EndpointDataSource source)
    {
        lock (_sources)
        {
            _sources.Add(source);
        }
    }

    public EndpointDataSource[] Snapshot()
    {
        lock (_sources)
        {
            return [.. _sources];
        }
    }

    /// <summary>Adds a data source of <c>MapBifrostAdmin</c>.</summary>
    public void AddAdmin(EndpointDataSource source)
    {
        lock (_sources)
        {
            _adminSources.Add(source);
        }
    }

    /// <summary>The data sources <c>MapBifrostAdmin</c> added.</summary>
    public EndpointDataSource[] AdminSnapshot()
    {
        lock (_sources)
        {
            return [.. _adminSources];
        }
    }
}

/// <summary>Metadata on every endpoint <c>MapBifrost</c> maps: marks a request as the gateway's when the host's pipeline fails before the gateway runs.</summary>
internal sealed class BifrostEndpointMetadata
{
    public static readonly BifrostEndpointMetadata Instance = new();

    private BifrostEndpointMetadata()
    {
    }
}

/// <summary>A configuration section given to <c>AddBifrost(IConfiguration)</c>, checked at start for keys that bind to nothing.</summary>
internal sealed record BifrostConfigurationSource(IConfiguration Section);
