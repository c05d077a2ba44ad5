namespace Bifrost.Middleware.Hosting;

/// <summary>Proves <c>AddBifrost</c> was called, so <c>MapBifrost</c> can fail early with a clear message.</summary>
internal sealed class BifrostMarkerService;
