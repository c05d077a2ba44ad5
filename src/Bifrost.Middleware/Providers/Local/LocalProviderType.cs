namespace Bifrost.Middleware.Providers.Local;

/// <summary>Type <c>local</c>: the built-in deterministic provider.</summary>
internal sealed class LocalProviderType : IProviderType
{
    public const string TypeName = "local";

    public string Name => TypeName;

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredService<LocalProviderAdapter>();
}
