using System.Collections;
using System.ComponentModel;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Bifrost.Middleware.Configuration;

/// <summary>
/// Finds configuration keys that bind to nothing: walks a configuration section against the options type it binds to
/// (properties by name ignoring case, as the binder matches them; dictionaries by any key; lists by index), so a
/// misspelt key (<c>Bifrost:Provider</c>, <c>Bifrost:Providers:openai:Modles</c>) is reported instead of ignored.
/// Generic: it follows the options types, nothing is listed by hand.
/// </summary>
internal static class UnknownConfigurationKeys
{
    /// <summary>The paths of the keys under <paramref name="section"/> that <typeparamref name="TOptions"/> has no place for, in configuration order.</summary>
    /// <param name="section">The section bound to <typeparamref name="TOptions"/>.</param>
    /// <param name="ignoredTopLevel">Top-level keys read by others (sibling packages' conventional sections), not checked.</param>
    public static IReadOnlyList<string> Find<TOptions>(IConfiguration section, IReadOnlyCollection<string> ignoredTopLevel)
    {
        ArgumentNullException.ThrowIfNull(section);
        var unknown = new List<string>();
        foreach (var child in section.GetChildren())
        {
            if (!ignoredTopLevel.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                Check(child, MemberType(typeof(TOptions), child.Key), unknown);
            }
        }

        return unknown;
    }

    private static void Check(IConfigurationSection section, Type? type, List<string> unknown)
    {
        if (type is null)
        {
            unknown.Add(section.Path);
            return;
        }

        if (IsValue(type))
        {
            // A value cannot hold sub-keys: report the first one (Bifrost:MaxRequestBodySize:Foo).
            if (section.GetChildren().FirstOrDefault() is { } nested)
            {
                unknown.Add(nested.Path);
            }

            return;
        }

        foreach (var child in section.GetChildren())
        {
            Check(child, MemberType(type, child.Key), unknown);
        }
    }

    /// <summary>The type a child key binds to, or null when <paramref name="type"/> has no place for it.</summary>
    private static Type? MemberType(Type type, string key)
    {
        if (DictionaryValueType(type) is { } valueType)
        {
            return valueType;
        }

        if (ElementType(type) is { } elementType)
        {
            return int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _) ? elementType : null;
        }

        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var name = property.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name ?? property.Name;
            if (property.GetMethod is { IsPublic: true } && property.GetIndexParameters().Length == 0 && string.Equals(name, key, StringComparison.OrdinalIgnoreCase))
            {
                return property.PropertyType;
            }
        }

        return null;
    }

    /// <summary>What the binder converts from one string (numbers, strings, enums, TimeSpan, Uri, ...).</summary>
    private static bool IsValue(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(object)
            || TypeDescriptor.GetConverter(type).CanConvertFrom(typeof(string));
    }

    private static Type? DictionaryValueType(Type type) =>
        (GenericInterface(type, typeof(IDictionary<,>)) ?? GenericInterface(type, typeof(IReadOnlyDictionary<,>)))?.GetGenericArguments()[1];

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType()
        : typeof(IEnumerable).IsAssignableFrom(type) && GenericInterface(type, typeof(IEnumerable<>)) is { } enumerable ? enumerable.GetGenericArguments()[0]
        : null;

    private static Type? GenericInterface(Type type, Type definition) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == definition
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == definition);
}
