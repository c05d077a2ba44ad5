using System.Globalization;
using System.Text.Json.Nodes;
using CsCheck;

namespace Bifrost.Middleware.Tests.Fuzz;

/// <summary>What one mutation does to one node of a valid request body.</summary>
public enum MutationKind
{
    /// <summary>The node's value becomes JSON <c>null</c> (a null property, or a null element in an array).</summary>
    Null,

    /// <summary>The node is removed (a missing property, a shorter array).</summary>
    Remove,

    /// <summary>The value becomes a number out of range or not finite (1e309, -1e309, 2147483648, -1, 0, 1.5, ...).</summary>
    Number,

    /// <summary>The value becomes another JSON type ("fuzz", true, {}, [], 12).</summary>
    WrongType,

    /// <summary>An invalid UTF-16 escape (lone high, lone low, reversed pair) inside a string value.</summary>
    SurrogateInValue,

    /// <summary>An invalid UTF-16 escape inside the property name that holds this node.</summary>
    SurrogateInName,

    /// <summary>A <c>null</c> element inserted into an array.</summary>
    NullInArray,

    /// <summary>An unknown (extension) property with invalid UTF-16 in its name and value added to an object.</summary>
    ExtraProperty,
}

/// <summary>One generated mutation: the node (by its index in document order) and what to do to it.</summary>
public sealed record MutationSpec(int Node, MutationKind Kind, int Variant, int Position);

/// <summary>A mutated body: its text (with raw tokens JSON writers refuse, such as lone surrogate escapes and 1e309) and what was done.</summary>
public sealed record MutatedBody(string Text, string Pointer, string Description, JsonNode Tree, JsonNode? Marked)
{
    /// <summary>The kind of mutation actually applied (groups failures by class).</summary>
    public MutationKind Kind { get; init; }

    /// <summary>Placeholder token → (raw JSON text, whether it goes inside a string).</summary>
    public IReadOnlyDictionary<string, (string Raw, bool InString)> Raws { get; init; } = new Dictionary<string, (string, bool)>();

    /// <summary>The text of the (possibly shrunk) tree.</summary>
    public string Render() => JsonMutation.Serialize(Tree, Raws);

    public override string ToString() => $"{Description} at {Pointer}";
}

/// <summary>
/// Mutates one node of a JSON tree. Values a <see cref="JsonNode"/> cannot hold (lone surrogates, 1e309) are written as
/// placeholder tokens and substituted into the serialized text, so they reach the server exactly as an attacker sends them.
/// </summary>
public static class JsonMutation
{
    /// <summary>The invalid UTF-16 escapes (as they appear in JSON text).</summary>
    public static readonly string[] Surrogates = [@"\uD800", @"\uDC00", @"\uDC00\uD800", @"\uDBFF", @"x\uDFFFy"];

    /// <summary>
    /// Numbers that are out of range, not finite or not integers where integers are expected. "Huge" is 4096 (beyond every
    /// documented maximum: n 128, top_logprobs 20, dimensions 3072) rather than int.MaxValue: unfixed code would spend
    /// minutes and gigabytes on <c>n: 2147483647</c> in the test process; the memory test (a child process) covers that.
    /// </summary>
    public static readonly string[] Numbers = ["1e309", "-1e309", "2147483648", "-2147483649", "-1", "0", "1.5", "4096", "1e308", "-0.0", "9223372036854775808"];

    /// <summary>Values of other types than the node's own.</summary>
    public static readonly string[] OtherTypes = ["\"fuzz\"", "true", "{}", "[]", "12", "[\"a\",1]", "{\"a\":null}"];

    /// <summary>The generator of mutation specs (CsCheck): a kind, a variant and a position; the node is chosen by the caller.</summary>
    public static Gen<MutationSpec> Spec(int node) =>
        Gen.Select(Gen.Enum<MutationKind>(), Gen.Int[0, 1000], Gen.Int[0, 1000], (kind, variant, position) => new MutationSpec(node, kind, variant, position));

    /// <summary>Every node of the tree in document order (the root first), with its JSON pointer.</summary>
    public static List<(JsonNode? Node, JsonNode? Parent, string Pointer, string? Name, int Index)> Nodes(JsonNode root)
    {
        var list = new List<(JsonNode?, JsonNode?, string, string?, int)>();
        void Walk(JsonNode? node, JsonNode? parent, string pointer, string? name, int index)
        {
            list.Add((node, parent, pointer.Length == 0 ? "/" : pointer, name, index));
            switch (node)
            {
                case JsonObject obj:
                    foreach (var (key, child) in obj.ToList())
                    {
                        Walk(child, obj, pointer + "/" + key.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal), key, -1);
                    }

                    break;
                case JsonArray array:
                    for (var i = 0; i < array.Count; i++)
                    {
                        Walk(array[i], array, pointer + "/" + i.ToString(CultureInfo.InvariantCulture), null, i);
                    }

                    break;
            }
        }

        Walk(root, null, string.Empty, null, -1);
        return list;
    }

    /// <summary>Applies <paramref name="spec"/> to a copy of <paramref name="baseBody"/>.</summary>
    public static MutatedBody Apply(JsonNode baseBody, MutationSpec spec)
    {
        var tree = baseBody.DeepClone();
        var nodes = Nodes(tree);
        var (node, parent, pointer, name, index) = nodes[spec.Node % nodes.Count];
        var raws = new Dictionary<string, (string, bool)>(StringComparer.Ordinal);
        var kind = Applicable(spec.Kind, node, parent);
        string description;
        JsonNode? marked;

        string Token(string raw, bool inString = true)
        {
            var token = "~FZ" + raws.Count.ToString(CultureInfo.InvariantCulture) + "~";
            raws[token] = (raw, inString);
            return token;
        }

        void Replace(JsonNode? value)
        {
            switch (parent)
            {
                case null:
                    tree = value ?? JsonValue.Create("null-root")!;
                    break;
                case JsonObject obj:
                    obj[name!] = value;
                    break;
                case JsonArray array:
                    array[index] = value;
                    break;
            }
        }

        var surrogate = Surrogates[spec.Variant % Surrogates.Length];
        switch (kind)
        {
            case MutationKind.Null:
                Replace(null);
                marked = parent;
                description = "null";
                break;
            case MutationKind.Remove:
                if (parent is JsonObject fromObject)
                {
                    fromObject.Remove(name!);
                }
                else
                {
                    ((JsonArray)parent!).RemoveAt(index);
                }

                marked = parent;
                description = "removed";
                break;
            case MutationKind.Number:
            {
                var number = Numbers[spec.Variant % Numbers.Length];
                Replace(JsonValue.Create(Token(number, inString: false)));
                marked = parent;
                description = $"number {number}";
                break;
            }

            case MutationKind.WrongType:
            {
                var candidates = OtherTypes.Where(t => !SameType(t, node)).ToArray();
                var raw = candidates[spec.Variant % candidates.Length];
                Replace(JsonNode.Parse(raw));
                marked = parent;
                description = $"wrong type {raw}";
                break;
            }

            case MutationKind.SurrogateInValue:
            {
                var text = node!.GetValue<string>();
                var at = text.Length == 0 ? 0 : (spec.Position % 4) switch
                {
                    0 => 0,
                    1 => text.Length,
                    2 => text.Length / 2,
                    _ => -1, // replace the whole value
                };
                var token = Token(surrogate);
                var mutated = at < 0 ? token : text.Insert(at, token);
                Replace(JsonValue.Create(mutated));
                marked = parent;
                description = $"invalid UTF-16 {surrogate} in the string value";
                break;
            }

            case MutationKind.SurrogateInName:
            {
                var obj = (JsonObject)parent!;
                var position = obj.ToList().FindIndex(p => p.Key == name);
                var token = Token(surrogate);
                var newName = (spec.Position % 2) == 0 ? name + token : token + name;
                var value = obj[name!];
                obj.Remove(name!);
                obj.Insert(Math.Min(position, obj.Count), newName, value);
                marked = obj;
                description = $"invalid UTF-16 {surrogate} in the property name";
                break;
            }

            case MutationKind.NullInArray:
            {
                var array = (JsonArray)node!;
                array.Insert(spec.Position % (array.Count + 1), null);
                marked = array;
                description = "null element in the array";
                break;
            }

            case MutationKind.ExtraProperty:
            {
                var obj = (JsonObject)node!;
                var token = Token(surrogate);
                JsonNode? value = (spec.Position % 3) switch
                {
                    0 => JsonValue.Create("v" + Token(surrogate)),
                    1 => new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["p" + Token(surrogate)] = new JsonObject { ["type"] = "string" } } },
                    _ => new JsonArray(JsonValue.Create(Token(surrogate)), null),
                };
                obj["x_fuzz" + token] = value;
                marked = obj;
                description = $"extension property with invalid UTF-16 {surrogate}";
                break;
            }

            default:
                throw new InvalidOperationException(kind.ToString());
        }

        return new MutatedBody(Serialize(tree, raws), pointer, description, tree, marked) { Raws = raws, Kind = kind };
    }

    /// <summary>The JSON text of a tree whose placeholder tokens are replaced by their raw text.</summary>
    public static string Serialize(JsonNode tree, IReadOnlyDictionary<string, (string Raw, bool InString)> raws)
    {
        var text = tree.ToJsonString();
        foreach (var (token, (raw, inString)) in raws)
        {
            // A whole value ("~FZ0~") becomes the raw token itself (a number); inside a string, the escape goes in.
            text = inString
                ? text.Replace(token, raw, StringComparison.Ordinal)
                : text.Replace("\"" + token + "\"", raw, StringComparison.Ordinal);
        }

        return text;
    }

    /// <summary>The kind asked for, or the nearest one that applies to this node.</summary>
    private static MutationKind Applicable(MutationKind kind, JsonNode? node, JsonNode? parent)
    {
        bool Ok(MutationKind k) => k switch
        {
            MutationKind.Null or MutationKind.Number or MutationKind.WrongType => parent is not null,
            MutationKind.Remove => parent is not null,
            MutationKind.SurrogateInValue => node is JsonValue v && v.TryGetValue<string>(out _),
            MutationKind.SurrogateInName => parent is JsonObject,
            MutationKind.NullInArray => node is JsonArray,
            MutationKind.ExtraProperty => node is JsonObject,
            _ => false,
        };

        if (Ok(kind))
        {
            return kind;
        }

        // Prefer what this node is most interesting for.
        foreach (var k in new[] { MutationKind.SurrogateInValue, MutationKind.ExtraProperty, MutationKind.NullInArray, MutationKind.Number, MutationKind.WrongType })
        {
            if (Ok(k))
            {
                return k;
            }
        }

        return MutationKind.ExtraProperty; // the root object
    }

    private static bool SameType(string raw, JsonNode? node) => (raw[0], node) switch
    {
        ('"', JsonValue v) => v.TryGetValue<string>(out _),
        ('t', JsonValue v) => v.TryGetValue<bool>(out _),
        ('{', JsonObject) => true,
        ('[', JsonArray) => true,
        ('1', JsonValue v) => v.TryGetValue<double>(out _) || v.TryGetValue<int>(out _) || v.TryGetValue<long>(out _),
        _ => false,
    };
}
