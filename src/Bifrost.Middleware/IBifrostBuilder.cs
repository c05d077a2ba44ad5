namespace Bifrost.Middleware;

/// <summary>Returned by <c>AddBifrost</c> to chain further configuration (<c>AddProvider</c>, job stores, ...).</summary>
public interface IBifrostBuilder
{
    /// <summary>The service collection the gateway is registered in.</summary>
    IServiceCollection Services { get; }
}
