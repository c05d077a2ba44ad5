using System.Text.Json.Serialization.Metadata;

namespace Bifrost.Middleware.Serialization;

/// <summary>
/// Resolves this library's wire types (and only them) for <em>other</em> options — the host's HTTP
/// <c>JsonOptions</c>, which OpenAPI generators describe types with — with the wire's property names and strict
/// numbers. A source-generated context used as a resolver for foreign options would apply the host's naming policy
/// (its names are computed at run time from the options), so the names are taken from our own context's metadata.
/// Types of other assemblies (the host's) are left to the host's resolvers: their naming is untouched.
/// </summary>
internal sealed class WireNamesResolver : IJsonTypeInfoResolver
{
    public static readonly WireNamesResolver Instance = new();

    private WireNamesResolver()
    {
    }

    /// <summary>The contexts whose types are wire types: the gateway's, and the Anthropic-compatible routes' (Anthropic inbound OpenAPI).</summary>
    private static readonly JsonSerializerContext[] Contexts = [BifrostJson.Context, Providers.Anthropic.AnthropicJsonContext.Wire];

    public JsonTypeInfo? GetTypeInfo(Type type, JsonSerializerOptions options)
    {
        if (type.Assembly != typeof(WireNamesResolver).Assembly)
        {
            return null;
        }

        JsonSerializerContext? context = null;
        JsonTypeInfo? wire = null;
        foreach (var candidate in Contexts)
        {
            if (candidate.GetTypeInfo(type) is { } found)
            {
                (context, wire) = (candidate, found);
                break;
            }
        }

        if (context is null || wire is null)
        {
            return null;
        }

        if (ReferenceEquals(options, context.Options))
        {
            return wire;
        }

        var info = ((IJsonTypeInfoResolver)context).GetTypeInfo(type, options);
        if (info is null)
        {
            return null;
        }

        info.NumberHandling = JsonNumberHandling.Strict;
        if (info.Kind == JsonTypeInfoKind.Object)
        {
            foreach (var property in info.Properties)
            {
                foreach (var ours in wire.Properties)
                {
                    if (Equals(property.AttributeProvider, ours.AttributeProvider))
                    {
                        property.Name = ours.Name;
                        break;
                    }
                }
            }
        }

        return info;
    }
}
