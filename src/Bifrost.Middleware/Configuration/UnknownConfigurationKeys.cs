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
    /// <summary>The keys under <paramref name="section"/> that <typeparamref name="TOptions"/> has no place for, in configuration order, each with the closest setting's path when one is near (a typo).</summary>
    /// <param name="section">The section bound to <typeparamref name="TOptions"/>.</param>
    /// <param name="ignoredTopLevel">Top-level keys read by others (sibling packages' conventional sections), not checked.</param>
    public static IReadOnlyList<(string Path, string? Closest)> Find<TOptions>(IConfiguration section, IReadOnlyCollection<string> ignoredTopLevel)
    {
        ArgumentNullException.ThrowIfNull(section);
        var unknown = new List<(string, string?)>();
        foreach (var child in section.GetChildren())
        {
            if (!ignoredTopLevel.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                Check(child, typeof(TOptions), unknown);
            }
        }

        return unknown;
    }

    /// <summary>Checks <paramref name="section"/>, a child key of an object of type <paramref name="parent"/>.</summary>
    private static void Check(IConfigurationSection section, Type parent, List<(string, string?)> unknown)
    {
        if (MemberType(parent, section.Key) is not { } type)
        {
            var closest = Closest(parent, section.Key);
            var parentPath = ConfigurationPath.GetParentPath(section.Path);
            unknown.Add((section.Path, closest is null || parentPath is null ? closest : ConfigurationPath.Combine(parentPath, closest)));
            return;
        }

        if (IsValue(type))
        {
            // A value cannot hold sub-keys: report the first one (Bifrost:MaxRequestBodySize:Foo).
            if (section.GetChildren().FirstOrDefault() is { } nested)
            {
                unknown.Add((nested.Path, null));
            }

            return;
        }

        foreach (var child in section.GetChildren())
        {
            Check(child, type, unknown);
        }
    }

    /// <summary>The setting of <paramref name="type"/> nearest to a misspelt <paramref name="key"/> (at most two edits, ignoring case), if any.</summary>
    private static string? Closest(Type type, string key)
    {
        string? best = null;
        var bestDistance = 3;
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var name = property.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name ?? property.Name;
            var distance = Distance(name.ToUpperInvariant(), key.ToUpperInvariant());
            if (distance < bestDistance)
            {
                (best, bestDistance) = (name, distance);
            }
        }

        return best;
    }

    /// <summary>Edit distance with adjacent transpositions (Damerau–Levenshtein, optimal string alignment).</summary>
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
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
