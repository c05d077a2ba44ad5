using System.Collections.Frozen;

namespace Bifrost.Middleware.Operations;

/// <summary>
/// Every registered operation (<see cref="BifrostOperation"/> singletons: the built-in ones and any added later), checked
/// once at start, and what is derived from them: the route table (for <c>MapBifrost</c> and the 404/405 answers), the batch
/// line dispatch by <c>url</c>, and the async job handlers.
/// </summary>
internal sealed class OperationRegistry
{
    private readonly FrozenDictionary<string, BifrostOperation> _byBatchUrl;

    public OperationRegistry(IEnumerable<BifrostOperation> operations)
    {
        var all = new List<BifrostOperation>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var routes = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var batchUrls = new Dictionary<string, BifrostOperation>(StringComparer.Ordinal);
        var known = new Dictionary<string, (SortedSet<string> Methods, string RequestType, bool Post)>(StringComparer.OrdinalIgnoreCase);
        foreach (var operation in operations)
        {
            if (!names.Add(operation.Name))
            {
                throw new InvalidOperationException($"Two Bifrost operations are named '{operation.Name}'.");
            }

            foreach (var route in operation.Routes)
            {
                if (!routes.Add(route.Method + " " + route.Path))
                {
                    throw new InvalidOperationException($"Two Bifrost operations map {route.Method} {route.Path} (the second is '{operation.Name}').");
                }

                if (!route.Advertised || route.Path.Contains('{', StringComparison.Ordinal))
                {
                    continue;
                }

                // Literal paths answer 405 with an Allow header for other methods; the request type is the POST route's when there is one.
                var isPost = route.Method == "POST";
                if (!known.TryGetValue(route.Path, out var entry))
                {
                    entry = (new SortedSet<string>(StringComparer.Ordinal), operation.Name, isPost);
                }
                else if (isPost && !entry.Post)
                {
                    entry = (entry.Methods, operation.Name, true);
                }

                entry.Methods.Add(route.Method);
                known[route.Path] = entry;
            }

            if (operation.BatchUrl is { } url && !batchUrls.TryAdd(url, operation))
            {
                throw new InvalidOperationException($"Two Bifrost operations serve batch lines of '{url}'.");
            }

            all.Add(operation);
        }

        Operations = all;
        _byBatchUrl = batchUrls.ToFrozenDictionary(StringComparer.Ordinal);
        BatchUrls = [.. all.Where(static o => o.BatchUrl is not null).Select(static o => o.BatchUrl!)];
        KnownRoutes = known.ToFrozenDictionary(static p => p.Key, static p => (string.Join(", ", p.Value.Methods), p.Value.RequestType), StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The operations in registration order.</summary>
    public IReadOnlyList<BifrostOperation> Operations { get; }

    /// <summary>The batch line <c>url</c>s served, in registration order.</summary>
    public IReadOnlyList<string> BatchUrls { get; }

    /// <summary>Literal route paths (relative, without <c>v1/</c>) → the methods for a 405's <c>Allow</c> header and the request type.</summary>
    public FrozenDictionary<string, (string Allow, string RequestType)> KnownRoutes { get; }

    /// <summary>The operation that serves batch lines of <paramref name="url"/>, or null.</summary>
    public BifrostOperation? ForBatchUrl(string url) => _byBatchUrl.GetValueOrDefault(url);
}
